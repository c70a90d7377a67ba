"""The core feature set, end to end: real pytest runs judged over real HTTP.

Every test here starts a pytest subprocess (pytester) whose judge is the
scripted loopback server, reached through litellm; what the server counts is
what the user's run really asked.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from pytest_llmjudge.testing import JudgeRequest, ScriptedJudge, ScriptedJudgeServer

SUPPORT = '''
from pytest_llmjudge import assert_judged

def test_refund():
    assert_judged("Sorry! A refund is on its way.", "Apologises and offers a refund")

def test_rude():
    assert_judged("Go away, we never refund anything.",
                  "Apologises and offers a refund")
'''


def _sorry_judge() -> ScriptedJudge:
    return ScriptedJudge(rules={"apologises": lambda o: "sorry" in o.lower()})


class ByModel:
    """Answer with a different policy per judge model (as named in the request)."""

    def __init__(self, default: Any, **by_model: Any):
        self.default = default
        self.by_model = by_model

    def __call__(self, req: JudgeRequest) -> Any:
        name = str(req.body.get("model", "")).rsplit("/", 1)[-1].replace("-", "_")
        return self.by_model.get(name, self.default)(req)


# --------------------------------------------------------------------------- 1 + 2
def test_user_view_and_cache_modes(pytester: pytest.Pytester,
                                   judge_server: ScriptedJudgeServer,
                                   judge_args: list[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass and a fail as the user sees them, then on / off / refresh caching."""
    judge_server.policy = _sorry_judge()
    pytester.makepyfile(test_support=SUPPORT)

    first = pytester.runpytest(*judge_args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines([
        "*_ test_rude _*",
        "E       *JudgedAssertionError: judged: FAIL 0/1 criteria passed "
        "(confidence 0.9*)",
        "E         rubric: Apologises and offers a refund",
        "E         [[]FAIL[]] apologises_and_offers_a: votes 0 pass / 2 fail, "
        "confidence 0.9*",
        "E                judge: scripted: apologises_and_offers_a not met",
        "E         judge: openai/scripted-judge; 2 presentation(s), 2 call(s)",
        "E         output: Go away, we never refund anything.",
        "test_support.py:7: JudgedAssertionError",
        "*- llmjudge summary -*",
        "2 judged expectations: 1 pass, 1 fail",
        "confidence:",
        "*judge calls: 4 made, 0 served from cache/records, 0 screened*",
        "FAILED test_support.py::test_rude - *JudgedAssertio*",
    ])
    assert "test_refund" not in first.stdout.str().split("= FAILURES =")[1].split(
        "llmjudge summary")[0]  # the passing test shows no failure section
    # Nothing configured but the model: the default min_samples=2 -> 2 calls each.
    assert judge_server.calls == 4

    # The same tests again (and another API key: not part of the cache key).
    monkeypatch.setenv("LLMJUDGE_API_KEY", "sk-another-key-for-the-same-judge")
    again = pytester.runpytest(*judge_args)
    again.assert_outcomes(passed=1, failed=1)
    again.stdout.fnmatch_lines(["*judge: openai/scripted-judge; 2 presentation(s), "
                                "cache/records",
                                "*judge calls: 0 made, 4 served from cache/records*"])
    assert judge_server.calls == 4

    # The judge changes its mind: now everything passes. "refresh" asks again
    # and rewrites the cache, which a normal run then serves.
    judge_server.policy = ScriptedJudge()
    refresh = pytester.runpytest(*judge_args, "--llmjudge-cache=refresh")
    refresh.assert_outcomes(passed=2)
    assert judge_server.calls == 8
    after = pytester.runpytest(*judge_args)
    after.assert_outcomes(passed=2)
    assert judge_server.calls == 8

    # Back to the first judge: "off" asks again instead of serving the cache.
    judge_server.policy = _sorry_judge()
    off = pytester.runpytest(*judge_args, "--llmjudge-cache=off")
    off.assert_outcomes(passed=1, failed=1)
    assert judge_server.calls == 12


# --------------------------------------------------------------------------- 3 + 4
BIAS = '''
from pathlib import Path
from pytest_llmjudge import assert_judged

R = "Apologises to the customer"

def test_unbiased(judge):
    v = judge.check("Sorry for the trouble.", R)
    Path("unbiased.json").write_text(v.model_dump_json())

def test_biased(judge):
    v = judge.check("Sorry for the trouble.", R, model="openai/biased-judge")
    Path("biased.json").write_text(v.model_dump_json())

def test_biased_assert():
    assert_judged("We are so sorry about this.", R, model="openai/biased-judge")
'''


def test_position_bias_is_flaky_and_inconclusive(pytester: pytest.Pytester,
                                                 judge_server: ScriptedJudgeServer,
                                                 judge_args: list[str]) -> None:
    judge_server.policy = ByModel(_sorry_judge(),
                                  biased_judge=ScriptedJudge(position_bias="first"))
    pytester.makepyfile(test_bias=BIAS)
    result = pytester.runpytest(*judge_args, "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*test_bias.py::test_biased_assert INCONCLUSIVE*",
        "E       *JudgedAssertionError: judged: INCONCLUSIVE 0/1 criteria passed "
        "(confidence 0.50, flaky)",
        "E         [[]????[]] apologises_to_the_customer: votes 3 pass / 3 fail*",
        "E         flaky: position bias on 'apologises_to_the_customer': the verdict "
        "followed the presentation order (3 pass / 3 fail)",
        "E         judge: openai/biased-judge; 6 presentation(s), 6 call(s)",
    ])
    unbiased = json.loads((pytester.path / "unbiased.json").read_text())
    biased = json.loads((pytester.path / "biased.json").read_text())
    assert unbiased["outcome"] == "pass"
    assert not unbiased["flaky"]
    assert biased["outcome"] == "inconclusive"
    assert biased["passed"] is False
    assert biased["flaky"] is True
    assert "position bias" in biased["flaky_reason"]
    assert biased["confidence"] < unbiased["confidence"]
    assert unbiased["confidence"] >= 0.9 > biased["confidence"]
    # It kept asking up to max_samples (6), and every vote followed the order.
    assert biased["calls"] == 6
    assert [v["presentation"] for v in biased["votes"]] == list(range(6))
    assert [next(iter(v["verdicts"].values())) for v in biased["votes"]] == \
        ["pass", "fail"] * 3
    assert unbiased["calls"] == 2
    assert Counter(r.body["model"] for r in judge_server.requests) == {
        "scripted-judge": 2, "biased-judge": 12}


