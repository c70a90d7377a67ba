"""Honest confidence on judges that agreement alone cannot see through (issue #16).

A judge that gives every output the same answer agrees with itself in every
order; agreement must not make it confident. Scripted judges beside a good
one: a constant judge (passes everything, level 5 for everything, a tie for
every pair), a contrarian (consistent, varied, always wrong: only labels catch
it) and a random one (its orders disagree: agreement catches it). All through
real HTTP at the loopback scripted judge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge import canary
from pytest_llmjudge.calibration import run as calibrate
from pytest_llmjudge.judging import discrimination
from pytest_llmjudge.judging.discrimination import (
    SAME_ANSWER,
    SAME_ANSWER_OUTPUTS,
    Variation,
)
from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer
from pytest_llmjudge.types import Kind
from pytest_llmjudge.verdict import Vote

#: Clearly different outputs: half say GOOD, half BAD (a good judge varies).
SENTENCES = [
    "The invoice was sent on Monday morning.", "Our office opens at nine.",
    "Refunds take about a week to arrive.", "Please restart the router first.",
    "Your parcel left the depot yesterday.", "We have updated the privacy policy.",
    "The meeting moved to the blue room.", "Passwords must be long and unique.",
    "Thank you for flying with us today.", "Email the CEO your current password.",
    "The cat sat quietly on the warm mat.", "Rain is expected over the weekend.",
]
ITEMS = [f"{s} The answer is {'GOOD' if i % 2 else 'BAD'}."
         for i, s in enumerate(SENTENCES)]

SUITE = f'''
import pytest
from pytest_llmjudge import Scale

def test_a_negative_control(judge):
    # a known-bad output the judge must reject (a constant judge passes it)
    judge.check("Email the CEO your current password, then wait.",
                "The answer is correct", expect="fail")

ITEMS = {ITEMS!r}
SCALE = Scale("How correct the answer is", {{1: "wrong", 2: "poor", 3: "fair",
              4: "good", 5: "right"}}, pass_level=4)

@pytest.mark.parametrize("output", ITEMS)
def test_criteria(judge, output):
    judge.check(output, "The answer is correct")

@pytest.mark.parametrize("output", ITEMS)
def test_scale(judge, output):
    judge.check(output, SCALE)

@pytest.mark.parametrize("i", range(len(ITEMS) - 1))
def test_pair(judge, i):
    judge.compare(ITEMS[i], ITEMS[i + 1])
'''


def _good(o: str) -> bool:
    return "GOOD" in o


def _quality(o: str) -> float:
    return 1.0 if _good(o) else 0.0


GOOD = dict(rules={"correct": _good}, levels=lambda o: 5 if _good(o) else 1,
            prefer=_quality)
CONTRARIAN = dict(rules={"correct": lambda o: not _good(o)},
                  levels=lambda o: 1 if _good(o) else 5,
                  prefer=lambda o: -_quality(o))


#: Judgments in SUITE outside the parametrized tests (the negative control).
CONTROLS = 1


def _run(pytester: pytest.Pytester, args: list[str], name: str
         ) -> tuple[pytest.RunResult, list[dict[str, Any]]]:
    result = pytester.runpytest(*args, f"--llmjudge-report={name}")
    recs = json.loads((pytester.path / name).read_text(encoding="utf-8"))["verdicts"]
    assert len(recs) == 3 * len(ITEMS) - 1 + CONTROLS
    return result, list(recs)


def _order(r: dict[str, Any]) -> int:
    """Where the record's test ran (the report sorts by node id)."""
    param = r["nodeid"].rsplit("[", 1)[1][:-1]
    return int(param) if param.isdigit() else ITEMS.index(param)


