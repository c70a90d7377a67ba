"""Replaying recorded judged assertions against the same suite of plain asserts.

Why: in CI, committed records (``--llmjudge-record-mode=none``) replace the
judge; a replayed judged test should cost about what a plain test costs. A
suite of ``--n`` judged tests (10 modules) is recorded once against the
scripted loopback judge (``--llmjudge-record-mode=once``); then, as a fresh
clone would (no cache folder, no judge model, no key, no server), it is
replayed, alternately with the same suite written with plain asserts, ``--reps``
times each. Both runs load the plugin. Medians of the whole pytest process
and of pytest's own "in N s" figure are printed, with the per-assertion
difference.

Usage: python benchmarks/replay_suite.py [--n 1000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
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

MODULES = 10
RUBRIC = "The answer states the correct sum"

JUDGED = '''
import pytest

from pytest_llmjudge import assert_judged


@pytest.mark.parametrize("i", range({start}, {stop}))
def test_sum(i):
    output = f"{{i}} + {{i}} = {{2 * i}}."
    assert_judged(output, {rubric!r}, input=f"What is {{i}} + {{i}}?")
'''

PLAIN = '''
import pytest


@pytest.mark.parametrize("i", range({start}, {stop}))
def test_sum(i):
    output = f"{{i}} + {{i}} = {{2 * i}}."
    assert output == f"{{i}} + {{i}} = {{i + i}}.", {rubric!r}
'''


def make_suite(root: Path, template: str, n: int) -> None:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    per = n // MODULES
    for m in range(MODULES):
        (root / f"test_mod{m}.py").write_text(
            template.format(start=m * per, stop=(m + 1) * per, rubric=RUBRIC),
            encoding="utf-8")


def run(root: Path, args: list[str], env_extra: dict[str, str] | None = None
        ) -> tuple[float, float, float, str]:
    """(process wall, process CPU, pytest's own seconds, last line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMJUDGE_")}
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                         timeout=900)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    if res.returncode != 0:
        raise SystemExit(f"pytest failed ({' '.join(cmd)}):\n{res.stdout[-3000:]}"
                         f"\n{res.stderr[-2000:]}")
    m = re.findall(r"passed in ([\d.]+)s", res.stdout)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    return wall, cpu, float(m[-1]) if m else float("nan"), lines[-1] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=1000, help="judged assertions")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    with tempfile.TemporaryDirectory(prefix="llmjudge-replay-") as tmp:
        judged, plain = Path(tmp, "judged"), Path(tmp, "plain")
        make_suite(judged, JUDGED, a.n)
        make_suite(plain, PLAIN, a.n)
        with ScriptedJudgeServer(ScriptedJudge()) as srv:
            wall, _, _, _ = run(judged, ["--llmjudge-record-mode=once",
                                      "--llmjudge-model=openai/scripted-judge",
                                      f"--llmjudge-api-base={srv.base_url}"],
                             {"LLMJUDGE_API_KEY": "sk-benchmark"})
            recorded = srv.calls
        files = sorted((judged / "llmjudge_records").glob("*.json"))
        size = sum(f.stat().st_size for f in files)
        print(f"recorded once: {recorded} judge calls in {wall:.1f} s -> {len(files)} "
              f"records files, {size / 1e6:.2f} MB")
        cache = judged / ".llmjudge_cache"
        replay_args = ["--llmjudge-record-mode=none"]
        run(judged, replay_args)  # warm file-system and bytecode caches
        run(plain, [])
        res: dict[str, list[tuple[float, float, float]]] = {"replay": [], "plain": []}
        last = ""
        for r in range(a.reps):
            for kind in (("replay", "plain") if r % 2 == 0 else ("plain", "replay")):
                if kind == "replay":
                    shutil.rmtree(cache, ignore_errors=True)  # a fresh clone
                    w, c, s, last = run(judged, replay_args)
                else:
                    w, c, s, _ = run(plain, [])
                res[kind].append((w, c, s))
    print(f"replay run's last line: {last}")
    print(f"\n{a.n} tests, {a.reps} runs each, alternating; seconds (medians)")
    print(f"{'suite':<32} {'process wall':>13} {'process CPU':>12} {'pytest says':>12}"
          "   wall of each run")
    med = {}
    for kind, label in (("replay", "judged, replayed from records"),
                        ("plain", "plain asserts")):
        cols = list(zip(*res[kind], strict=True))
        med[kind] = tuple(statistics.median(c) for c in cols)
        print(f"{label:<32} {med[kind][0]:>13.3f} {med[kind][1]:>12.3f} "
              f"{med[kind][2]:>12.3f}   {' '.join(f'{w:.2f}' for w in cols[0])}")
    d = [(med["replay"][i] - med["plain"][i]) / a.n * 1000 for i in range(3)]
    print(f"\nper assertion, replayed judged minus plain: {d[0]:+.3f} ms wall, "
          f"{d[1]:+.3f} ms CPU, {d[2]:+.3f} ms by pytest's own timer "
          f"(wall ratio {med['replay'][0] / med['plain'][0]:.2f}x)")
    print("the judged figures include one-off costs (importing pydantic, opening the "
          "cache, starting the judge loop) spread over the suite")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
