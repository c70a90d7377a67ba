"""User mistakes: each is a clear error at the user's call, saying what to change."""

from __future__ import annotations

import json
import re

import pytest

from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    ScriptedJudge,
    ScriptedJudgeServer,
)

MISTAKES = '''
import sys
import pytest
from pydantic import BaseModel
from pytest_llmjudge import Criterion, Rubric, assert_judged

R = "Names Paris as the capital of France"

def test_00_plugin_load_imports_no_litellm():
    assert "litellm" not in sys.modules

class Answer(BaseModel):
    city: str
    country: str

def test_dict_is_judged_as_json():
    assert_judged({"capital": "Paris", "of": ["France"]}, R)

def test_pydantic_is_judged_as_json():
    assert_judged(Answer(city="Paris", country="France"), R)

def test_bytes():
    assert_judged(b"Paris", R)

def test_none():
    assert_judged(None, R)

def test_empty_rubric():
    assert_judged("Paris", "")

def test_empty_rubric_list():
    assert_judged("Paris", [])

def test_duplicate_names():
    assert_judged("Paris", Rubric([Criterion("city", "Names Paris"),
                                   Criterion("city", "Is polite")]))

def test_threshold():
    assert_judged("Paris", R, threshold=1.5)

@pytest.mark.llmjudge(min_sample=3)
def test_marker_typo():
    assert_judged("Paris", R)

def test_call_option_typo():
    assert_judged("Paris", R, temprature=0.5)

def test_unknown_model():
    assert_judged("Paris", R, model="gpt-nonexistent-judge")

def test_too_long():
    assert_judged("Paris " * 30, R, max_output_chars=100)

def test_context_window():
    assert_judged("CONTEXT-TOO-LONG Paris", R)

def test_names_differ_only_in_case():
    assert_judged("Paris", Rubric([Criterion("City", "Names Paris"),
                                   Criterion("city", "Is polite")]))

def test_repeated_criterion():
    assert_judged("Paris", [R, R])

def test_generated_by_not_a_name(judge):
    judge.check("Paris", R, generated_by=123)

def test_check_many_bad_item(judge):
    judge.check_many([("Paris", R), (b"Paris", R)])

async def _acheck(judge):
    return await judge.acheck("Paris", R, model="gpt-nonexistent-judge")

def test_acheck_unknown_model(judge):
    import asyncio
    asyncio.run(_acheck(judge))

def test_expect_unknown_model(judge):
    judge.expect("Paris", R, model="gpt-nonexistent-judge")
'''


class Judge:
    def __init__(self) -> None:
        self.inner = ScriptedJudge(rules={"paris": lambda o: "paris" in o.lower()})

    def __call__(self, req: JudgeRequest) -> object:
        if "CONTEXT-TOO-LONG" in req.output:
            return Fault("status", 400, message=(
                "This model's maximum context length is 8192 tokens. However, your "
                "messages resulted in 9000 tokens."))
        return self.inner(req)


