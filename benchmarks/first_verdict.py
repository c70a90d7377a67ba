"""Time to the first verdict: how long a run waits before its first judge request.

Why (issue #14): every process that judges imports litellm (seconds) and makes
a first call that loads more (the OpenAI SDK's resources); paid inside the
first judged test, that is dead time. The plugin now starts that import in a
background thread when the run knows it will judge (``runtime/warmup.py``);
``LLMJUDGE_EAGER_IMPORT=0`` switches it off, which is the baseline here. Both
are measured in the same run, alternately, and their ratio printed.

For each suite, a real pytest process (fresh rootdir, empty cache) against the
scripted loopback judge answering at once (``throughput.py --serve``, in its own
process; the clocks are the system's monotonic clock, shared by processes):

  launch -> request   from starting ``python -m pytest`` to the first judge
                      request the server receives;
  test -> request     from the start of the first judged test (its setup, the
                      earliest over xdist workers) to that request; goal < 0.3 s
                      where the run had >= 4 s of other work before it;
  other work          seconds the non-judged work took (tests or the slow app
                      import), to show what the background import costs it
                      when both want the CPU (one GIL, two cores).

Suites: ``one`` (a single judged test), ``200`` (200 judged tests), ``200 -n 4``,
``slow app`` (the judged module imports an app that waits 4 s at import, as
one reading files or connecting would), the same at ``-n 4`` (each worker
imports it), ``cpu tests`` (4 s of CPU-bound plain tests run first, then the
judged test).

Usage: python benchmarks/first_verdict.py [--reps 2] [--suites one,200,...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import ROOT  # noqa: E402  (this checkout's plugin is measured)
from throughput import API_KEY, MODEL, ServerProcess  # noqa: E402

CONFTEST = '''
import os
import time

import pytest

_first = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if "judged" in item.nodeid and not _first:
        _first.append(time.monotonic())
        with open(os.environ["BENCH_OUT"], "a") as f:
            f.write(f"start {_first[0]!r}\\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    t0 = time.monotonic()
    try:
        return (yield)
    finally:
        if "other" in item.nodeid:
            with open(os.environ["BENCH_OUT"], "a") as f:
                f.write(f"other {time.monotonic() - t0!r}\\n")
'''

JUDGED = '''
import pytest

from pytest_llmjudge import assert_judged
{app}

@pytest.mark.parametrize("i", range({n}))
def test_judged(i):
    assert_judged(f"{{i}} + {{i}} = {{2 * i}}.", "States the correct sum",
                  input=f"What is {{i}} + {{i}}?")
'''

SLOW_APP = '''
import os
import time

t0 = time.monotonic()
time.sleep(4.0)  # an app that reads files or connects at import
with open(os.environ["BENCH_OUT"], "a") as f:
    f.write(f"other {time.monotonic() - t0!r}\\n")
'''

CPU_TESTS = '''
import time

import pytest


@pytest.mark.parametrize("i", range(8))
def test_other(i):
    deadline = time.process_time() + 0.5  # 0.5 s of this thread's CPU
    n = 0
    while time.process_time() < deadline:
        n += sum(range(200))
'''

SUITES: dict[str, tuple[int, str, list[str]]] = {
    # name: (judged tests, extra, pytest args)
    "one": (1, "", []),
    "200": (200, "", []),
    "200 -n 4": (200, "", ["-n", "4"]),
    "slow app": (1, "slow", []),
    "slow app -n 4": (4, "slow", ["-n", "4"]),
    "cpu tests": (1, "cpu", ["-p", "no:randomly"]),
}


def make(root: Path, n: int, extra: str) -> None:
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    app = ""
    if extra == "slow":
        (root / "slowapp.py").write_text(SLOW_APP, encoding="utf-8")
        app = "import slowapp  # noqa: E402,F401\n"
    if extra == "cpu":
        (root / "test_a_other.py").write_text(CPU_TESTS, encoding="utf-8")
    (root / "test_z_judged.py").write_text(JUDGED.format(app=app, n=n),
                                           encoding="utf-8")


def run(srv: ServerProcess, n: int, extra: str, args: list[str], eager: bool
        ) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llmjudge-fv-") as tmp:
        root = Path(tmp)
        make(root, n, extra)
        out = root / "bench.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMJUDGE_")}
        env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
                   LLMJUDGE_API_KEY=API_KEY, BENCH_OUT=str(out),
                   LLMJUDGE_EAGER_IMPORT="1" if eager else "0")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--llmjudge-model={MODEL}", f"--llmjudge-api-base={srv.base_url}",
               *args]
        srv.command("reset")
        launch = time.monotonic()
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                             timeout=600)
        wall = time.monotonic() - launch
        if res.returncode != 0:
            sys.stderr.write(res.stdout[-3000:] + res.stderr[-2000:])
            raise SystemExit(f"pytest failed ({res.returncode}): {' '.join(cmd)}")
        first = srv.command("stats")["first"]
        lines = out.read_text(encoding="utf-8").split("\n")
        starts = [float(ln.split()[1]) for ln in lines if ln.startswith("start ")]
        other = [float(ln.split()[1]) for ln in lines if ln.startswith("other ")]
        return {"launch": first - launch, "test": first - min(starts), "wall": wall,
                "other": max(other) if extra == "slow" else sum(other)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--suites", default=",".join(SUITES))
    a = ap.parse_args()
    names = [s.strip() for s in a.suites.split(",") if s.strip()]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    res: dict[tuple[str, bool], list[dict[str, float]]] = {}
    with ServerProcess(0.0) as srv:
        for name in names:
            n, extra, args = SUITES[name]
            run(srv, n, extra, args, True)  # warm the file system caches
            for r in range(a.reps):
                for eager in ((True, False) if r % 2 == 0 else (False, True)):
                    res.setdefault((name, eager), []).append(
                        run(srv, n, extra, args, eager))
            print(f"  {name}: done (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\nmedians of {a.reps} runs each, seconds; eager = background import "
          "(default), off = LLMJUDGE_EAGER_IMPORT=0 (the old behaviour)")
    head = (f"{'suite':<14} {'launch->request':>22} {'ratio':>6} "
            f"{'test->request':>20} {'ratio':>6} {'other work':>16} {'wall':>15}")
    print(head)
    print(f"{'':<14} {'eager / off':>22} {'':>6} {'eager / off':>20} {'':>6} "
          f"{'eager / off':>16} {'eager / off':>15}")
    goals = []
    for name in names:
        on = {k: statistics.median(x[k] for x in res[(name, True)])
              for k in ("launch", "test", "wall", "other")}
        off = {k: statistics.median(x[k] for x in res[(name, False)])
               for k in ("launch", "test", "wall", "other")}
        other = (f"{on['other']:.2f} / {off['other']:.2f}" if on["other"] else "-")
        print(f"{name:<14} {on['launch']:>10.2f} / {off['launch']:<9.2f} "
              f"{on['launch'] / off['launch']:>6.2f} {on['test']:>8.2f} / "
              f"{off['test']:<9.2f} {on['test'] / off['test']:>6.2f} {other:>16} "
              f"{on['wall']:>6.2f} / {off['wall']:<6.2f}")
        if SUITES[name][1]:
            goals.append((name, on["test"]))
    print("launch->request: pytest start to the first judge request; test->request: "
          "start of the first judged test (earliest worker) to it;\nother work: "
          "the slow app's import (longest worker) or the CPU-bound tests' total.")
    for name, t in goals:
        print(f"goal (< 0.3 s from the first judged test to its first request, after "
              f">= 4 s of other work): {name}: {t:.2f} s -> "
              f"{'met' if t < 0.3 else 'NOT met'}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
