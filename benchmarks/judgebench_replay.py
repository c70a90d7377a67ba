"""Replay real judge decisions (JudgeBench) through pytest-llmjudge's comparison logic.

Why: the scripted judge only shows what we scripted. JudgeBench recorded what real
judges (o1-mini, claude-3-haiku) answered on pairs with an objectively right answer,
in both presentation orders. Feeding those two decisions to
``_aggregate.decide_pairwise`` (as ``Vote`` objects, exactly as ``Judge`` builds them)
shows how precise the project's decisive verdicts are, how often it honestly says
"inconclusive", and whether its confidence means what it says -- beside JudgeBench's
own score computed from the same decisions, and a single-order judge.

Usage: python benchmarks/judgebench_replay.py [PATH_TO_JUDGEBENCH_DIR] [--limit N]
       (default ../shared/judgebench relative to the repository root)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _judgebench import SIDE, UNSWAP, add_args, files, load, short_name

from pytest_llmjudge.judging import decide as agg
from pytest_llmjudge.verdict import Vote


def votes_for(row: dict[str, Any], judge: str) -> list[Vote]:
    """The pair's two judgments as the ``Vote`` objects ``Judge._to_vote`` builds.

    ``judgments[1]`` saw (B, A): its "A" means response_B, so it is un-swapped as
    ``Judge`` un-swaps a swapped presentation.
    """
    out = []
    for i, j in enumerate(row["judgments"][:2]):
        order = "B shown first" if i else "A shown first"
        side = SIDE.get(j.get("decision") or "")
        if side is None:
            out.append(Vote(presentation=i, order=order, model=judge,
                            error="unparseable judge reply"))
            continue
        out.append(Vote(presentation=i, order=order, model=judge,
                        winner=UNSWAP[side] if i else side))
    return out


def judgebench_score(row: dict[str, Any]) -> bool:
    """JudgeBench's rule: +1/-1 per judgment against the label; correct when sum > 0."""
    label = SIDE[row["label"]]
    total = 0
    for i, j in enumerate(row["judgments"][:2]):
        side = SIDE.get(j.get("decision") or "")
        if side is None or side == "tie":
            continue
        side = UNSWAP[side] if i else side
        total += 1 if side == label else -1
    return total > 0


@dataclass
class Tally:
    pairs: int = 0
    decisive: int = 0
    correct: int = 0
    ties: int = 0
    inconclusive: int = 0
    errors: int = 0
    flaky: int = 0
    bias_flagged: int = 0
    conf_sum: float = 0.0
    jb_correct: int = 0
    single_decisive: int = 0
    single_correct: int = 0
    single_ties: int = 0
    bins: dict[str, list[int]] = field(default_factory=dict)


def replay(path: Path, min_confidence: float, limit: int | None = None
           ) -> tuple[Tally, float]:
    data = load(path, limit)
    rows, judge = data.rows, data.judge
    t = Tally()
    agree_total = pairs_total = 0.0  # what JudgeSession.learn pools, in file order
    for row in rows:
        t.pairs += 1
        label = SIDE[row["label"]]
        t.jb_correct += judgebench_score(row)
        first = SIDE.get(row["judgments"][0].get("decision") or "")
        if first in ("A", "B"):
            t.single_decisive += 1
            t.single_correct += first == label
        elif first == "tie":
            t.single_ties += 1
        votes = votes_for(row, judge)
        good = [v for v in votes if v.error is None]
        if len(good) < 2:  # below min_samples: the project reports a judge error
            t.errors += 1
            continue
        a = agg.accuracy_from_agreement(agree_total, pairs_total)
        d = agg.decide_pairwise(good, a, "compare")
        agree_total += d.agree
        pairs_total += d.pairs
        t.flaky += d.flaky_reason is not None
        t.bias_flagged += bool(d.flaky_reason and "position bias" in d.flaky_reason)
        # Judge._verdict: a verdict below min_confidence is inconclusive.
        if d.outcome == "inconclusive" or d.confidence < min_confidence:
            t.inconclusive += 1
            continue
        t.decisive += 1
        t.conf_sum += d.confidence
        if d.winner == "tie":
            t.ties += 1
        hit = d.winner == label
        t.correct += hit
        b = f"{d.confidence:.2f}"
        t.bins.setdefault(b, [0, 0])
        t.bins[b][0] += 1
        t.bins[b][1] += hit
    return t, agg.accuracy_from_agreement(agree_total, pairs_total)


def pct(num: float, den: float) -> str:
    return f"{100.0 * num / den:6.2f}" if den else "     -"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(ap)
    args = ap.parse_args(argv)
    found = files(args.path)
    print(f"JudgeBench replay through _aggregate.decide_pairwise (compare mode, both "
          f"orders, min_confidence={args.min_confidence})\n")
    head = (f"{'judge':<26}{'pairs':>6}{'decisive':>10}{'share%':>8}{'prec%':>8}"
            f"{'ties':>6}{'inconcl%':>9}{'err':>5}{'meanconf':>9}{'a_hat':>7}"
            f"{'JB score':>9}{'1-order share%':>15}{'1-order prec%':>14}")
    print(head)
    print("-" * len(head))
    details = []
    for f in found:
        t, a_hat = replay(f, args.min_confidence, args.limit)
        name = short_name(f)
        print(f"{name[:25]:<26}{t.pairs:>6}{t.decisive:>10}"
              f"{pct(t.decisive, t.pairs):>8}"
              f"{pct(t.correct, t.decisive):>8}{t.ties:>6}"
              f"{pct(t.inconclusive, t.pairs):>9}{t.errors:>5}"
              f"{(t.conf_sum / t.decisive if t.decisive else 0):>9.3f}{a_hat:>7.3f}"
              f"{pct(t.jb_correct, t.pairs):>9}"
              f"{pct(t.single_decisive, t.pairs):>15}"
              f"{pct(t.single_correct, t.single_decisive):>14}")
        details.append((name, t))
    print("""
columns: decisive = verdicts with a winner at confidence >= min_confidence;
prec = share of them naming the labelled better answer (a tie counts as wrong);
inconcl = below min_confidence (mostly: the two orders disagreed); JudgeBench
recorded two judgments per pair, so this is the verdict at 2 samples: the plugin
would draw up to max_samples more before calling it inconclusive;
err = a judgment was unparseable (the project would report a judge error);
meanconf = mean reported confidence of decisive verdicts; a_hat = per-vote
accuracy the pooled agreement implies at the end; JB score = JudgeBench's own
metric over all pairs; 1-order = judgments[0] alone (decisive when it names A
or B).""")
    for name, t in details:
        print(f"\n{name}: flagged flaky {t.flaky}/{t.pairs - t.errors} "
              f"(position bias {t.bias_flagged}); decisive precision "
              f"{pct(t.correct, t.decisive).strip()}% vs mean confidence "
              f"{100 * t.conf_sum / max(1, t.decisive):.2f}% (gap = overconfidence "
              "from errors shared by both orders)")
        for b, (n, k) in sorted(t.bins.items()):
            print(f"   confidence {b}: {n:4d} verdicts, precision {pct(k, n).strip()}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