#: test -> lines the error must show (fnmatch patterns, in order)
EXPECT = {
    "test_bytes": [">       assert_judged(b\"Paris\", R)",
                   "E       *JudgeInputError: the judged output is bytes: decode it "
                   "to text first, e.g. data.decode('utf-8')"],
    "test_none": [">       assert_judged(None, R)",
                  "E       *JudgeInputError: the judged output is None: pass the text "
                  "(str) to judge"],
    "test_empty_rubric": [">       assert_judged(\"Paris\", \"\")",
                          "E       *RubricError: the rubric is an empty string: "
                          "describe what the output must do"],
    "test_empty_rubric_list": ["E       *RubricError: the rubric is an empty list*"],
    "test_duplicate_names": ["E       *RubricError: two criteria are named 'city': "
                             "criterion names must be unique*"],
    "test_threshold": [">       assert_judged(\"Paris\", R, threshold=1.5)",
                       "E       *RubricError: threshold must be in [[]0, 1], got 1.5"],
    "test_marker_typo": ["test_mistakes.py::test_marker_typo: @pytest.mark.llmjudge: "
                         "unknown option 'min_sample' (did you mean 'min_samples'?); "
                         "allowed: model, *"],
    "test_call_option_typo": [">       assert_judged(\"Paris\", R, temprature=0.5)",
                              "E       *ConfigError: judge call: unknown option "
                              "'temprature' (did you mean 'temperature'?); allowed: *"],
    "test_unknown_model": [
        ">       assert_judged(\"Paris\", R, model=\"gpt-nonexistent-judge\")",
        "E       *ConfigError: judge model 'gpt-nonexistent-judge' is not a model "
        "litellm knows how to call: use a provider prefix*"],
    "test_too_long": [">       assert_judged(\"Paris \" * 30, R, max_output_chars=100)",
                      "E       *ConfigError: the judged output is 180 characters, over "
                      "max_output_chars=100: judge a shorter excerpt or raise "
                      "--llmjudge-max-output-chars"],
    "test_names_differ_only_in_case": [
        "E       *RubricError: two criteria are named 'City' and 'city': criterion "
        "names must be unique (ignoring case and spaces)*"],
    "test_repeated_criterion": [
        ">       assert_judged(\"Paris\", [R, R])",
        "E       *RubricError: the criterion 'Names Paris as the capital of France' is "
        "given twice: drop the repeat*"],
    "test_generated_by_not_a_name": [
        ">       judge.check(\"Paris\", R, generated_by=123)",
        "E       *ConfigError: generated_by must be the name of the model that wrote "
        "the output (a str, e.g. 'openai/gpt-4o'), not int"],
    "test_check_many_bad_item": [
        ">       judge.check_many([(\"Paris\", R), (b\"Paris\", R)])",
        "E       *JudgeInputError: check_many item 1: the judged output is bytes*"],
    "test_acheck_unknown_model": [
        "E       *ConfigError: judge model 'gpt-nonexistent-judge' is not a model "
        "litellm knows how to call*"],
    "test_expect_unknown_model": [
        # raised when the test body ends; the message names the expect() line
        "E   *ConfigError: expectation 1 at test_mistakes.py:77: judge model "
        "'gpt-nonexistent-judge' is not a model litellm knows how to call*"],
    "test_context_window": ["*judge error: judge call failed: the prompt is longer "
                            "than the judge model's context window: judge a shorter "
                            "excerpt (lower --llmjudge-max-output-chars) or use a "
                            "judge model with a longer context*"],
}


def _section(text: str, test: str) -> list[str]:
    m = re.search(rf"\n_{{3,}} (?:ERROR at \w+ of )?{test} _{{3,}}\n(.*?)"
                  rf"(?=\n_{{3,}} |\n-{{5,}} |\n={{5,}} )", text, re.DOTALL)
    assert m, f"no failure section for {test}"
    return m.group(1).splitlines()


@pytest.mark.subprocess("test_00_plugin_load_imports_no_litellm checks the run's own "
                        "process never imported litellm")
def test_user_mistakes(pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
                       judge_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    judge_server.policy = Judge()
    # test_00 checks what loading the plugin imports: without the background
    # import that a module importing assert_judged starts (issue #14).
    monkeypatch.setenv("LLMJUDGE_EAGER_IMPORT", "0")
    pytester.makepyfile(test_mistakes=MISTAKES)
    result = pytester.runpytest_subprocess(*judge_args, "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=15, errors=2)
    out = result.stdout.str()
    for test, patterns in EXPECT.items():
        sec = _section(out, test)
        pytest.LineMatcher(sec).fnmatch_lines(patterns)
        frames = [ln for ln in sec if re.match(r"^\S+\.py:\d+: ", ln)]
        if test in ("test_duplicate_names", "test_names_differ_only_in_case"):
            # raised by the user's own Rubric(...)
            assert frames[0].startswith("test_mistakes.py:")
        elif test not in ("test_context_window", "test_marker_typo",
                          "test_expect_unknown_model"):
            # The error points at the user's line, not at the plugin's insides.
            assert frames, test
            # (asyncio.run's own frames stand between the user's two lines there)
            assert all(f.startswith("test_mistakes.py:") or "/asyncio/" in f
                       for f in frames), frames
            assert not any("pytest_llmjudge" in f for f in frames), frames
    # A bad marker is reported once, without a traceback into the plugin's hook.
    marker = _section(out, "test_marker_typo")
    assert not any("plugin.py" in ln for ln in marker)
    assert sum("unknown option 'min_sample'" in ln for ln in marker) == 1
    # Dicts and pydantic models reached the judge as JSON, and nothing else did.
    outputs = [r.output for r in judge_server.requests]
    assert judge_server.calls == 6
    judged = sorted(json.dumps(json.loads(o), sort_keys=True) for o in outputs
                    if not o.startswith("CONTEXT"))
    assert judged == sorted(2 * ['{"capital": "Paris", "of": ["France"]}',
                                 '{"city": "Paris", "country": "France"}'])
