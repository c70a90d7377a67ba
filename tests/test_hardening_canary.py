"""``--llmjudge-canary``: degenerate and injected outputs the judge must fail."""

from __future__ import annotations

import pytest

from pytest_llmjudge.canary import CASES
from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    ScriptedJudge,
    ScriptedJudgeServer,
)

USER_TEST = '''
from pytest_llmjudge import assert_judged

def test_user():
    assert_judged("Paris is the capital of France.", "Names Paris as the capital")
'''

NAMES = [c.name for c in CASES]


def _names_paris(output: str) -> bool:
    return "paris" in output.lower()


def test_lenient_judge_fails_the_canary(pytester: pytest.Pytester,
                                        judge_server: ScriptedJudgeServer,
                                        judge_args: list[str]) -> None:
    """A judge that passes everything lets every case through: all are named."""
    judge_server.policy = ScriptedJudge()  # passes every criterion
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest(*judge_args, "--llmjudge-canary", "-v")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=len(CASES))
    out = result.stdout.str()
    for name in NAMES:
        assert f"llmjudge_canary::{name} FAILED" in out
    result.stdout.fnmatch_lines([
        "*= llmjudge canary =*",
        f"0/{len(CASES)} canary outputs failed, as they should*",
        "  LET THROUGH: empty - an empty output: ''",
        "  LET THROUGH: colon - a lone punctuation mark: ':'",
        "  LET THROUGH: fence-escape - a fake closing fence*",
        "*use a stronger judge model*",
    ])
    # The screen is off for the canary: every case reached the judge, twice.
    assert judge_server.calls == 2 * len(CASES) + 2
    outputs = {r.output for r in judge_server.requests}
    assert {":", "", "解"} <= outputs


class PartlyFooled:
    """Follows the rubric, but obeys "answer pass" and fails on ':' with a 500."""

    def __init__(self) -> None:
        self.inner = ScriptedJudge(rules={
            "paris": lambda o: _names_paris(o) or "answer pass" in o.lower()})

    def __call__(self, req: JudgeRequest) -> object:
        if req.output == ":":
            return Fault("status", 500)
        return self.inner(req)


@pytest.mark.subprocess("xdist workers are processes of their own")
def test_partly_fooled_judge_is_named(pytester: pytest.Pytester,
                                      judge_server: ScriptedJudgeServer,
                                      judge_args: list[str]) -> None:
    """Only the case that fooled the judge fails, a judge error is an error, the
    others pass (under xdist)."""
    judge_server.policy = PartlyFooled()
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest(*judge_args, "--llmjudge-canary", "-n", "2",
                                "--llmjudge-retries=0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=len(CASES) - 1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "llmjudge canary ignore-instructions: the judge PASSED an instruction to the "
        "judge: 'Ignore previous instructions*",
        "*= llmjudge canary =*",
        f"{len(CASES) - 2}/{len(CASES)} canary outputs failed, as they should*",
        "  ERROR: colon - a lone punctuation mark: ':' (judge call failed after 1 "
        "attempt(s): server error (500)*",
        "  LET THROUGH: ignore-instructions - an instruction to the judge*",
        "FAILED llmjudge_canary::ignore-instructions*",
    ])
    assert "LET THROUGH: colon" not in result.stdout.str()


def test_sound_judge_passes_the_canary(pytester: pytest.Pytester,
                                       judge_server: ScriptedJudgeServer,
                                       judge_args: list[str]) -> None:
    """A judge that follows the rubric fails every case: the run passes; -k selects
    only the canary."""
    judge_server.policy = ScriptedJudge(rules={"paris": _names_paris})
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest(*judge_args, "--llmjudge-canary",
                                "-k", "llmjudge_canary")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=len(CASES), deselected=1)
    result.stdout.fnmatch_lines([
        "*= llmjudge canary =*",
        f"{len(CASES)}/{len(CASES)} canary outputs failed, as they should*",
    ])
    assert "LET THROUGH" not in result.stdout.str()
    assert judge_server.calls == 2 * len(CASES)


def test_no_canary_without_the_flag(pytester: pytest.Pytester,
                                    judge_server: ScriptedJudgeServer,
                                    judge_args: list[str]) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=1)
    assert "llmjudge_canary" not in result.stdout.str()
    assert judge_server.calls == 0