GARBAGE = '''
from pytest_llmjudge import Outcome, assert_judged

def test_unreadable_judge():
    assert_judged("Sorry for the trouble.", "Apologises to the customer")

def test_unreadable_judge_fixture(judge):
    v = judge.check("Sorry about that.", "Apologises to the customer")
    assert v.outcome is Outcome.JUDGE_ERROR
    assert not v.passed and v.criteria == []
    assert "not the expected JSON" in v.error
'''


def test_unparseable_reply_is_reasked_once_then_judge_error(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = lambda req: "Looks fine to me! Ten out of ten."
    pytester.makepyfile(test_garbage=GARBAGE)
    result = pytester.runpytest(*judge_args, "-v")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=1)  # an error, not a failure
    result.stdout.fnmatch_lines([
        "*test_garbage.py::test_unreadable_judge JUDGE ERROR*",
        "E       *JudgeOutcomeError: judged: JUDGE ERROR no verdict (confidence 0.00)",
        "E         judge error: the judge's reply is not the expected JSON*",
        "*llmjudge summary*",
        "2 judged expectations: 2 judge error",
    ])
    # Two presentations per judgment, each asked and re-asked exactly once.
    asks = Counter((r.user, r.reask) for r in judge_server.requests)
    assert judge_server.calls == 8
    assert len({user for user, _ in asks}) == 4
    assert set(asks.values()) == {1}
    assert sum(1 for r in judge_server.requests if r.reask) == 4


# --------------------------------------------------------------------------- 5
SIX = '''
import pytest
from pytest_llmjudge import assert_judged

R = "Apologises to the customer"

@pytest.mark.parametrize("i", range(4))
def test_pass(i):
    assert_judged(f"Sorry, case {i}.", R)

@pytest.mark.parametrize("i", range(2))
def test_fail(i):
    assert_judged(f"No, case {i}.", R)
'''

SIX_EXPECTED = {f"test_six.py::test_pass[{i}]": "pass" for i in range(4)} | {
    f"test_six.py::test_fail[{i}]": "fail" for i in range(2)}


