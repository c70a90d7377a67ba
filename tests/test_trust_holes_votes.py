"""Issue #10, one-sided votes: when the samples of one presentation orientation
fail, the votes that survive cannot tell the answer from a position bias, so
the verdict is never decisive (inconclusive, or a judge error when failures
dominate). A judge that always answers what is shown first, and whose
reversed-order requests fail, must never produce a pass."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_PROCESS

from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    Reply,
    ScriptedJudge,
    ScriptedJudgeServer,
)


class FailsReversed:
    """A position-biased judge whose reversed-orientation requests fail (HTTP
    500), optionally failing every ``also_every``-th as-given request too."""

    def __init__(self, also_every: int = 0) -> None:
        self.inner = ScriptedJudge(position_bias="first")
        self.also_every = also_every
        self.given = 0
        self.lock = threading.Lock()

    def __call__(self, req: JudgeRequest) -> Reply:
        reversed_ = req.options_flipped or req.levels_descending or (
            req.kind == "pairwise" and _b_first(req))
        if reversed_:
            return Fault("status", status=500, message="scripted: reversed order down")
        with self.lock:
            self.given += 1
            n = self.given
        if self.also_every and n > 1 and n % self.also_every == 0:
            return Fault("status", status=500, message="scripted: as-given down")
        return self.inner(req)


def _b_first(req: JudgeRequest) -> bool:
    user = req.user
    return user.find("<response_a") > user.find("<response_b") >= 0 or \
        "B shown first" in user


def _records(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["verdicts"])


CASES = {
    "criteria": '''
from pytest_llmjudge import assert_judged

def test_it():
    assert_judged("The capital of France is Lyon.", "States the correct capital",
                  min_samples=1, max_samples=6, retries=0)
''',
    "criteria_two_criteria": '''
from pytest_llmjudge import assert_judged

def test_it():
    assert_judged("Lyon.", ["States the correct capital", "Answers in one sentence"],
                  min_samples=1, max_samples=4, retries=0, min_confidence=0.6)
''',
    "scale": '''
from pytest_llmjudge import Scale, assert_judged

def test_it():
    assert_judged("Lyon.", Scale("How correct is the answer", levels={
        1: "wrong", 2: "partly", 3: "right"}, pass_level=3),
        min_samples=1, max_samples=6, retries=0)
''',
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_surviving_votes_from_one_orientation_never_decide(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], case: str) -> None:
    judge_server.policy = FailsReversed()
    pytester.makepyfile(CASES[case])
    result = pytester.runpytest(*judge_args, "--llmjudge-report=r.json", "-q")
    assert result.ret != 0
    assert "passed" not in result.stdout.str().splitlines()[-1]
    (rec,) = _records(pytester.path / "r.json")
    assert rec["outcome"] in ("inconclusive", "judge_error"), rec
    assert not rec["passed"]
    if rec["outcome"] == "inconclusive":
        assert "position bias" in (rec["flaky_reason"] or ""), rec
    # Both orientations were asked: the reversed ones are what failed.
    assert {v["presentation"] % 2 for v in rec["votes"]} == {0, 1}


def test_failures_that_dominate_are_a_judge_error(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = FailsReversed(also_every=2)
    pytester.makepyfile(CASES["criteria"].replace("max_samples=6", "max_samples=3"))
    result = pytester.runpytest(*judge_args, "--llmjudge-report=r.json", "-q")
    result.stdout.fnmatch_lines(["*JUDGE ERROR*"])
    (rec,) = _records(pytester.path / "r.json")
    assert rec["outcome"] == "judge_error", rec
    assert "scripted" in (rec["error"] or "")


# In-process only (issue #14, suite time): decided per process; the -n 2
# runs kept elsewhere cover what crosses processes.
@IN_PROCESS
def test_a_comparison_with_one_order_failing_is_never_decisive(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], plugin_args: list[str]) -> None:
    judge_server.policy = FailsReversed()
    pytester.makepyfile('''
from pytest_llmjudge import assert_judged

def test_better():
    assert_judged("Lyon.", better_than="Paris is the capital of France.",
                  max_samples=6, retries=0)

def test_compare(judge):
    v = judge.compare("Lyon.", "Paris.", max_samples=6, retries=0)
    assert v.winner is None and v.outcome.value in ("inconclusive", "judge_error"), v
''')
    result = pytester.runpytest(*judge_args, *plugin_args,
                                           "--llmjudge-report=r.json", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 1, result.stdout.str()  # test_compare's asserts
    recs = {r["nodeid"].split("::")[-1]: r for r in _records(pytester.path / "r.json")}
    assert recs["test_better"]["outcome"] in ("inconclusive", "judge_error")
    assert not recs["test_better"]["passed"]


# In-process only (issue #14, suite time): decided per process; the -n 2
# runs kept elsewhere cover what crosses processes.
@IN_PROCESS
def test_both_orientations_answering_still_decides(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], plugin_args: list[str]) -> None:
    """The control: an honest judge whose odd samples sometimes fail but whose
    survivors cover both orientations still gives a decisive verdict."""
    faults = [Fault("status", status=500, message="one blip")]
    judge_server.policy = ScriptedJudge(rules={"capital": lambda o: "Paris" in o},
                                        faults=faults)
    pytester.makepyfile('''
from pytest_llmjudge import assert_judged

def test_it():
    assert_judged("The capital of France is Paris.", "States the correct capital",
                  min_samples=2, max_samples=6, retries=1)
''')
    result = pytester.runpytest(*judge_args, *plugin_args, "-q")
    result.assert_outcomes(passed=1)
