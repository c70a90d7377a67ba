"""How many judge calls are in flight: the process-wide limit and the summary's peak.

One judge loop per process holds a semaphore of ``--llmjudge-concurrency``
slots (``_loop.py``); every call takes one, whether it comes from a sync
``assert_judged``, ``judge.check_many`` or an ``await judge.acheck`` on the
test's own loop. The scripted server counts what really arrives at once
(``peak_in_flight``); the summary reports the judge loop's own peak. The judge
is slow (0.5 s a call) so that calls sent together are in flight together.
"""

from __future__ import annotations

import re

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

SUITE = '''
import asyncio
import os

import pytest

from pytest_llmjudge import assert_judged

RUBRIC = "Apologises for the delay"


def test_many(judge):
    verdicts = judge.check_many([(f"Sorry, order {i} is late.", RUBRIC)
                                 for i in range(6)])
    assert [v.passed for v in verdicts] == [True] * 6
    assert sum(v.calls for v in verdicts) == 12


@pytest.mark.asyncio
async def test_gathered_achecks(judge):
    verdicts = await asyncio.gather(*(judge.acheck(f"Sorry, parcel {i} is late.",
                                                   RUBRIC) for i in range(6)))
    assert [v.passed for v in verdicts] == [True] * 6


def test_many_per_worker(judge):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    verdicts = judge.check_many([(f"Sorry, {worker}'s order {i} is late.", RUBRIC)
                                 for i in range(6)])
    assert [v.passed for v in verdicts] == [True] * 6


@pytest.mark.parametrize("i", range(3))
def test_one_by_one(i):
    assert_judged(f"Sorry, letter {i} is late.", RUBRIC)
'''

PEAK = re.compile(r"peak (\d+) in flight")
SELECT = ["test_many and not worker", "test_gathered_achecks"]


@pytest.fixture
def slow_judge(judge_server: ScriptedJudgeServer) -> ScriptedJudgeServer:
    judge_server.policy = ScriptedJudge(latency=0.5)
    return judge_server


def _run(pytester: pytest.Pytester, args: list[str], *extra: str
         ) -> tuple[pytest.RunResult, int]:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = error\n")
    pytester.makepyfile(test_flight=SUITE)
    result = pytester.runpytest_subprocess(*args, "-q", *extra, timeout=180)
    peaks = PEAK.findall(result.stdout.str())
    assert len(peaks) == 1, result.stdout.str()  # the summary says it once
    return result, int(peaks[0])


@pytest.mark.parametrize("select", SELECT)
def test_several_calls_in_flight_by_default(pytester: pytest.Pytester,
                                            slow_judge: ScriptedJudgeServer,
                                            judge_args: list[str], select: str) -> None:
    result, peak = _run(pytester, judge_args, "-k", select)
    result.assert_outcomes(passed=1)
    assert slow_judge.calls == 12
    # Six judgments x two presentations, under the default limit of 16: all
    # twelve held a slot at once, and the server saw several together.
    assert peak == 12
    assert 2 <= slow_judge.peak_in_flight <= 12


@pytest.mark.parametrize("limit", [1, 3])
@pytest.mark.parametrize("select", SELECT)
def test_concurrency_option_caps_calls_in_flight(pytester: pytest.Pytester,
                                                 slow_judge: ScriptedJudgeServer,
                                                 judge_args: list[str], select: str,
                                                 limit: int) -> None:
    result, peak = _run(pytester, judge_args, "-k", select,
                        f"--llmjudge-concurrency={limit}")
    result.assert_outcomes(passed=1)
    assert slow_judge.calls == 12  # every call made, none refused
    assert peak == limit
    assert slow_judge.peak_in_flight <= limit
    if limit == 1:
        assert slow_judge.peak_in_flight == 1


def test_sequential_assertions_send_their_two_presentations_together(
        pytester: pytest.Pytester, slow_judge: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    result, peak = _run(pytester, judge_args, "-k", "test_one_by_one")
    result.assert_outcomes(passed=3)
    assert slow_judge.calls == 6
    assert peak == 2
    assert slow_judge.peak_in_flight == 2
    result.stdout.fnmatch_lines(["*judge calls: 6 made*"])


def test_the_limit_is_per_process_under_xdist(pytester: pytest.Pytester,
                                              slow_judge: ScriptedJudgeServer,
                                              judge_args: list[str]) -> None:
    # Two workers, two slots each: the server may see up to four calls at once,
    # and the summary reports the busiest worker's peak (not a sum).
    result, peak = _run(pytester, judge_args, "-n", "2", "--dist", "each",
                        "-k", "test_many_per_worker", "--llmjudge-concurrency=2")
    result.assert_outcomes(passed=2)
    assert slow_judge.calls == 24  # each worker judged its own six
    assert peak == 2
    assert 2 <= slow_judge.peak_in_flight <= 4
