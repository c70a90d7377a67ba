"""Soft checks: ``judge.expect`` records judged expectations without stopping the
test; they are judged concurrently and reported together when the body ends."""

from __future__ import annotations

import json

import pytest

from tests.conftest import IN_PROCESS

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

RULES = {"apologises": lambda o: "sorry" in o.lower(),
         "refund": lambda o: "refund" in o.lower()}

SOFT = '''
import pytest

def test_two_unmet(judge):
    judge.expect("Sorry, a refund is on its way.", "Apologises")
    judge.expect("Go away.", "Apologises")
    judge.expect("Sorry for the wait.", "Offers a refund")
    reached.append(1)  # expect() never stops the test body

def test_all_met(judge):
    judge.expect("Sorry, a refund is on its way.", "Apologises")
    judge.expect("Sorry, a refund is on its way.", "Offers a refund")

def test_body_fails_first(judge):
    judge.expect("Go away.", "Apologises")
    assert 1 == 2, "the body's own failure"

def test_comparisons(judge):
    judge.expect("Sorry, here is your refund. [quality 3]",
                 better_than="No. [quality 1]")
    judge.expect("No. [quality 1]",
                 at_least_as_good_as="Sorry, here is your refund. [quality 3]")

@pytest.mark.llmjudge(inconclusive="xfail")
def test_inconclusive_xfails(judge):
    judge.expect("Sorry, a refund is on its way.", "Apologises", min_confidence=1.0)

def test_bad_argument_raises_at_the_call(judge):
    with pytest.raises(TypeError, match="needs a rubric"):
        judge.expect("Sorry.")

reached = []

def test_body_ran_on():
    assert reached == [1]
'''


def _quality(text: str) -> float:
    return float(text.rsplit("[quality ", 1)[1].split("]")[0]) if "[quality" in text \
        else 0.0


def test_soft_checks_report_together(pytester: pytest.Pytester,
                                     judge_server: ScriptedJudgeServer,
                                     judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(rules=RULES, prefer=_quality)
    pytester.makepyfile(SOFT)
    result = pytester.runpytest(*judge_args, "-v",
                                "--llmjudge-report=r.json")
    result.assert_outcomes(passed=3, failed=3, xfailed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*test_two_unmet FAILED*", "*test_all_met PASSED*",
        "*test_body_fails_first FAILED*", "*test_comparisons FAILED*",
        "*test_inconclusive_xfails XFAIL*",
        "*test_bad_argument_raises_at_the_call PASSED*",
        "*test_body_ran_on PASSED*"])
    # One combined failure for the test, naming each unmet expectation and its line.
    result.stdout.fnmatch_lines([
        "*JudgedAssertionError: judged: 2 of 3 expectation(s) not met",
        "*expectation 2 at test_soft_checks_report_together.py:5:",
        "*judged: FAIL 0/1 criteria passed*", "*output: Go away.",
        "*expectation 3 at test_soft_checks_report_together.py:6:",
        "*judged: FAIL 0/1 criteria passed*", "*output: Sorry for the wait."])
    assert "expectation 1 at" not in out.split("test_two_unmet")[1].split("___")[0]
    # The body's own failure is what the test reports; the unmet expectation is
    # added to it as a note.
    result.stdout.fnmatch_lines(["*AssertionError: the body's own failure*",
                                 "*judged: 1 of 1 expectation(s) not met*"])
    result.stdout.fnmatch_lines(["*judged: 1 of 2 expectation(s) not met",
                                 "*expectation 2 at*", "*judged: FAIL winner B*"])
    # Every expectation was judged and recorded, met or not.
    recs = json.loads((pytester.path / "r.json").read_text())["verdicts"]
    by_test: dict[str, list[str]] = {}
    for r in recs:
        by_test.setdefault(r["nodeid"].split("::")[1], []).append(r["outcome"])
    assert sorted(by_test["test_two_unmet"]) == ["fail", "fail", "pass"]
    assert by_test["test_all_met"] == ["pass", "pass"]
    assert by_test["test_body_fails_first"] == ["fail"]
    assert sorted(by_test["test_comparisons"]) == ["fail", "pass"]
    assert by_test["test_inconclusive_xfails"] == ["inconclusive"]


CONCURRENT = '''
def test_many(judge):
    for i in range(8):
        judge.expect(f"Sorry, refund number {i}.", "Apologises")
'''


# In-process only (issue #14, suite time): this attack class is decided per
# process; the -n 2 runs kept elsewhere cover what crosses processes.
@IN_PROCESS
def test_soft_checks_are_judged_concurrently(pytester: pytest.Pytester,
                                            judge_server: ScriptedJudgeServer,
                                            judge_args: list[str],
                                            plugin_args: list[str]) -> None:
    # A slow judge: 8 expectations x 2 presentations are in flight together.
    judge_server.policy = ScriptedJudge(rules=RULES, latency=0.3)
    pytester.makepyfile(CONCURRENT)
    result = pytester.runpytest(*judge_args, *plugin_args)
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 16
    assert judge_server.peak_in_flight >= 8


STANDALONE = '''
import os
from pytest_llmjudge.assertion import current_judge
from pytest_llmjudge.exceptions import JudgedAssertionError

judge = current_judge()
judge.expect("Go away.", "Apologises")
judge.expect("Sorry!", "Apologises")
try:
    judge.verify_expectations()
except JudgedAssertionError as exc:
    print("RAISED", str(exc).splitlines()[0])
judge.verify_expectations()  # nothing pending any more
print("DONE")
'''


@pytest.mark.subprocess("a plain Python script, outside pytest")
def test_verify_expectations_outside_pytest(pytester: pytest.Pytester,
                                            judge_server: ScriptedJudgeServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    judge_server.policy = ScriptedJudge(rules=RULES)
    monkeypatch.setenv("LLMJUDGE_MODEL", "openai/scripted-judge")
    monkeypatch.setenv("LLMJUDGE_API_BASE", judge_server.base_url)
    script = pytester.makepyfile(STANDALONE)
    result = pytester.run(pytester._getpytestargs()[0], str(script))
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["RAISED judged: 1 of 2 expectation(s) not met",
                                 "DONE"])
