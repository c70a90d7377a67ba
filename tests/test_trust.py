"""Trustworthy verdicts, end to end through the scripted loopback judge.

A judge that follows the presentation order never passes a test; a reliable
judge settles in few calls while a coin-flipping one runs to ``max_samples`` and
comes out inconclusive; a verdict that changed since the last run is flagged;
comparisons (``better_than``, ``at_least_as_good_as``, ``judge.compare``) decide
the right way round in both orders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_PROCESS

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer


def _verdicts(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["verdicts"])


BIASED = '''
from pytest_llmjudge import assert_judged

def test_criteria():
    assert_judged("Sorry, your refund is on its way.", "Apologises to the customer")

def test_better():
    assert_judged("Paris is the capital of France.", better_than="It is Lyon.")

def test_compare(judge):
    v = judge.compare("Paris is the capital of France.", "It is Lyon.")
    assert v.winner is None and v.outcome.value == "inconclusive", v
    assert v.flaky and "position bias" in v.flaky_reason, v
'''


# In-process only (issue #14, suite time): this attack class is decided per
# process; the -n 2 runs kept elsewhere cover what crosses processes.
@IN_PROCESS
def test_order_following_judge_is_inconclusive_and_flaky(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], plugin_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(position_bias="first")
    pytester.makepyfile(BIASED)
    result = pytester.runpytest(*judge_args, *plugin_args,
                                "--llmjudge-report=report.json")
    # Inconclusive fails the test by default; it is never a pass.
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*judged: INCONCLUSIVE*", "*flaky: position bias*"])
    recs = _verdicts(pytester.path / "report.json")
    assert len(recs) == 3
    for r in recs:
        assert r["outcome"] == "inconclusive"
        assert r["flaky"]
        assert "position bias" in r["flaky_reason"]
        # It ran to the cap, with as many votes in each orientation.
        parity = [v["presentation"] % 2 for v in r["votes"]]
        assert len(parity) == 6
        assert sum(parity) == 3


STREAM = '''
import pytest

ITEMS = [(f"item {i}: the answer is {'GOOD' if i % 2 else 'BAD'}", i % 2 == 1)
         for i in range(60)]

@pytest.mark.parametrize("output,truth", ITEMS)
def test_item(judge, output, truth):
    judge.check(output, "The answer is correct")
'''


def _stream(pytester: pytest.Pytester, judge_args: list[str], name: str
            ) -> list[dict[str, Any]]:
    # The reply cache is off so that every run asks the judge; the pooled
    # agreement statistics still persist beside it, in .llmjudge_cache.
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off",
                                f"--llmjudge-report={name}")
    result.assert_outcomes(passed=60)
    recs = _verdicts(pytester.path / name)
    assert len(recs) == 60
    return recs


def test_reliable_judge_settles_fast_coin_flip_judge_runs_out(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    rules = {"correct": lambda o: "GOOD" in o}
    pytester.makepyfile(STREAM)

    # The agreement prior (a = 0.89) is close to this judge: no warm-up needed.
    judge_server.policy = ScriptedJudge(rules=rules, accuracy=0.9, seed=11)
    good = _stream(pytester, judge_args, "good.json")
    calls = [r["calls"] for r in good]
    decisive = [r for r in good if r["outcome"] in ("pass", "fail")]
    right = [r for r in decisive
             if (r["outcome"] == "pass") == ("GOOD" in r["excerpt"])]
    # Two votes settle most judgments: mean calls near 2 (exact: 2.42).
    assert 2.0 <= sum(calls) / len(calls) <= 3.0
    assert calls.count(2) >= 36
    assert len(decisive) >= 55
    assert len(right) >= 0.93 * len(decisive)
    assert judge_server.calls == sum(calls)

    # A new judge model: its own agreement statistics, learnt from scratch.
    args = [a.replace("scripted-judge", "scripted-coin") for a in judge_args]
    judge_server.policy = ScriptedJudge(rules=rules, accuracy=0.55, seed=5)
    warm = _stream(pytester, args, "warm55.json")
    coin = _stream(pytester, args, "coin.json")
    calls = [r["calls"] for r in coin]
    inconclusive = [r for r in coin if r["outcome"] == "inconclusive"]
    # Its orders agree about half the time, so once the statistics show it,
    # evidence never builds up: most judgments use every sample allowed and end
    # inconclusive (expected about 75%; the warm-up run, on the prior, far fewer).
    assert sum(calls) / len(calls) >= 5.0
    assert calls.count(6) >= 36
    assert len(inconclusive) >= 0.5 * len(coin)
    # What the first run learnt was kept in the cache folder and used by the next.
    assert len(inconclusive) > sum(r["outcome"] == "inconclusive" for r in warm) + 5
    assert all(r["confidence"] < 0.9 for r in inconclusive)


FLIP = '''
from pytest_llmjudge import assert_judged

def test_capital():
    assert_judged("The capital of France is Paris.", "Names the capital correctly")
'''


def test_verdict_that_changed_since_last_run_is_flaky(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    pytester.makepyfile(FLIP)
    judge_server.policy = ScriptedJudge(rules={"capital": lambda o: True})
    pytester.runpytest(*judge_args).assert_outcomes(passed=1)

    # Same test, rubric and output; the judge now answers differently. Asked
    # afresh (the cache would replay the stored pass), the verdict flips and
    # says so.
    judge_server.policy = ScriptedJudge(rules={"capital": lambda o: False})
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off",
                                "--llmjudge-report=flip.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*judged: FAIL*flaky*",
        "*flaky: changed since the last run: was pass*now fail*"])
    (rec,) = _verdicts(pytester.path / "flip.json")
    assert rec["flaky"]
    assert "changed since the last run" in rec["flaky_reason"]

    # A stable verdict is not flagged again: the history now holds the fail.
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off",
                                "--llmjudge-report=again.json")
    result.assert_outcomes(failed=1)
    (rec,) = _verdicts(pytester.path / "again.json")
    assert not rec["flaky"]


COMPARE = '''
from pytest_llmjudge import assert_judged
import pytest

GOOD = "Paris is the capital of France. [quality 3]"
SAME = "The capital of France is Paris. [quality 3]"
BAD = "France's capital is Lyon. [quality 1]"

def test_better_passes():
    assert_judged(GOOD, better_than=BAD)

def test_better_fails_when_worse():
    assert_judged(BAD, better_than=GOOD)

def test_better_fails_on_a_tie():
    assert_judged(GOOD, better_than=SAME)

def test_not_worse_passes_on_a_tie():
    assert_judged(GOOD, at_least_as_good_as=SAME)

def test_not_worse_fails_when_worse():
    assert_judged(BAD, at_least_as_good_as=GOOD)

def test_compare_winner(judge):
    assert judge.compare(GOOD, BAD).winner == "A"
    assert judge.compare(BAD, GOOD).winner == "B"
    v = judge.compare(GOOD, SAME)
    assert v.winner == "tie" and not v.flaky, v
'''


def _quality(text: str) -> float:
    return float(text.rsplit("[quality ", 1)[1].split("]")[0]) if "[quality" in text \
        else 0.0


def test_comparisons_both_ways(pytester: pytest.Pytester,
                               judge_server: ScriptedJudgeServer,
                               judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(prefer=_quality)
    pytester.makepyfile(COMPARE)
    result = pytester.runpytest(*judge_args, "-v")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        "*test_better_passes PASSED*", "*test_better_fails_when_worse FAILED*",
        "*test_better_fails_on_a_tie FAILED*",
        "*test_not_worse_passes_on_a_tie PASSED*",
        "*test_not_worse_fails_when_worse FAILED*", "*test_compare_winner PASSED*"])
    # Both orders were asked: half the comparison requests showed B first.
    firsts = [r.texts.get("response_a", "") for r in judge_server.requests
              if r.kind == "pairwise"]
    assert sum("Lyon" in t for t in firsts) > 0
    assert sum("Lyon" not in t for t in firsts) > 0