def test_one_cache_shared_by_workers(pytester: pytest.Pytester,
                                     judge_server: ScriptedJudgeServer,
                                     judge_args: list[str],
                                     plugin_args: list[str]) -> None:
    judge_server.policy = _sorry_judge()
    pytester.makepyfile(test_six=SIX)
    outcomes = []
    for run in (1, 2):
        # Run 1 writes from both workers at once; run 2 (in one process: the
        # same read path, a litellm import cheaper, issue #14) finds all of it.
        extra = plugin_args if run == 1 else []
        result = pytester.runpytest(*judge_args, *extra,
                                    f"--llmjudge-report=run{run}.json")
        result.assert_outcomes(passed=4, failed=2)
        if extra:
            result.stdout.fnmatch_lines(["created: 2/2 workers"])
        doc = json.loads((pytester.path / f"run{run}.json").read_text())
        outcomes.append({v["nodeid"]: v["outcome"] for v in doc["verdicts"]})
        if run == 1:
            assert judge_server.calls == 12
            assert not any(v["cached"] for v in doc["verdicts"])
        else:
            assert judge_server.calls == 12  # the second run asked nothing
            assert all(v["cached"] and v["calls"] == 0 for v in doc["verdicts"])
    # The same verdicts with or without xdist (both params check this table).
    assert outcomes[0] == outcomes[1] == SIX_EXPECTED


# --------------------------------------------------------------------------- 6
PROBE = '''
import sys
from pathlib import Path

def pytest_unconfigure(config):
    Path("litellm_loaded.txt").write_text(str("litellm" in sys.modules))
'''

PLAIN = '''
def test_arithmetic():
    assert 1 + 1 == 2

def test_text():
    assert "judge".upper() == "JUDGE"
'''

JUDGED = '''
from pytest_llmjudge import Criterion, Rubric, Scale, assert_judged

R = Rubric([Criterion("apology", "Apologises to the customer")])
S = Scale("How polite", {1: "Rude", 2: "Polite"}, pass_level=2)

def test_judged():
    assert_judged("Sorry for the trouble.", R)
'''


@pytest.mark.subprocess("whether this process imports litellm is what is tested")
def test_judging_nothing_never_imports_litellm(pytester: pytest.Pytester,
                                               judge_server: ScriptedJudgeServer,
                                               judge_args: list[str]) -> None:
    pytester.makeconftest(PROBE)
    pytester.makepyfile(test_plain=PLAIN, test_judged=JUDGED)
    probe = pytester.path / "litellm_loaded.txt"

    plain = pytester.runpytest_subprocess(*judge_args, "test_plain.py")
    plain.assert_outcomes(passed=2)
    assert probe.read_text() == "False"

    probe.unlink()
    collected = pytester.runpytest_subprocess(*judge_args, "--collect-only", "-q")
    assert collected.ret == pytest.ExitCode.OK
    collected.stdout.fnmatch_lines(["test_judged.py::test_judged",
                                    "3 tests collected*"])
    assert probe.read_text() == "False"

    probe.unlink()  # the positive control: a run that judges does import it
    judged = pytester.runpytest_subprocess(*judge_args)
    judged.assert_outcomes(passed=3)
    assert probe.read_text() == "True"
    assert judge_server.calls == 2


# --------------------------------------------------------------------------- 7
PRECEDENCE = '''
import pytest
from pytest_llmjudge import assert_judged

R = "Apologises to the customer"

@pytest.mark.llmjudge(min_samples=6, temperature=0.4)
def test_call(judge):
    v = judge.check("Sorry [call]", R, min_samples=7, temperature=0.5)
    assert len(v.votes) == 7

@pytest.mark.llmjudge(min_samples=6, temperature=0.4)
def test_assert_call():
    v = assert_judged("Sorry [assert-call]", R, min_samples=7, temperature=0.5)
    assert len(v.votes) == 7

@pytest.mark.llmjudge(min_samples=6, temperature=0.4)
def test_marker(judge):
    assert len(judge.check("Sorry [marker]", R).votes) == 6

def test_unmarked(judge):
    assert len(judge.check("Sorry [unmarked]", R).votes) == 5

@pytest.mark.llmjudge(min_sample=3)
def test_marker_typo():
    assert_judged("Sorry [typo]", R)
'''