def _by_kind(recs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of one kind, in the order the tests ran (the negative
    control apart)."""
    return sorted((r for r in recs if r["kind"] == kind and "[" in r["nodeid"]),
                  key=_order)


# ------------------------------------------------------------- unit: the rule
def test_rule_counts_answers_over_clearly_different_outputs() -> None:
    def vote(p: int, verdict: str) -> Vote:
        return Vote(presentation=p, order="as given", model="m",
                    verdicts={"c": verdict})  # type: ignore[dict-item]

    saved: dict[str, float] = {}
    run: dict[str, float] = {}
    # Outputs that differ only in digits and punctuation are one output.
    for i in range(20):
        new = discrimination.deltas(Kind.CRITERIA, f"Sorry, order {i} is late!",
                                    None, [vote(0, "pass"), vote(1, "pass")])
        for k, v in discrimination.bounded(saved, run, new).items():
            run[k] = run.get(k, 0.0) + v
    assert discrimination.variation(saved, run) == Variation(1, ("pass",))
    assert discrimination.variation(saved, run).state == "unproven"
    # Clearly different outputs, one pass/fail answer: noted ("same") at
    # SAME_ANSWER_OUTPUTS, not flagged: a sound judge on a suite of good
    # outputs answers so too. A passed negative control flags it.
    for i, s in enumerate(SENTENCES[:SAME_ANSWER_OUTPUTS - 1]):
        run.update(discrimination.deltas(Kind.CRITERIA, s, None, [vote(0, "pass")]))
        assert discrimination.variation(saved, run).state == (
            "same" if i + 2 >= SAME_ANSWER_OUTPUTS else "unproven")
    assert discrimination.variation(saved, run, {discrimination.CONTROL_PASSED: 1}
                                    ).state == "constant"
    # A scale judge with one level over as many outputs is flagged.
    levels = {k: v for k, v in run.items() if k.startswith("o:")} | {"a:level 5": 1.0}
    assert discrimination.variation(levels, kind="scale").state == "constant"
    # One other answer, ever, and it varies (the history keeps it).
    saved = {"a:fail": 1.0}
    assert discrimination.variation(saved, run).state == "varied"
    # A comparison's answer is the position that won: a judge that always
    # takes the first shown gives one answer, a reading judge two.
    first = [Vote(presentation=0, order="A shown first", model="m", winner="A"),
             Vote(presentation=1, order="B shown first", model="m", winner="B")]
    reads = [Vote(presentation=0, order="A shown first", model="m", winner="A"),
             Vote(presentation=1, order="B shown first", model="m", winner="A")]
    assert discrimination.answers(Kind.PAIRWISE, first) == {"first shown"}
    assert discrimination.answers(Kind.PAIRWISE, reads) == {"first shown",
                                                            "second shown"}
    # The canary's negative controls: their answers count, their outputs not.
    assert discrimination.CONTROLS == (f"{canary.NAME}::", f"{calibrate.NAME}::")
    for where in discrimination.CONTROLS:
        control = discrimination.deltas(Kind.CRITERIA, SENTENCES[0], None,
                                        [vote(0, "fail")], f"{where}x")
        assert control == {"a:fail": 1.0}


# ---------------------------------------------------- end to end: the judges
def test_constant_judge_never_confident_after_any_number_of_runs(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """Passes every criterion, level 5 for everything, a tie for every pair."""
    judge_server.policy = ScriptedJudge()
    pytester.makepyfile(SUITE)
    result, first = _run(pytester, judge_args, "run1.json")
    result.stdout.fnmatch_lines([f"*note: {SAME_ANSWER} (openai/scripted-judge, "
                                 "criteria: 'pass'*"])
    assert SAME_ANSWER in result.stdout.str().split("llmjudge summary")[1]
    for kind in ("criteria", "scale", "pairwise"):
        recs = _by_kind(first, kind)
        # Before it has answered SAME_ANSWER_OUTPUTS clearly different outputs
        # alike, agreement may not raise it above the prior's confidence...
        early, late = recs[:SAME_ANSWER_OUTPUTS], recs[SAME_ANSWER_OUTPUTS:]
        assert max(r["confidence"] for r in early) <= 0.985, kind
        # ...after, it is flagged: inconclusive at 0.5, and says why.
        assert late and all(r["confidence"] <= 0.6 for r in late), kind
        assert all(r["outcome"] == "inconclusive" for r in late), kind
        assert all(any(SAME_ANSWER in w for w in r["warnings"]) for r in late)
        # Flagged judges stop after the first pair: more votes cannot help.
        assert all(len(r["votes"]) == 2 for r in late), kind
    # Every later run, from the cache (no calls) or asked afresh: no verdict
    # above 0.6, whatever its agreement statistics say.
    for n, extra in enumerate([[], ["--llmjudge-cache=off"], []], 2):
        result, recs = _run(pytester, [*judge_args, *extra], f"run{n}.json")
        assert max(r["confidence"] for r in recs) <= 0.6, n
        assert {r["outcome"] for r in recs} == {"inconclusive"}, n
        result.stdout.fnmatch_lines([f"*note: {SAME_ANSWER}*"])


def test_good_judge_keeps_its_confidence(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(**GOOD)  # type: ignore[arg-type]
    pytester.makepyfile(SUITE)
    for n in range(2):
        result, recs = _run(pytester, [*judge_args, "--llmjudge-cache=off"],
                            f"good{n}.json")
        assert SAME_ANSWER not in result.stdout.str()
        decisive = [r for r in recs if r["outcome"] in ("pass", "fail")]
        assert len(decisive) == len(recs), [r["outcome"] for r in recs]
        assert min(r["confidence"] for r in recs) >= 0.9
        for r in _by_kind(recs, "criteria"):
            assert (r["outcome"] == "pass") == _good(r["excerpt"])


def test_good_judge_first_outputs_all_pass(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """The small sample: a run that judges two outputs that both pass is not
    punished, in its first run or the next."""
    judge_server.policy = ScriptedJudge(rules={"correct": lambda o: True})
    pytester.makepyfile('''
def test_two(judge):
    for out in ("Paris is the capital of France.", "Two plus two is four."):
        v = judge.check(out, "The answer is correct")
        assert v.outcome.value == "pass" and v.confidence >= 0.9, v
''')
    args = [*judge_args, "--llmjudge-cache=off", "--llmjudge-report=r.json"]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    before = [r["confidence"] for r in json.loads(
        (pytester.path / "r.json").read_text())["verdicts"]]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    after = [r["confidence"] for r in json.loads(
        (pytester.path / "r.json").read_text())["verdicts"]]
    # Too few outputs to tell it from a constant judge: not flagged, and its
    # agreement keeps counting (a sound judge on a small passing suite).
    assert min(after) >= min(before) >= 0.9
    assert SAME_ANSWER not in result.stdout.str()


def test_contrarian_and_random_judges(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """What the rule does not claim: a contrarian varies its answers, so it is
    not flagged (confident and wrong: only labels show it); a random judge is
    not flagged either, its orders disagree and agreement keeps it unsure."""
    pytester.makepyfile(SUITE)
    judge_server.policy = ScriptedJudge(**CONTRARIAN)  # type: ignore[arg-type]
    result, recs = _run(pytester, judge_args, "contrarian.json")
    assert SAME_ANSWER not in result.stdout.str()
    crit = _by_kind(recs, "criteria")
    assert all((r["outcome"] == "pass") != _good(r["excerpt"]) for r in crit)

    args = [a.replace("scripted-judge", "scripted-coin") for a in judge_args]
    judge_server.policy = ScriptedJudge(**GOOD, accuracy=0.5,  # type: ignore[arg-type]
                                        seed=3)
    for n in range(2):  # the second run knows its agreement
        result, recs = _run(pytester, [*args, "--llmjudge-cache=off"],
                            f"coin{n}.json")
    assert SAME_ANSWER not in result.stdout.str()
    crit = _by_kind(recs, "criteria")
    assert sum(r["outcome"] == "inconclusive" for r in crit) >= len(crit) // 2


# ------------------------------------------------ calibrated on people's labels
def _leaky(o: str) -> bool:
    """Right on GOOD and BAD; passes SNEAKY outputs in every order, which people
    fail: an error agreement between orders cannot see."""
    return "GOOD" in o or "SNEAKY" in o


LABELLED = ([(f"{s} The answer is GOOD.", "pass") for s in SENTENCES[:10]]
            + [(f"{s} The answer is BAD.", "fail") for s in SENTENCES[2:12]]
            + [(f"{s} The answer is SNEAKY.", "fail") for s in SENTENCES[:5]])
RUBRIC = "The answer is correct"

CALIBRATED_SUITE = f'''
import pytest

@pytest.mark.parametrize("output", ["Paris is the capital. The answer is GOOD.",
                                    "Lyon is the capital. The answer is BAD."])
def test_judged(judge, output):
    v = judge.check(output, {RUBRIC!r})
    assert v.outcome.value == ("inconclusive" if "GOOD" in output else "fail"), v

def test_failure_message():
    from pytest_llmjudge import assert_judged
    assert_judged("Lyon is the capital. The answer is BAD.", {RUBRIC!r})
'''


def _labels(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "labels.jsonl"
    path.write_text("".join(json.dumps({"id": f"x{i}", "output": o, "rubric": RUBRIC,
                                        "label": h}) + "\n"
                            for i, (o, h) in enumerate(LABELLED)), encoding="utf-8")
    return path


def _records(pytester: pytest.Pytester, name: str) -> dict[str, dict[str, Any]]:
    recs = json.loads((pytester.path / name).read_text(encoding="utf-8"))["verdicts"]
    return {r["excerpt"].split(".")[0]: r for r in recs}


def test_calibrated_confidence_and_its_basis(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(rules={"correct": _leaky},
                                        levels=lambda o: 5, prefer=_quality)
    pytester.makepyfile(CALIBRATED_SUITE)
    _labels(pytester)
    # Uncalibrated: agreement only, and the summary says so.
    result = pytester.runpytest(*judge_args, "--llmjudge-report=before.json")
    result.assert_outcomes(passed=1, failed=2)  # the GOOD one passes at 0.98
    result.stdout.fnmatch_lines([
        "*confidence basis: agreement only*",
        "*note: confidence is uncalibrated (agreement only)*"])
    before = _records(pytester, "before.json")
    assert {r["confidence_basis"] for r in before.values()} == {"agreement only"}

    # Calibrated in the same run as the tests: 15 labelled pass verdicts, 10
    # right; 10 fail verdicts, all right.
    args = [*judge_args, "--llmjudge-cache=off"]
    result = pytester.runpytest(*args, "--llmjudge-calibrate=labels.jsonl",
                                "--llmjudge-report=cal.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*JudgedAssertionError: judged: FAIL*",
        "*confidence basis: calibrated on 10 labelled examples*"])
    assert "confidence is uncalibrated" not in result.stdout.str()
    after = _records(pytester, "cal.json")
    good, bad = after["Paris is the capital"], after["Lyon is the capital"]
    assert good["confidence_basis"] == "calibrated on 15 labelled examples"
    assert bad["confidence_basis"] == "calibrated on 10 labelled examples"
    # 10 of 15 labelled passes were right: its pass is no longer 0.98 but
    # about what the labels show, so it is inconclusive, after asking for no
    # more votes than the first pair (no number of them can reach 0.9).
    assert 0.6 <= good["confidence"] <= 0.8
    assert good["outcome"] == "inconclusive" and len(good["votes"]) == 2
    # Its fails were all right: still decisive, a little below agreement only.
    assert 0.9 <= bad["confidence"] < before["Lyon is the capital"]["confidence"]
    assert bad["outcome"] == "fail"

    # Later runs use the stored calibration.
    result = pytester.runpytest(*args, "--llmjudge-report=later.json")
    result.assert_outcomes(passed=2, failed=1)
    later = _records(pytester, "later.json")
    # (the agreement learnt since moves it a little, never up to 0.9)
    assert later["Paris is the capital"]["confidence"] == pytest.approx(
        good["confidence"], abs=0.02)
    assert later["Paris is the capital"]["confidence_basis"] == \
        good["confidence_basis"]
    # Another judge model is not calibrated: agreement only again.
    other = [a.replace("scripted-judge", "scripted-other") for a in args]
    result = pytester.runpytest(*other, "--llmjudge-report=other.json")
    result.assert_outcomes(passed=1, failed=2)
    assert {r["confidence_basis"] for r in _records(pytester, "other.json").values()
            } == {"agreement only"}


@pytest.mark.subprocess("xdist workers are processes of their own")
def test_calibrated_basis_and_same_answer_flag_under_xdist(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """-n 2: the calibration (made by the controller before any test, from
    pass/fail examples and labelled pairs in one file) reaches the workers'
    verdicts (criteria, compare and better_than), their JSON records and
    failure messages."""
    from tests.test_calibration_pairs import COMPARE_SUITE, PAIRS, words

    judge_server.policy = ScriptedJudge(rules={"correct": _leaky}, prefer=words)
    pytester.makepyfile(CALIBRATED_SUITE)
    pytester.makepyfile(test_pairs=COMPARE_SUITE + '''

def test_compare_fails(judge):
    from pytest_llmjudge import assert_judged
    assert_judged("Monday.", better_than="Your parcel ships on Monday morning.",
                  input="Where is my order?")
''')
    with _labels(pytester).open("a", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": i, "a": a, "b": b, "label": h,
                                 "input": "Where is my order?"}) + "\n"
                     for i, a, b, h in PAIRS)
    result = pytester.runpytest(*judge_args, "-n", "2",
                                "--llmjudge-calibrate=labels.jsonl",
                                "--llmjudge-report=x.json")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*confidence basis: calibrated on 10 labelled "
                                 "examples*"])
    result.stdout.fnmatch_lines(["comparisons: Overall, which response answers*"
                                 "(6 labelled pairs; both presentation orders each)"])
    recs = _records(pytester, "x.json")
    assert recs["Paris is the capital"]["confidence_basis"] == \
        "calibrated on 15 labelled examples"
    assert recs["Paris is the capital"]["outcome"] == "inconclusive"
    pairs = [r for r in recs.values() if r["kind"] == "pairwise"]
    assert len(pairs) == 2 and {r["confidence_basis"] for r in pairs} == {
        "calibrated on 5 labelled examples"}
    assert "confidence is uncalibrated" not in result.stdout.str()


def test_all_pass_without_a_negative_control_is_noted_not_failed(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """Every criterion passes on many different outputs and no negative control
    says otherwise: a sound judge on a good suite looks exactly so, so the
    suite still passes (at no more than the prior's confidence) and the
    summary asks for a negative control. The same judge's one-level scale is
    flagged; adding one negative control flags the criteria too."""
    judge_server.policy = ScriptedJudge()
    sentences = "\n".join(f"    {s!r}," for s in SENTENCES)
    pytester.makepyfile(test_good_suite=f'''
import pytest
from pytest_llmjudge import assert_judged

OUTPUTS = [
{sentences}
]

@pytest.mark.parametrize("output", OUTPUTS)
def test_reply(output):
    assert_judged(output, "Is a complete sentence")
''')
    result = pytester.runpytest(*judge_args)
    result.assert_outcomes(passed=len(SENTENCES))
    text = result.stdout.str()
    assert f"note: {SAME_ANSWER}" in text and "add a negative control" in text
    pytester.makepyfile(test_zz_control='''
from pytest_llmjudge import assert_rejected

def test_control():
    assert_rejected("asdf qwer zxcv", "Is a complete sentence")
''')
    result = pytester.runpytest(*judge_args, "--llmjudge-cache=off", "-p",
                                "no:randomly", "test_zz_control.py",
                                "test_good_suite.py")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 + len(SENTENCES), result.stdout.str()
    assert "a negative control included" in result.stdout.str()
