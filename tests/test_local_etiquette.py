"""Issue #15 item 3, local-server etiquette, against a scripted server in
"one slot" mode: it serves one request at a time and keeps computing a request
whose client gave up (as llama.cpp's server does).

- a retry after a timeout does not queue behind the abandoned request, and a
  judgment's time is bounded by a budget of a few timeouts;
- a server that serves one request at a time is noticed, said in the summary
  with the setting to change, and sent one request at a time from then on;
- a slow judge is said while the run goes on, and in the summary.

Timing assertions are lower bounds the client's own waits guarantee, or
request counts; none depends on the machine being fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.testing import Fault, ScriptedJudge, ScriptedJudgeServer

ONE = '''
from pytest_llmjudge import assert_judged

def test_reply():
    assert_judged("Sorry, your refund is on its way.", "Apologises to the customer")
'''

MANY = '''
from pytest_llmjudge import assert_judged

def test_first():
    assert_judged("Sorry, your refund is on its way.", "Apologises")

def test_many(judge):
    verdicts = judge.check_many([(f"Sorry, order {i} is late.", "Apologises")
                                 for i in range(4)])
    assert [v.passed for v in verdicts] == [True] * 4

def test_after():
    assert_judged("Sorry, the parcel is late.", "Apologises")
'''

ONE_SLOT_NOTE = "*serves one request at a time*--llmjudge-concurrency=1*"


def _report(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["verdicts"])


def test_a_retry_after_a_timeout_waits_for_the_abandoned_request(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    # The first request takes 0.9 s on a one-slot server; the client gives up
    # at 0.5 s. Both presentations time out (the second waits behind the
    # first); their retries wait a timeout first, so they arrive once the
    # abandoned requests are done, and are answered at once.
    judge_server.one_slot = True
    judge_server.policy = ScriptedJudge(faults=[Fault("timeout", delay=0.9)])
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-timeout=0.5",
                                "--llmjudge-retries=3", "--llmjudge-report=r.json",
                                timeout=60)
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 4, judge_server.arrivals
    first, *_, = judge_server.arrivals
    # Each retry was sent no sooner than timeout (0.5) + wait (0.5) after the
    # first request: never into the queue behind the ghost.
    retries = judge_server.arrivals[2:]
    assert all(t - first >= 0.95 for t in retries), \
        [t - first for t in judge_server.arrivals]
    (rec,) = _report(pytester.path / "r.json")
    assert rec["calls"] == 4


def test_a_judge_slower_than_its_timeout_is_a_judge_error_within_the_time_budget(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    # Every request takes 1.5 s; the timeout is 0.5 s and 3 retries are allowed.
    # Retried at once, each presentation would send 4 requests, each queued
    # behind the ghosts of the last; within a budget of 2 timeouts it sends 2.
    judge_server.one_slot = True
    judge_server.policy = ScriptedJudge(latency=1.5)
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-timeout=0.5",
                                "--llmjudge-retries=3", "--llmjudge-report=r.json",
                                timeout=60)
    result.stdout.fnmatch_lines(["*JUDGE ERROR*"])
    result.stdout.fnmatch_lines(["*time budget (2 timeouts per presentation) is spent*"])
    assert judge_server.calls == 4, judge_server.arrivals
    (rec,) = _report(pytester.path / "r.json")
    assert rec["outcome"] == "judge_error"
    assert rec["calls"] == 4


def test_a_server_that_serves_one_request_at_a_time_is_noticed_and_then_spared(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    latency = 0.4  # long against scheduling jitter on a busy machine (CI)
    judge_server.one_slot = True
    judge_server.policy = ScriptedJudge(latency=latency)
    pytester.makepyfile(MANY)
    result = pytester.runpytest(*judge_args, "--llmjudge-timeout=30", timeout=60)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*llmjudge summary*", "*note: " + ONE_SLOT_NOTE])
    # check_many sent its requests together: they queued at the server ...
    assert judge_server.peak_in_flight > 1
    # ... but once noticed, the later test's two presentations went one at a
    # time: the second was sent only after the first was answered.
    assert judge_server.calls == 12
    a, b = judge_server.arrivals[-2:]
    assert b - a >= 0.9 * latency, judge_server.arrivals


def test_a_server_that_answers_together_is_not_called_one_at_a_time(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(latency=0.15)
    pytester.makepyfile(MANY)
    result = pytester.runpytest(*judge_args, "--llmjudge-timeout=30", timeout=60)
    result.assert_outcomes(passed=3)
    assert "one request at a time" not in result.stdout.str()
    assert "is slow" not in result.stdout.str()
    assert judge_server.peak_in_flight > 1


def test_a_slow_judge_is_said_while_the_run_goes_on_and_in_the_summary(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    # Replies take 0.6 s against a timeout of 1 s: slower than half of it.
    judge_server.policy = ScriptedJudge(latency=0.6)
    pytester.makepyfile('''
        from pytest_llmjudge import assert_judged

        def test_first():
            assert_judged("Sorry, your refund is on its way.", "Apologises")

        def test_second():
            assert_judged("Sorry, the parcel is late.", "Apologises")
    ''')
    result = pytester.runpytest(*judge_args, "--llmjudge-timeout=1", "-v", timeout=60)
    result.assert_outcomes(passed=2)
    lines = result.stdout.lines
    said = [i for i, line in enumerate(lines) if line.startswith("llmjudge: the judge")
            and "is slow" in line]
    assert len(said) == 1, result.stdout.str()
    (at,) = said
    summary = next(i for i, line in enumerate(lines) if "llmjudge summary" in line)
    second = next(i for i, line in enumerate(lines) if "test_second" in line)
    assert at < second < summary  # after the first test, before the next one
    for setting in ("--llmjudge-timeout", "--llmjudge-max-tokens",
                    "--llmjudge-concurrency=1"):
        assert setting in lines[at]
    result.stdout.fnmatch_lines(["*llmjudge summary*", "*note: the judge*is slow*"])


def test_only_servers_of_our_own_wait_a_timeout_before_retrying() -> None:
    """A cloud provider does not queue a retry behind the request given up on:
    only loopback and private-network endpoints get the long pause."""
    from pytest_llmjudge.runtime.faults import local_endpoint

    for url in ("http://127.0.0.1:8080/v1", "http://localhost:11434",
                "http://192.168.1.20:8000/v1", "http://[::1]:8000/v1",
                "http://gpu-box.local:1234/v1"):
        assert local_endpoint(url), url
    for url in (None, "", "https://api.openai.com/v1",
                "https://my-proxy.example.com/v1", "http://8.8.8.8/v1"):
        assert not local_endpoint(url), url
