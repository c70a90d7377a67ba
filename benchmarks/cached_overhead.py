"""What a cached judged assertion costs against a plain ``assert``.

Why: once the reply cache is warm, a judged test should cost about what a
plain test costs, so that re-running a suite after an unrelated change is
cheap. A suite of ``--n`` judged tests and ``--n`` plain tests runs twice in
the same rootdir against the scripted loopback judge: the first run fills the
cache, the second is timed (and must make no judge call). Each test times its
own assertion (``perf_counter`` around the call) and a ``conftest.py`` times
each whole test (setup, call, teardown and report hooks: the plugin's per-test
work included). Medians are printed; the first judged assertion of the run is
shown apart (it opens the cache and starts the judge loop).

Usage: python benchmarks/cached_overhead.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer  # noqa: E402

MODEL = "openai/scripted-judge"
RUBRIC = "The answer states the correct sum"

CONFTEST = '''
import json
import os
import time

import pytest

TIMES = {"judged": [], "plain": []}
WHOLE = {"judged": [], "plain": []}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0 = time.perf_counter()
    try:
        return (yield)
    finally:
        kind = "judged" if "judged" in item.name else "plain"
        WHOLE[kind].append(time.perf_counter() - t0)


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump({"call": TIMES, "whole": WHOLE}, f)
'''

SUITE = '''
import time

import pytest

import conftest
from pytest_llmjudge import assert_judged

RUBRIC = {rubric!r}


@pytest.mark.parametrize("i", range({n}))
def test_judged(i):
    output = f"{{i}} + {{i}} = {{2 * i}}."
    t0 = time.perf_counter()
    assert_judged(output, RUBRIC, input=f"What is {{i}} + {{i}}?")
    conftest.TIMES["judged"].append(time.perf_counter() - t0)


@pytest.mark.parametrize("i", range({n}))
def test_plain(i):
    output = f"{{i}} + {{i}} = {{2 * i}}."
    t0 = time.perf_counter()
    assert output == f"{{i}} + {{i}} = {{i + i}}."
    conftest.TIMES["plain"].append(time.perf_counter() - t0)
'''


def run(root: Path, base_url: str) -> tuple[float, dict[str, dict[str, list[float]]]]:
    out = root / "times.json"
    env = {**os.environ, "BENCH_OUT": str(out), "LLMJUDGE_API_KEY": "sk-benchmark"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--llmjudge-model={MODEL}", f"--llmjudge-api-base={base_url}"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                         timeout=600)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"pytest failed:\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}")
    return wall, json.loads(out.read_text(encoding="utf-8"))


def ms(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=10)
    return (f"{statistics.median(xs) * 1000:>9.3f} {q[0] * 1000:>9.3f} "
            f"{q[-1] * 1000:>9.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=300, help="judged tests (and plain)")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    with ScriptedJudgeServer(ScriptedJudge()) as srv, \
            tempfile.TemporaryDirectory(prefix="llmjudge-cached-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
        (root / "test_bench.py").write_text(SUITE.format(rubric=RUBRIC, n=a.n),
                                            encoding="utf-8")
        fill_wall, _ = run(root, srv.base_url)
        filled = srv.calls
        wall, t = run(root, srv.base_url)
        second = srv.calls - filled
    judged, plain = t["call"]["judged"], t["call"]["plain"]
    first, rest = judged[0], judged[1:]
    wj, wp = t["whole"]["judged"][1:], t["whole"]["plain"]
    print(f"\nfirst run (fills the cache): {filled} judge calls, {fill_wall:.2f} s; "
          f"second run: {second} judge calls, {wall:.2f} s")
    print(f"\nsecond run, {a.n} judged + {a.n} plain tests; milliseconds")
    print(f"{'what':<40} {'median':>9} {'p10':>9} {'p90':>9}")
    print(f"{'cached assert_judged (call)':<40} {ms(rest)}")
    print(f"{'plain assert (call)':<40} {ms(plain)}")
    print(f"{'judged test, whole (setup..report)':<40} {ms(wj)}")
    print(f"{'plain test, whole (setup..report)':<40} {ms(wp)}")
    dc = statistics.median(rest) - statistics.median(plain)
    dw = statistics.median(wj) - statistics.median(wp)
    print(f"\ncached judged assertion costs {dc * 1000:+.3f} ms more than a plain "
          f"assert (call); {dw * 1000:+.3f} ms more per whole test")
    print(f"first judged assertion of the run (opens the cache, starts the loop): "
          f"{first * 1000:.1f} ms")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
