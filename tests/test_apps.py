"""Issue #13: judging what apps produce, over real HTTP to the scripted judge.

Judged agent trajectories (readable steps, a reference trajectory), and
conversations: the whole chat, the last assistant turn in context, or each
assistant turn within a sliding window, with a pass mark on the share of
turns. Position-biased scripted judges show that every new mode is debiased
(a judge that follows the presentation order never passes anything), judge
failures stay judge errors, and each turn is an ordinary judged task (cache,
records, reports) run concurrently.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    ScriptedJudge,
    ScriptedJudgeServer,
)

# ------------------------------------------------------------------ fixtures
CHAT = '''
import json
from dataclasses import dataclass

from pydantic import BaseModel

ROLE = "A polite support agent for ACME Shoes"
SCENARIO = "A customer's shoes arrived broken and they want a refund"

CHAT = [
    {"role": "system", "content": "You are ACME's support agent."},
    {"role": "user", "content": "My shoes arrived broken."},
    {"role": "assistant", "content": "I'm sorry to hear that! Could you share "
                                     "your order number?"},
    {"role": "user", "content": "It's 1234."},
    {"role": "assistant", "content": "Let me look that up.", "tool_calls": [{
        "id": "c1", "type": "function", "function": {
            "name": "lookup_order", "arguments": json.dumps({"order": 1234})}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "order 1234: shoes, paid"},
    {"role": "user", "content": "So?"},
    {"role": "assistant", "content": "Whatever. Not my problem, buy new ones."},
    {"role": "user", "content": "Please!"},
    {"role": "assistant", "content": "Sorry again: I have issued a full refund."},
]


class LCMessage(BaseModel):
    type: str
    content: str


@dataclass
class Turn:
    role: str
    content: str


class AttrTurn:
    def __init__(self, role, content):
        self.role, self.content = role, content

    def __repr__(self):
        raise AssertionError("repr() must never be used")
'''

RUDE = ("not my problem", "whatever")


def polite(text: str) -> bool:
    return not any(w in text.lower() for w in RUDE)


def support_judge(**kw: Any) -> ScriptedJudge:
    """Fails 'stays in role' for a rude turn; everything else passes."""
    return ScriptedJudge(rules={"in role": polite}, **kw)


# ------------------------------------------------------- judged trajectories
TRAJ = '''
import json
from pytest_llmjudge import Trajectory, assert_judged, assert_rejected

GOOD = [
    {"role": "user", "content": "Weather in SF?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "a", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "SF"})}}]},
    {"role": "tool", "tool_call_id": "a", "content": "80F and sunny"},
    {"role": "assistant", "content": "It is 80F and sunny in SF."},
]
WASTEFUL = GOOD[:3] + [
    {"role": "assistant", "content": "", "tool_calls": [{"id": "b", "function": {
        "name": "book_taxi", "arguments": json.dumps({"to": "SF"})}}]},
    {"role": "tool", "tool_call_id": "b", "content": "taxi booked"},
    GOOD[3],
]
REFERENCE = [{"name": "get_weather", "args": {"city": "SF"}}]

def test_good():
    v = assert_judged(Trajectory(GOOD), "Takes no unnecessary step",
                      input="Weather in SF?", expected=Trajectory(REFERENCE))
    assert v.samples == 2

def test_wasteful_is_rejected():
    assert_rejected(Trajectory(WASTEFUL), "Takes no unnecessary step",
                    expected=Trajectory(REFERENCE))

def test_wasteful_fails():
    assert_judged(Trajectory(WASTEFUL), "Takes no unnecessary step",
                  expected=Trajectory(REFERENCE))
'''


def test_judged_trajectory_is_shown_as_steps_with_a_reference(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(
        rules={"unnecessary": lambda o: "book_taxi" not in o})
    pytester.makepyfile(test_traj=TRAJ)
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "judged: FAIL 0/1 criteria passed" in text
    assert 'calls book_taxi({"to": "SF"})' in text
    req = judge_server.requests[0]
    assert req.output.startswith("Agent trajectory (messages in order):")
    assert 'calls get_weather({"city": "SF"})\n      -> 80F and sunny' in req.output
    assert "Step 1:\n   tool: get_weather" in req.texts["expected"]
    assert '"role"' not in req.output  # steps, not JSON
    # 2 distinct judgments x both orders (the third is the second's cache)
    assert len(judge_server.requests) == 4
    assert {r.options_flipped for r in judge_server.requests} == {True, False}


def test_judged_trajectory_is_debiased(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """A judge that answers whatever is offered first passes nothing: the two
    orders disagree, the verdict is inconclusive (flaky, position bias)."""
    judge_server.policy = ScriptedJudge(position_bias="first")
    pytester.makepyfile(test_traj=TRAJ)
    result = pytester.runpytest(*judge_args, "-k", "good or fails")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    # The failure sections only: under CI=true pytest repeats each message in
    # its short summary.
    failures = text.split("short test summary info")[0]
    assert failures.count("judged: INCONCLUSIVE") == 2
    assert "position bias" in failures


# ------------------------------------------------------------ conversations
def test_each_turn_judged_failing_turn_named_and_quoted(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = support_judge()
    pytester.makepyfile(chat=CHAT, test_chat='''
from pytest_llmjudge import assert_conversation
from chat import CHAT, ROLE, SCENARIO

def test_each():
    assert_conversation(CHAT, "Stays in role as a polite support agent",
                        role=ROLE, scenario=SCENARIO)
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "judged conversation: FAIL 3/4 assistant turns passed (share 0.75, " \
        "pass mark 1.00" in text
    assert 'turn 8 (assistant): "Whatever. Not my problem, buy new ones."' in text
    assert "[FAIL] stays_in_role" in text or "[FAIL]" in text
    assert "passed: turn(s) 3, 5, 10" in text
    assert "The assistant's role: A polite support agent for ACME Shoes" in text
    reqs = judge_server.requests
    assert len(reqs) == 8  # 4 assistant turns x both orders
    by_output = {r.output: r for r in reqs}
    rude = by_output["Whatever. Not my problem, buy new ones."]
    # The turn is judged in its context: every message before it, numbered,
    # the tool call with its result under the turn that made it.
    ctx = rude.texts["input"]
    assert ctx.startswith("[1] system: You are ACME's support agent.")
    assert 'calls lookup_order({"order": 1234})\n      -> order 1234: shoes' in ctx
    assert "[7] user: So?" in ctx and "Not my problem" not in ctx
    # Role and scenario reach the judge as the author's guidance.
    assert "The assistant's role: A polite support agent" in rude.texts["instructions"]
    assert "Scenario: A customer's shoes arrived broken" in rude.texts["instructions"]
    assert "Judge only that turn." in rude.texts["instructions"]
    # A tool-calling turn is shown with its call.
    assert any('calls lookup_order({"order": 1234}) -> order 1234: shoes, paid'
               in out for out in by_output)
    # Every turn in both orders.
    for out in by_output:
        assert {r.options_flipped for r in reqs if r.output == out} == {True, False}


def test_share_of_turns_window_and_per_turn_verdicts(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = support_judge()
    pytester.makepyfile(chat=CHAT, test_chat='''
from pytest_llmjudge import assert_conversation, judge_conversation
from chat import CHAT

def test_share_passes():
    r = assert_conversation(CHAT, "Stays in role as a polite support agent",
                            min_share=0.75, window=2)
    assert r.passed and r.share == 0.75 and r.min_share == 0.75
    assert [t.turn for t in r.turns] == [3, 5, 8, 10]
    assert [t.verdict.outcome.value for t in r.turns] == ["pass", "pass", "fail",
                                                          "pass"]
    assert [t.turn for t in r.failing] == [8]
    assert all(t.verdict.samples == 2 for t in r.turns)
    assert 0.5 < r.confidence <= 1.0

def test_share_fails():
    r = judge_conversation(CHAT, "Stays in role as a polite support agent",
                           min_share=0.8)
    assert not r and r.outcome.value == "fail"
    assert "share 0.75, pass mark 0.80" in r.explain()
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=2)
    windowed = [r for r in judge_server.requests
                if r.output == "Whatever. Not my problem, buy new ones."
                and "Only the last" in r.texts["instructions"]]
    assert len(windowed) == 2
    ctx = windowed[0].texts["input"]
    # window=2: the system message and the last two messages before the turn.
    assert ctx.splitlines()[0] == "[1] system: You are ACME's support agent."
    assert "[7] user: So?" in ctx and "lookup_order" in ctx
    assert "[2] user: My shoes arrived broken." not in ctx
    assert "Only the last 2 message(s) before it are shown." in \
        windowed[0].texts["instructions"]


def test_last_turn_and_whole_conversation(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(rules={
        "in role": polite, "refund": lambda o: "refund" in o.lower()})
    pytester.makepyfile(chat=CHAT, test_chat='''
from pytest_llmjudge import assert_conversation
from chat import CHAT

def test_last_passes():
    r = assert_conversation(CHAT, "Stays in role as a polite support agent",
                            turns="last")
    assert [t.turn for t in r.turns] == [10]

def test_whole_fails():
    assert_conversation(CHAT, "Stays in role as a polite support agent",
                        turns="whole", expected_outcome="The customer gets a refund")

def test_whole_refund():
    assert_conversation(CHAT, "Ends with the refund issued", turns="whole")
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "judged conversation, the whole conversation:" in text
    assert "Expected outcome of the conversation: The customer gets a refund" in text
    reqs = judge_server.requests
    assert len(reqs) == 6
    last = [r for r in reqs if r.output.startswith("Sorry again")]
    assert len(last) == 2 and "[8] assistant: Whatever." in last[0].texts["input"]
    whole = [r for r in reqs if r.output.startswith("[1] system:")]
    assert len(whole) == 4 and "input" not in whole[0].texts
    assert "[10] assistant: Sorry again" in whole[0].output


STEPS = """
from pytest_llmjudge import assert_conversation

