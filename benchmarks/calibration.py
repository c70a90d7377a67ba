"""Is a verdict's confidence calibrated? Reported confidence vs observed accuracy.

Why: ``Verdict.confidence`` claims to be the probability that the verdict is
right. This checks the claim on scripted loopback judges with controlled error
rates (real HTTP through litellm, via the ``Judge`` API, the default stopping
rule): every judgment that leans one way (decisive or not) is binned by its
reported confidence, and each bin's mean confidence is printed beside the share
of those verdicts that were right. ECE is the bin-weighted mean gap.

Each judge first gets a warm-up run so that the pooled agreement statistics in
its cache folder (from which per-vote accuracy is estimated) hold data, as they
would after a project's first runs; ``--cold`` measures without it.

Usage: python benchmarks/calibration.py [--items 150] [--errors 0.05 0.15 0.25 0.35]
       [--bias 0.0] [--seed 7] [--cold]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adaptive_sampling import MODEL, NoisyJudge, judge_stream, make_judge, outputs

from pytest_llmjudge.testing import ScriptedJudgeServer

EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0000001)


def lean(v: object) -> tuple[bool, float] | None:
    """(leans pass, confidence) of a verdict; None when it leans nowhere.

    An inconclusive verdict still leans when its criterion was decided but fell
    short of ``min_confidence``; its confidence is the criterion's.
    """
    from pytest_llmjudge.verdict import Verdict

    assert isinstance(v, Verdict)
    if v.outcome.value in ("pass", "fail"):
        return v.passed, v.confidence
    if v.outcome.value == "inconclusive" and v.criteria and \
            v.criteria[0].passed is not None:
        return v.criteria[0].passed, v.criteria[0].confidence
    return None


def table(points: list[tuple[float, bool]], title: str) -> float:
    print(f"\n{title}")
    head = (f"{'confidence bin':<16}{'verdicts':>9}{'mean conf':>11}{'accuracy':>10}"
            f"{'gap':>8}")
    print(head)
    print("-" * len(head))
    ece = 0.0
    for lo, hi in itertools.pairwise(EDGES):
        b = [(c, ok) for c, ok in points if lo <= c < hi]
        if not b:
            continue
        conf = sum(c for c, _ in b) / len(b)
        acc = sum(1 for _, ok in b if ok) / len(b)
        ece += abs(conf - acc) * len(b) / len(points)
        print(f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}"
              f"{'':<3}{len(b):>9}{conf:>11.3f}{acc:>10.3f}{acc - conf:>+8.3f}")
    print(f"ECE {ece:.4f} over {len(points)} verdicts")
    return ece


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=150, help="measured outputs per judge")
    ap.add_argument("--errors", type=float, nargs="+", default=[0.05, 0.15, 0.25, 0.35])
    ap.add_argument("--bias", type=float, default=0.0,
                    help="share of votes that answer by position")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cold", action="store_true", help="skip the warm-up run")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    allpts: list[tuple[float, bool]] = []
    per_judge = []
    with ScriptedJudgeServer() as server, tempfile.TemporaryDirectory() as tmp:
        for k, err in enumerate(args.errors):
            server.policy = NoisyJudge(err, args.bias, seed=args.seed + k)
            judge = make_judge(server.base_url, Path(tmp) / f"j{k}")
            if not args.cold:
                judge_stream(judge, outputs(args.items, args.seed + 50 + k, f"w{k}"))
                # Agreement learned in a run is used from the next run on.
                judge.session.close()
                judge = make_judge(server.base_url, Path(tmp) / f"j{k}")
            res = judge_stream(judge, outputs(args.items, args.seed + k, f"m{k}"))
            a_hat = judge.accuracy(MODEL, "criteria")
            judge.session.close()
            pts = []
            decisive = calls = 0
            for truth, v in res:
                calls += v.calls
                decisive += v.outcome.value in ("pass", "fail")
                got = lean(v)
                if got is not None:
                    pts.append((got[1], got[0] == truth))
            allpts += pts
            per_judge.append((err, a_hat, decisive / len(res), calls / len(res), pts))
    print(f"default stopping rule (min_samples 2, max_samples 6, min_confidence 0.9); "
          f"position bias {args.bias:.0%}; "
          f"{'cold' if args.cold else 'after a warm-up run'}")
    head = (f"{'error rate':>10}{'true a':>8}{'a_hat':>8}{'decisive':>10}{'calls':>7}"
            f"{'mean conf':>11}{'accuracy':>10}{'ECE':>8}")
    print(head)
    print("-" * len(head))
    for err, a_hat, dec, mean_calls, pts in per_judge:
        conf = sum(c for c, _ in pts) / max(1, len(pts))
        acc = sum(1 for _, ok in pts if ok) / max(1, len(pts))
        ece = 0.0
        for lo, hi in itertools.pairwise(EDGES):
            b = [(c, ok) for c, ok in pts if lo <= c < hi]
            if b:
                ece += abs(sum(c for c, _ in b) / len(b)
                           - sum(1 for _, ok in b if ok) / len(b)) * len(b) / len(pts)
        true_a = (1 - args.bias) * (1 - err) + args.bias * 0.5
        print(f"{err:>10.2f}{true_a:>8.3f}{a_hat:>8.3f}{dec:>10.1%}{mean_calls:>7.2f}"
              f"{conf:>11.3f}{acc:>10.3f}{ece:>8.4f}")
    table(allpts, "all judges pooled, binned by reported confidence")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
