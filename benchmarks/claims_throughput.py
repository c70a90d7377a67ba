"""Calls and wall time of one claim-level assertion, against judging claim by claim.

Why: a faithfulness check (``claims.judge_faithfulness``) judges every claim of
an answer. The naive plan asks the judge about each claim on its own, in both
presentation orders, one call after another: 2 x N calls and 2 x N round trips.
``claims.py`` instead extracts the claims in one call, then judges them
``claims_per_call`` at a time as criteria of ordinary criteria judgments, all
judgments (each in both orders) concurrently. With a judge that takes a fixed
``--latency`` per call, that should be one round trip for the extraction and
one for the judgments, whatever N (while the calls fit under
``--llmjudge-concurrency``, 16 by default). The issue's goal (#13): a 20-claim
answer in no more than 3 round trips of wall time.

Each row is one ``judge_faithfulness`` call through the ``Judge`` API (as a
test's ``judge`` fixture would run it: fresh session and cache folder, so no
cache hits, agreement prior only), reaching the scripted loopback judge over
real HTTP through litellm. The judge extracts one claim per sentence and finds
every claim supported. Before timing, each session makes one unrelated judged
call, so the litellm import and its first-call set-up are not counted.

Columns: calls = judge calls of the check (``ClaimsVerdict.calls``, checked
against the server's count); naive calls = 2 x N; wall s = median over
``--repeat`` runs; naive wall s = 2 x N x latency; round trips = wall / latency;
speed-up = naive wall / wall; waves = how many times the server saw a new burst
of requests after a quiet gap (the sequential round trips as the judge saw
them); peak = most calls in flight at once.

Usage: python benchmarks/claims_throughput.py [--latency 0.3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_llmjudge.claims import CLAIMS_PER_CALL, judge_faithfulness  # noqa: E402
from pytest_llmjudge.judging.judge import Judge  # noqa: E402
from pytest_llmjudge.runtime.session import JudgeSession  # noqa: E402
from pytest_llmjudge.settings import resolve  # noqa: E402
from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer  # noqa: E402

MODEL = "openai/scripted-judge"
API_KEY = "sk-benchmark-loopback"
GOAL_CLAIMS, GOAL_TRIPS = 20, 3.0  # issue 13

COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]


def answer(n: int, tag: str) -> tuple[str, str]:
    """(an answer of ``n`` one-fact sentences, a context stating them all)."""
    facts = [f"Crate {tag}{i} holds {i + 2} {COLOURS[i % len(COLOURS)]} widgets."
             for i in range(n)]
    return " ".join(facts), "Inventory list.\n" + "\n".join(facts)


def make_judge(base_url: str, folder: Path) -> Judge:
    """A ``Judge`` as a pytest run builds one: resolved settings (defaults:
    debiasing on, min_samples 2, concurrency 16), cache on in ``folder``."""
    settings = resolve({"model": MODEL, "api_base": base_url, "retries": 0,
                        "cache_dir": str(folder / "cache")}, {},
                       env={"LLMJUDGE_API_KEY": API_KEY})
    return Judge(JudgeSession(settings, folder), settings, None)


def waves(arrivals: list[float], gap: float) -> int:
    """Bursts of requests separated by more than ``gap`` seconds of quiet."""
    return sum(1 for i, t in enumerate(arrivals) if i == 0 or t - arrivals[i - 1] > gap)


@dataclass
class Row:
    claims: int
    per_call: int
    calls: int
    server_calls: int
    wall: float
    waves: int
    peak: int
    outcome: str
    judged: int  # claims in the verdict
    samples: list[int]  # calls per judgment


def measure(server: ScriptedJudgeServer, tmp: Path, n: int, per_call: int,
            latency: float, run: str) -> Row:
    judge = make_judge(server.base_url, tmp / run)
    try:
        # Warm-up: litellm import, its client for this loop, the cache folder.
        judge.check(f"warm-up {run}: 1 + 1 = 2.", "The sum is correct")
        output, context = answer(n, run)
        with server._lock:
            before = server.calls
            server.peak_in_flight = server.in_flight
        t0 = time.perf_counter()
        result = judge_faithfulness(output, context, claims_per_call=per_call,
                                    judge=judge)
        wall = time.perf_counter() - t0
        with server._lock:
            got = server.calls - before
            arrivals = server.arrivals[before:]
            peak = server.peak_in_flight
    finally:
        judge.session.close()
    return Row(n, per_call, result.calls, got, wall, waves(arrivals, latency / 2),
               peak, result.outcome.value, len(result.claims),
               [v.calls for v in result.judgments])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.3, help="seconds per call")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row (median)")
    a = ap.parse_args(argv)
    lat = a.latency
    plan = [(5, CLAIMS_PER_CALL), (20, CLAIMS_PER_CALL), (50, CLAIMS_PER_CALL),
            (20, 5), (20, 20)]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at "
          "start (other processes share the machine)")
    print(f"== one judge_faithfulness per row, scripted judge at {lat * 1000:.0f} ms "
          f"per call (every claim supported), median of {a.repeat} run(s); naive = "
          "2 calls per claim, sequential")
    policy = ScriptedJudge(latency=lat, supported=lambda claim, context: True)
    rows: list[tuple[Row, list[float]]] = []
    with ScriptedJudgeServer(policy) as server, \
            tempfile.TemporaryDirectory(prefix="llmjudge-claims-") as tmp:
        for n, per_call in plan:
            runs = [measure(server, Path(tmp), n, per_call, lat, f"n{n}k{per_call}r{r}")
                    for r in range(a.repeat)]
            walls = [r.wall for r in runs]
            mid = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
            rows.append((mid, walls))
            odd = {(r.calls, r.server_calls, r.waves, r.outcome, r.judged)
                   for r in runs}
            if len(odd) > 1:
                print(f"   note: {n} claims x {per_call}: runs differ "
                      f"(calls, server calls, waves, outcome, claims): {sorted(odd)}")
    head = (f"{'claims':>6} {'claims_per_call':>15} {'calls':>5} {'naive calls':>11} "
            f"{'wall s':>6} {'naive wall s':>12} {'round trips':>11} {'speed-up':>8} "
            f"{'waves':>5} {'peak':>4}")
    print(head)
    print("-" * len(head))
    for r, _ in rows:
        naive_calls = 2 * r.claims
        naive_wall = naive_calls * lat
        print(f"{r.claims:>6} {r.per_call:>15} {r.calls:>5} {naive_calls:>11} "
              f"{r.wall:>6.2f} {naive_wall:>12.1f} {r.wall / lat:>11.2f} "
              f"{naive_wall / r.wall:>7.1f}x {r.waves:>5} {r.peak:>4}")
    print("calls per judgment (extraction is 1 more): " + "; ".join(
        f"{r.claims}x{r.per_call}: {r.samples}" for r, _ in rows))
    print("all runs' wall s: " + "; ".join(
        f"{r.claims}x{r.per_call}: {', '.join(f'{w:.2f}' for w in ws)}"
        for r, ws in rows))
    bad = [r for r, _ in rows if r.calls != r.server_calls or r.outcome != "pass"
           or r.judged != r.claims]
    for r in bad:
        print(f"CHECK: {r.claims}x{r.per_call}: verdict calls {r.calls}, server calls "
              f"{r.server_calls}, outcome {r.outcome}, {r.judged} claim(s) judged")
    goal = next(r for r, _ in rows if r.claims == GOAL_CLAIMS and
                r.per_call == CLAIMS_PER_CALL)
    trips = goal.wall / lat
    print(f"goal: a {GOAL_CLAIMS}-claim answer in <= {GOAL_TRIPS:g} round trips "
          f"(default claims_per_call={CLAIMS_PER_CALL}): {trips:.2f} round trips, "
          f"{goal.waves} waves at the server -> "
          f"{'MET' if trips <= GOAL_TRIPS else 'NOT MET'}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0 if trips <= GOAL_TRIPS and not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())

