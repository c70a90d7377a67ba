"""What an inconclusive verdict does to its test, how samples are spent and
reused, and what counts as evidence (issue #3)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.judging import decide as agg
from pytest_llmjudge.judging.judge import Judge
from pytest_llmjudge.judging.sample import hopeless as _hopeless
from pytest_llmjudge.runtime.session import JudgeSession
from pytest_llmjudge.settings import resolve
from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

ONE = '''
from pytest_llmjudge import assert_judged

def test_reply():
    assert_judged("Sorry, your refund is on its way.", "Apologises to the customer")
'''


def _verdicts(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["verdicts"])


@pytest.mark.parametrize(("mode", "outcomes", "line"), [
    ("fail", {"failed": 1}, "*INCONCLUSIVE*"),
    ("xfail", {"xfailed": 1}, "*XFAIL*judged: INCONCLUSIVE*"),
    ("skip", {"skipped": 1}, "*SKIPPED*judged: INCONCLUSIVE*"),
    ("warn", {"passed": 1, "warnings": 1}, "*PASSED (inconclusive)*"),
])
def test_inconclusive_setting_decides_the_test_but_never_the_report(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], mode: str, outcomes: dict[str, int], line: str) -> None:
    judge_server.policy = ScriptedJudge(position_bias="first")
    pytester.makepyfile(ONE)
    result = pytester.runpytest(*judge_args, "-v", "-rA",
                                f"--llmjudge-inconclusive={mode}",
                                "--llmjudge-report=r.json")
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines([line])
    if mode == "warn":
        result.stdout.fnmatch_lines(["*JudgeInconclusiveWarning: judged: INCONCLUSIVE*"])
    (rec,) = _verdicts(pytester.path / "r.json")
    assert rec["outcome"] == "inconclusive" and rec["flaky"]
    result.stdout.fnmatch_lines(["1 judged expectation: 1 inconclusive, 1 flaky"])


def test_raising_max_samples_pays_only_for_new_samples(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(position_bias="first")  # never settles
    pytester.makepyfile(ONE)
    pytester.runpytest(*judge_args, "--llmjudge-max-samples=4")
    assert judge_server.calls == 4
    pytester.runpytest(*judge_args, "--llmjudge-max-samples=8",
                       "--llmjudge-report=r.json")
    assert judge_server.calls == 8  # samples 0-3 came from the cache
    (rec,) = _verdicts(pytester.path / "r.json")
    assert len(rec["votes"]) == 8 and rec["calls"] == 4 and rec["cache_hits"] == 4


COMPARE = '''
def test_compare(judge):
    v = judge.compare("Paris is the capital of France.", "It is Lyon.",
                      debias=False, min_samples=1, max_samples=1, min_confidence=0.6)
    assert v.outcome.value == "inconclusive" and v.winner is None, v
    assert sorted(x.order for x in v.votes) == ["A shown first", "B shown first"], v
'''


def test_comparisons_are_judged_in_both_orders_whatever_the_settings(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(position_bias="first")  # always picks A
    pytester.makepyfile(COMPARE)
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 2


LOGPROB = '''
def test_sure(judge):
    v = judge.check("Sorry, your refund is on its way.", "Apologises to the customer")
    print("VERDICT", v.outcome.value, v.calls, round(v.confidence, 4))
'''


@pytest.mark.parametrize("logprob", [None, 0.999, 0.8, 0.6])
def test_verdict_token_logprobs_weigh_the_votes(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], logprob: float | None) -> None:
    """Where the provider returns log-probabilities, the verdict token's
    probability, not the stated confidence (0.95), sets each vote's weight."""
    judge_server.policy = ScriptedJudge(verdict_logprob=logprob)
    pytester.makepyfile(LOGPROB)
    result = pytester.runpytest(*judge_args, "-s",
                                "--llmjudge-min-confidence=0.5")
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 2
    assert all(r.body.get("logprobs") for r in judge_server.requests)
    a = agg.accuracy_from_agreement(0, 0)  # a fresh cache: the prior
    weight = agg._stated(0.95) if logprob is None else agg._certainty(logprob)
    expected = 1 / (1 + math.exp(-2 * math.log(a / (1 - a)) * weight))
    result.stdout.fnmatch_lines([f"*VERDICT pass 2 {round(expected, 4)}"])


def test_stated_confidence_below_a_half_is_a_guess_not_certainty() -> None:
    assert agg._stated(None) == 1.0
    assert agg._stated(1.0) == 1.0
    assert agg._stated(0.75) == pytest.approx(0.75)
    assert agg._stated(0.5) == agg._stated(0.0) == 0.5  # both: half a vote
    # A log-probability of "pass" is different: p = 0 is a sure "fail".
    assert agg._certainty(0.0) == agg._certainty(1.0) == 1.0


def test_a_judge_at_chance_stops_at_once() -> None:
    """Its votes weigh logit(0.5) = 0: no number of them could settle a verdict."""
    assert _hopeless(agg.accuracy_from_agreement(40, 100))  # orders agree at chance or less
    assert not _hopeless(agg.accuracy_from_agreement(0, 0))  # the prior
    assert not _hopeless(0.55)


def test_cached_first_pair_is_not_pooled_again(tmp_path: Path) -> None:
    """Raising max_samples later re-reads presentations 0 and 1 from the cache;
    their agreement was pooled by the run that asked for them."""
    with ScriptedJudgeServer(ScriptedJudge(position_bias="first")) as server:
        def run(max_samples: int) -> tuple[float, float]:
            settings = resolve({"model": "openai/j", "api_base": server.base_url,
                                "cache_dir": str(tmp_path), "max_samples": max_samples,
                                "retries": 0}, {}, env={"LLMJUDGE_API_KEY": "sk-x"})
            session = JudgeSession(settings, tmp_path)
            Judge(session, settings).check("Sorry!", "Apologises")
            session.close()
            after = JudgeSession(settings, tmp_path)
            stats = after.stats("openai/j", "criteria")
            after.close()
            return stats

        assert run(2) == (0.0, 1.0)  # one pair, which disagreed
        assert run(6) == (0.0, 1.0)  # not counted twice
