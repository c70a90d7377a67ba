"""pytest start-up with and without pytest-llmjudge, on a suite that judges nothing.

Why: pytest loads every installed plugin at every start-up; a project that
installs pytest-llmjudge for a handful of judged tests must not pay for it in
every other run. The plugin module imports no litellm, pydantic, diskcache or
rich (see ``plugin.py``); this measures what is left.

A generated suite of ``--tests`` trivial tests (10 modules) runs in a fresh
rootdir, alternately with the plugin and with ``-p no:llmjudge``, ``--reps``
times each; medians and their ratio are printed for a full run and for
``--collect-only``. Then ``-X importtime`` shows what the plugin imports.

Usage: python benchmarks/startup.py [--tests 500] [--reps 9]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULES = 10


def make_suite(root: Path, tests: int) -> None:
    per = tests // MODULES
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for m in range(MODULES):
        body = ["import pytest\n"]
        for i in range(per):
            body.append(f"def test_{m}_{i}():\n    assert {i} + {i} == {2 * i}\n")
        (root / f"test_mod{m}.py").write_text("\n".join(body), encoding="utf-8")


def run(root: Path, args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMJUDGE_")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"pytest failed: {' '.join(cmd)}\n{res.stdout[-2000:]}")
    return wall


def plugin_imports(root: Path) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) for modules the plugin brings in."""
    base = [sys.executable, "-X", "importtime", "-m", "pytest", "-q", "-p",
            "no:cacheprovider", "--collect-only"]

    def modules(extra: list[str]) -> dict[str, int]:
        res = subprocess.run([*base, *extra], cwd=root, capture_output=True, text=True,
                             timeout=300)
        out: dict[str, int] = {}
        for line in res.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if m:
                out[m.group(4)] = int(m.group(2))
        return out

    with_plugin = modules([])
    without = modules(["-p", "no:llmjudge"])
    extra = [(us, name) for name, us in with_plugin.items() if name not in without]
    return sorted(extra, reverse=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tests", type=int, default=500)
    ap.add_argument("--reps", type=int, default=9)
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    with tempfile.TemporaryDirectory(prefix="llmjudge-startup-") as tmp:
        root = Path(tmp)
        make_suite(root, a.tests)
        modes = {"full run": [], "--collect-only": ["--collect-only"]}
        results: dict[tuple[str, bool], list[float]] = {}
        for name, args in modes.items():
            run(root, args)  # warm the file system and bytecode caches
            run(root, [*args, "-p", "no:llmjudge"])
            for r in range(a.reps):
                order = (True, False) if r % 2 == 0 else (False, True)
                for plugged in order:
                    extra = [] if plugged else ["-p", "no:llmjudge"]
                    results.setdefault((name, plugged), []).append(run(root,
                                                                       [*args, *extra]))
        print(f"\n{a.tests} trivial tests in {MODULES} modules, {a.reps} runs each, "
              "alternating; seconds per pytest process")
        print(f"{'mode':<16} {'with plugin':>12} {'-p no:llmjudge':>15} {'ratio':>7} "
              f"{'diff ms':>8}   min with / without")
        for name in modes:
            w, wo = results[(name, True)], results[(name, False)]
            mw, mwo = statistics.median(w), statistics.median(wo)
            print(f"{name:<16} {mw:>12.3f} {mwo:>15.3f} {mw / mwo:>7.3f} "
                  f"{(mw - mwo) * 1000:>+8.1f}   {min(w):.3f} / {min(wo):.3f}")
        print("\nmodules imported only with the plugin (-X importtime, cumulative):")
        extra = plugin_imports(root)
        top = [(us, n) for us, n in extra if n.count(".") <= 1][:8]
        for us, name in top:
            print(f"  {us / 1000:7.1f} ms  {name}")
        heavy = [n for n in ("litellm", "pydantic", "diskcache", "rich")
                 if any(m == n for _, m in extra)]
        print(f"  heavy libraries imported at start-up: {', '.join(heavy) or 'none'}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
