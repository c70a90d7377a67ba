"""Judged assertions inside ``async def`` tests, under pytest-asyncio and anyio.

The judge runs on its own event loop in a daemon thread (``_loop.py``), so a
sync ``assert_judged`` or ``judge.check`` works unchanged while the test's own
loop is running, and ``await judge.acheck`` waits without blocking that loop.
Each verdict must still belong to the test that made it: the active test is a
context variable, which each async runner has to carry into the test's task.
Every check here is a real pytest run judged over real HTTP.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import IN_PROCESS

from pytest_llmjudge.testing import JudgeRequest, ScriptedJudge, ScriptedJudgeServer

COMMON = '''
import asyncio

import pytest

from pytest_llmjudge import JudgedAssertionError, Outcome, assert_judged

APOLOGY = "Apologises for the delay"


def good(tag):
    return f"Sorry for the delay [{tag}]: a refund is on its way."


def bad(tag):
    return f"Your order is late [{tag}]."
'''

BODY = '''
{mark}
async def test_assert_judged_passes():
    v = assert_judged(good("assert-pass"), APOLOGY)
    assert v.passed and v.calls == 2
    await asyncio.sleep(0)  # the test's own loop is still usable afterwards


{mark}
async def test_assert_judged_fails():
    assert_judged(bad("assert-fail"), APOLOGY)


{mark}
async def test_assert_judged_raises_catchable():
    with pytest.raises(JudgedAssertionError) as info:
        assert_judged(bad("assert-raises"), APOLOGY)
    assert info.value.verdict.outcome is Outcome.FAIL


{mark}
async def test_check_and_check_many(judge):
    assert judge.check(good("check"), APOLOGY).passed
    assert judge.check(bad("check"), APOLOGY).outcome is Outcome.FAIL
    many = judge.check_many([(good("many-0"), APOLOGY), (bad("many-1"), APOLOGY)])
    assert [v.passed for v in many] == [True, False]


{mark}
async def test_acheck(judge):
    v = await judge.acheck(good("acheck"), APOLOGY)
    assert v.passed
    no = await judge.acheck(bad("acheck"), APOLOGY)  # never raises on a fail
    assert no.outcome is Outcome.FAIL
    both = await asyncio.gather(judge.acheck(good("gather-0"), APOLOGY),
                                judge.acheck(bad("gather-1"), APOLOGY),
                                judge.acheck(good("gather-2"), APOLOGY))
    assert [x.passed for x in both] == [True, False, True]


{mark}
async def test_acheck_leaves_the_loop_free_check_blocks_it(judge):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.ensure_future(ticker())
    assert judge.check(good("blocking"), APOLOGY).passed
    during_check = ticks  # a sync call holds the test's loop: the ticker never ran
    assert (await judge.acheck(good("free"), APOLOGY)).passed
    during_acheck = ticks
    t.cancel()
    assert during_check == 0
    assert during_acheck > 1
'''

ASYNCIO_SUITE = COMMON + BODY.format(mark="@pytest.mark.asyncio")
ANYIO_SUITE = COMMON + '''

@pytest.fixture
def anyio_backend():
    return "asyncio"
''' + BODY.format(mark="@pytest.mark.anyio")

# Verdicts per test (the tag in each judged output names the test that judged it).
EXPECTED = {
    "test_assert_judged_passes": ["assert-pass"],
    "test_assert_judged_fails": ["assert-fail"],
    "test_assert_judged_raises_catchable": ["assert-raises"],
    "test_check_and_check_many": ["check", "check", "many-0", "many-1"],
    "test_acheck": ["acheck", "acheck", "gather-0", "gather-1", "gather-2"],
    "test_acheck_leaves_the_loop_free_check_blocks_it": ["blocking", "free"],
}


def _apology_judge(latency: float = 0.0) -> ScriptedJudge:
    return ScriptedJudge(rules={"apologises": lambda o: "sorry" in o.lower()},
                         latency=latency)


def _tags_by_test(report: Path) -> dict[str, list[str]]:
    doc = json.loads(report.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for v in doc["verdicts"]:
        name = v["nodeid"].split("::")[-1]
        tag = v["excerpt"].split("[", 1)[1].split("]", 1)[0]
        out.setdefault(name, []).append(tag)
    return {k: sorted(v) for k, v in out.items()}


# In-process only (issue #14, suite time): this attack class is decided per
# process; the -n 2 runs kept elsewhere cover what crosses processes.
@IN_PROCESS
@pytest.mark.parametrize("runner", ["pytest-asyncio", "anyio"])
def test_judging_inside_async_tests(pytester: pytest.Pytester,
                                    judge_server: ScriptedJudgeServer,
                                    judge_args: list[str], plugin_args: list[str],
                                    runner: str) -> None:
    judge_server.policy = _apology_judge(latency=0.05)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = error\n")
    pytester.makepyfile(test_async_suite=ASYNCIO_SUITE if runner == "pytest-asyncio"
                        else ANYIO_SUITE)
    result = pytester.runpytest(
        *judge_args, *plugin_args, "--llmjudge-report=report.json", "-rA", timeout=180)
    # Only the test written to fail fails: none is skipped as "async def not
    # supported", none errors.
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_assert_judged_fails*_",
        "E * judged: FAIL 0/1 criteria passed*",
        "*llmjudge summary*",
        "*14 judged expectations: 8 pass, 6 fail*",
        "FAILED *test_assert_judged_fails*",
    ])
    # Each verdict went to the test that made it (the context reached the task).
    assert _tags_by_test(pytester.path / "report.json") == {
        k: sorted(v) for k, v in EXPECTED.items()}
    assert judge_server.calls == 2 * 14


CANCEL = '''
import asyncio

import pytest

APOLOGY = "Apologises for the delay"


@pytest.mark.asyncio
async def test_cancelled_acheck_frees_its_slot(judge):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(judge.acheck("Sorry [slow].", APOLOGY), 0.2)
    # With one call allowed in flight, a leaked slot would hang the next check.
    v = await asyncio.wait_for(judge.acheck("Sorry [next].", APOLOGY), 60)
    assert v.passed
'''


def test_cancelled_acheck_releases_the_concurrency_slot(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = _apology_judge(latency=1.0)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = error\n")
    pytester.makepyfile(CANCEL)
    result = pytester.runpytest(*judge_args, "--llmjudge-concurrency=1",
                                "-q", timeout=120)
    result.assert_outcomes(passed=1)
    outputs = Counter(r.output for r in judge_server.requests)
    # The cancelled judgment's first presentation reached the server; its second
    # was still waiting for the only slot and was never sent. The next judgment
    # got the slot back and was judged in full.
    assert outputs == {"Sorry [slow].": 1, "Sorry [next].": 2}
    result.stdout.fnmatch_lines(["*judge calls: 3 made*; peak 1 in flight*"])


# Under anyio's trio backend there is no asyncio loop in the test's thread: the
# async API waits for the judge loop through trio's own primitives instead
# (``_loop._await_in_trio``). Written with anyio's API only, as a trio user would.
TRIO_SUITE = '''
import anyio
import pytest
import trio

from pytest_llmjudge import Outcome, assert_judged

APOLOGY = "Apologises for the delay"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "trio"


def good(tag):
    return f"Sorry for the delay [{tag}]: a refund is on its way."


def bad(tag):
    return f"Your order is late [{tag}]."


async def test_acheck_inside_trio(judge):
    # The process's first judgment: the judge loop starts from inside trio.
    trio.lowlevel.current_trio_token()  # raises unless trio really runs this test
    assert (await judge.acheck(good("trio-acheck"), APOLOGY)).passed
    assert (await judge.acheck(bad("trio-acheck"), APOLOGY)).outcome is Outcome.FAIL
    got = {}

    async def one(tag, output):
        got[tag] = (await judge.acheck(output, APOLOGY)).passed

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "g0", good("trio-group-0"))
        tg.start_soon(one, "g1", bad("trio-group-1"))
    assert got == {"g0": True, "g1": False}
    many = await judge.acheck_many([(good("trio-many-0"), APOLOGY),
                                    (bad("trio-many-1"), APOLOGY)])
    assert [v.passed for v in many] == [True, False]


async def test_sync_api_inside_trio(judge):
    assert assert_judged(good("trio-assert"), APOLOGY).passed
    assert judge.check(bad("trio-check"), APOLOGY).outcome is Outcome.FAIL
    await anyio.sleep(0)


async def test_acheck_leaves_trio_free(judge):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        assert (await judge.acheck(good("trio-free"), APOLOGY)).passed
        during = ticks
        tg.cancel_scope.cancel()
    assert during > 1


async def test_cancelled_acheck_frees_its_slot(judge):
    with anyio.move_on_after(0.3) as scope:
        await judge.acheck(good("trio-slow"), APOLOGY)
    assert scope.cancelled_caught
    # One call allowed in flight: a leaked slot would hang the next check.
    with anyio.fail_after(60):
        assert (await judge.acheck(good("trio-next"), APOLOGY)).passed
'''

TRIO_EXPECTED = {
    "test_sync_api_inside_trio": ["trio-assert", "trio-check"],
    "test_acheck_inside_trio": ["trio-acheck", "trio-acheck", "trio-group-0",
                                "trio-group-1", "trio-many-0", "trio-many-1"],
    "test_acheck_leaves_trio_free": ["trio-free"],
    "test_cancelled_acheck_frees_its_slot": ["trio-next"],
}


class _SlowFor:
    """``inner``, but ``delay`` seconds slow for outputs tagged ``[tag]``."""

    def __init__(self, inner: ScriptedJudge, tag: str, delay: float):
        self.inner, self.tag, self.delay = inner, f"[{tag}]", delay

    def __call__(self, req: JudgeRequest) -> object:
        if self.tag in req.output:
            time.sleep(self.delay)
        return self.inner(req)


def test_judging_inside_trio_tests(pytester: pytest.Pytester,
                                   judge_server: ScriptedJudgeServer,
                                   judge_args: list[str]) -> None:
    judge_server.policy = _SlowFor(_apology_judge(), "trio-slow", 1.5)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = error\n")
    pytester.makepyfile(test_trio_suite=TRIO_SUITE)
    result = pytester.runpytest(
        *judge_args, "--llmjudge-concurrency=1", "--llmjudge-report=report.json",
        "-q", timeout=180)
    result.assert_outcomes(passed=4)
    assert _tags_by_test(pytester.path / "report.json") == {
        k: sorted(v) for k, v in TRIO_EXPECTED.items()}
    outputs = Counter(r.output for r in judge_server.requests)
    slow = good_output("trio-slow")
    # The cancelled judgment's first presentation reached the server; its second
    # never did (the trio cancel reached the judge loop), and the slot came back.
    assert outputs[slow] == 1
    assert outputs[good_output("trio-next")] == 2
    assert judge_server.calls == 2 * sum(map(len, TRIO_EXPECTED.values())) + 1


def good_output(tag: str) -> str:
    return f"Sorry for the delay [{tag}]: a refund is on its way."


def test_async_api_outside_asyncio_and_trio_says_what_to_do() -> None:
    # An event loop of another library (none here: the coroutine is driven by
    # hand, as such a loop would) gets a clear error, and nothing is sent.
    from pytest_llmjudge.runtime.loop import JudgeLoop
    from pytest_llmjudge.exceptions import ConfigError

    sent = []

    async def judgment() -> None:
        sent.append(1)

    loop = JudgeLoop(concurrency=1)
    waiting = loop.run_async(judgment())
    with pytest.raises(ConfigError, match="needs an asyncio or trio event loop"):
        waiting.send(None)
    assert sent == []
    assert loop._loop is None  # no judge loop was started for it
