"""Adaptive sampling vs fixed sampling on a judge with a known error rate and bias.

Why: the stopping rule (``Judge._run_model``) claims that starting with two
presentations in opposite orders and drawing more only while the verdict is
unsure is at least as accurate as a fixed 5-call majority, for under half its
calls. This measures it on the scripted loopback judge, reached over real HTTP
through litellm via the ``Judge`` API, with a judge that is wrong at random
``--error`` of the time and answers by position (whatever option is offered
first) ``--bias`` of the time.

Each strategy judges the same stream of outputs (half truly pass); the pooled
agreement statistics that set per-vote accuracy live in the cache folder, as in
a real project, so a warm-up run comes first (its figures are printed too).

Usage: python benchmarks/adaptive_sampling.py [--items 300] [--error 0.1]
       [--bias 0.2] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_llmjudge.judging.judge import Judge  # noqa: E402
from pytest_llmjudge.runtime.session import JudgeSession  # noqa: E402
from pytest_llmjudge.settings import resolve  # noqa: E402
from pytest_llmjudge.testing import JudgeRequest, ScriptedJudgeServer  # noqa: E402
from pytest_llmjudge.verdict import Verdict  # noqa: E402

RUBRIC = "The answer is factually correct"
MODEL = "openai/scripted-judge"


class NoisyJudge:
    """Per vote: with ``bias`` answer whatever is offered first; else the truth
    (the output says GOOD), flipped with probability ``error``."""

    def __init__(self, error: float, bias: float = 0.0, seed: int = 0):
        self.error = error
        self.bias = bias
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, req: JudgeRequest) -> dict[str, Any] | str:
        if req.kind != "criteria":
            return "only criteria are scripted here"
        items = []
        for name, _desc in req.criteria:
            with self._lock:
                biased = self._rng.random() < self.bias
                wrong = self._rng.random() < self.error
            if biased:
                ok = not req.options_flipped
            else:
                ok = ("GOOD" in req.output) != wrong
            items.append({"name": name, "reasoning": "scripted",
                          "verdict": "pass" if ok else "fail"})
        return {"criteria": items, "confidence": 0.95}


def outputs(n: int, seed: int, tag: str) -> list[tuple[str, bool]]:
    """``n`` distinct outputs, half truly good, shuffled."""
    rng = random.Random(seed)
    items = [(f"answer {tag}-{i}: {'GOOD' if i % 2 == 0 else 'BAD'}", i % 2 == 0)
             for i in range(n)]
    rng.shuffle(items)
    return items


def make_judge(base_url: str, cache_dir: Path, **overrides: Any) -> Judge:
    """A ``Judge`` as a pytest run would build it: settings resolved, no cache
    reads (every vote is a real call), agreement statistics kept in ``cache_dir``."""
    cli: dict[str, Any] = {"model": MODEL, "api_base": base_url, "cache": "off",
                           "cache_dir": str(cache_dir), "retries": 0}
    cli.update(overrides)
    settings = resolve(cli, {}, env={"LLMJUDGE_API_KEY": "sk-benchmark"})
    session = JudgeSession(settings, cache_dir)
    return Judge(session, settings, None)


def judge_stream(judge: Judge, items: Iterable[tuple[str, bool]], batch: int = 20
                 ) -> list[tuple[bool, Verdict]]:
    """Judge ``items`` in concurrent batches (a test suite's pace: later judgments
    see the agreement statistics earlier ones pooled)."""
    items = list(items)
    out: list[tuple[bool, Verdict]] = []
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        verdicts = judge.check_many([(text, RUBRIC) for text, _ in chunk])
        out.extend((truth, v) for (_, truth), v in zip(chunk, verdicts, strict=True))
    return out


@dataclass
class Row:
    name: str
    n: int
    correct: int
    decisive: int
    calls: int
    conf: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def mean_calls(self) -> float:
        return self.calls / self.n


def score(name: str, results: list[tuple[bool, Verdict]]) -> Row:
    decisive = [(t, v) for t, v in results if v.outcome.value in ("pass", "fail")]
    correct = sum(1 for t, v in decisive if v.passed == t)
    calls = sum(v.calls for _, v in results)
    conf = sum(v.confidence for _, v in decisive) / max(1, len(decisive))
    return Row(name, len(results), correct, len(decisive), calls, conf)


STRATEGIES: dict[str, dict[str, Any]] = {
    # A single call decides whatever it says (min_confidence 0.5 never overrules).
    "one call": {"min_samples": 1, "max_samples": 1, "min_confidence": 0.5},
    # Five calls in alternating orders, majority wins.
    "fixed 5-call majority": {"min_samples": 5, "max_samples": 5,
                              "min_confidence": 0.5},
}


def run(items: int, error: float, bias: float, seed: int,
        max_samples: tuple[int, ...]) -> list[tuple[Row, Row | None]]:
    strategies = dict(STRATEGIES)
    for m in max_samples:
        strategies[f"adaptive 2..{m}"] = {"min_samples": 2, "max_samples": m}
    rows: list[tuple[Row, Row | None]] = []
    with ScriptedJudgeServer() as server, tempfile.TemporaryDirectory() as tmp:
        for k, (name, over) in enumerate(strategies.items()):
            server.policy = NoisyJudge(error, bias, seed=seed + k)
            judge = make_judge(server.base_url, Path(tmp) / f"s{k}", **over)
            warm = None
            if name.startswith("adaptive"):  # a suite's first run: the prior only
                warm = score(name + " [first run]",
                             judge_stream(judge, outputs(items // 2, seed + 100, "w")))
                # Agreement learned in a run is used from the next run on.
                judge.session.close()
                judge = make_judge(server.base_url, Path(tmp) / f"s{k}", **over)
            res = score(name, judge_stream(judge, outputs(items, seed, "m")))
            judge.session.close()
            rows.append((res, warm))
    return rows


def first_pair_disagreement(error: float, bias: float) -> float:
    """P(the two opposite-order presentations disagree), for a good or bad item."""
    right_first_side = bias + (1 - bias) * (1 - error)  # position agrees with truth
    right_other_side = (1 - bias) * (1 - error)
    return (right_first_side * (1 - right_other_side)
            + (1 - right_first_side) * right_other_side)


def exact(over: dict[str, Any], error: float, bias: float
          ) -> tuple[float, float, float]:
    """(accuracy, wrong, mean calls) of a strategy, computed exactly.

    Every sequence of votes is enumerated with its probability and fed to the
    real ``_aggregate.decide_criteria`` under the rule of ``Judge._run_model``,
    with the per-vote accuracy the pooled agreement converges to. No sampling
    noise: this is what the measured rows estimate.
    """
    from pytest_llmjudge.judging import decide as agg
    from pytest_llmjudge.rubric import Rubric, as_rubric
    from pytest_llmjudge.verdict import Vote

    rubric = as_rubric(RUBRIC)
    assert isinstance(rubric, Rubric)
    name = rubric.criteria[0].name
    a = agg.accuracy_from_agreement(1e9 * (1 - first_pair_disagreement(error, bias)),
                                    1e9)
    lo, hi, need = over["min_samples"], over["max_samples"], over.get(
        "min_confidence", 0.9)
    acc = wrong = calls = 0.0

    def p_right(i: int, truth: bool) -> float:
        # even presentations offer "pass" first, odd ones "fail"
        position_right = (i % 2 == 0) == truth
        return bias * position_right + (1 - bias) * (1 - error)

    def walk(truth: bool, said: tuple[bool, ...], n: int, p: float) -> None:
        nonlocal acc, wrong, calls
        if len(said) < n:
            i = len(said)
            walk(truth, (*said, truth), n, p * p_right(i, truth))
            walk(truth, (*said, not truth), n, p * (1 - p_right(i, truth)))
            return
        votes = [Vote(presentation=i, order="", model=MODEL, stated_confidence=0.95,
                      verdicts={name: "pass" if x else "fail"})
                 for i, x in enumerate(said)]
        d = agg.decide_criteria(rubric, votes, a, 0.5)
        done = d.outcome != "inconclusive" and d.confidence >= need
        if not done and len(said) < hi:
            walk(truth, said, min(hi, len(said) + 2), p)
            return
        calls += 0.5 * p * len(said)
        if done:
            ok = (d.outcome == "pass") == truth
            acc += 0.5 * p * ok
            wrong += 0.5 * p * (not ok)

    for truth in (True, False):
        walk(truth, (), lo, 1.0)
    return acc, wrong, calls


def scenario(items: int, error: float, bias: float, seed: int,
             max_samples: tuple[int, ...]) -> list[bool]:
    rows = run(items, error, bias, seed, max_samples)
    per_vote = (1 - bias) * (1 - error) + bias * 0.5
    dis = first_pair_disagreement(error, bias)
    print(f"\n== judge: random error {error:.0%}, position bias {bias:.0%} (per-vote "
          f"accuracy {per_vote:.1%}; the two orders disagree {dis:.1%} of the time, so "
          f"any rule needing them to agree averages >= {2 + 2 * dis:.2f} calls)")
    head = (f"{'strategy':<30}{'accuracy':>9}{'wrong':>7}{'inconcl':>8}"
            f"{'precision':>10}{'mean conf':>10}{'calls/assert':>13}")
    print(head)
    print("-" * len(head))
    expected: dict[str, tuple[float, float, float]] = {}
    for res, warm in rows:
        for r in ([warm] if warm else []) + [res]:
            print(f"{r.name:<30}{r.accuracy:>9.1%}"
                  f"{(r.decisive - r.correct) / r.n:>7.1%}{1 - r.decisive / r.n:>8.1%}"
                  f"{r.correct / max(1, r.decisive):>10.1%}{r.conf:>10.3f}"
                  f"{r.mean_calls:>13.2f}")
        over = {**STRATEGIES, **{f"adaptive 2..{m}": {"min_samples": 2,
                "max_samples": m} for m in max_samples}}[res.name]
        acc, wrong, calls = expected[res.name] = exact(over, error, bias)
        print(f"{'  exact (all vote sequences)':<30}{acc:>9.2%}{wrong:>7.2%}"
              f"{max(0.0, 1 - acc - wrong):>8.2%}{acc / (acc + wrong):>10.2%}{'':>10}"
              f"{calls:>13.2f}")
    f_acc, _, f_calls = expected["fixed 5-call majority"]
    met = []
    for name, (acc, _, calls) in expected.items():
        if not name.startswith("adaptive"):
            continue
        ok_acc = acc >= f_acc - 1e-12
        ok_calls = calls <= f_calls / 2
        met.append(ok_acc and ok_calls)
        print(f"goal (exact), {name}: accuracy {acc:.2%} {'>=' if ok_acc else '<'} "
              f"{f_acc:.2%} (5-call) and calls {calls:.2f} "
              f"{'<=' if ok_calls else '>'} {f_calls / 2:.2f} (half): "
              f"{'MET' if met[-1] else 'NOT MET'}")
    return met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--judges", nargs="+", default=["0.10:0.00", "0.05:0.10",
                                                    "0.10:0.20"],
                    help="ERROR:BIAS pairs (random error rate : share of votes "
                    "answered by position)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-samples", type=int, nargs="+", default=[6, 8])
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"{args.items} outputs per strategy, half truly pass; scripted loopback "
          "judge over real HTTP via litellm;\nadaptive = the default stopping rule "
          "(min_confidence 0.9); accuracy = right verdicts over all outputs\n"
          "(inconclusive counts against it); wrong = decisive and wrong; '[first run]' "
          "= empty cache folder,\nagreement prior only (the rows below it reuse the "
          "statistics it pooled).")
    for spec in args.judges:
        err, bias = (float(x) for x in spec.split(":"))
        scenario(args.items, err, bias, args.seed, tuple(args.max_samples))
    print("\nWhy the goal is not met, and cannot be on these judges: any rule that "
          "stops after one agreeing\nopposite-order pair errs whenever both votes are "
          "wrong, (1-a)^2 of the judgments that stop\nthere (1.0% at a = 0.9), while "
          "a 5-call majority errs P(3+ of 5 wrong) = 0.86%. To err less,\na rule must "
          "go on after most agreeing pairs, which costs at least 3 calls on average: "
          "more\nthan half of 5. So with independent errors and no other signal, no "
          "rule is both as accurate\nas the 5-call majority and half its cost; the "
          "exact rows show the adaptive rule close to that\nfrontier (about 40% more "
          "wrong verdicts for half the calls). A signal that varies with the\njudge's "
          "errors (token log-probabilities, an honest stated confidence) is what could "
          "close the gap.")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
