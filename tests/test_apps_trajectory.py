"""Issue #13, agent trajectories: the deterministic matchers (no judge), as
plain unit tests, several variants per class of mistake, over every shape a
trajectory comes in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from pytest_llmjudge import (
    ConfigError,
    Trajectory,
    TrajectoryMismatchError,
    assert_trajectory,
    match_trajectory,
)
from pytest_llmjudge.messages import read_conversation, read_steps


def call(name: str, **args: Any) -> dict[str, Any]:
    """An OpenAI-style tool call (arguments as a JSON string)."""
    return {"id": f"id-{name}-{len(args)}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def step(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def openai(*calls: dict[str, Any]) -> list[dict[str, Any]]:
    """A user question, one assistant message per call, tool results, answer."""
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "Plan my trip"}]
    for c in calls:
        msgs.append({"role": "assistant", "content": None, "tool_calls": [c]})
        msgs.append({"role": "tool", "tool_call_id": c["id"], "content": "ok"})
    msgs.append({"role": "assistant", "content": "Done."})
    return msgs


W = step("get_weather", city="SF")
D = step("get_directions", destination="presidio")
B = step("book_taxi", to="presidio")


# ------------------------------------------------------------- modes, per mistake
@pytest.mark.parametrize(("actual", "mode", "ok"), [
    # the same calls, same order: every mode matches
    ([W, D], "strict", True), ([W, D], "unordered", True),
    ([W, D], "subset", True), ([W, D], "superset", True),
    # wrong order
    ([D, W], "strict", False), ([D, W], "unordered", True),
    ([D, W], "subset", True), ([D, W], "superset", True),
    # a call missing
    ([W], "strict", False), ([W], "unordered", False),
    ([W], "subset", True), ([W], "superset", False),
    ([], "strict", False), ([], "subset", True), ([], "superset", False),
    # an extra call
    ([W, D, B], "strict", False), ([W, D, B], "unordered", False),
    ([W, D, B], "subset", False), ([W, D, B], "superset", True),
    ([B, W, D], "superset", True), ([B, W, D], "subset", False),
    # a wrong tool in place of a right one
    ([W, B], "strict", False), ([W, B], "unordered", False),
    ([W, B], "subset", False), ([W, B], "superset", False),
    # the same call twice where once was expected (multiplicity counts)
    ([W, W, D], "unordered", False), ([W, W, D], "superset", True),
    ([W, W, D], "subset", False),
])
def test_modes(actual: list[dict[str, Any]], mode: str, ok: bool) -> None:
    assert match_trajectory(actual, [W, D], mode=mode).matched is ok


def test_expected_twice_needs_two_calls() -> None:
    assert not match_trajectory([W], [W, W], mode="superset")
    assert match_trajectory([W, W], [W, W], mode="unordered")
    assert match_trajectory([W], [W, W], mode="subset")


@pytest.mark.parametrize(("actual_args", "args", "ok"), [
    ({"city": "SF"}, "exact", True),
    ({"city": "San Francisco"}, "exact", False),
    ({"city": "SF", "units": "C"}, "exact", False),  # an extra argument
    ({}, "exact", False),  # a missing argument
    ({"city": "San Francisco"}, "ignore", True),
    ({"city": "SF", "units": "C"}, "superset", True),  # expected keys all there
    ({"units": "C"}, "superset", False),
    ({}, "subset", True),  # nothing beyond the expected arguments
    ({"city": "SF", "units": "C"}, "subset", False),
    ({"city": "sf"}, lambda a, e: a["city"].lower() == e["city"].lower(), True),
    ({"city": "LA"}, lambda a, e: a["city"].lower() == e["city"].lower(), False),
])
def test_argument_matching(actual_args: dict[str, Any], args: Any, ok: bool) -> None:
    actual = [{"name": "get_weather", "args": actual_args}]
    for mode in ("strict", "unordered", "superset"):
        assert match_trajectory(actual, [W], mode=mode, args=args).matched is ok


def test_json_string_and_dict_arguments_are_the_same() -> None:
    assert match_trajectory(openai(call("get_weather", city="SF")), [W])
    # number vs string is a real difference
    assert not match_trajectory([step("f", n=1)], [step("f", n="1")])
    # lists and tuples compare by their items
    assert match_trajectory([step("f", xs=(1, 2))], [{"name": "f",
                                                      "args": {"xs": [1, 2]}}])


def test_args_per_tool() -> None:
    actual = [step("search", query="cheap flights to Oslo"), step("book", id=7)]
    expected = [step("search", query="flights Oslo"), step("book", id=7)]
    assert not match_trajectory(actual, expected)
    assert match_trajectory(actual, expected, args_by_tool={"search": "ignore"})
    assert not match_trajectory([step("search", q="x"), step("book", id=8)], expected,
                                args_by_tool={"search": "ignore"})


def test_a_loose_matcher_cannot_steal_a_partner() -> None:
    """Unordered matching is a largest matching, not first come first served:
    the ignore-args call must not take the only partner of the exact one."""
    actual = [step("f", x=1), step("f", x=2)]
    expected = [step("f", x=9), step("f", x=1)]
    loose = lambda a, e: e["x"] == 9 or a == e  # noqa: E731
    assert match_trajectory(actual, expected, mode="unordered", args=loose)


# -------------------------------------------------------------------- shapes
class LCMessage(BaseModel):
    """LangChain's message fields (``type``, ``tool_calls`` with args)."""

    type: str
    content: Any = ""
    tool_calls: list[dict[str, Any]] = []
    tool_call_id: str | None = None


