"""Comparisons calibrated against people (#16): pair examples (``a``, ``b``,
``label: A|B|tie``) judged in both orders by a scripted loopback judge; the
report's agreement, kappa, position-consistency and decisive share, computed
here by hand; and the labels-file mistakes a pair can make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

DEFAULT = "comparisons: Overall, which response answers the input better*"
WINNERS = ("A", "B", "tie")

# (id, a, b, the people's winner). The good judge prefers the longer reply
# (more words; equal is a tie): wrong, by design, on c5 only.
PAIRS = [
    ("c1", "Refunds take five days.", "Soon.", "A"),
    ("c2", "Ok.", "Your order ships on Monday.", "B"),
    ("c3", "It ships Monday.", "It ships Tuesday.", "tie"),
    ("c4", "We are sorry, it broke.", "Fixed.", "A"),
    ("c5", "Please read the manual again now.", "Reset it.", "B"),
    ("c6", "Yes.", "No, that is not possible.", "B"),
]


def words(text: str) -> float:
    return float(len(text.split()))


def longer(a: str, b: str) -> str:
    return "A" if words(a) > words(b) else "B" if words(b) > words(a) else "tie"


def by_hand(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Agreement and three-way Cohen's kappa of (people, judge) winners, as the
    report prints them."""
    n = len(rows)
    po = sum(h == j for h, j in rows) / n
    pe = sum(sum(j == w for _, j in rows) / n * sum(h == w for h, _ in rows) / n
             for w in WINNERS)
    return {"agreement": f"{100 * po:.1f}%", "kappa": f"{(po - pe) / (1 - pe):.3f}"}


GOOD_ROWS = [(h, longer(a, b)) for _, a, b, h in PAIRS]


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def pairs_file(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    path = pytester.path / "pairs.jsonl"
    path.write_text(_jsonl([{"id": i, "a": a, "b": b, "label": h,
                             "input": "Where is my order?"}
                            for i, a, b, h in PAIRS]), encoding="utf-8")
    return path


def test_hand_computed_figures() -> None:
    # 5 of 6 agree; the judge says A 3, B 2, tie 1 times, people 2, 3, 1.
    assert by_hand(GOOD_ROWS) == {"agreement": "83.3%", "kappa": "0.739"}


def test_good_judge_report(pytester: pytest.Pytester,
                           judge_server: ScriptedJudgeServer,
                           judge_args: list[str], pairs_file: Path) -> None:
    judge_server.policy = ScriptedJudge(prefer=words)
    result = pytester.runpytest(*judge_args, "--llmjudge-calibrate=pairs.jsonl")
    result.assert_outcomes(passed=1)
    # Each pair is shown in both orders, the two texts swapped.
    asked = [r for r in judge_server.requests if r.kind == "pairwise"]
    assert len(asked) == 2 * len(PAIRS)
    seen = {(r.texts["response_a"], r.texts["response_b"]) for r in asked}
    assert {(a, b) for _, a, b, _ in PAIRS} | {(b, a) for _, a, b, _ in PAIRS} \
        == seen
    want = by_hand(GOOD_ROWS)
    result.stdout.fnmatch_lines([
        "*llmjudge calibration*",
        "labels: pairs.jsonl, 6 examples; judge: openai/scripted-judge*",
        f"{DEFAULT} (6 labelled pairs; both presentation orders each)",
        f"  agreement {want['agreement']} (5 of 6 decided), kappa {want['kappa']}",
        "  position-consistency 100.0% (6 of 6 pairs chose the same winner in both "
        "orders)",
        "  decisive share 100.0% (6 of 6 pairs have a winner)",
        "*judge A*judge B*judge tie*no winner",
        "  people A              2          0          0          0",
        "  people B              1          2          0          0",
        "  people tie            0          0          1          0",
        "  c5 (pairs.jsonl:5): people B, judge A (confidence *)",
        "comparisons stored beside the cache*",
    ])
    out = result.stdout.str()
    # No pass/fail table nor thresholds: the file holds pairs only.
    assert "people pass" not in out
    assert "confidence threshold" not in out


def test_position_biased_judge(pytester: pytest.Pytester,
                               judge_server: ScriptedJudgeServer,
                               judge_args: list[str], pairs_file: Path) -> None:
    # Always the first response shown: A in one order, B in the other.
    judge_server.policy = ScriptedJudge(position_bias="first")
    result = pytester.runpytest(*judge_args, "--llmjudge-calibrate=pairs.jsonl")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"{DEFAULT} (6 labelled pairs; both presentation orders each)",
        "  agreement - (0 of 0 decided), kappa n/a",
        "  position-consistency 0.0% (0 of 6 pairs chose the same winner in both "
        "orders)",
        "  decisive share 0.0% (0 of 6 pairs have a winner)",
        "*judge A*judge B*judge tie*no winner",
        "  people A              0          0          0          2",
        "  people B              0          0          0          3",
        "  people tie            0          0          0          1",
        "  c1 (pairs.jsonl:1): people A, judge: the orders disagreed",
    ])


