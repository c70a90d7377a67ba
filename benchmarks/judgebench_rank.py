"""Rankings on real judge decisions (issue #13): JudgeBench pairs through
``judge.rank([a, b], rubric)`` beside ``judge.compare(a, b, rubric)``.

Why: a ranking is built from pairwise comparisons (``judging/rank.py``), so on
two candidates it should be exactly as decisive and as precise as ``compare``
on the same pair. This checks it end to end on what real judges (o1-mini,
claude-3-haiku) answered: a loopback judge (``ScriptedJudgeServer``) replays
JudgeBench's recorded decision for whichever order the plugin shows the pair
in (``judgments[0]`` for (A, B), ``judgments[1]`` for (B, A); an unparseable
one as an unreadable reply), and every verdict goes through the plugin's
public API over real HTTP via litellm: sampling, agreement statistics,
min_confidence, ``rank.decide``.

JudgeBench recorded one judgment per order, so judgments use min_samples =
max_samples = 2 (what ``judgebench_replay.py`` measures too); no cache, so
every vote is a call. Each API gets its own cache folder (agreement
statistics) and judges the pairs twice, as two test runs would: run 1 with the
prior's per-vote accuracy, run 2 with the agreement run 1 learned (the plugin
freezes agreement for a run and saves what it learned at the end). That is
why the figures differ from ``judgebench_replay.py``'s, which lets each pair
see the agreement pooled over the pairs before it in file order.

Per judge model: pairs, decisive share, precision of decisive verdicts, mean
stated confidence and the calls made, compare and rank side by side, then the
pairs where the two APIs answered differently (expected: none), and a check
that the served decisions are the recorded ones (``judgebench_replay.votes_for``
decided with the same per-vote accuracy must give compare's verdict).

Usage: python benchmarks/judgebench_rank.py [PATH] [--limit N] [--runs 2]
       [--min-confidence 0.9]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _judgebench import SIDE, Recorded, add_args, files, load
from adaptive_sampling import make_judge
from judgebench_replay import votes_for

from pytest_llmjudge.judging import decide
from pytest_llmjudge.judging.judge import Judge
from pytest_llmjudge.testing import JudgeRequest, ScriptedJudgeServer
from pytest_llmjudge.types import Kind
from pytest_llmjudge.verdict import Outcome

RUBRIC = ("The response answers the question correctly (a wrong answer is "
          "worse than any right one)")
UNREADABLE = "I could not decide."  # what an unparseable judgment is served as


class RecordedJudge:
    """Answers a comparison with JudgeBench's decision for the order shown.

    The pair is found by its two texts as shown (response A, response B):
    (response_A, response_B) is ``judgments[0]``, (response_B, response_A)
    ``judgments[1]``; both decisions are already in the labels of the order
    they were made in, which is the order the plugin shows.
    """

    def __init__(self, rows: list[dict[str, Any]]):
        self.answers: dict[tuple[str, str], str | None] = {}
        for row in rows:
            a, b = row["response_A"], row["response_B"]
            first, second = (j.get("decision") for j in row["judgments"][:2])
            # One pair has the same text twice (both orders said "A=B"): the
            # order cannot be told from the texts, nor does it matter there.
            assert a != b or first == second, "identical texts, different decisions"
            self.answers[(a, b)] = first
            self.answers[(b, a)] = second
        self.unknown = 0
        self._lock = threading.Lock()

    def __call__(self, req: JudgeRequest) -> dict[str, Any] | str:
        key = (req.texts.get("response_a", ""), req.texts.get("response_b", ""))
        if req.kind != "pairwise" or key not in self.answers:
            with self._lock:
                self.unknown += 1
            return "not a recorded pair"
        decision = self.answers[key]
        if decision not in SIDE:  # JudgeBench could not parse this judgment
            return UNREADABLE
        # No stated confidence: JudgeBench recorded none.
        return {"reasoning": "recorded JudgeBench judgment", "winner": SIDE[decision]}


@dataclass
class Said:
    """What one API answered on one pair, in the file's labels."""

    status: str  # winner | tie | inconclusive | judge_error
    winner: str | None  # "A" / "B" (response_A / response_B), "tie" or None
    confidence: float
    calls: int


@dataclass
class Tally:
    pairs: int = 0
    decisive: int = 0  # a winner or a tie at >= min_confidence
    correct: int = 0
    ties: int = 0
    inconclusive: int = 0
    errors: int = 0
    conf_sum: float = 0.0
    calls: int = 0
    seconds: float = 0.0
    said: list[Said] = field(default_factory=list)

    def add(self, s: Said, label: str) -> None:
        self.pairs += 1
        self.calls += s.calls
        self.said.append(s)
        if s.status == "judge_error":
            self.errors += 1
        elif s.status == "inconclusive":
            self.inconclusive += 1
        else:
            self.decisive += 1
            self.conf_sum += s.confidence
            self.ties += s.winner == "tie"
            self.correct += s.winner == label


def by_compare(judge: Judge, row: dict[str, Any]) -> Said:
    v = judge.compare(row["response_A"], row["response_B"], RUBRIC,
                      input=row["question"])
    if v.outcome is Outcome.JUDGE_ERROR:
        status = "judge_error"
    elif v.outcome is not Outcome.PASS:  # orders split, or below min_confidence
        status = "inconclusive"
    else:
        status = "tie" if v.winner == "tie" else "winner"
    return Said(status, v.winner if status in ("winner", "tie") else None,
                v.confidence, v.calls)


def by_rank(judge: Judge, row: dict[str, Any]) -> Said:
    r = judge.rank([row["response_A"], row["response_B"]], RUBRIC,
                   input=row["question"])
    winner = {0: "A", 1: "B"}.get(r.winner) if r.winner is not None else \
        "tie" if r.status == "tie" else None
    return Said(r.status, winner, r.confidence, r.calls)


