"""The same judged expectations written with pytest-llmjudge and with DeepEval's GEval.

Why: DeepEval is what many projects use for judged tests in pytest. This runs
``--n`` expectations ("the answer is correct for the input") both ways against
one loopback judge with a fixed latency per call, and prints wall time and
judge calls side by side:

  ours:   ``assert_judged(output, CRITERIA, input=...)`` (two presentations in
          opposite orders, sent together; a re-run is served from the cache),
  theirs: ``assert_test(LLMTestCase(...), [GEval(criteria=CRITERIA, ...)])``, as
          DeepEval's docs write it (one call for evaluation steps, one for the
          score, with log-probabilities), judge ``OpenAIModel("gpt-4.1")``
          pointed at the loopback server.

DeepEval is not a project dependency: it runs from its own venv (created on
first use under /tmp with ``pip install deepeval pytest-xdist``). It is run
offline: telemetry, update checks and .env loading are switched off through its
documented environment variables, HOME is a fresh folder, and the only API base
is the loopback server. The server (``throughput.py --serve``) answers our
prompts and GEval's steps and score prompts, and counts every call.

Usage: python benchmarks/deepeval_side_by_side.py [--n 200] [--latency 0.3]
       [--modes serial,xdist4] [--venv /tmp/llmjudge-bench-deepeval]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import API_KEY, MODEL, ROOT, ServerProcess

CRITERIA = "The actual output correctly answers the input"

OURS = '''
import pytest

from pytest_llmjudge import assert_judged

CRITERIA = {criteria!r}


@pytest.mark.parametrize("i", range({n}))
def test_sum(i):
    assert_judged(f"{{i}} + {{i}} = {{2 * i}}.", CRITERIA,
                  input=f"What is {{i}} + {{i}}?")
'''

THEIRS = '''
import os

import pytest
from deepeval import assert_test
from deepeval.metrics import GEval
from deepeval.models import OpenAIModel
from deepeval.test_case import LLMTestCase, SingleTurnParams

CRITERIA = {criteria!r}


@pytest.mark.parametrize("i", range({n}))
def test_sum(i):
    correctness = GEval(
        name="Correctness",
        criteria=CRITERIA,
        evaluation_params=[SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT],
        model=OpenAIModel(model="gpt-4.1", base_url=os.environ["BENCH_BASE_URL"],
                          api_key=os.environ["OPENAI_API_KEY"]),
        threshold=0.5,
    )
    case = LLMTestCase(input=f"What is {{i}} + {{i}}?",
                       actual_output=f"{{i}} + {{i}} = {{2 * i}}.")
    assert_test(case, [correctness])
'''

OFFLINE_ENV = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
    "DEEPEVAL_UPDATE_WARNING_OPT_IN": "0",
    "DEEPEVAL_DISABLE_DOTENV": "1",
    "OPENAI_API_KEY": API_KEY,  # sent to the loopback server only
}


def ensure_venv(venv: Path, spec: str) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} and installing {spec} pytest-xdist (one-off)...",
              flush=True)
        t0 = time.perf_counter()
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", spec,
                              "pytest-xdist"], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"pip install {spec} failed:\n{res.stderr[-3000:]}")
        print(f"  installed in {time.perf_counter() - t0:.0f} s")
    return py


def version(py: Path, dist: str) -> str:
    res = subprocess.run([str(py), "-c", "import importlib.metadata as m; "
                          f"print(m.version({dist!r}))"],
                         capture_output=True, text=True)
    return res.stdout.strip() or "?"


def run(py: Path, root: Path, args: list[str], env: dict[str, str]
        ) -> tuple[float, str, int]:
    """(wall, pytest's last line, return code)."""
    cmd = [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                         timeout=1200)
    wall = time.perf_counter() - t0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if re.search(r"passed|failed|error", ln)),
                lines[-1] if lines else res.stderr[-300:])
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-3000:] + res.stderr[-2000:])
    return wall, last.strip("= "), res.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--modes", default="serial",
                    help="comma list of serial, xdist4 (pytest -n 4)")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/llmjudge-bench-deepeval"))
    ap.add_argument("--deepeval-spec", default="deepeval")
    a = ap.parse_args()
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    their_py = ensure_venv(a.venv, a.deepeval_spec)
    print(f"DeepEval {version(their_py, 'deepeval')} (venv {a.venv}); pytest-llmjudge "
          f"{version(Path(sys.executable), 'pytest-llmjudge')}, litellm "
          f"{version(Path(sys.executable), 'litellm')}")
    rows: list[tuple[str, ...]] = []
    with ServerProcess(a.latency) as srv, tempfile.TemporaryDirectory(
            prefix="llmjudge-vs-deepeval-") as tmp:
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LLMJUDGE_", "DEEPEVAL_", "OPENAI_"))
                    and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        for mode in modes:
            extra = ["-n", "4"] if mode == "xdist4" else []
            ours = Path(tmp, f"ours-{mode}")
            ours.mkdir()
            (ours / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
            (ours / "test_ours.py").write_text(OURS.format(criteria=CRITERIA, n=a.n),
                                               encoding="utf-8")
            theirs = Path(tmp, f"theirs-{mode}")
            (theirs / "home").mkdir(parents=True)
            (theirs / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
            (theirs / "test_theirs.py").write_text(
                THEIRS.format(criteria=CRITERIA, n=a.n), encoding="utf-8")
            our_env = {**base_env, "LLMJUDGE_API_KEY": API_KEY,
                       "PYTHONPATH": str(ROOT)}  # this checkout is measured
            our_args = [f"--llmjudge-model={MODEL}",
                        f"--llmjudge-api-base={srv.base_url}", *extra]
            their_env = {**base_env, **OFFLINE_ENV, "HOME": str(theirs / "home"),
                         "BENCH_BASE_URL": srv.base_url}
            runs = [
                ("pytest-llmjudge", Path(sys.executable), ours, our_args, our_env),
                ("pytest-llmjudge, re-run", Path(sys.executable), ours, our_args,
                 our_env),
                ("DeepEval GEval", their_py, theirs, extra, their_env),
            ]
            for name, py, root, args, env in runs:
                srv.command("reset")
                print(f"  running {name} [{mode}]...", flush=True)
                wall, last, rc = run(py, root, args, env)
                st = srv.command("stats")
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(st["kinds"].items()))
                rows.append((mode, name, f"{wall:.1f}", str(st["calls"]),
                             f"{st['calls'] / a.n:.2f}", str(st["peak"]),
                             f"{st['span']:.1f}", last if rc == 0 else f"rc={rc}: "
                             + last, kinds or "-"))
    print(f"\n{a.n} expectations, judge latency {a.latency * 1000:.0f} ms per call")
    head = ("mode", "runner", "wall s", "calls", "calls/exp", "peak", "span s",
            "pytest says", "calls by kind")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print("peak = most calls the server saw at once; span = first request to last "
          "reply; a re-run of ours is answered from its cache (DeepEval's pytest "
          "runs have none).")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