YAML_LABELS = """\
rubric: The reply is polite          # the default for pass/fail examples only
examples:
  - id: polite
    output: Thank you for waiting!
    label: pass
  - id: q1
    a: Your order ships on Monday, sorry for the wait.
    b: Monday.
    rubric: [The reply says when the order ships, The reply is polite]
    label: a
  - id: q2
    a: Monday.
    b: It ships Monday; thanks for asking.
    rubric: [The reply says when the order ships, The reply is polite]
    label: B
  - id: q3
    a: It ships Monday.
    b: It ships Friday.
    rubric: [The reply says when the order ships, The reply is polite]
    label: TIE
"""


def test_yaml_pairs_beside_pass_fail_examples(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = ScriptedJudge(prefer=words)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    (pytester.path / "labels.yaml").write_text(YAML_LABELS, encoding="utf-8")
    result = pytester.runpytest(*judge_args, "--llmjudge-calibrate=labels.yaml")
    result.assert_outcomes(passed=1)
    rows = [("A", "A"), ("B", "B"), ("tie", "tie")]
    want = by_hand(rows)
    assert want == {"agreement": "100.0%", "kappa": "1.000"}
    result.stdout.fnmatch_lines([
        "labels: labels.yaml, 4 examples; judge: openai/scripted-judge*",
        "*rubric*n*decided*agree*kappa*",
        "  The reply is polite    1       1  100.0%    n/a*",
        "comparisons: the_reply_says_when; the_reply_is_polite (3 labelled pairs; "
        "both presentation orders each)",
        "  agreement 100.0% (3 of 3 decided), kappa 1.000",
        "  position-consistency 100.0% (3 of 3 pairs*",
        "  decisive share 100.0% (3 of 3 pairs have a winner)",
    ])


@pytest.mark.parametrize(("example", "message"), [
    ({"id": "m1", "output": "x", "a": "y", "b": "z", "label": "A"},
     "pairs.jsonl:1: example 'm1' mixes 'output' with 'a'/'b': give 'output' "
     "(judged against a rubric, label: pass|fail) or 'a' and 'b' (a comparison, "
     "label: A|B|tie), not both"),
    ({"id": "m2", "a": "y", "b": "z", "label": "pass"},
     "pairs.jsonl:1: label 'pass' is for an output judged against a rubric; a "
     "pair (a, b) is labelled A, B or tie: use label: A|B|tie"),
    ({"id": "m3", "a": "y", "b": "z", "label": "C"},
     "pairs.jsonl:1: label 'C' is not a comparison label: use label: A|B|tie"),
    ({"id": "m4", "a": "y", "label": "A"},
     "pairs.jsonl:1: pair example 'm4' has no 'b': a comparison needs both 'a' "
     "and 'b'"),
    ({"id": "m5", "a": "y", "b": "z"},
     "pairs.jsonl:1: pair example 'm5' has no human verdict: give label: A|B|tie"),
    ({"id": "m6", "a": "y", "b": "z", "label": "A",
      "criteria": {"polite": "pass"}},
     "pairs.jsonl:1: pair example 'm6' has 'criteria': a pair is labelled as a "
     "whole, with label: A|B|tie"),
    ({"id": "m7", "a": "y", "b": "z", "label": "A",
      "rubric": {"scale": {"criterion": "quality", "levels": {1: "bad", 5: "good"}}}},
     "pairs.jsonl:1: pair example 'm7': comparisons take criteria, not a Scale"),
    ({"id": "m8", "a": "y", "b": "z", "label": True},
     "pairs.jsonl:1: label True is for an output judged against a rubric*"),
])
def test_label_file_mistakes(pytester: pytest.Pytester, judge_server:
                             ScriptedJudgeServer, judge_args: list[str],
                             example: dict[str, Any], message: str) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    (pytester.path / "pairs.jsonl").write_text(_jsonl([example]), encoding="utf-8")
    result = pytester.runpytest(*judge_args, "--llmjudge-calibrate=pairs.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: pytest-llmjudge: --llmjudge-calibrate: {message}"])
    assert judge_server.calls == 0


COMPARE_SUITE = '''
def test_compare(judge):
    v = judge.compare("Your parcel ships on Monday morning.", "Monday.",
                      input="Where is my order?")
    assert v.winner == "A", v
'''


def test_pair_labels_calibrate_compare_confidence(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], pairs_file: Path) -> None:
    # The labelled pairs feed compare()'s calibrated confidence ("winner" and
    # "tie" kinds), stored apart from any pass/fail calibration of the rubric.
    judge_server.policy = ScriptedJudge(prefer=words)
    pytester.makepyfile(COMPARE_SUITE)
    args = [*judge_args, "--llmjudge-cache=off"]
    result = pytester.runpytest(*args, "--llmjudge-report=before.json")
    result.assert_outcomes(passed=1)
    before = json.loads((pytester.path / "before.json").read_text())["verdicts"][0]
    assert before["confidence_basis"] == "agreement only"
    result = pytester.runpytest(*args, "--llmjudge-calibrate=pairs.jsonl",
                                "--llmjudge-report=after.json")
    result.assert_outcomes(passed=1)
    after = json.loads((pytester.path / "after.json").read_text())["verdicts"][0]
    # 5 decisive winners labelled (4 right), 1 tie.
    assert after["confidence_basis"] == "calibrated on 5 labelled examples"
    assert after["confidence"] < before["confidence"]


# -n 2: tests/test_honest_confidence.py::test_calibrated_basis_and_same_answer_flag_
# under_xdist calibrates pairs beside pass/fail examples, for compare and better_than.
