"""Calibrated confidence on real judges (issue #16): JudgeBench, half labelled.

For each judge file in ../shared/judgebench: split the pairs at random in two;
"calibrate" on one half (its labels are the ground truth in the file: the
points a ``--llmjudge-calibrate`` run stores, agreement-only confidence and
whether the lean was right) and judge the other half with and without that
calibration. Prints, per split and averaged over 5 splits, the precision of
decisive verdicts, their mean stated confidence, the decisive share, and the
expected calibration error (10 bins) of every leaning verdict. The decision
path is the plugin's: ``judgebench_replay.votes_for`` builds the votes,
``decide.decide_pairwise`` decides (compare mode), ``judging.calibrated``
calibrates. Figures only; nothing is asserted.

Usage: python benchmarks/judgebench_calibrated.py [PATH] [--splits 5] [--seed 0]
       [--limit N]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from _judgebench import SIDE, add_args, files, load
from judgebench_replay import votes_for

from pytest_llmjudge.judging import decide
from pytest_llmjudge.judging.calibrated import fit


def leans(rows: list[dict[str, Any]], judge: str, a: float
          ) -> list[tuple[str, float, bool] | None]:
    """Per pair: (kind, agreement-only confidence of the winner, right), None
    when there is no lean (a split, an unparseable judgment). The kinds are the
    plugin's: a winner, or a tie (never right here: every pair has a better
    answer)."""
    out: list[tuple[str, float, bool] | None] = []
    for row in rows:
        good = [v for v in votes_for(row, judge) if v.error is None]
        if len(good) < 2:
            out.append(None)
            continue
        d = decide.decide_pairwise(good, a, "compare")
        if d.winner is None:
            out.append(None)
            continue
        kind = "tie" if d.winner == "tie" else "winner"
        out.append((kind, d.confidence, d.winner == SIDE[row["label"]]))
    return out


def ece(points: list[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error of (stated confidence, right) over [0.5, 1]."""
    if not points:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = 0.5 + b * 0.5 / bins, 0.5 + (b + 1) * 0.5 / bins
        got = [(c, r) for c, r in points if lo <= c < hi or (b == bins - 1 and c == hi)]
        if got:
            conf = sum(c for c, _ in got) / len(got)
            acc = sum(r for _, r in got) / len(got)
            total += len(got) / len(points) * abs(conf - acc)
    return total


def figures(points: list[tuple[float, bool]], n: int, min_conf: float
            ) -> dict[str, float]:
    dec = [(c, r) for c, r in points if c >= min_conf]
    return {"share": len(dec) / n if n else 0.0,
            "prec": sum(r for _, r in dec) / len(dec) if dec else float("nan"),
            "conf": sum(c for c, _ in dec) / len(dec) if dec else float("nan"),
            "ece": ece(points),
            "lean_prec": sum(r for _, r in points) / len(points) if points else 0.0,
            "lean_conf": sum(c for c, _ in points) / len(points) if points else 0.0}


def pooled_accuracy(rows: list[dict[str, Any]], judge: str) -> float:
    """The per-vote accuracy the plugin's pooled first-pair agreement implies."""
    agree = pairs = 0
    for row in rows:
        good = [v for v in votes_for(row, judge) if v.error is None]
        if len(good) == 2:
            d = decide.decide_pairwise(good, 0.9, "compare")
            agree += d.agree
            pairs += d.pairs
    return decide.accuracy_from_agreement(agree, pairs)


def run(path: Path, splits: int, seed: int, min_conf: float,
        limit: int | None = None) -> None:
    data = load(path, limit)
    rows, judge, name = data.rows, data.judge, data.name
    print(f"\n{name}: {len(rows)} pairs, {splits} random half splits "
          f"(min_confidence {min_conf})")
    head = (f"  {'split':<6}{'':<7}{'decisive%':>10}{'prec%':>8}{'meanconf%':>10}"
            f"{'gap':>7}{'ECE':>7}{'leaning prec%':>15}{'mean conf%':>11}")
    print(head)
    rng = random.Random(seed)
    sums: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    counts: dict[str, dict[str, int]] = {"before": {}, "after": {}}
    for s in range(splits):
        idx = list(range(len(rows)))
        rng.shuffle(idx)
        half = len(idx) // 2
        cal = [rows[i] for i in idx[:half]]
        test = [rows[i] for i in idx[half:]]
        # The agreement statistics a run over the labelled half would leave.
        a = pooled_accuracy(cal, judge)
        known = [p for p in leans(cal, judge, a) if p is not None]
        fits = {k: fit([(c, r) for kk, c, r in known if kk == k])
                for k in {p[0] for p in known}}
        held = [p for p in leans(test, judge, a) if p is not None]
        before = [(c, r) for _, c, r in held]
        # A kind nobody labelled keeps its agreement-only confidence.
        after = [(fits[k].confidence(c) if k in fits else c, r) for k, c, r in held]
        for label, pts in (("before", before), ("after", after)):
            fg = figures(pts, len(test), min_conf)
            for k, v in fg.items():
                if v == v:  # a split with no decisive verdict has no precision
                    sums[label][k] = sums[label].get(k, 0.0) + v
                    counts[label][k] = counts[label].get(k, 0) + 1
            gap = 100 * (fg["conf"] - fg["prec"])
            print(f"  {s:<6}{label:<7}{100 * fg['share']:>10.1f}"
                  f"{100 * fg['prec']:>8.1f}{100 * fg['conf']:>10.1f}{gap:>7.1f}"
                  f"{fg['ece']:>7.3f}{100 * fg['lean_prec']:>15.1f}"
                  f"{100 * fg['lean_conf']:>11.1f}")
        print(f"  {'':<6}{'':<7}(calibrated on " + ", ".join(
            f"{f.n} {k} verdicts (ceiling {f.ceiling:.3f})"
            for k, f in sorted(fits.items())) + f"; a_hat {a:.3f})")
    for label in ("before", "after"):
        m = {k: sums[label][k] / counts[label][k] for k in sums[label]}
        m = {k: m.get(k, float("nan")) for k in
             ("share", "prec", "conf", "ece", "lean_prec", "lean_conf")}
        print(f"  {'mean':<6}{label:<7}{100 * m['share']:>10.1f}{100 * m['prec']:>8.1f}"
              f"{100 * m['conf']:>10.1f}{100 * (m['conf'] - m['prec']):>7.1f}"
              f"{m['ece']:>7.3f}{100 * m['lean_prec']:>15.1f}"
              f"{100 * m['lean_conf']:>11.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(ap)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for f in files(args.path):
        run(f, args.splits, args.seed, args.min_confidence, args.limit)
    print("""
decisive = leaning verdicts at confidence >= min_confidence (a split pair has no
lean); prec/meanconf = their precision and mean stated confidence (gap = the
overconfidence); ECE over every leaning verdict's stated confidence (10 bins
over [0.5, 1]); leaning prec / mean conf = the same over every leaning verdict.
mean: over the splits that have the figure. JudgeBench recorded two judgments
per pair: verdicts at 2 samples.""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
