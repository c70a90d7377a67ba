"""Issue #10, threads: judged calls made from worker threads inside a test use
that test's settings (marker, options, ini, record mode) and report to it;
the first litellm import is safe when several threads reach it at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_PROCESS

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

THREADS = '''
from concurrent.futures import ThreadPoolExecutor
import threading

import pytest
from pytest_llmjudge import assert_judged, current_judge

OUTPUTS = [f"Sorry about order {n}; your refund is on its way." for n in range(6)]


@pytest.mark.llmjudge(model="openai/marker-judge", min_confidence=0.6)
def test_threads_use_the_marker():
    barrier = threading.Barrier(6)

    def one(text):
        barrier.wait()  # all six reach the first judge call (and litellm) together
        return assert_judged(text, "Apologises to the customer")

    with ThreadPoolExecutor(6) as pool:
        verdicts = list(pool.map(one, OUTPUTS))
    assert all(v.passed for v in verdicts)
    assert {v.model for v in verdicts} == {"openai/marker-judge"}


def test_judge_fixture_from_a_thread(judge):
    with ThreadPoolExecutor(2) as pool:
        got = pool.submit(judge.check, "Sorry!", "Apologises to the customer").result()
        other = pool.submit(lambda: current_judge().check(
            "Sorry again!", "Apologises to the customer")).result()
    assert got.passed and other.passed
    assert got.model == other.model == "openai/ini-judge"


def test_a_failing_thread_fails_the_test():
    with ThreadPoolExecutor(2) as pool:
        fut = pool.submit(assert_judged, "Your order is late. Deal with it.",
                          "Apologises to the customer")
        fut.result()
'''


def _report(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["verdicts"])


# In-process only (issue #14, suite time): decided per process; the -n 2
# runs kept elsewhere cover what crosses processes.
@IN_PROCESS
def test_worker_threads_use_the_tests_settings_and_report_to_it(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        plugin_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    judge_server.policy = ScriptedJudge(rules={"apologises": lambda o: "orry" in o})
    # The environment names another judge at a dead port: a thread that fell
    # back to it would fail (and be seen in the report's model).
    monkeypatch.setenv("LLMJUDGE_MODEL", "openai/env-judge")
    monkeypatch.setenv("LLMJUDGE_API_BASE", "http://127.0.0.1:9/v1")
    pytester.makeini(f"""
[pytest]
llmjudge_model = openai/ini-judge
llmjudge_api_base = {judge_server.base_url}
llmjudge_record_mode = once
""")
    pytester.makepyfile(test_threads=THREADS)
    result = pytester.runpytest(*plugin_args, "-p", "no:cacheprovider",
                                           "--llmjudge-report=r.json", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_a_failing_thread_fails_the_test*",
                                 "*judged: FAIL*"])
    models = {r.body.get("model") for r in judge_server.requests}
    assert models == {"marker-judge", "ini-judge"}, models
    recs = _report(pytester.path / "r.json")
    by_test: dict[str, int] = {}
    for r in recs:
        by_test[r["nodeid"].split("::")[-1]] = by_test.get(
            r["nodeid"].split("::")[-1], 0) + 1
    # Every verdict reported to the test whose thread made it, none to "".
    assert by_test == {"test_threads_use_the_marker": 6,
                       "test_judge_fixture_from_a_thread": 2,
                       "test_a_failing_thread_fails_the_test": 1}, by_test
    # The ini's record mode applied in the threads: the replies were recorded.
    records = list((pytester.path / "llmjudge_records").glob("*.json"))
    assert records, "record mode 'once' wrote nothing from worker threads"
    entries = json.loads(records[0].read_text(encoding="utf-8"))["entries"]
    tests = {e["test"].split("::")[-1] for e in entries.values()}
    assert tests == set(by_test)


REPLAY = '''
from concurrent.futures import ThreadPoolExecutor

from pytest_llmjudge import assert_judged


def test_threads():
    texts = [f"Sorry about order {n}." for n in range(4)] + ["Deal with it."]
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(assert_judged, t, "Apologises to the customer")
                   for t in texts]
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result().outcome.value)
        except AssertionError:
            outcomes.append("fail")
    assert outcomes == ["pass"] * 4 + ["fail"]
'''


def test_threads_replay_from_records_without_a_model(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    """Recorded from threads, replayed from threads with no model and no
    network: the record mode reached the threads both times."""
    judge_server.policy = ScriptedJudge(rules={"apologises": lambda o: "orry" in o})
    pytester.makepyfile(test_replay=REPLAY)
    first = pytester.runpytest(
        "-p", "no:cacheprovider", "--llmjudge-model=openai/scripted-judge",
        f"--llmjudge-api-base={judge_server.base_url}", "--llmjudge-record-mode=once")
    first.assert_outcomes(passed=1)
    calls = judge_server.calls
    assert calls >= 10
    again = pytester.runpytest("-p", "no:cacheprovider",
                                          "--llmjudge-record-mode=none",
                                          "--llmjudge-cache=off")
    again.assert_outcomes(passed=1)
    assert judge_server.calls == calls  # replayed: no request reached the judge
