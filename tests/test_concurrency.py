"""How many judge calls are in flight: the process-wide limit and the summary's peak.

One judge loop per process holds a semaphore of ``--llmjudge-concurrency``
slots (``_loop.py``); every call takes one, whether it comes from a sync
``assert_judged``, ``judge.check_many`` or an ``await judge.acheck`` on the
test's own loop. The scripted server counts what really arrives at once
(``peak_in_flight``); the summary reports the judge loop's own peak. The judge
is slow (0.5 s a call) so that calls sent together are in flight together.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest

from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    ScriptedJudge,
    ScriptedJudgeServer,
)
from tests.conftest import IN_PROCESS

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
    result = pytester.runpytest(*args, "-q", *extra, timeout=180)
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


@pytest.mark.subprocess("xdist workers are processes of their own")
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


# ---------------------------------------------------------------- --llmjudge-rpm
# At 120 requests per minute a model gets a turn every 0.5 s, process-wide: the
# server stamps each request's arrival. A turn is when a request may leave; a
# busy machine can still delay it on its way out (litellm builds it in a worker
# thread), which shortens the gap to the next one: CI once saw two requests
# 0.001 s apart after a 0.5 s delay. So the checks read requests two turns apart
# (at least one turn between them, whatever one delay does) and spans, never
# one gap.
RPM_SUITE = '''
RUBRIC = "Apologises for the delay"


def test_warm_up(judge):
    # Another model, first: the litellm import and the first connection (which
    # can take longer than a turn) are behind us when the measured calls go.
    assert judge.check("Sorry, the warm-up is late.", RUBRIC,
                       model="openai/warm-up").passed


def test_first(judge):
    verdicts = judge.check_many([(f"Sorry, order {i} is late.", RUBRIC)
                                 for i in range(2)])
    assert [v.passed for v in verdicts] == [True, True]


def test_second(judge):
    verdicts = judge.check_many([(f"Sorry, parcel {i} is late.", RUBRIC)
                                 for i in range(2)])
    assert [v.passed for v in verdicts] == [True, True]


def test_jury(judge):
    jury = ["openai/judge-a", "openai/judge-b"]
    verdicts = judge.check_many([{"output": f"Sorry, letter {i} is late.",
                                  "rubric": RUBRIC, "model": jury}
                                 for i in range(2)])
    assert [v.passed for v in verdicts] == [True, True]
'''


def _arrivals(server: ScriptedJudgeServer, model: str, text: str = ""
              ) -> list[float]:
    return [t for t, r in zip(server.arrivals, server.requests)
            if r.body.get("model") == model and text in r.output]


def _gaps(times: list[float], apart: int = 1) -> list[float]:
    """Time between each request and the one ``apart`` requests later."""
    times = sorted(times)
    return [b - a for a, b in zip(times, times[apart:])]


@pytest.mark.parametrize("rpm", [120, None], ids=["rpm-120", "no-rpm"])
def test_rpm_spaces_each_models_calls_across_tests(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], rpm: int | None) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = error\n")
    pytester.makepyfile(test_rpm=RPM_SUITE)
    result = pytester.runpytest(
        *judge_args, "-q", *([f"--llmjudge-rpm={rpm}"] if rpm else []), timeout=180)
    result.assert_outcomes(passed=4)
    first = _arrivals(judge_server, "scripted-judge", "order")
    second = _arrivals(judge_server, "scripted-judge", "parcel")
    own = first + second
    assert len(first) == len(second) == 4
    a, b = _arrivals(judge_server, "judge-a"), _arrivals(judge_server, "judge-b")
    assert len(a) == len(b) == 4
    span = max(own) - min(own)
    if rpm is None:
        # check_many sends a test's four calls together: no spacing at all (at
        # 120 rpm they would take 1.5 s, and the eight 3.5 s).
        assert span < 3.0
        assert max(first) - min(first) < 1.0
        return
    # Eight calls of one model, 0.5 s apart: 3.5 s from first to last (a
    # delayed first request takes its delay off; CI saw 1 s), unpaced < 1 s.
    assert span >= 2.0
    assert min(_gaps(own, 2)) >= 0.5  # unpaced, check_many's four go together
    # One schedule for the process: the second test's third call waited three
    # turns after the first test's last one (a per-test schedule sends at once).
    assert sorted(second)[2] - max(first) >= 0.5
    # Per model: each jury member is spaced on its own ...
    assert min(_gaps(a, 2)) >= 0.5 and min(_gaps(b, 2)) >= 0.5
    # ... and the two run side by side (one shared schedule would put the eight
    # calls 0.5 s apart, 3.5 s from first to last; side by side it is 1.5 s).
    assert max(a + b) - min(a + b) < 2.8


class _Refusing:
    """Refuses once per model: ``flaky`` answers its first request with a 503
    (retry at once); ``plain-only`` refuses every structured-output request."""

    def __init__(self) -> None:
        self.inner = ScriptedJudge()
        self.flaked = False
        self.lock = threading.Lock()

    def __call__(self, req: JudgeRequest) -> object:
        model = req.body.get("model")
        with self.lock:
            if model == "flaky" and not self.flaked:
                self.flaked = True
                return Fault("status", status=503, retry_after=0)
        if model == "plain-only" and req.body.get("response_format"):
            return Fault("status", status=400,
                         message="response_format json_schema is not supported")
        return self.inner(req)


RETRY_SUITE = '''
RUBRIC = "Apologises for the delay"


def test_warm_up(judge):  # as in RPM_SUITE
    assert judge.check("Sorry, the warm-up is late.", RUBRIC,
                       model="openai/warm-up").passed


def test_retried(judge):
    assert judge.check("Sorry, your order is late.", RUBRIC,
                       model="openai/flaky").passed


def test_plain_text_fallback(judge):
    assert judge.check("Sorry, your order is late.", RUBRIC,
                       model="openai/plain-only").passed
'''


def test_rpm_also_paces_retries_and_the_plain_text_fallback(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = _Refusing()
    pytester.makeini("[pytest]\nfilterwarnings = error\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_retry=RETRY_SUITE)
    # 30 rpm, a turn every 2 s: paced, each of these requests is a turn after
    # the one before (a request delayed on its way out, by up to the 1 s seen
    # in CI, still arrives a second apart); unpaced, a retry or fallback
    # follows its refusal at once.
    result = pytester.runpytest(*judge_args, "-q", "--llmjudge-rpm=30",
                                timeout=180)
    result.assert_outcomes(passed=3)
    # Two presentations, one retried at once after its 503: without pacing the
    # retry lands right after the refusal; paced, it waits for a third turn.
    flaky = _arrivals(judge_server, "flaky")
    assert len(flaky) == 3
    assert min(_gaps(flaky)) >= 0.9
    # Refused structured output, asked again in plain text by a second call:
    # that call waits for a turn of its own too.
    plain = [(t, bool(r.body.get("response_format")))
             for t, r in zip(judge_server.arrivals, judge_server.requests)
             if r.body.get("model") == "plain-only"]
    assert [f for _, f in plain].count(False) == 2  # both answered in plain text
    assert True in [f for _, f in plain]  # after a refused structured request
    assert min(_gaps([t for t, _ in plain])) >= 0.9


def test_complete_awaits_before_attempt_before_every_request(
        judge_server: ScriptedJudgeServer) -> None:
    # The API judge.py passes the slot's pacing through: called before the first
    # request and before each retry, never in between.
    from pytest_llmjudge.runtime.client import complete
    from pytest_llmjudge.runtime.loop import JudgeLoop

    judge_server.policy = ScriptedJudge(faults=[Fault("status", status=503,
                                                      retry_after=0)] * 2)
    seen: list[int] = []

    async def before() -> None:
        seen.append(judge_server.calls)

    async def one() -> object:
        return await complete(
            model="openai/scripted-judge", api_base=judge_server.base_url,
            api_key="sk-test", messages=[{"role": "user", "content": "hi"}],
            response_format=None, temperature=0.0, seed=None, timeout=30,
            retries=3, logprobs=False, before_attempt=before)

    loop = JudgeLoop(concurrency=1)
    try:
        reply = loop.run(one())
    finally:
        loop.close()
    assert reply.content == "I cannot tell what you are asking."  # answered
    assert seen == [0, 1, 2]  # three attempts, each after the one before


def test_a_cancelled_wait_gives_its_rpm_turn_back() -> None:
    from pytest_llmjudge.runtime.loop import JudgeLoop

    loop = JudgeLoop(concurrency=4, rpm=60)  # a turn a second

    async def scenario() -> tuple[float, float, float]:
        await loop.pace("m")  # the first turn is now
        first_next = loop._next_slot["m"]
        waiting = asyncio.ensure_future(loop.pace("m"))  # takes the next turn
        await asyncio.sleep(0.05)
        held = loop._next_slot["m"]
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return first_next, held, loop._next_slot["m"]

    try:
        first_next, held, after = loop.run(scenario())
    finally:
        loop.close()
    assert held == pytest.approx(first_next + 1.0)  # the waiter held a turn
    assert after == first_next  # ... and gave it back: the next caller gets it


@pytest.mark.parametrize("paced", [True, False])
def test_slot_pace_gives_each_request_one_turn(paced: bool) -> None:
    # slot(paced=True) waits for the first request's turn and slot.pace lets
    # that request go; slot(paced=False) leaves every turn to slot.pace. Either
    # way, each later request under the same slot waits for a turn anew.
    from pytest_llmjudge.runtime.loop import JudgeLoop

    loop = JudgeLoop(concurrency=4, rpm=60)  # a turn a second

    async def scenario() -> list[float | None]:
        marks: list[float | None] = []
        async with await loop.slot("m", paced=paced) as slot:
            marks.append(loop._next_slot.get("m"))
            await slot.pace()  # the first request
            marks.append(loop._next_slot.get("m"))
            retry = asyncio.ensure_future(slot.pace())  # a retry: the next turn
            await asyncio.sleep(0.05)
            assert not retry.done()  # waiting for it
            marks.append(loop._next_slot.get("m"))
            retry.cancel()
        return marks

    try:
        at_slot, after_first, during_retry = loop.run(scenario())
    finally:
        loop.close()
    assert after_first is not None
    assert at_slot == (after_first if paced else None)  # one turn each way
    assert during_retry == pytest.approx(after_first + 1.0)
    assert loop.in_flight == 0


# ------------------------------------------------------- one judge loop per process
# Every judge call of a process, from any test, runs on the same event loop in
# the same "llmjudge-loop" thread: no loop (or thread) is started per call or
# per test. A conftest counts every asyncio event loop the process creates.
ONE_LOOP_CONFTEST = '''
import asyncio
import asyncio.events

CREATED = []
_new = asyncio.events.new_event_loop


def _counting():
    loop = _new()
    CREATED.append(id(loop))
    return loop


asyncio.new_event_loop = asyncio.events.new_event_loop = _counting
'''

ONE_LOOP_SUITE = '''
import json
import os
import threading

import pytest

from conftest import CREATED
from pytest_llmjudge import assert_judged
from pytest_llmjudge.assertion import current_judge


@pytest.mark.parametrize("i", range(4))
def test_sync(i):
    for k in range(3):
        assert_judged(f"Sorry, order {i}-{k} is late.", "Apologises for the delay")
    loop = current_judge().session.loop
    threads = [t for t in threading.enumerate() if t.name == "llmjudge-loop"]
    with open(f"seen-{os.getpid()}.jsonl", "a") as f:
        f.write(json.dumps({"judge_loop": id(loop), "event_loop": id(loop.loop),
                            "loop_threads": [t.ident for t in threads],
                            "created": list(CREATED)}) + "\\n")
'''


@pytest.mark.subprocess("counts the event loops and threads of each process; its "
                        "conftest patches asyncio.new_event_loop for the process")
# One process only: an xdist worker runs the same per-process code (issue #14:
# three more litellm imports for nothing the no-xdist run does not show).
@IN_PROCESS
def test_one_judge_loop_serves_every_sync_test(pytester: pytest.Pytester,
                                               judge_server: ScriptedJudgeServer,
                                               judge_args: list[str],
                                               plugin_args: list[str]) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = error\n")
    pytester.makeconftest(ONE_LOOP_CONFTEST)
    pytester.makepyfile(test_one_loop=ONE_LOOP_SUITE)
    result = pytester.runpytest_subprocess(*judge_args, *plugin_args, "-q",
                                           timeout=180)
    result.assert_outcomes(passed=4)
    assert judge_server.calls == 4 * 3 * 2
    files = sorted(pytester.path.glob("seen-*.jsonl"))
    assert len(files) == (2 if plugin_args else 1)  # one per process (xdist: worker)
    assert sum(len(f.read_text().splitlines()) for f in files) == 4
    for f in files:
        seen = [json.loads(line) for line in f.read_text().splitlines()]
        # Twelve judgments (x2 presentations) per process at most, one loop:
        assert len({s["judge_loop"] for s in seen}) == 1
        assert len({s["event_loop"] for s in seen}) == 1
        assert all(len(s["loop_threads"]) == 1 for s in seen)
        assert len({s["loop_threads"][0] for s in seen}) == 1
        # ... and the only asyncio loop the process ever created is that one.
        assert all(s["created"] == [seen[0]["event_loop"]] for s in seen)