class DEToolCall(BaseModel):
    name: str
    input_parameters: dict[str, Any] | None = None
    output: Any = None


class DETurn(BaseModel):
    """DeepEval ``Turn``-like: role, content, tools_called."""

    role: str
    content: str
    tools_called: list[DEToolCall] | None = None


@dataclass
class DCStep:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    result: str | None = None


class AttrMessage:
    """No model_dump, no dataclass: documented attributes only."""

    def __init__(self, role: str, content: str, tool_calls: list[Any] | None = None):
        self.role, self.content, self.tool_calls = role, content, tool_calls

    def __repr__(self) -> str:  # never read
        raise AssertionError("repr() must not be used")


SHAPES: dict[str, Any] = {
    "openai dicts": openai(call("get_weather", city="SF"),
                           call("get_directions", destination="presidio")),
    "one message, two calls": [{"role": "assistant", "content": "", "tool_calls": [
        call("get_weather", city="SF"),
        call("get_directions", destination="presidio")]}],
    "langchain models": [
        LCMessage(type="human", content="Plan my trip"),
        LCMessage(type="ai", content="", tool_calls=[
            {"name": "get_weather", "args": {"city": "SF"}, "id": "a",
             "type": "tool_call"}]),
        LCMessage(type="tool", content="sunny", tool_call_id="a"),
        LCMessage(type="ai", content=[{"type": "text", "text": "Now directions"}],
                  tool_calls=[{"name": "get_directions", "id": "b",
                               "args": {"destination": "presidio"}}]),
    ],
    "deepeval turns": [
        DETurn(role="user", content="Plan my trip"),
        DETurn(role="assistant", content="On it", tools_called=[
            DEToolCall(name="get_weather", input_parameters={"city": "SF"},
                       output="sunny"),
            DEToolCall(name="get_directions",
                       input_parameters={"destination": "presidio"})]),
    ],
    "dataclass steps": [DCStep("get_weather", {"city": "SF"}, "sunny"),
                        DCStep("get_directions", {"destination": "presidio"})],
    "attribute objects": [AttrMessage("user", "Plan my trip"),
                          AttrMessage("assistant", "", [
                              call("get_weather", city="SF"),
                              call("get_directions", destination="presidio")])],
    "dict with messages": {"messages": [{"role": "assistant", "tool_calls": [
        call("get_weather", city="SF"), call("get_directions", destination="presidio")
    ]}]},
    "tool/arguments spelling": [{"tool": "get_weather", "arguments": '{"city": "SF"}'},
                                {"tool": "get_directions",
                                 "input": {"destination": "presidio"}}],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_reads_the_same_calls(shape: str) -> None:
    assert_trajectory(SHAPES[shape], [W, D])
    assert_trajectory([W, D], SHAPES[shape])  # either side


def test_tool_results_are_attached_by_id_then_in_order() -> None:
    msgs = [{"role": "assistant", "tool_calls": [call("a"), call("b")]},
            {"role": "tool", "tool_call_id": "id-b-0", "content": "B"},
            {"role": "tool", "content": "A"}]
    assert [(c.name, c.result) for c in read_steps(msgs)] == [("a", "A"), ("b", "B")]
    conv = read_conversation(msgs)
    assert [m.attached for m in conv] == [False, True, True]


def test_bad_json_arguments_from_the_agent_are_a_mismatch_not_an_error() -> None:
    bad = [{"role": "assistant", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": "{city: SF"}}]}]
    m = match_trajectory(bad, [W])
    assert not m and "{city: SF" in m.explain()


# ------------------------------------------------------------ failure message
def test_strict_failure_names_the_first_mismatch_side_by_side() -> None:
    with pytest.raises(TrajectoryMismatchError) as info:
        assert_trajectory(openai(call("get_weather", city="SF"),
                                 call("book_taxi", to="presidio")), [W, D])
    text = str(info.value)
    first = text.splitlines()[0]
    assert first.startswith("trajectory MISMATCH (mode strict, args exact): step 2:")
    assert 'expected get_directions({"destination": "presidio"})' in first
    assert 'got book_taxi({"to": "presidio"})' in first
    rows = text.splitlines()[1:]
    assert "expected" in rows[0] and "actual" in rows[0]
    assert rows[1].startswith("    1") and rows[2].startswith("  > 2")
    assert "get_directions" in rows[2] and "book_taxi" in rows[2]
    assert info.value.match.missing == (1,) and not info.value.match


@pytest.mark.parametrize(("actual", "needle"), [
    ([W], "step 2: expected get_directions"),
    ([W, D, B], "step 3: unexpected extra call book_taxi"),
    ([step("get_weather", city="LA"), D],
     'step 1: get_weather arguments differ (city: expected "SF", got "LA")'),
    ([step("get_weather"), D], 'city: expected "SF", got (absent)'),
])
def test_strict_reasons(actual: list[dict[str, Any]], needle: str) -> None:
    assert needle in match_trajectory(actual, [W, D]).explain()


@pytest.mark.parametrize(("mode", "actual", "needle"), [
    ("unordered", [D, B], "expected step 1 get_weather"),
    ("superset", [D], "expected step 1 get_weather"),
    ("superset", [step("get_weather", city="LA"), D],
     'closest: get_weather arguments differ (city: expected "SF", got "LA")'),
    ("subset", [W, B], 'actual step 2 book_taxi({"to": "presidio"}) was not '
     "expected"),
    ("unordered", [W, D, B], "actual step 3 book_taxi"),
])
def test_other_mode_reasons(mode: str, actual: list[dict[str, Any]],
                            needle: str) -> None:
    text = match_trajectory(actual, [W, D], mode=mode).explain()
    assert needle in text.splitlines()[0]
    assert "(# is expected~actual step number)" in text


def test_a_match_explains_itself_too() -> None:
    m = assert_trajectory([D, W], [W, D], mode="unordered")
    assert m.pairs == ((0, 1), (1, 0)) and m.reason is None
    assert m.explain().startswith("trajectory matches (mode unordered")


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("actual", "expected", "kw", "needle"), [
    (None, [W], {}, "the actual trajectory is None"),
    ([W], None, {}, "the expected trajectory is None"),
    ("get_weather", [W], {}, "is a str: pass a list of messages"),
    (42, [W], {}, "is a int: pass a list of messages or steps"),
    ([W], [{"args": {"city": "SF"}}], {}, "item 1 has no tool name"),
    ([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}], [W],
     {}, "tool call 1 has no tool name"),
    ([W], [{"name": "f", "args": "{not json"}], {}, "are not JSON"),
    ([W], [W], {"mode": "in_order"}, "mode='in_order': use one of strict"),
    ([W], [W], {"args": "fuzzy"}, "args='fuzzy': use one of exact, ignore"),
    ([W], [W], {"args_by_tool": {"get_weather": "loose"}},
     "args_by_tool['get_weather']='loose'"),
    ([object()], [W], {}, "item 1 is a object: pass a dict"),
    ([{"content": "hi", "tool_calls": []}], [W], {}, "item 1 has no tool name"),
])
def test_bad_input_is_a_config_error(actual: Any, expected: Any,
                                     kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        assert_trajectory(actual, expected, **kw)
    assert needle in str(info.value)
    assert info.value.__traceback__ is not None
    # As pytest shows it, the traceback ends at this test's line (the caller).
    shown = info.traceback.filter(info)
    assert [str(e.path) for e in shown if "pytest_llmjudge" in str(e.path)] == []


# ------------------------------------------------------- judged, readable form
def test_trajectory_reads_as_numbered_steps_not_json() -> None:
    text = Trajectory(SHAPES["dataclass steps"]).llmjudge_text()
    assert text.splitlines()[:5] == [
        "Agent trajectory (tool calls in order):", "Step 1:",
        "   tool: get_weather", '   arguments: {"city": "SF"}', "   result: sunny"]
    assert "DCStep(" not in text
    msgs = Trajectory(SHAPES["openai dicts"]).llmjudge_text()
    assert "[1] user: Plan my trip" in msgs
    assert 'calls get_weather({"city": "SF"})\n      -> ok' in msgs
    assert "tool result" not in msgs  # results shown under their calls
    with pytest.raises(ConfigError, match="is empty"):
        Trajectory([])


def test_the_judge_reads_wrapped_values_through_llmjudge_text() -> None:
    from unittest.mock import Mock

    from pytest_llmjudge.judging.task import as_text

    steps = SHAPES["dataclass steps"]
    assert as_text(Trajectory(steps), "the output") == \
        Trajectory(steps).llmjudge_text()
    with pytest.raises(ConfigError, match=r"llmjudge_text\(\) returned a Mock"):
        as_text(Mock(), "the output")
