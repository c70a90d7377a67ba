"""Issue #12 item 5: pydantic models and dataclasses, also nested inside dicts
and lists, reach the judge as JSON of their fields, never as ``repr()``."""

from __future__ import annotations

import json

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

SHAPES = '''
from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from pytest_llmjudge import assert_judged


@dataclass
class Turn:
    role: str
    content: str


class Message(BaseModel):
    role: str
    content: str


@dataclass
class Wrapped:
    turns: list
    meta: dict


CASES = {
    "dataclass_list": [Turn("user", "Where is my order?"), Turn("assistant", "Sorry!")],
    "model_in_dict": {"reply": Message(role="assistant", content="Sorry!")},
    "dataclass": Turn("assistant", "Sorry!"),
    "nested_both": Wrapped([Message(role="assistant", content="Sorry!")],
                           {"last": Turn("assistant", "Sorry!")}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape(name):
    assert_judged(CASES[name], "Apologises to the customer")


def test_bytes_inside_a_dataclass_is_refused():
    with pytest.raises(Exception, match="bytes"):
        assert_judged([Turn("assistant", b"Sorry")], "Apologises")
'''


def test_models_and_dataclasses_are_judged_as_json(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(rules={"apologises": lambda o: "Sorry" in o})
    pytester.makepyfile(test_shapes=SHAPES)
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=5)
    outputs = {r.output for r in judge_server.requests}
    assert len(outputs) == 4
    for text in outputs:
        assert "Turn(" not in text and "Message(" not in text and "role=" not in text
        assert '"role": "assistant"' in text
        json.loads(text)  # the judge was shown JSON