def test_settings_precedence(pytester: pytest.Pytester,
                             judge_server: ScriptedJudgeServer, judge_args: list[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """call > marker > CLI > ini > env > default, seen in what the judge is sent.

    min_samples is set at every level (calls per judgment), temperature at all
    but the command line (the request's temperature), logprobs only in the
    environment (the request asks for none). The default (min_samples=2) is
    what test_user_view_and_cache_modes sees.
    """
    judge_server.policy = _sorry_judge()
    monkeypatch.setenv("LLMJUDGE_MIN_SAMPLES", "3")
    monkeypatch.setenv("LLMJUDGE_TEMPERATURE", "0.1")
    monkeypatch.setenv("LLMJUDGE_LOGPROBS", "false")
    pytester.makeini("[pytest]\nllmjudge_min_samples = 4\nllmjudge_temperature = 0.2\n"
                     "llmjudge_max_samples = 10\n")
    pytester.makepyfile(test_precedence=PRECEDENCE)
    result = pytester.runpytest(*judge_args, "--llmjudge-min-samples=5")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines([
        "*test_marker_typo: @pytest.mark.llmjudge: unknown option 'min_sample' "
        "(did you mean 'min_samples'?); allowed: model, *"])
    seen: dict[str, tuple[int, set[Any]]] = {}
    for tag in ("[call]", "[assert-call]", "[marker]", "[unmarked]", "[typo]"):
        reqs = [r for r in judge_server.requests if tag in r.output]
        seen[tag] = (len(reqs), {r.body.get("temperature") for r in reqs})
    assert seen == {"[call]": (7, {0.5}), "[assert-call]": (7, {0.5}),
                    "[marker]": (6, {0.4}), "[unmarked]": (5, {0.2}),
                    "[typo]": (0, set())}
    assert not any(r.body.get("logprobs") for r in judge_server.requests)


def test_no_model_says_how_to_set_one(pytester: pytest.Pytester,
                                      judge_server: ScriptedJudgeServer) -> None:
    pytester.makepyfile(test_nomodel='''
from pytest_llmjudge import assert_judged

def test_needs_a_judge():
    assert_judged("Sorry for the trouble.", "Apologises to the customer")
''')
    result = pytester.runpytest(
        f"--llmjudge-api-base={judge_server.base_url}", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)  # a setup problem: nothing was judged
    result.stdout.fnmatch_lines([
        ">       assert_judged(*",
        "E       *JudgeNotConfiguredError: no judge model is configured. Set one with "
        "--llmjudge-model=NAME, llmjudge_model = NAME under "
        "[[]tool.pytest.ini_options[]], "
        "the LLMJUDGE_MODEL environment variable*"])
    assert judge_server.calls == 0


@pytest.mark.parametrize(("where", "expected"), [
    ("cli", "*argument --llmjudge-cache: 'sometimes' must be one of on, off, refresh*"),
    ("ini", "ERROR: pytest-llmjudge: ini option llmjudge_inconclusive*'maybe' must be "
            "one of fail, xfail, skip, warn"),
    ("env", "ERROR: pytest-llmjudge: environment variable LLMJUDGE_THRESHOLD*'1.5' "
            "must be in [[]0.0, 1.0[]]"),
], ids=["cli", "ini", "env"])
def test_bad_setting_is_a_usage_error(pytester: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch, where: str,
                                      expected: str) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    args = ["-p", "no:cacheprovider"]
    if where == "cli":
        args.append("--llmjudge-cache=sometimes")
    elif where == "ini":
        pytester.makeini("[pytest]\nllmjudge_inconclusive = maybe\n")
    else:
        monkeypatch.setenv("LLMJUDGE_THRESHOLD", "1.5")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


# --------------------------------------------------------------------------- 8 + 9
RUBRIC_YAML = """\
name: support reply
threshold: 0.5
criteria:
  - name: apology
    description: Apologises for the delay
  - name: refund
    description: Offers a refund
    required: false
    weight: 2
  - name: discount
    description: Offers a discount
    required: false
"""

SCALE_JSON = json.dumps({"name": "thoroughness", "scale": {
    "criterion": "How thorough the answer is",
    "levels": {"1": "Off topic", "2": "Thin", "3": "Adequate", "4": "Thorough",
               "5": "Exhaustive"},
    "pass_level": 4}})

FORMS = '''
import asyncio
from pathlib import Path

import pytest
from pytest_llmjudge import (Criterion, JudgedAssertionError, Outcome, Rubric, Scale,
                             Verdict, assert_judged, load_rubric)

HERE = Path(__file__).parent
GOOD = "Sorry for the delay: a refund is on its way."
BAD = "Your order is late."
APOLOGY = "Apologises for the delay"


def test_string_rubric_and_verdict_fields(judge):
    v = judge.check(GOOD, APOLOGY)
    assert isinstance(v, Verdict)
    assert v.passed and bool(v) and v.outcome is Outcome.PASS and v.kind == "criteria"
    assert v.score == 1.0 and 0.9 <= v.confidence <= 1.0
    (c,) = v.criteria
    assert (c.passed, c.pass_votes, c.fail_votes) == (True, 2, 0)
    assert 0.0 <= c.confidence <= 1.0
    assert c.reasoning == f"scripted: {c.name} met"
    assert [x.presentation for x in v.votes] == [0, 1]
    assert v.votes[0].order != v.votes[1].order
    assert all(x.verdicts == {c.name: "pass"} and not x.cached for x in v.votes)
    assert v.flaky is False and v.flaky_reason is None
    assert (v.calls, v.cache_hits, v.cached) == (2, 0, False)
    assert v.prompt_tokens == 200 and v.completion_tokens > 0
    assert v.tokens == v.prompt_tokens + v.completion_tokens
    assert v.cost is None  # litellm knows no price for this model
    assert v.model == "openai/scripted-judge" and v.excerpt == GOOD
    again = judge.check(GOOD, APOLOGY)
    assert (again.cached, again.calls, again.cache_hits) == (True, 0, 2)
    assert again.outcome is Outcome.PASS and again.tokens == 0  # nothing spent


def test_check_never_raises_on_fail(judge):
    v = judge.check(BAD, APOLOGY)
    assert not v.passed and v.outcome is Outcome.FAIL and v.score == 0.0
    assert v.confidence >= 0.9
    assert v.criteria[0].passed is False
    assert v.criteria[0].reasoning.endswith("not met")


def test_assert_judged_raises_with_the_verdict():
    with pytest.raises(JudgedAssertionError) as info:
        assert_judged(BAD, APOLOGY)
    assert isinstance(info.value, AssertionError)
    assert info.value.verdict.outcome is Outcome.FAIL
    assert assert_judged(GOOD, APOLOGY).passed  # returns the verdict on a pass


def test_list_of_strings(judge):
    v = judge.check("Sorry for the delay.", [APOLOGY, "Offers a refund"])
    assert [c.description for c in v.criteria] == [APOLOGY, "Offers a refund"]
    assert [c.passed for c in v.criteria] == [True, False]
    assert all(c.required for c in v.criteria)
    assert v.outcome is Outcome.FAIL and v.score == 0.5
    # presentation 1 shows the criteria in reverse order
    assert v.votes[0].order.startswith("criteria as given")
    assert v.votes[1].order.startswith("criteria reversed")


RUBRIC = Rubric([Criterion("apology", APOLOGY),
                 Criterion("refund", "Offers a refund", required=False, weight=1),
                 Criterion("discount", "Offers a discount", required=False, weight=3)],
                threshold=0.2)


def test_rubric_required_optional_threshold(judge):
    v = judge.check(GOOD, RUBRIC)  # optional share 1/4 >= 0.2
    assert v.passed and v.score == pytest.approx(2 / 5)
    assert {c.name: (c.required, c.passed) for c in v.criteria} == {
        "apology": (True, True), "refund": (False, True), "discount": (False, False)}
    strict = judge.check(GOOD, RUBRIC, threshold=0.5)  # the call beats the rubric
    assert strict.outcome is Outcome.FAIL and strict.score == pytest.approx(2 / 5)
    assert strict.cached  # a pass rule is not part of what the judge is asked
    rude = judge.check("A refund and a discount are on their way.", RUBRIC)
    assert rude.outcome is Outcome.FAIL  # a required criterion fails on its own
    assert rude.score == pytest.approx(4 / 5)


SCALE = Scale("How thorough the answer is",
              {1: "Off topic", 2: "Thin", 3: "Adequate", 4: "Thorough",
               5: "Exhaustive"},
              pass_level=4)


def test_scale(judge):
    top = judge.check("A thorough answer with every step.", SCALE)
    assert top.kind == "scale" and top.passed and top.outcome is Outcome.PASS
    assert top.level == 5.0 and top.score == 1.0
    assert top.criteria[0].reasoning == "scripted level"
    assert [x.level for x in top.votes] == [5, 5]
    assert [x.order for x in top.votes] == ["levels ascending", "levels descending"]
    low = judge.check("A short answer.", SCALE)
    assert low.outcome is Outcome.FAIL and low.level == 2.0 and low.score == 0.25


def test_rubric_files(judge):
    yaml_path = HERE / "support_reply.yaml"
    loaded = load_rubric(yaml_path)
    assert loaded == Rubric([Criterion("apology", APOLOGY),
                             Criterion("refund", "Offers a refund", required=False,
                                       weight=2),
                             Criterion("discount", "Offers a discount",
                                       required=False)],
                            threshold=0.5, name="support reply")
    v = judge.check(GOOD, yaml_path)  # a Path is loaded: optional share 2/3
    assert v.passed and v.rubric == "support reply" and len(v.criteria) == 3
    assert not judge.check("Sorry for the delay.", yaml_path).passed  # 0/3

    json_path = HERE / "thoroughness.json"
    assert load_rubric(json_path) == Scale(
        "How thorough the answer is", {1: "Off topic", 2: "Thin", 3: "Adequate",
                                       4: "Thorough", 5: "Exhaustive"},
        pass_level=4, name="thoroughness")
    s = judge.check("A thorough answer.", json_path)
    assert s.kind == "scale" and s.passed and s.level == 5.0
    assert assert_judged("A thorough answer.", str(json_path)).kind == "scale"


@pytest.mark.asyncio
async def test_async_acheck(judge):
    v = await judge.acheck("Sorry, async.", APOLOGY)
    assert isinstance(v, Verdict) and v.passed
    bad = await judge.acheck("No, async.", APOLOGY)  # never raises on a fail
    assert bad.outcome is Outcome.FAIL
    both = await asyncio.gather(judge.acheck("Sorry, one.", APOLOGY),
                                judge.acheck("Nope, two.", APOLOGY))
    assert [x.passed for x in both] == [True, False]
'''


def test_rubric_forms_verdict_fields_and_fixture(pytester: pytest.Pytester,
                                                 judge_server: ScriptedJudgeServer,
                                                 judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(
        rules={"apologises": lambda o: "sorry" in o.lower(),
               "refund": lambda o: "refund" in o.lower(),
               "discount": lambda o: "discount" in o.lower()},
        levels=lambda o: 5 if "thorough" in o.lower() else 2)
    pytester.makefile(".yaml", support_reply=RUBRIC_YAML)
    pytester.makefile(".json", thoroughness=SCALE_JSON)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_forms=FORMS)
    # -W: an async test that did not really run would warn; make that an error.
    result = pytester.runpytest(*judge_args,
                                "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=8)
    # 14 distinct judgments, two presentations each; the five repeats (same
    # output and rubric: again, strict, two assert_judged, the str path) were
    # served from the cache.
    assert judge_server.calls == 2 * 14


HYGIENE = '''
import os

def test_hygiene(judge):
    v = judge.check("Sorry! A refund is on its way.", "Apologises to the customer",
                    model="openai/gpt-4o-mini")
    assert v.passed, v
    print("COSTMAP", os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"))
    print("DOTENV", os.environ.get("LLMJUDGE_DOTENV_PROBE"))
    print("COST", v.cost is not None and v.cost > 0, "CALLS", v.calls)
'''


class NoResponseFormat:
    """A provider that refuses structured output (400), as some do."""

    def __init__(self) -> None:
        self.inner = ScriptedJudge()

    def __call__(self, req: JudgeRequest) -> Any:
        from pytest_llmjudge.testing import Fault

        if "response_format" in req.body:
            return Fault("status", 400, message="response_format json_schema is not "
                         "supported by this model")
        return self.inner(req)


@pytest.mark.subprocess("litellm's import-time environment (.env, cost map) is what "
                        "is tested")
def test_litellm_hygiene_cost_and_plain_text_fallback(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin itself sets the local cost map (no network at import), never
    loads a .env into the test process, reports cost where litellm knows the
    price, and asks again in plain text when the provider refuses
    response_format (each refused request counted as a call)."""
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    judge_server.policy = NoResponseFormat()
    (pytester.path / ".env").write_text("LLMJUDGE_DOTENV_PROBE=loaded\n")
    pytester.makepyfile(test_hygiene=HYGIENE)
    result = pytester.runpytest_subprocess(
        f"--llmjudge-api-base={judge_server.base_url}", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*COSTMAP True", "DOTENV None", "COST True CALLS *"])
    # Every request sent is a call: json_schema refused, then json_object
    # refused (once or by both presentations), then plain text (#15).
    calls = next(int(line.rsplit(" ", 1)[1]) for line in result.stdout.lines
                 if line.startswith("COST True CALLS "))
    sent = ["response_format" in r.body for r in judge_server.requests]
    assert calls == len(sent)
    assert sent.count(False) == 2 and sent.count(True) in (3, 4), sent
