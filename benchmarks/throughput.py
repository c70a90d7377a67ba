"""Judge-call throughput against an ideal, and the CPU the plugin adds per call.

Why: the judge loop (``_loop.py``: one event loop per process, a semaphore of
``--llmjudge-concurrency`` calls in flight) must keep a slow judge busy. With a
judge that takes a fixed ``--latency`` per call, no runner can beat
``calls x latency / calls in flight``; this prints how close each way of
running comes:

  (a) sequential ``assert_judged`` (one test after another; the two debiasing
      presentations of each expectation go out together: 2 in flight),
  (b) ``judge.check_many`` in one test (``--llmjudge-concurrency``, default 16,
      in flight),
  (c) the (a) suite under ``pytest -n 4`` (4 workers x 2 = 8 in flight).

Each run is a real pytest process on a fresh rootdir (empty cache) reaching the
scripted loopback judge through litellm. "wall" is the whole process (start-up
and litellm import included); "net" is wall less the fixed start-up (measured
against an instant judge, for one process and for -n 4); "span" is the judge's
view, from the first request to the last reply. Debiasing is on (default
settings). The goal lines say, for (b) and (c), on which of the three measures
the issue's 1.3x goal is met.

Then, with the judge answering instantly: process CPU per call of the Judge path
(``check_many``: prompt building, cache, votes, verdicts) against bare
``litellm.acompletion`` calls with the same messages and options, on the same
loop and concurrency. The difference is what the plugin adds on top of litellm.

The server runs in its own process (``--serve``), so its CPU is not counted and
its threads do not compete for this process's GIL.

Usage: python benchmarks/throughput.py [--n 200] [--latency 0.3] [--cpu-calls 300]
       [--skip-throughput] [--skip-cpu]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "openai/scripted-judge"
API_KEY = "sk-benchmark-loopback"
RUBRIC = "The answer states the correct sum"

SUITE = '''
import os

import pytest

from pytest_llmjudge import assert_judged

N = int(os.environ["BENCH_N"])
RUBRIC = {rubric!r}


def item(i):
    return {{"output": f"{{i}} + {{i}} = {{2 * i}}.", "rubric": RUBRIC,
            "input": f"What is {{i}} + {{i}}?"}}


@pytest.mark.parametrize("i", range(N))
def test_each(i):
    kw = item(i)
    assert_judged(kw.pop("output"), kw.pop("rubric"), **kw)


def test_many(judge):
    verdicts = judge.check_many([item(i) for i in range(N)])
    assert [v.outcome.value for v in verdicts] == ["pass"] * N
'''


# --------------------------------------------------------------------- server
class BenchPolicy:
    """The scripted judge, plus DeepEval GEval's two prompts (steps, score).

    Sleeps ``latency`` per call and keeps the span from the first request to
    the last reply. ``verdict_logprob`` makes the server return token
    log-probs when asked (GEval asks, and makes a second call without them).
    """

    verdict_logprob = 0.97

    def __init__(self, latency: float):
        from pytest_llmjudge.testing import ScriptedJudge

        self.latency = latency
        self.inner = ScriptedJudge(latency=0.0, confidence=0.95,
                                   verdict_logprob=self.verdict_logprob)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.first: float | None = None
            self.last: float | None = None
            self.kinds: Counter[str] = Counter()

    def __call__(self, req: Any) -> Any:
        start = time.monotonic()
        if self.latency:
            time.sleep(self.latency)
        kind = req.kind
        if kind == "unknown":
            reply, kind = self.geval(req)
        else:
            reply = self.inner(req)
        with self.lock:
            self.kinds[kind] += 1
            self.first = start if self.first is None else min(self.first, start)
            end = time.monotonic()
            self.last = end if self.last is None else max(self.last, end)
        return reply

    @staticmethod
    def geval(req: Any) -> tuple[Any, str]:
        text = json.dumps(req.body.get("messages") or [])
        if '\\"steps\\"' in text or "evaluation steps based on the criteria" in text:
            return {"steps": ["Read the input and the actual output.",
                              "Check that the actual output answers the input "
                              "correctly.",
                              "Penalise incorrect or irrelevant statements."]
                    }, "geval-steps"
        if "score" in text.lower():
            return {"score": 9, "reason": "The output answers the input correctly."
                    }, "geval-score"
        return "I cannot tell what you are asking.", "other"


def serve(latency: float) -> None:
    """Child process: run the server; answer ``stats``/``reset``/``latency X``
    lines on stdin with one JSON line on stdout."""
    from pytest_llmjudge.testing import ScriptedJudgeServer

    policy = BenchPolicy(latency)
    server = ScriptedJudgeServer(policy).start()
    print(json.dumps({"base_url": server.base_url}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "reset":
            with server._lock:
                server.requests.clear()
                server.headers.clear()
                server.arrivals.clear()
                server.peak_in_flight = server.in_flight
            policy.reset()
        elif cmd[0] == "latency":
            policy.latency = float(cmd[1])
        elif cmd[0] == "quit":
            break
        with policy.lock:
            span = (policy.last - policy.first) if policy.first is not None and \
                policy.last is not None else 0.0
            kinds = dict(policy.kinds)
        print(json.dumps({"calls": server.calls, "peak": server.peak_in_flight,
                          "span": span, "kinds": kinds, "first": policy.first}),
              flush=True)
    server.stop()


class ServerProcess:
    """The scripted judge in a child process (see ``serve``)."""

    def __init__(self, latency: float):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve",
             "--latency", str(latency)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        self.base_url = json.loads(self.proc.stdout.readline())["base_url"]

    def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self.command("quit")
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ throughput
def pytest_run(base_url: str, n: int, select: str, extra: list[str]
               ) -> tuple[float, str]:
    """One pytest process on a fresh rootdir; (wall seconds, last output line)."""
    with tempfile.TemporaryDirectory(prefix="llmjudge-tp-") as tmp:
        Path(tmp, "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        Path(tmp, "test_bench.py").write_text(SUITE.format(rubric=RUBRIC),
                                              encoding="utf-8")
        env = {**os.environ, "BENCH_N": str(n), "LLMJUDGE_API_KEY": API_KEY,
               "PYTHONPATH": str(ROOT)}  # this checkout, not an installed copy
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--llmjudge-model={MODEL}", f"--llmjudge-api-base={base_url}",
               "-k", select, *extra]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                             timeout=900)
        wall = time.perf_counter() - t0
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
        if res.returncode != 0:
            sys.stderr.write(res.stdout[-3000:] + res.stderr[-2000:])
            raise SystemExit(f"pytest failed ({res.returncode}): {' '.join(cmd)}")
        peak = next((ln for ln in lines if "in flight" in ln), "")
        return wall, peak


GOAL = 1.3  # issue 6: (b) and (c) within 1.3x of the ideal


def throughput(n: int, latency: float) -> None:
    print(f"\n== throughput: {n} judged expectations, judge latency "
          f"{latency * 1000:.0f} ms per call, debiasing on (2 presentations each)")
    runs = [
        ("(a) sequential assert_judged", "test_each", [], 2),
        ("(b) judge.check_many", "test_many", [], 16),
        ("(c) pytest -n 4", "test_each", ["-n", "4"], 8),
    ]
    head = (f"{'run':<30} {'calls':>5} {'flight':>6} {'ideal s':>7} {'wall s':>7} "
            f"{'wall/ideal':>10} {'start s':>7} {'net/ideal':>9} {'span s':>7} "
            f"{'span/ideal':>10} {'peak':>4}")
    rows = []
    goals = []
    with ServerProcess(latency) as srv:
        # The fixed cost of a run that judges at all, against an instant judge:
        # pytest start-up, the litellm import (seconds) and the first call; for
        # -n 4, the controller plus four workers each doing all that at once
        # (on this machine's cores), one judged test each.
        # Measured before the runs and again after them, the smaller kept: the
        # least it costs, so "net" below is if anything too high, never flattered.
        starts1, starts4 = [], []

        def measure_start_up() -> None:
            srv.command("latency 0")
            starts1.append(pytest_run(srv.base_url, 1, "test_each", [])[0])
            starts4.append(pytest_run(srv.base_url, 4, "test_each", ["-n", "4"])[0])
            srv.command(f"latency {latency}")

        measure_start_up()
        measured = []
        for name, select, extra, flight in runs:
            srv.command("reset")
            wall, summary = pytest_run(srv.base_url, n, select, extra)
            st = srv.command("stats")
            measured.append((name, extra, flight, wall, st))
            print(f"   {name}: done; plugin summary: {summary.strip()}", flush=True)
        measure_start_up()
    start1, start4 = min(starts1), min(starts4)
    for name, extra, flight, wall, st in measured:
        ideal = st["calls"] * latency / flight
        start = start4 if extra else start1
        net = wall - start
        # A start-up that varied by more than the judging took leaves no net figure.
        ratios = {"wall": wall / ideal,
                  "wall - start-up": net / ideal if net > 0 else None,
                  "span": st["span"] / ideal}
        shown = {k: "n/a" if r is None else f"{r:.2f}x" for k, r in ratios.items()}
        rows.append(f"{name:<30} {st['calls']:>5} {flight:>6} {ideal:>7.2f} "
                    f"{wall:>7.2f} {shown['wall']:>10} {start:>7.2f} "
                    f"{shown['wall - start-up']:>9} {st['span']:>7.2f} "
                    f"{shown['span']:>10} {st['peak']:>4}")
        if not name.startswith("(a)"):
            goals.append((name, ratios))
    print(head)
    print("\n".join(rows))
    print("ideal = calls x latency / calls in flight; "
          "wall = the whole pytest process;\n"
          "start = its fixed start-up, least of two runs against an instant judge "
          f"({start1:.2f} s for one process: pytest,\nthe litellm import, the first "
          f"call; {start4:.2f} s for -n 4, whose 4 workers each pay it); net = wall - "
          "start;\n"
          "span = first request to last reply at the server; peak = most calls the "
          "server saw at once")
    print(f"goal: (b) and (c) within {GOAL}x of the ideal, on each measure:")
    for name, ratios in goals:
        met = [k for k, r in ratios.items() if r is not None and r <= GOAL]
        missed = [k for k, r in ratios.items() if r is not None and r > GOAL]
        parts = ", ".join(
            f"{k} n/a (start-up noise)" if r is None else
            f"{k} {r:.2f}x {'met' if r <= GOAL else 'NOT met'}"
            for k, r in ratios.items())
        verdict = ("met on every measure" if not missed else
                   f"met on {' and '.join(met)} only; NOT met on {' and '.join(missed)}"
                   if met else "met on no measure")
        print(f"   {name}: {parts} -> {verdict}")


# ------------------------------------------------------------------ CPU per call
def cpu_per_call(total_calls: int, rounds: int) -> None:
    import asyncio

    from pytest_llmjudge.runtime.client import litellm
    from pytest_llmjudge.judging.prompt import present, response_schema
    from pytest_llmjudge.judging.judge import Judge
    from pytest_llmjudge.rubric import Rubric, as_rubric
    from pytest_llmjudge.runtime.session import JudgeSession
    from pytest_llmjudge.settings import resolve

    print(f"\n== CPU per judge call, judge answering instantly ({total_calls} calls a "
          f"round, {rounds} rounds of each, alternating, 16 in flight)")
    lm = litellm()
    with ServerProcess(0.0) as srv, tempfile.TemporaryDirectory() as tmp:
        settings = resolve({"model": MODEL, "api_base": srv.base_url, "retries": 0,
                            "cache_dir": str(Path(tmp, "cache"))}, {},
                           env={"LLMJUDGE_API_KEY": API_KEY})
        session = JudgeSession(settings, Path(tmp))
        judge = Judge(session, settings, None)
        rubric = as_rubric(RUBRIC)
        assert isinstance(rubric, Rubric)
        names = tuple(c.name for c in rubric.criteria)
        schema = response_schema("criteria", names, 0)

        async def bare(tag: str, k: int) -> None:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                pres = present(rubric, i % 2, output=f"{tag} {i} + {i} = {2 * i}.",
                               input=f"What is {i} + {i}?", reference=None,
                               context=None)
                async with sem:
                    await lm.acompletion(
                        model=MODEL, api_base=srv.base_url, api_key=API_KEY,
                        messages=list(pres.messages), response_format=schema,
                        temperature=0.0, timeout=60.0, num_retries=0, max_retries=0,
                        logprobs=True, top_logprobs=5)

            await asyncio.gather(*(one(i) for i in range(k)))

        def ours(tag: str, k: int) -> None:
            items = [{"output": f"{tag} {i} + {i} = {2 * i}.", "rubric": RUBRIC,
                      "input": f"What is {i} + {i}?"} for i in range(k // 2)]
            verdicts = judge.check_many(items)
            bad = [v for v in verdicts if v.outcome.value != "pass"]
            if bad:
                raise SystemExit(f"unexpected verdict: {bad[0]}")

        gc_cpu = [0.0, 0.0]  # total, start of the current collection

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_cpu[1] = time.process_time()
            else:
                gc_cpu[0] += time.process_time() - gc_cpu[1]

        def measure(fn: Any, tag: str) -> tuple[float, float, float]:
            """(CPU outside GC, GC CPU, wall), milliseconds per call."""
            srv.command("reset")
            g0 = gc_cpu[0]
            c0, t0 = time.process_time(), time.perf_counter()
            fn(tag)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            gcs = gc_cpu[0] - g0
            calls = srv.command("stats")["calls"]
            return (cpu - gcs) / calls * 1000, gcs / calls * 1000, wall / calls * 1000

        run_bare = lambda tag: session.loop.run(bare(tag, total_calls))  # noqa: E731
        run_ours = lambda tag: ours(tag, total_calls)  # noqa: E731
        # Warm-up: imports, litellm's client cache, the cache database.
        measure(lambda t: session.loop.run(bare(t, 32)), "warm-bare")
        measure(lambda t: ours(t, 32), "warm-ours")
        res: dict[str, list[tuple[float, float, float]]] = {"bare": [], "ours": []}
        gc.callbacks.append(on_gc)
        try:
            for r in range(rounds):
                for name, fn in (("bare", run_bare), ("ours", run_ours))[
                        :: 1 if r % 2 else -1]:
                    res[name].append(measure(fn, f"r{r}-{name}"))
        finally:
            gc.callbacks.remove(on_gc)
        # Isolated: the same two paths with litellm.acompletion answering at once
        # with a response the server really sent (our parsing sees the same
        # object), so what is left of "ours" is the plugin's own work.
        real = session.loop.run(_one_real(lm, srv.base_url, rubric, schema))
        saved = lm.acompletion

        async def stub(**kwargs: Any) -> Any:
            return real

        lm.acompletion = stub
        iso: dict[str, list[tuple[float, float, float]]] = {"bare": [], "ours": []}
        gc.callbacks.append(on_gc)
        try:
            for r in range(rounds):
                for name, fn in (("bare", run_bare), ("ours", run_ours)):
                    g0, c0 = gc_cpu[0], time.process_time()
                    fn(f"iso{r}-{name}")
                    cpu = time.process_time() - c0
                    gcs = gc_cpu[0] - g0
                    iso[name].append(((cpu - gcs) / total_calls * 1000,
                                      gcs / total_calls * 1000, 0.0))
        finally:
            gc.callbacks.remove(on_gc)
            lm.acompletion = saved
        session.close()
    ib = statistics.median(x[0] for x in iso["bare"])
    io = statistics.median(x[0] for x in iso["ours"])
    print(f"isolated, litellm.acompletion stubbed (returns a real reply at once), "
          f"{rounds} rounds: the plugin's own work is {io - ib:.3f} ms CPU per call\n"
          f"(check_many {io:.3f} ms against the bare loop's {ib:.3f} ms; GC mean "
          f"{statistics.fmean(x[1] for x in iso['ours']):.3f} vs "
          f"{statistics.fmean(x[1] for x in iso['bare']):.3f} ms)")
    med = {k: [statistics.median(c) for c in zip(*v, strict=True)]
           for k, v in res.items()}
    paired = statistics.median(o[0] - b[0] for o, b in zip(res["ours"], res["bare"],
                                                           strict=True))
    print(f"{'path':<34} {'CPU ms/call':>11} {'min':>6} {'max':>6} {'+GC (mean)':>10} "
          f"{'wall ms/call':>12}")
    for label, k in (("bare litellm.acompletion", "bare"),
                     ("Judge.check_many (cache on, miss)", "ours")):
        cpu = [x[0] for x in res[k]]
        gcm = statistics.fmean(x[1] for x in res[k])
        print(f"{label:<34} {med[k][0]:>11.3f} {min(cpu):>6.2f} {max(cpu):>6.2f} "
              f"{gcm:>10.3f} {med[k][2]:>12.3f}")
    gdiff = statistics.fmean(x[1] for x in res["ours"]) - statistics.fmean(
        x[1] for x in res["bare"])
    print(f"plugin adds {paired:+.3f} ms CPU per call on top of litellm, outside the "
          f"garbage collector (median of {rounds} paired rounds), and {gdiff:+.3f} ms "
          "of\nGC. litellm keeps ~300k objects alive, so a full collection costs "
          "~200 ms and lands in one round or another: it is\naveraged apart. Process "
          "CPU over all threads (litellm works in a thread pool too); the server runs\n"
          "in another process.")


async def _one_real(lm: Any, base_url: str, rubric: Any, schema: Any) -> Any:
    from pytest_llmjudge.judging.prompt import present

    pres = present(rubric, 0, output="1 + 1 = 2.", input="What is 1 + 1?",
                   reference=None, context=None)
    return await lm.acompletion(
        model=MODEL, api_base=base_url, api_key=API_KEY, messages=list(pres.messages),
        response_format=schema, temperature=0.0, timeout=60.0, num_retries=0,
        max_retries=0, logprobs=True, top_logprobs=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=200, help="judged expectations")
    ap.add_argument("--latency", type=float, default=0.3, help="seconds per call")
    ap.add_argument("--cpu-calls", type=int, default=100,
                    help="calls per round (bare and ours alternate)")
    ap.add_argument("--cpu-rounds", type=int, default=12)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.latency)
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    if not a.skip_throughput:
        throughput(a.n, a.latency)
    if not a.skip_cpu:
        cpu_per_call(a.cpu_calls, a.cpu_rounds)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
