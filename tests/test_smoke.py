"""A first end-to-end check: a passing and a failing judged test, then a cached re-run."""

from __future__ import annotations

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

TESTS = '''
from pytest_llmjudge import assert_judged

def test_refund():
    assert_judged("Sorry! A refund is on its way.", "Apologises and offers a refund")

def test_rude():
    assert_judged("Go away.", "Apologises and offers a refund")
'''


def test_pass_fail_then_cached(pytester: pytest.Pytester,
                               judge_server: ScriptedJudgeServer,
                               judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(rules={"apologises": lambda o: "sorry" in o.lower()})
    pytester.makepyfile(TESTS)
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*judged: FAIL 0/1 criteria passed*",
                                 "*llmjudge summary*", "*2 judged expectations*"])
    first = judge_server.calls
    assert first == 4  # two presentations per expectation
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=1, failed=1)
    assert judge_server.calls == first  # the re-run made no judge call
