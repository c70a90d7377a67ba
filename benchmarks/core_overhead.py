"""Issue #2's two figures, printed in one run: pytest start-up for a 500-test
suite with and without the plugin (goal: under 5% apart), then the median cost
of a cached judged assertion against a plain assert (goal: under 2 ms more).

It runs ``startup.py`` and ``cached_overhead.py`` one after the other, each as
its own script would, in this process (they measure subprocesses, so running
them together changes nothing in what they measure).

Usage: python benchmarks/core_overhead.py [--tests 500] [--reps 9] [--n 300]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cached_overhead  # noqa: E402
import startup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tests", type=int, default=500)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    print("== pytest start-up, with and without pytest-llmjudge")
    sys.argv = [sys.argv[0], "--tests", str(args.tests), "--reps", str(args.reps)]
    startup.main()
    print("\n== a cached judged assertion against a plain assert")
    sys.argv = [sys.argv[0], "--n", str(args.n)]
    cached_overhead.main()


if __name__ == "__main__":
    main()