APIS: dict[str, Callable[[Judge, dict[str, Any]], Said]] = {
    "compare": by_compare, "rank": by_rank}


def replay(data: Recorded, server: ScriptedJudgeServer, folder: Path, api: str,
           runs: int, min_confidence: float) -> tuple[list[Tally], list[int]]:
    """``runs`` runs of ``api`` over the pairs; also, per run, how many compare
    verdicts differ from ``decide_pairwise`` on the recorded votes."""
    model = f"openai/{data.name}"
    out: list[Tally] = []
    off: list[int] = []
    for _ in range(runs):
        judge = make_judge(server.base_url, folder, model=model, min_samples=2,
                           max_samples=2, min_confidence=min_confidence)
        t = Tally()
        bad = 0
        start = time.perf_counter()
        for row in data.rows:
            s = APIS[api](judge, row)
            t.add(s, SIDE[row["label"]])
            if api == "compare":
                bad += not matches_recorded(judge, model, row, s, min_confidence)
        t.seconds = time.perf_counter() - start
        judge.session.close()  # saves the agreement this run learned
        out.append(t)
        off.append(bad)
    return out, off


def matches_recorded(judge: Judge, model: str, row: dict[str, Any], s: Said,
                     min_confidence: float) -> bool:
    """The verdict ``decide_pairwise`` gives the recorded votes, with the
    per-vote accuracy the judge used, is the one compare returned."""
    good = [v for v in votes_for(row, model) if v.error is None]
    if len(good) < 2:
        return s.status == "judge_error"
    d = decide.decide_pairwise(good, judge.accuracy(model, Kind.PAIRWISE), "compare")
    if d.winner is None or d.confidence < min_confidence:
        return s.status == "inconclusive"
    return s.winner == d.winner and abs(s.confidence - d.confidence) < 1e-5


def pct(num: float, den: float) -> str:
    return f"{100.0 * num / den:.2f}" if den else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(ap)
    ap.add_argument("--runs", type=int, default=2, choices=(1, 2),
                    help="1: the prior only; 2: also a run with the agreement "
                         "the first one learned")
    args = ap.parse_args(argv)
    found = files(args.path)
    print("JudgeBench pairs as 2-candidate rankings (judge.rank) beside "
          "judge.compare, through a loopback judge replaying the recorded "
          f"decisions; min_samples = max_samples = 2, min_confidence "
          f"{args.min_confidence}")
    head = (f"{'judge':<25}{'run':>4} {'api':<8}{'pairs':>6}{'decisive':>9}"
            f"{'share%':>8}{'prec%':>8}{'ties':>5}{'inconcl':>8}{'err':>4}"
            f"{'meanconf':>9}{'calls':>6}{'s':>6}")
    notes = []
    total_calls = 0
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for f in found:
            data = load(f, args.limit)
            policy = RecordedJudge(data.rows)
            with ScriptedJudgeServer(policy) as server:
                res = {api: replay(data, server, Path(tmp) / data.name / api, api,
                                   args.runs, args.min_confidence)
                       for api in APIS}
                served = server.calls
            total_calls += served
            print(f"\n{head}\n{'-' * len(head)}")
            for run in range(args.runs):
                for api in APIS:
                    t = res[api][0][run]
                    conf = f"{t.conf_sum / t.decisive:.3f}" if t.decisive else "-"
                    print(f"{data.name[:24]:<25}{run + 1:>4} {api:<8}{t.pairs:>6}"
                          f"{t.decisive:>9}{pct(t.decisive, t.pairs):>8}"
                          f"{pct(t.correct, t.decisive):>8}{t.ties:>5}"
                          f"{t.inconclusive:>8}{t.errors:>4}"
                          f"{conf:>9}"
                          f"{t.calls:>6}{t.seconds:>6.1f}")
            for run in range(args.runs):
                c, r = res["compare"][0][run], res["rank"][0][run]
                differ = sum(1 for x, y in zip(c.said, r.said, strict=True)
                             if (x.status, x.winner, round(x.confidence, 6))
                             != (y.status, y.winner, round(y.confidence, 6))
                             and not (x.status == y.status == "inconclusive"))
                notes.append(f"{data.name} run {run + 1}: {differ} of {c.pairs} "
                             "pairs where rank and compare answered differently; "
                             f"{res['compare'][1][run]} compare verdicts not what "
                             "decide_pairwise gives the recorded votes")
            notes.append(f"{data.name}: {served} requests served over HTTP "
                         f"(re-asks of unreadable replies included), "
                         f"{policy.unknown} not matched to a recorded pair")
    print()
    print("\n".join(notes))
    print(f"\n{total_calls} judge requests in all, "
          f"{time.perf_counter() - wall:.1f} s")
    print("""
columns: decisive = a winner or a tie at confidence >= min_confidence (rank:
status winner or tie); prec = share of decisive verdicts naming the labelled
better answer (a tie counts as wrong: every pair has one); inconcl = the orders
disagreed, or agreed below min_confidence; err = a judgment was unreadable
(JudgeBench could not parse it): a judge error; meanconf = mean stated
confidence of decisive verdicts (rank: Ranking.confidence); calls = judge calls
the verdicts report (Verdict.calls / Ranking.calls); s = wall seconds.
run 1 = per-vote accuracy from the prior (no agreement learned yet); run 2 =
from the agreement run 1 learned. An inconclusive compare verdict keeps its
leaning confidence, an inconclusive ranking reports 0.5: that difference is
not counted as answering differently.""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