STEPS = [
    {"name": "get_weather", "args": {"city": "SF"}, "result": "sunny"},
    {"name": "book_taxi", "args": {"to": "SF"}, "result": "booked"},
    {"name": "get_forecast", "args": {"city": "SF", "days": 3}},
]

def test_steps():
    assert_conversation(STEPS, "The call is needed to answer the weather question",
                        scenario="The user asked for the weather in SF")
"""


def test_trajectory_steps_judged_one_by_one(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """Per-step results where the rubric is per step: plain steps (or the
    agent's messages) judged each in the context of the steps before it."""
    judge_server.policy = ScriptedJudge(
        rules={"needed": lambda o: "book_taxi" not in o})
    pytester.makepyfile(test_steps=STEPS)
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "FAIL 2/3 assistant turns passed" in text
    assert 'turn 2 (assistant): "[calls book_taxi({"to": "SF"}) -> booked]"' in text
    third = [r for r in judge_server.requests if "get_forecast" in r.output]
    assert third[0].texts["input"].splitlines() == [
        "[1] assistant:", '    calls get_weather({"city": "SF"})', "      -> sunny",
        "[2] assistant:", '    calls book_taxi({"to": "SF"})', "      -> booked"]
    assert "Scenario: The user asked for the weather in SF" in \
        third[0].texts["instructions"]


def test_conversation_shapes_are_read_by_their_fields(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """LangChain-like models (``type``), dataclasses and Turn-like objects
    with role/content attributes: read by fields, never ``repr()``."""
    judge_server.policy = support_judge()
    pytester.makepyfile(chat=CHAT, test_chat='''
import pytest
from pytest_llmjudge import assert_conversation
from chat import LCMessage, Turn, AttrTurn

@pytest.mark.parametrize("conv", [
    [LCMessage(type="human", content="Hi"), LCMessage(type="ai", content="Hello!")],
    [Turn("user", "Hi"), Turn("assistant", "Hello!")],
    [AttrTurn("user", "Hi"), AttrTurn("assistant", "Hello!")],
    {"messages": [{"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello!"}]},
])
def test_shape(conv):
    r = assert_conversation(conv, "Stays in role as a polite support agent")
    assert [t.turn for t in r.turns] == [2]
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=4)
    # Same text each time: one pair of calls, the rest served from the cache.
    assert {r.output for r in judge_server.requests} == {"Hello!"}
    assert {r.texts["input"] for r in judge_server.requests} == {"[1] user: Hi"}


def test_turns_are_judged_concurrently_cached_and_reported(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = support_judge(latency=0.3)
    pytester.makepyfile(chat=CHAT, test_chat='''
from pytest_llmjudge import assert_conversation
from chat import CHAT

def test_each():
    assert_conversation(CHAT, "Stays in role as a polite support agent",
                        min_share=0.5)
''')
    result = pytester.runpytest(*judge_args, "--llmjudge-report=r.json")
    result.assert_outcomes(passed=1)
    assert judge_server.calls == 8
    # Every turn, both orders, at once (not one call after another): seen by
    # the server, not by a wall clock that a busy machine would stretch.
    assert judge_server.peak_in_flight == 8
    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    # One row for the conversation (what the test asserted), a row per turn
    # under it: the failing turn is no failed expectation of its own.
    (row,) = [r for r in doc["verdicts"] if r["nodeid"].endswith("test_each")]
    assert row["outcome"] == "pass" and row["score"] == 0.75
    assert row["pass_mark"] == 0.5 and row["calls"] == 8
    assert [(c["name"], c["passed"]) for c in row["criteria"]] == [
        ("turn 3", True), ("turn 5", True), ("turn 8", False), ("turn 10", True)]
    assert "not met" in row["criteria"][2]["reasoning"]
    assert "1 judged expectation: 1 pass" in result.stdout.str()
    # A second run is served from the cache.
    again = pytester.runpytest(*judge_args)
    again.assert_outcomes(passed=1)
    assert judge_server.calls == 8


def test_conversation_is_debiased(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """A judge that answers whatever is offered first passes no turn: every
    turn's two orders disagree, so the conversation is inconclusive (a fail
    under the default inconclusive=fail; a warning under warn), never a pass."""
    judge_server.policy = ScriptedJudge(position_bias="first")
    pytester.makepyfile(chat=CHAT, test_chat='''
import pytest
from pytest_llmjudge import assert_conversation
from chat import CHAT

def test_each():
    assert_conversation(CHAT, "Stays in role", min_share=0.5)

def test_last():
    assert_conversation(CHAT, "Stays in role", turns="last")

def test_whole():
    assert_conversation(CHAT, "Stays in role", turns="whole")

def test_warn():
    with pytest.warns(Warning, match="INCONCLUSIVE"):
        r = assert_conversation(CHAT, "Stays in role", inconclusive="warn")
    assert not r.passed and r.outcome.value == "inconclusive"
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(failed=3, passed=1)
    text = result.stdout.str()
    assert "judged conversation: INCONCLUSIVE 0/4 assistant turns passed" in text
    assert text.count("judged: INCONCLUSIVE") >= 2
    assert "position bias" in text


def test_judge_failures_are_judge_errors_unless_the_outcome_is_settled(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """A turn the judge cannot answer makes the conversation a judge error
    when the outcome hangs on it, never a pass; a fail elsewhere that no
    answer could rescue is still a fail."""
    base = support_judge()

    def policy(req: JudgeRequest) -> Any:
        if "refund" in req.output:
            return Fault("garbage")
        return base(req)

    judge_server.policy = policy
    pytester.makepyfile(chat=CHAT, test_chat='''
from pytest_llmjudge import assert_conversation
from chat import CHAT

def test_error_decides():
    assert_conversation(CHAT, "Stays in role as a polite support agent",
                        min_share=0.75)

def test_fail_anyway():
    assert_conversation(CHAT, "Stays in role as a polite support agent")

def test_pass_anyway():
    assert_conversation(CHAT, "Stays in role as a polite support agent",
                        min_share=0.5)
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(errors=1, failed=1, passed=1)
    text = result.stdout.str()
    assert "judged conversation: JUDGE ERROR 2/4 assistant turns passed" in text
    assert "judged conversation: FAIL 2/4" in text


def test_bad_conversation_calls_are_config_errors(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    pytester.makepyfile(chat=CHAT, test_bad='''
import pytest
from pytest_llmjudge import ConfigError, assert_conversation
from chat import CHAT

CASES = [
    (dict(turns="every"), "turns='every': use 'each'"),
    (dict(turns="whole", min_share=0.5), "min_share= is the share of assistant"),
    (dict(min_share=1.5), "min_share must be in [0, 1]"),
    (dict(window=-1), "window must be a whole number"),
    (dict(turns="whole", window=2), "window= applies to turns='each' or 'last'"),
    (dict(input="hi"), "input= is the conversation itself"),
    (dict(better_than="x"), "better_than= does not apply to a conversation"),
    (dict(role=3), "role= must be a non-empty str"),
    (dict(expect="fail"), "expect='fail' over each turn is ambiguous"),
    (dict(conversation="hello"), "is a str: pass a list of messages"),
    (dict(conversation=[{"content": "x"}]), "message 1 has no role"),
    (dict(conversation=[{"role": "user", "content": "x"}]), "no assistant turn"),
    (dict(conversation=None), "the conversation is None"),
    (dict(rubric=None), "rubric"),
    (dict(temprature=0), "unknown option 'temprature'"),
]

@pytest.mark.parametrize(("kw", "needle"), CASES)
def test_bad(kw, needle):
    conv = kw.pop("conversation", CHAT)
    rubric = kw.pop("rubric", "Is polite")
    with pytest.raises((ConfigError, TypeError)) as info:
        assert_conversation(conv, rubric, **kw)
    assert needle in str(info.value)
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=15)
    assert judge_server.calls == 0


# ------------------------------------------------------------------ rankings
def _quality(text: str) -> float:
    """Scripted preference: the number after 'Q' (Q3 beats Q2)."""
    return float(text.split("Q", 1)[1][:1]) if "Q" in text else 0.0


def test_rank_and_select_best(pytester: pytest.Pytester,
                              judge_server: ScriptedJudgeServer,
                              judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(prefer=_quality)
    pytester.makepyfile(test_rank='''
def test_winner(judge):
    r = judge.rank(["Q1 meh", "Q3 best", "Q2 ok"], "Which answer is clearer?",
                   input="Explain DNS")
    assert r.status == "winner" and r.winner == 1 and bool(r)
    assert r.order == [1, 2, 0] and r.points == [0.0, 2.0, 1.0]
    assert 0.8 < r.confidence <= 1.0
    assert [(p.a, p.b, p.winner) for p in r.pairs] == [(0, 1, 1), (0, 2, 2), (1, 2, 1)]
    assert "ranking: WINNER candidate 1" in r.explain()
    assert judge.select_best(["Q1 meh", "Q3 best", "Q2 ok"],
                             "Which answer is clearer?", input="Explain DNS") \\
        == "Q3 best"

def test_tie(judge):
    r = judge.rank(["Q3 a", "Q3 b", "Q1 c"])
    assert r.status == "tie" and r.tied == [0, 1] and r.winner is None
    assert judge.select_best(["Q3 a", "Q3 b", "Q1 c"]) is None

def test_bad(judge):
    import pytest
    from pytest_llmjudge import ConfigError
    with pytest.raises(ConfigError, match="2 to 12 candidates, got 1"):
        judge.rank(["only one"])
    with pytest.raises(ConfigError, match="a list of candidates"):
        judge.rank("abc")
    with pytest.raises(ConfigError, match="min_score does not apply"):
        judge.rank(["a", "b"], min_score=0.5)
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=3)
    pair_reqs = [r for r in judge_server.requests if r.kind == "pairwise"]
    # Each pair in both orders: every candidate shown first and second.
    shown = {(r.texts["response_a"], r.texts["response_b"]) for r in pair_reqs}
    for a, b in [("Q1 meh", "Q3 best"), ("Q1 meh", "Q2 ok"), ("Q3 best", "Q2 ok")]:
        assert (a, b) in shown and (b, a) in shown


def test_rank_is_debiased_cycles_and_judge_errors_are_honest(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    biased = ScriptedJudge(position_bias="first")
    beats = {("rock", "scissors"), ("scissors", "paper"), ("paper", "rock")}

    def policy(req: JudgeRequest) -> Any:
        a, b = req.texts.get("response_a", ""), req.texts.get("response_b", "")
        if "biased" in a + b:
            return biased(req)
        if "broken" in a + b:
            return Fault("garbage")
        win = "A" if (a, b) in beats else "B"
        return {"reasoning": "scripted", "winner": win, "confidence": 0.9}

    judge_server.policy = policy
    pytester.makepyfile(test_rank='''
def test_biased(judge):
    r = judge.rank(["biased 1", "biased 2", "biased 3"])
    assert r.status == "inconclusive" and r.winner is None
    assert all(p.winner is None for p in r.pairs)
    assert "position bias" in r.explain()
    assert judge.select_best(["biased 1", "biased 2"]) is None

def test_cycle(judge):
    r = judge.rank(["rock", "paper", "scissors"])
    assert r.status == "inconclusive" and r.points == [1.0, 1.0, 1.0]
    assert all(p.winner is not None for p in r.pairs)

def test_error(judge):
    r = judge.rank(["rock", "broken"])
    assert r.status == "judge_error" and r.confidence == 0.0
    assert "judge error" in r.explain()
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=3)


def test_best_of(pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
                 judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(prefer=_quality)
    pytester.makepyfile(test_best='''
import pytest
from pytest_llmjudge import ConfigError, assert_judged

def test_wins():
    v = assert_judged("Q3 new prompt", best_of=["Q1 old", "Q2 other"],
                      input="Explain DNS")
    assert v.passed and v.kind == "pairwise"

def test_loses_to_one():
    assert_judged("Q2 new prompt", best_of=["Q1 old", "Q3 strong"])

def test_bad():
    with pytest.raises(ConfigError, match="non-empty list"):
        assert_judged("Q3", best_of="Q1")
    with pytest.raises(ConfigError, match="best_of= or better_than="):
        assert_judged("Q3", best_of=["Q1"], better_than="Q2")
    with pytest.raises(ConfigError, match="pass_score does not apply"):
        assert_judged("Q3", best_of=["Q1"], pass_score=3)
    with pytest.raises(ConfigError, match="ambiguous"):
        assert_judged("Q3", best_of=["Q1"], expect="fail")
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "judged: best_of: the output must beat each of 2 baseline(s); 1 not met" \
        in text
    assert "against baseline 1:" in text and "against baseline 0:" not in text


def test_best_of_is_debiased(pytester: pytest.Pytester,
                             judge_server: ScriptedJudgeServer,
                             judge_args: list[str]) -> None:
    """A judge that prefers whatever is shown first cannot make the output
    win: each comparison's orders disagree."""
    judge_server.policy = ScriptedJudge(position_bias="first")
    pytester.makepyfile(test_best='''
def test_biased():
    from pytest_llmjudge import assert_judged
    assert_judged("new", best_of=["old", "older"])
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "2 not met" in text and "position bias" in text


# ------------------------------------------------------------------ xdist
@pytest.mark.subprocess("xdist workers are processes of their own")
def test_apps_under_xdist(pytester: pytest.Pytester,
                          judge_server: ScriptedJudgeServer,
                          judge_args: list[str]) -> None:
    """Trajectories, conversations, rankings and claim checks at -n 2: the
    same outcomes, every per-turn and per-pair verdict and one row per claim
    check in the merged report."""
    judge_server.policy = ScriptedJudge(
        rules={"in role": polite, "unnecessary": lambda o: "book_taxi" not in o},
        prefer=_quality,
        supported=lambda claim, ctx: claim.rstrip(".").lower() in ctx.lower())
    pytester.makepyfile(chat=CHAT, test_traj=TRAJ, test_chat='''
from pytest_llmjudge import assert_conversation, assert_judged, assert_trajectory
from chat import CHAT

def test_each_share():
    r = assert_conversation(CHAT, "Stays in role as a polite support agent",
                            min_share=0.75, window=3)
    assert [t.turn for t in r.failing] == [8]

def test_each_fails():
    assert_conversation(CHAT, "Stays in role as a polite support agent")

def test_matcher():
    assert_trajectory(CHAT, [{"name": "lookup_order", "args": {"order": 1234}}])

def test_best_of():
    assert_judged("Q3 new", best_of=["Q1 old", "Q2 other"])

def test_rank(judge):
    assert judge.rank(["Q1", "Q2", "Q3"]).winner == 2
''', test_claims='''
from pytest_llmjudge import assert_faithful

DOCS = ["Refunds are accepted within 30 days.", "Shipping is free over 50 euros."]

def test_faithful():
    r = assert_faithful("Refunds are accepted within 30 days. Shipping is free "
                        "over 50 euros.", context=DOCS)
    assert r.share == 1.0 and len(r.judgments) == 1

def test_hallucinated():
    assert_faithful("Refunds are accepted within 30 days. Refunds are paid in "
                    "gold bars.", context=DOCS)
''')
    result = pytester.runpytest(*judge_args, "-n", "2", "--llmjudge-report=r.json")
    result.assert_outcomes(passed=7, failed=3)
    text = result.stdout.str()
    assert 'turn 8 (assistant): "Whatever. Not my problem, buy new ones."' in text
    assert '[NOT SUPPORTED] claim 2: "Refunds are paid in gold bars."' in text
    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    per_test: dict[str, int] = {}
    for row in doc["verdicts"]:
        name = row["nodeid"].split("::")[-1]
        per_test[name] = per_test.get(name, 0) + 1
    assert per_test["test_each_share"] == 1 and per_test["test_each_fails"] == 1
    assert per_test["test_best_of"] == 2 and per_test["test_rank"] == 3
    assert "test_matcher" not in per_test  # no judge
    assert per_test["test_faithful"] == 1 and per_test["test_hallucinated"] == 1


def test_in_a_chat_a_message_that_only_calls_tools_is_a_step_not_a_turn(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = support_judge()
    pytester.makepyfile(test_chat='''
from pytest_llmjudge import judge_conversation

CHAT = [
    {"role": "user", "content": "Where is order 7?"},
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "c1", "type": "function", "function": {
            "name": "track", "arguments": '{"order": 7}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "order 7: in transit"},
    {"role": "assistant", "content": "Order 7 is on its way."},
]

def test_it():
    r = judge_conversation(CHAT, "Stays in role as a polite support agent",
                           min_share=0.5)
    assert [t.turn for t in r.turns] == [4]  # the reply, not the tool call
    assert r.share == 1.0
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=1)
    # The reply was judged with the call and its result shown before it.
    (req,) = {r.output: r for r in judge_server.requests}.values()
    assert req.output == "Order 7 is on its way."
    assert "calls track" in req.texts["input"] and "in transit" in req.texts["input"]


# ------------------------------------------------------- judged arguments
def _args_judge(**kw: Any) -> Any:
    """Arguments mean the same when the expected city is in the actual one."""
    inner = ScriptedJudge(**kw)

    def policy(req: JudgeRequest) -> Any:
        if req.kind == "criteria" and "mean the same" in req.criteria[0][1] and \
                kw.get("position_bias") is None:
            want = json.loads(req.texts["expected"]).get("city", "").lower()
            ok = want in json.loads(req.output).get("city", "").lower()
            return {"criteria": [{"name": req.criteria[0][0], "reasoning": "scripted",
                                  "verdict": "pass" if ok else "fail"}],
                    "confidence": 0.9}
        return inner(req)
    return policy


ARGS_SUITE = '''
import pytest
from pytest_llmjudge import (JudgeOutcomeError, TrajectoryMismatchError,
                             assert_trajectory, match_trajectory)

EXPECTED = [{"name": "get_weather", "args": {"city": "Paris"}},
            {"name": "book_taxi", "args": {"to": "airport"}}]

def steps(city, to="airport"):
    return [{"name": "get_weather", "args": {"city": city}},
            {"name": "book_taxi", "args": {"to": to}}]

def test_same_meaning():
    m = assert_trajectory(steps("paris, FR"), EXPECTED, args="judged")
    assert m.args == "judged"
    assert not match_trajectory(steps("paris, FR"), EXPECTED)  # exact: differs

def test_other_city():
    assert_trajectory(steps("Lyon"), EXPECTED, mode="unordered", args="judged")

def test_per_tool():
    # Only get_weather is judged: book_taxi's arguments compare exactly.
    assert not match_trajectory(steps("paris, FR", to="the airport"), EXPECTED,
                                args_by_tool={"get_weather": "judged"})
'''


def test_arguments_can_be_judged(pytester: pytest.Pytester,
                                 judge_server: ScriptedJudgeServer,
                                 judge_args: list[str]) -> None:
    judge_server.policy = _args_judge()
    pytester.makepyfile(test_args=ARGS_SUITE)
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off")
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "trajectory MISMATCH (mode unordered, args judged): expected step 1 " \
        "get_weather" in text
    # Only the pairs whose arguments differ are asked, in both orders: one
    # pair per test (equal arguments need no judge).
    asked = [r for r in judge_server.requests if r.kind == "criteria"]
    assert len(asked) == 6
    assert {r.options_flipped for r in asked} == {True, False}
    assert all("get_weather" in r.criteria[0][1] for r in asked)


def test_judged_arguments_never_match_on_a_biased_or_failing_judge(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = _args_judge(position_bias="first")
    pytester.makepyfile(test_args=ARGS_SUITE + '''

def test_biased():
    with pytest.raises(TrajectoryMismatchError, match="inconclusive"):
        assert_trajectory(steps("paris, FR"), EXPECTED, args="judged")
''')
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off", "-k", "biased")
    result.assert_outcomes(passed=1, deselected=3)
    judge_server.policy = lambda req: Fault("status", status=400, message="no")
    pytester.makepyfile(test_err='''
import pytest
from pytest_llmjudge import JudgeOutcomeError, assert_trajectory

def test_error():
    with pytest.raises(JudgeOutcomeError, match="the match cannot be decided"):
        assert_trajectory([{"name": "get_weather", "args": {"city": "paris, FR"}}],
                          [{"name": "get_weather", "args": {"city": "Paris"}}],
                          args="judged")
''')
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off", "test_err.py")
    result.assert_outcomes(passed=1)
