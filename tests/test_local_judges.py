"""Issue #15 with a scripted server that behaves like local judge servers:
refused reply formats are a capability answer (no retries, a fallback that
is remembered), replies are bounded and a cut reply is re-asked for brevity,
and one definition of a judge call (an HTTP request sent) everywhere."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_PROCESS

from pytest_llmjudge.judging.prompt import BREVITY
from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    Reply,
    ScriptedJudge,
    ScriptedJudgeServer,
)

ONE = '''
from pytest_llmjudge import assert_judged

def test_reply():
    assert_judged("Sorry, your refund is on its way.", "Apologises to the customer")
'''

#: How servers refuse a reply format: (status, body message, formats refused).
REFUSALS = {
    "llamacpp_500": (500, "response_format.type should be 'text' or 'json_object'",
                     {"json_schema"}),
    "vllm_400": (400, "json_schema response format is not supported by this model",
                 {"json_schema"}),
    "422_grammar": (422, "Unprocessable: grammar-constrained decoding unavailable "
                    "for response_format", {"json_schema"}),
    "no_json_mode_400": (400, "'response_format' of type 'json_object' or "
                         "'json_schema' is not supported", {"json_schema", "json_object"}),
}


class Refuses:
    """Answers like ScriptedJudge, but refuses the reply formats in ``refused``."""

    def __init__(self, status: int, message: str, refused: set[str]) -> None:
        self.status, self.message, self.refused = status, message, refused
        self.inner = ScriptedJudge(rules={"apologises": lambda o: "orry" in o})

    def __call__(self, req: JudgeRequest) -> Reply:
        fmt = (req.body.get("response_format") or {}).get("type", "text")
        if fmt in self.refused:
            return Fault("status", status=self.status, message=self.message)
        return self.inner(req)


def _formats(server: ScriptedJudgeServer) -> list[str]:
    return [(r.body.get("response_format") or {}).get("type", "text")
            for r in server.requests]


def _report(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["verdicts"])


@pytest.mark.parametrize("shape", sorted(REFUSALS))
def test_a_refused_format_falls_back_once_and_is_remembered(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], shape: str) -> None:
    status, message, refused = REFUSALS[shape]
    judge_server.policy = Refuses(status, message, refused)
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-retries=3",
                                           "--llmjudge-report=r.json", "-rA")
    result.assert_outcomes(passed=1)
    formats = _formats(judge_server)
    # Never retried: each refused format was asked at most once per presentation
    # in flight (two are sent together), then never again.
    for name in refused:
        assert 1 <= formats.count(name) <= 2, formats
    want = "json_object" if "json_object" not in refused else "text"
    assert formats[-1] == want and formats.count(want) == 2, formats
    result.stdout.fnmatch_lines([f"*refused response_format json_schema*"])
    (rec,) = _report(pytester.path / "r.json")
    assert rec["calls"] == len(formats)  # every request sent is a call
    # Remembered beside the cache: a later run asks the working format at once.
    seen = len(formats)
    again = pytester.runpytest(*judge_args, "--llmjudge-cache=refresh")
    again.assert_outcomes(passed=1)
    assert _formats(judge_server)[seen:] == [want, want]


def test_a_refusal_that_is_not_about_the_format_is_not_a_fallback(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = Refuses(500, "CUDA out of memory", {"json_schema"})
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-retries=1")
    result.stdout.fnmatch_lines(["*JUDGE ERROR*"])
    assert set(_formats(judge_server)) == {"json_schema"}  # retried, not stepped down
    assert judge_server.calls == 4  # two presentations x (1 + 1 retry)


def test_replies_are_bounded_and_a_cut_reply_is_reasked_for_brevity(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(faults=[Fault("truncated")])
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-report=r.json")
    result.assert_outcomes(passed=1)
    budgets = {r.body.get("max_tokens") for r in judge_server.requests}
    assert budgets == {512 + 160}, budgets  # one criterion
    reasked = [r for r in judge_server.requests if BREVITY in json.dumps(r.body)]
    assert len(reasked) == 1
    assert judge_server.calls == 3
    (rec,) = _report(pytester.path / "r.json")
    assert rec["calls"] == 3


# In-process only (issue #14, suite time): this attack class is decided per
# process; the -n 2 runs kept elsewhere cover what crosses processes.
@IN_PROCESS
def test_a_reply_cut_twice_is_a_judge_error_that_says_so(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], plugin_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(faults=[Fault("truncated")] * 8)
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, *plugin_args,
                                           "--llmjudge-max-tokens=64")
    result.stdout.fnmatch_lines(["*JUDGE ERROR*", "*reply cut at 64 tokens*"])
    assert "passed" not in result.stdout.lines[-1]
    assert {r.body.get("max_tokens") for r in judge_server.requests} == {64}
    assert judge_server.calls == 4  # two presentations x (ask + brevity re-ask)


def test_one_definition_of_a_call(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """Retries are requests: the verdict, the summary and the report agree with
    the server's count, and --llmjudge-max-calls bounds requests."""
    judge_server.policy = ScriptedJudge(faults=[Fault("status", 503)] * 2)
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-retries=2",
                                           "--llmjudge-report=r.json")
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 4
    (rec,) = _report(pytester.path / "r.json")
    assert rec["calls"] == 4
    result.stdout.fnmatch_lines(["*judge calls: 4 made*"])
    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert doc["summary"]["calls"] == 4


def test_max_calls_bounds_http_requests_retries_included(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(faults=[Fault("status", 503)] * 20)
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "--llmjudge-retries=5",
                                           "--llmjudge-max-calls=3")
    result.stdout.fnmatch_lines(["*JUDGE ERROR*"])
    assert judge_server.calls <= 3


class OneSlot:
    """A server that serves one request at a time (like a one-slot llama.cpp)."""

    def __init__(self) -> None:
        self.inner = ScriptedJudge(latency=0.05)
        self.lock = threading.Lock()
        self.overlap = 0
        self.busy = False

    def __call__(self, req: JudgeRequest) -> Reply:
        if self.busy:
            self.overlap += 1
        with self.lock:
            self.busy = True
            try:
                return self.inner(req)
            finally:
                self.busy = False


def test_concurrency_one_never_overlaps_requests(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    policy = OneSlot()
    judge_server.policy = policy
    pytester.makepyfile('''
def test_many(judge):
    vs = judge.check_many([(f"Sorry {n}!", "Apologises") for n in range(4)])
    assert all(v.passed for v in vs)
''')
    result = pytester.runpytest(*judge_args, "--llmjudge-concurrency=1")
    result.assert_outcomes(passed=1)
    assert policy.overlap == 0 and judge_server.calls == 8


@pytest.mark.parametrize("cache", ["on", "off"])
def test_no_duplicate_requests_for_the_same_presentation_in_flight(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], cache: str) -> None:
    """Three identical judgments at once send each presentation once: the
    twins wait for the reply in flight instead of queueing duplicates."""
    judge_server.policy = ScriptedJudge(latency=0.3)
    pytester.makepyfile('''
def test_same_three_times(judge):
    vs = judge.check_many([("Sorry for the delay!", "Apologises")] * 3)
    assert [v.outcome.value for v in vs] == ["pass"] * 3
    assert sorted(v.calls for v in vs) == [0, 0, 2]
''')
    result = pytester.runpytest(*judge_args, f"--llmjudge-cache={cache}")
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 2
