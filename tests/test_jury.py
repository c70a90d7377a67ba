"""Juries of judges, end to end: each member is a different model name sent to
the scripted loopback judge, which answers per model (``JudgeRequest.body``)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.judging.decide import accuracy_from_agreement
from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    Reply,
    ScriptedJudge,
    ScriptedJudgeServer,
)

JURY = ("openai/judge-a", "openai/judge-b", "openai/judge-c")


class PerModel:
    """Route each request to the policy of the model it names."""

    def __init__(self, policies: dict[str, Any]):
        self.policies = policies

    def __call__(self, req: JudgeRequest) -> Reply:
        return self.policies[str(req.body["model"])](req)  # type: ignore[no-any-return]


def _honest() -> ScriptedJudge:
    return ScriptedJudge(rules={"apologises": lambda o: "sorry" in o.lower()})


def _contrarian() -> ScriptedJudge:
    return ScriptedJudge(rules={"apologises": lambda o: "sorry" not in o.lower()})


def _down() -> ScriptedJudge:
    return ScriptedJudge(faults=[Fault("status", status=500)] * 50)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _jury_confidence(agree: int, dissent: int, learned: int = 0) -> float:
    """By hand, as split samples get it: each member's decision is a vote worth
    logit(a) (a: the member's accuracy estimated from its agreement), scaled by
    how sure that member was. Each member here saw its two presentations agree
    at stated confidence 0.95. ``a`` is frozen for a run: it comes from the
    ``learned`` agreeing first pairs that earlier runs pooled (0: the prior)."""
    a = accuracy_from_agreement(learned, learned)
    member = 1 / (1 + math.exp(-2 * _logit(a) * 0.95))  # 0.981 on the prior
    lo = (agree - dissent) * _logit(a) * member
    return 1 / (1 + math.exp(-lo))


TESTS = '''
import pytest
from pytest_llmjudge import assert_judged

def test_sorry():
    assert_judged("Sorry! A refund is on its way.", "Apologises to the customer",
                  model=["openai/judge-a", "openai/judge-b", "openai/judge-c"])

def test_rude():
    assert_judged("Go away.", "Apologises to the customer",
                  model=["openai/judge-a", "openai/judge-b", "openai/judge-c"])
'''


def _verdicts(path: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {r["nodeid"].split("::")[-1]: r for r in doc["verdicts"]}


def _run(pytester: pytest.Pytester, server: ScriptedJudgeServer, *extra: str
         ) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest(
        f"--llmjudge-api-base={server.base_url}", "-p", "no:cacheprovider",
        "--llmjudge-report=report.json", *extra)
    return result, _verdicts(pytester.path / "report.json")


def test_unanimous_jury(pytester: pytest.Pytester,
                        judge_server: ScriptedJudgeServer) -> None:
    judge_server.policy = PerModel({"judge-a": _honest(), "judge-b": _honest(),
                                    "judge-c": _honest()})
    result, v = _run(pytester, judge_server)
    result.assert_outcomes(passed=1, failed=1)
    # Every member was asked, in both presentation orders, for both tests.
    asked = Counter(str(r.body["model"]) for r in judge_server.requests)
    assert asked == {"judge-a": 4, "judge-b": 4, "judge-c": 4}
    # Statistics are frozen for the run: both judgments use the prior, whatever
    # the order they finish in.
    for name, outcome in (("test_sorry", "pass"), ("test_rude", "fail")):
        r = v[name]
        assert r["outcome"] == outcome
        assert r["model"] == ",".join(JURY)
        assert not r["flaky"]
        assert "jury agreement 100% over 3 judges" in r["warnings"]
        assert r["confidence"] == pytest.approx(_jury_confidence(3, 0), abs=1e-6)
        assert {x["model"] for x in r["votes"]} == set(JURY)
        assert r["jury"]["agreement"] == 1.0 and r["jury"]["failed"] == []
        assert [(m["model"], m["outcome"]) for m in r["jury"]["members"]] == [
            (m, outcome) for m in JURY]
    result.stdout.fnmatch_lines(["*judged: FAIL 0/1 criteria passed*",
                                 "*jury: openai/judge-a=fail (0.98), openai/judge-b="
                                 "fail (0.98), openai/judge-c=fail (0.98); "
                                 "agreement 100%",
                                 "*note: jury agreement 100% over 3 judges*"])


def test_split_jury_majority_wins_with_less_confidence(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    judge_server.policy = PerModel({"judge-a": _honest(), "judge-b": _honest(),
                                    "judge-c": _contrarian()})
    # Given on the command line this time.
    result, v = _run(pytester, judge_server, f"--llmjudge-jury={','.join(JURY)}",
                     "--llmjudge-min-confidence=0.8")
    result.assert_outcomes(passed=1, failed=1)  # the majority decided both
    for name, outcome, minority in (("test_sorry", "pass", "fail"),
                                    ("test_rude", "fail", "pass")):
        r = v[name]
        assert r["outcome"] == outcome
        assert "jury agreement 67% over 3 judges" in r["warnings"]
        assert r["flaky"]
        assert r["flaky_reason"] == (f"jury split: openai/judge-a={outcome}, "
                                     f"openai/judge-b={outcome}, "
                                     f"openai/judge-c={minority}")
    expected = _jury_confidence(2, 1)
    for name in ("test_sorry", "test_rude"):
        assert v[name]["confidence"] == pytest.approx(expected, abs=1e-6)
    assert 0.85 < expected < 0.9 < _jury_confidence(3, 0)
    result.stdout.fnmatch_lines([f"*(confidence {expected:.2f}, flaky)*",
                                 "*flaky: jury split: openai/judge-a=fail*",
                                 "*note: jury agreement 67% over 3 judges*"])

    # At the default min_confidence (0.9), on a fresh cache, a 2-1 split is not
    # enough to decide (inconclusive, never a pass or a fail). The run pools each
    # member's agreeing pairs; the next run, from the same cache (no new call),
    # trusts the members more and the majority decides.
    result, v = _run(pytester, judge_server, f"--llmjudge-jury={','.join(JURY)}",
                     "--llmjudge-cache-dir=fresh")
    result.assert_outcomes(failed=2)
    assert {r["outcome"] for r in v.values()} == {"inconclusive"}
    calls = len(judge_server.requests)
    result, v = _run(pytester, judge_server, f"--llmjudge-jury={','.join(JURY)}",
                     "--llmjudge-cache-dir=fresh")
    assert len(judge_server.requests) == calls
    result.assert_outcomes(passed=1, failed=1)
    assert v["test_sorry"]["outcome"] == "pass"
    assert v["test_rude"]["outcome"] == "fail"
    assert v["test_sorry"]["confidence"] == pytest.approx(_jury_confidence(2, 1, 2),
                                                          abs=1e-6)
    assert _jury_confidence(2, 1, 2) > 0.9


def test_failing_jury_member(pytester: pytest.Pytester,
                             judge_server: ScriptedJudgeServer) -> None:
    judge_server.policy = PerModel({"judge-a": _honest(), "judge-b": _honest(),
                                    "judge-c": _down()})
    result, v = _run(pytester, judge_server, "--llmjudge-retries=0")
    result.assert_outcomes(passed=1, failed=1)  # two members still decide
    for r in v.values():
        assert "jury member(s) failed: openai/judge-c" in r["warnings"]
        assert "jury agreement 100% over 2 judges" in r["warnings"]
        assert [x["error"] for x in r["votes"] if x["model"] == "openai/judge-c"]
        assert r["jury"]["failed"] == ["openai/judge-c"]
        assert len(r["jury"]["members"]) == 2
        assert all(x["error"] is None for x in r["votes"]
                   if x["model"] != "openai/judge-c")

    # Two of three members down: no majority is possible, the judge errors.
    judge_server.policy = PerModel({"judge-a": _honest(), "judge-b": _down(),
                                    "judge-c": _down()})
    result, v = _run(pytester, judge_server, "--llmjudge-retries=0",
                     "--llmjudge-cache=off")
    result.assert_outcomes(errors=2)
    assert {r["outcome"] for r in v.values()} == {"judge_error"}
    result.stdout.fnmatch_lines(["*JUDGE ERROR*"])


COMPARE = '''
def test_compare(judge):
    v = judge.compare("Paris is the capital of France.", "It is Lyon.",
                      model=["openai/judge-a", "openai/judge-b", "openai/judge-c"],
                      min_confidence=0.8)
    assert v.winner == "A", v
'''


def test_split_jury_on_a_comparison_votes_on_the_winner(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    # Every member of a comparison "passes"; the jury must count winners, or a
    # 2-1 split on the winner would read as a unanimous jury.
    def right(text: str) -> float:
        return 1.0 if "Paris" in text else 0.0

    judge_server.policy = PerModel({
        "judge-a": ScriptedJudge(prefer=right), "judge-b": ScriptedJudge(prefer=right),
        "judge-c": ScriptedJudge(prefer=lambda t: -right(t))})
    pytester.makepyfile(COMPARE)
    result = pytester.runpytest(
        f"--llmjudge-api-base={judge_server.base_url}", "-p", "no:cacheprovider",
        "--llmjudge-report=report.json")
    result.assert_outcomes(passed=1)
    r = _verdicts(pytester.path / "report.json")["test_compare"]
    assert r["winner"] == "A"
    assert r["flaky_reason"] == ("jury split: openai/judge-a=A, openai/judge-b=A, "
                                 "openai/judge-c=B")
    assert "jury agreement 67% over 3 judges" in r["warnings"]
    assert r["confidence"] < _jury_confidence(3, 0)
