"""Calibration against human labels, end to end: a scripted loopback judge whose
agreement with a labelled file is known in advance, and the numbers the report
must print, computed here by hand from the labels and the judge's rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.testing import (
    JudgeRequest,
    Reply,
    ScriptedJudge,
    ScriptedJudgeServer,
)

APOLOGY = """\
name: apology
criteria:
  - name: apologises
    description: The reply apologises to the customer.
"""
APOLOGY_FILE = "rubrics/apology.yaml"
DATE = "The reply gives a refund date"

# (id, output, the people's verdict). The scripted judge passes "apologises"
# whenever the reply says "sorry": it is wrong, by design, on f4 and f5 (a
# sarcastic and a non-apology), which people failed.
APOLOGY_LABELS = [
    ("p1", "Sorry for the delay, your parcel ships today.", True),
    ("p2", "We are sorry about the broken mug; a new one is on its way.", True),
    ("p3", "Sorry! The refund went out this morning.", True),
    ("p4", "So sorry for the mix-up with your order.", True),
    ("p5", "Sorry, that was our mistake; it is fixed now.", True),
    ("f1", "Your parcel ships today.", False),
    ("f2", "Read the manual.", False),
    ("f3", "The refund went out this morning.", False),
    ("f4", "Sorry not sorry, rules are rules.", False),
    ("f5", "I'm sorry you feel that way.", False),
]
# The judge passes a refund date when there is a digit: right on all six.
DATE_LABELS = [
    ("d1", "Your refund arrives on 12 May.", True),
    ("d2", "Refund due 3 June.", True),
    ("d3", "Refund date: 1 July.", True),
    ("d4", "Your refund is coming soon.", False),
    ("d5", "We refund eventually.", False),
    ("d6", "Refunds take a while.", False),
]


def judge_apology(output: str) -> bool:
    return "sorry" in output.lower()


def judge_date(output: str) -> bool:
    return bool(re.search(r"\d", output))


def _policy(**kw: Any) -> ScriptedJudge:
    return ScriptedJudge(rules={"apologises": judge_apology,
                                "refund date": judge_date}, **kw)


def _labels_jsonl() -> str:
    rows = [{"id": i, "output": o, "rubric": APOLOGY_FILE,
             "label": "pass" if h else "fail"} for i, o, h in APOLOGY_LABELS]
    rows[8]["note"] = "sarcastic"
    rows += [{"id": i, "output": o, "rubric": DATE, "label": "pass" if h else "fail"}
             for i, o, h in DATE_LABELS]
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def by_hand(rows: list[tuple[bool, bool]]) -> dict[str, str]:
    """Agreement, Cohen's kappa and pass rates of (people, judge) verdicts,
    formatted as the report prints them."""
    n = len(rows)
    po = sum(h == j for h, j in rows) / n
    pj = sum(j for _, j in rows) / n
    ph = sum(h for h, _ in rows) / n
    pe = pj * ph + (1 - pj) * (1 - ph)
    kappa = (po - pe) / (1 - pe)
    return {"n": str(n), "decided": str(n), "agree": f"{100 * po:.1f}%",
            "kappa": f"{kappa:.3f}", "judge": f"{100 * pj:.1f}%",
            "people": f"{100 * ph:.1f}%", "lenient": f"{100 * (pj - ph):+.1f}"}


def _row(result: pytest.RunResult, name: str) -> dict[str, str]:
    line = next(ln for ln in result.outlines if ln.startswith(f"  {name} "))
    cells = line[len(name) + 2:].split()
    keys = ["n", "decided", "agree", "kappa", "judge", "people", "lenient"]
    return dict(zip(keys, cells[:7], strict=True)) | {"trust": " ".join(cells[7:])}


APOLOGY_ROWS = [(h, judge_apology(o)) for _, o, h in APOLOGY_LABELS]
DATE_ROWS = [(h, judge_date(o)) for _, o, h in DATE_LABELS]

TESTS = f'''
from pytest_llmjudge import assert_judged

def test_apology():
    assert_judged("Sorry about that!", "{APOLOGY_FILE}")

def test_date():
    assert_judged("Refund on 4 May.", "{DATE}")

def test_unlabelled():
    assert_judged("Hello there.", "The reply is written in English")
'''


@pytest.fixture
def labelled(pytester: pytest.Pytester) -> Path:
    (pytester.path / "rubrics").mkdir()
    (pytester.path / APOLOGY_FILE).write_text(APOLOGY, encoding="utf-8")
    pytester.makepyfile(TESTS)
    path = pytester.path / "labels.jsonl"
    path.write_text(_labels_jsonl(), encoding="utf-8")
    return path


def test_hand_computed_figures() -> None:
    # What the file is built to show: the judge disagrees on 2 of 10 (both
    # lenient), so 80% agreement but a kappa of only 0.6.
    assert by_hand(APOLOGY_ROWS) == {
        "n": "10", "decided": "10", "agree": "80.0%", "kappa": "0.600",
        "judge": "70.0%", "people": "50.0%", "lenient": "+20.0"}
    assert by_hand(DATE_ROWS)["kappa"] == "1.000"
    assert by_hand(APOLOGY_ROWS + DATE_ROWS)["kappa"] == "0.750"


def test_calibrate_report_then_refuse_below_min_kappa(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], labelled: Path) -> None:
    judge_server.policy = _policy()
    result = pytester.runpytest_subprocess(*judge_args,
                                           "--llmjudge-calibrate=labels.jsonl",
                                           "--llmjudge-min-kappa=0.7")
    # The apology rubric's kappa (0.6) is below 0.7: its test errors without a
    # judge call; the date rubric (kappa 1.0) and the unlabelled rubric judge.
    result.assert_outcomes(passed=2, errors=1)
    assert judge_server.calls == 2 * 16 + 2 * 2
    asked = {r.output for r in judge_server.requests}
    assert "Sorry about that!" not in asked
    assert {o for _, o, _ in APOLOGY_LABELS + DATE_LABELS} <= asked

    apology = _row(result, "apology (rubrics/apology.yaml)")
    assert apology == by_hand(APOLOGY_ROWS) | {"trust": "NOT TRUSTED (kappa < 0.7)"}
    assert _row(result, DATE) == by_hand(DATE_ROWS) | {"trust": "ok (kappa >= 0.7)"}
    assert _row(result, "overall") == by_hand(APOLOGY_ROWS + DATE_ROWS) | {"trust": ""}
    result.stdout.fnmatch_lines([
        "*llmjudge calibration*",
        "labels: labels.jsonl, 16 examples; judge: openai/scripted-judge*",
        "apology (rubrics/apology.yaml): confusion (rows: people, columns: judge)",
        "*judge pass*judge fail*inconclusive*judge error",
        "  people pass              5             0             0             0",
        "  people fail              2             3             0             0",
        "  disagreements:",
        "    f4 (labels.jsonl:9): people FAIL, judge PASS (confidence *)",
        "      output: Sorry not sorry, rules are rules.",
        "      people's note: sarcastic",
        "      apologises (judge pass): scripted: apologises met",
        "    f5 (labels.jsonl:10): people FAIL, judge PASS (confidence *)",
        f"{DATE}: confusion*",
        "  people pass              3             0             0             0",
        "  people fail              0             3             0             0",
        "confidence threshold*",
        "  min_confidence 0.900 (this run): 16 decisive, 87.5% agree, 0 inconclusive",
        "stored beside the cache for judge openai/scripted-judge*",
        "--llmjudge-min-kappa=0.7: the judge is NOT trusted for "
        "'apology (rubrics/apology.yaml)'; judged tests with that rubric error.",
    ])
    result.stdout.fnmatch_lines([
        "*UntrustedJudgeError: the judge openai/scripted-judge is not trusted for "
        "rubric 'apology (rubrics/apology.yaml)': Cohen's kappa 0.60 against human "
        "labels (agreement 80% on 10 of 10 labelled examples; labels.jsonl, *) is "
        "below --llmjudge-min-kappa=0.7*",
        "*JUDGE ERROR test_*::test_apology*",
    ])
    assert result.ret == 1

    # A later run without --llmjudge-calibrate uses the stored result: at 0.5 the
    # judge is trusted for both labelled rubrics.
    calls = judge_server.calls
    result = pytester.runpytest_subprocess(*judge_args, "--llmjudge-min-kappa=0.5",
                                           "--llmjudge-report=report.json")
    result.assert_outcomes(passed=3)
    assert judge_server.calls == calls + 2  # only test_apology was new
    result.stdout.fnmatch_lines([
        "*llmjudge calibration*",
        "judge openai/scripted-judge (prompt template v2) against human labels:",
        "  apology (rubrics/apology.yaml): kappa 0.600, agreement 80.0% on 10 of 10 "
        "labelled examples (labels.jsonl, *), trusted",
        f"  {DATE}: kappa 1.000, agreement 100.0% on 6 of 6 labelled examples *trusted",
        "  1 judged expectation(s) used rubrics nobody labelled*",
    ])
    recs = json.loads((pytester.path / "report.json").read_text())["verdicts"]
    notes = {r["nodeid"].split("::")[-1]: r["warnings"] for r in recs}
    assert any("no human labels for this rubric" in w for w in notes["test_unlabelled"])
    assert not notes["test_apology"]
    assert not notes["test_date"]

    # Another judge model is not calibrated: visible in the summary, refused
    # under --llmjudge-min-kappa.
    other = [a.replace("scripted-judge", "scripted-other") for a in judge_args]
    result = pytester.runpytest_subprocess(*other, "--llmjudge-min-kappa=0.5")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines([
        "*is not trusted for rubric 'apology (rubrics/apology.yaml)': it is not "
        "calibrated for this judge configuration (it was calibrated with "
        "openai/scripted-judge)*",
    ])
    result.stdout.fnmatch_lines([
        "judge openai/scripted-other (prompt template v2) against human labels:",
        "  apology (rubrics/apology.yaml): NOT CALIBRATED for this judge (it was "
        "calibrated with openai/scripted-judge); re-run "
        "--llmjudge-calibrate=labels.jsonl",
    ])
    # Without --llmjudge-min-kappa nothing is refused; the summary still says so.
    result = pytester.runpytest_subprocess(*other)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*apology (rubrics/apology.yaml): NOT CALIBRATED*"])

    # An edited rubric (same name) is no longer vouched for either.
    (pytester.path / APOLOGY_FILE).write_text(
        APOLOGY.replace("apologises to the customer", "apologises sincerely"))
    result = pytester.runpytest_subprocess(*judge_args, "--llmjudge-min-kappa=0.5")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*not calibrated for this judge configuration "
                                 "(the rubric changed since)*"])


def test_calibrate_under_xdist(pytester: pytest.Pytester,
                               judge_server: ScriptedJudgeServer,
                               judge_args: list[str], labelled: Path) -> None:
    # The controller judges the labels before the workers run any test; the
    # workers read the stored result.
    judge_server.policy = _policy()
    result = pytester.runpytest_subprocess(*judge_args, "-n", "2",
                                           "--llmjudge-calibrate=labels.jsonl",
                                           "--llmjudge-min-kappa=0.7")
    result.assert_outcomes(passed=2, errors=1)
    assert _row(result, "overall") == by_hand(APOLOGY_ROWS + DATE_ROWS) | {"trust": ""}
    result.stdout.fnmatch_lines(["*JUDGE ERROR*test_apology*"])
    # Every example was judged once (two presentations), the refused test never.
    assert judge_server.calls == 2 * 16 + 2 * 2


def test_calibrate_only_fails_the_run_below_min_kappa(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], labelled: Path) -> None:
    judge_server.policy = _policy()
    # --collect-only: calibrate without running the tests.
    args = [*judge_args, "--collect-only", "-q", "--llmjudge-calibrate=labels.jsonl"]
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 0
    assert judge_server.calls == 2 * 16
    result.stdout.fnmatch_lines(["*llmjudge calibration*"])
    result = pytester.runpytest_subprocess(*args, "--llmjudge-min-kappa=0.7")
    assert result.ret == 1
    assert judge_server.calls == 2 * 16  # the cache answered
    result.stdout.fnmatch_lines(["*the judge is NOT trusted for 'apology*"])


class _Unsure:
    """The scripted judge, stating low confidence (0.6) exactly where it is wrong."""

    def __init__(self, unsure: set[str]):
        self.base = _policy()
        self.unsure = unsure

    def __call__(self, req: JudgeRequest) -> Reply:
        reply = self.base(req)
        if isinstance(reply, dict) and req.output in self.unsure:
            reply["confidence"] = 0.6
        return reply


def test_confidence_threshold_from_labels(pytester: pytest.Pytester,
                                          judge_server: ScriptedJudgeServer,
                                          judge_args: list[str]) -> None:
    (pytester.path / "rubrics").mkdir()
    (pytester.path / APOLOGY_FILE).write_text(APOLOGY, encoding="utf-8")
    wrong = {o for _, o, h in APOLOGY_LABELS if judge_apology(o) != h}
    assert len(wrong) == 2
    judge_server.policy = _Unsure(wrong)
    rows = [{"id": i, "output": o, "rubric": APOLOGY_FILE, "label": h}
            for i, o, h in APOLOGY_LABELS]
    pytester.path.joinpath("labels.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows))
    result = pytester.runpytest_subprocess(*judge_args, "--collect-only", "-q",
                                           "--llmjudge-calibrate=labels.jsonl")
    assert result.ret == 5  # no tests: only the calibration ran
    text = result.stdout.str()
    # Unsure votes still reach min_confidence 0.9 (two agreeing presentations):
    # at the configured threshold all 10 are decisive, 8 of 10 right.
    assert "  min_confidence 0.900 (this run): 10 decisive, 80.0% agree, " \
           "0 inconclusive" in text
    # Any threshold above the two wrong verdicts' confidence leaves the 8 right
    # ones: 100% agreement; none lower reaches 90% (9 decisive: 8/9 = 88.9%).
    wrong_conf = [float(x) for x in re.findall(
        r"people FAIL, judge PASS \(confidence ([0-9.]+)\)", text)]
    assert len(wrong_conf) == 2
    for target in ("90%", "95%"):
        m = re.search(rf"  for {target} agreement: min_confidence ([0-9.]+) -> "
                      r"8 decisive \(100\.0% agree\), 2 inconclusive", text)
        assert m, text
        assert float(m.group(1)) > max(wrong_conf) - 0.005


LABELS_YAML = """\
# Per-criterion labels; the overall verdict follows from the rubric's rule.
rubric: rubrics/reply.yaml
examples:
  - id: e1
    output: Sorry, your refund arrives on 4 May.
    criteria: {apologises: pass, date: pass}
  - id: e2
    output: Sorry, your refund is coming soon.
    criteria: {apologises: pass, date: fail}
  - id: e3
    output: Your refund arrives on 4 May.
    criteria: {apologises: fail, date: pass}
  - id: e4
    output: Your refund is coming soon.
    criteria: {apologises: fail, date: fail}
"""
REPLY = """\
name: reply
criteria:
  - name: apologises
    description: The reply apologises to the customer.
  - name: date
    description: The reply gives a refund date.
"""


class PerModel:
    def __init__(self, policies: dict[str, Any]):
        self.policies = policies

    def __call__(self, req: JudgeRequest) -> Reply:
        return self.policies[str(req.body["model"])](req)  # type: ignore[no-any-return]


def test_yaml_per_criterion_labels_with_a_jury(pytester: pytest.Pytester,
                                              judge_server: ScriptedJudgeServer,
                                              judge_args: list[str]) -> None:
    (pytester.path / "cal" / "rubrics").mkdir(parents=True)
    (pytester.path / "cal" / "rubrics" / "reply.yaml").write_text(REPLY)
    (pytester.path / "cal" / "labels.yaml").write_text(LABELS_YAML)
    contrarian = ScriptedJudge(rules={"apologises": lambda o: not judge_apology(o),
                                      "date": judge_date})
    judge_server.policy = PerModel({"judge-a": _policy(), "judge-b": _policy(),
                                    "judge-c": contrarian})
    jury = "openai/judge-a,openai/judge-b,openai/judge-c"
    result = pytester.runpytest_subprocess(
        *judge_args, "--collect-only", "-q", f"--llmjudge-jury={jury}",
        "--llmjudge-min-confidence=0.8", "--llmjudge-calibrate=cal/labels.yaml")
    # People pass only e1 (both criteria required). judge-c flips "apologises":
    # it fails e1 and passes e3, so the jury splits 2-1 on those two and is
    # unanimous on e2 and e4; the majority agrees with people on all four.
    people = [True, False, False, False]
    member_c = [False, False, True, False]
    assert by_hand([(h, h) for h in people])["kappa"] == "1.000"
    c = by_hand(list(zip(people, member_c, strict=True)))
    assert (c["agree"], c["kappa"]) == ("50.0%", "-0.333")
    assert _row(result, "reply (rubrics/reply.yaml)") == \
        by_hand([(h, h) for h in people]) | {"trust": ""}
    result.stdout.fnmatch_lines([
        "labels: cal/labels.yaml, 4 examples; judge: " + jury + " *",
        "jury of 3: the majority decides",
        "  per criterion: apologises 4/4 agree, kappa 1.000; date 4/4 agree, "
        "kappa 1.000",
        "  jury: unanimous on 2/4 examples, mean share with the majority 83.3%",
        "    openai/judge-a: agreement 100.0%, kappa 1.000, pass rate 25.0%",
        "    openai/judge-b: agreement 100.0%, kappa 1.000, pass rate 25.0%",
        f"    openai/judge-c: agreement {c['agree']}, kappa {c['kappa']}, "
        "pass rate 25.0%",
    ])
    models = {str(r.body["model"]) for r in judge_server.requests}
    assert models == {"judge-a", "judge-b", "judge-c"}


GOOD = '{"id": "ok", "output": "hi", "rubric": "Polite", "label": "pass"}'


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "x", "output": "hi", "rubric": "Polite", "lable": "pass"}',
     "labels.jsonl:2: unknown key 'lable' (did you mean 'label'?)*"),
    ('{"id": "x", "output": "hi", "rubric": "Polite"}',
     "labels.jsonl:2: no human verdict: give label: pass|fail, or criteria*"),
    ('{"id": "x", "output": "hi", "rubric": "Polite", "label": "maybe"}',
     "labels.jsonl:2: label: 'maybe' is not a verdict: use pass or fail"),
    ('{"id": "x", "rubric": "Polite", "label": "pass"}',
     "labels.jsonl:2: the example has no 'output'*"),
    ('{"id": "x", "output": "hi", "label": "pass"}',
     "labels.jsonl:2: the example has no 'rubric'*"),
    ('{"id": "x", "output": "hi", "rubric": "missing.yaml", "label": "pass"}',
     "labels.jsonl:2: cannot read rubric file *missing.yaml*"),
    (GOOD, "*example ids must be unique; repeated: ok"),
    ('{"id": "x", "output": "hi", "rubric": "Polite", "criteria": {"rude": "fail"}}',
     "labels.jsonl:2: the rubric has no criterion 'rude'; its criteria are polite"),
    ('{"id": "x", "output": "hi", "rubric": "Polite", "label": "pass"',
     "labels.jsonl:2: not valid JSON*"),
])
def test_labels_file_mistakes_name_the_line(tmp_path: Path, line: str,
                                            message: str) -> None:
    from fnmatch import fnmatch

    from pytest_llmjudge.calibration import load_labels
    from pytest_llmjudge.exceptions import ConfigError

    path = tmp_path / "labels.jsonl"
    path.write_text(f"{GOOD}\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_labels(path)
    assert fnmatch(str(info.value), message), str(info.value)


def test_labels_file_rubric_paths_are_relative_to_it(tmp_path: Path) -> None:
    from pytest_llmjudge.calibration import load_labels

    (tmp_path / "cal" / "rubrics").mkdir(parents=True)
    (tmp_path / "cal" / "rubrics" / "reply.yaml").write_text(REPLY)
    (tmp_path / "cal" / "labels.yaml").write_text(LABELS_YAML)
    examples = load_labels(tmp_path / "cal" / "labels.yaml")
    assert [e.id for e in examples] == ["e1", "e2", "e3", "e4"]
    assert examples[0].rubric_name == "reply (rubrics/reply.yaml)"
    assert examples[1].criteria == {"apologises": True, "date": False}
    assert examples[1].label is None


def test_a_bad_labels_file_is_a_usage_error(pytester: pytest.Pytester,
                                            judge_args: list[str]) -> None:
    (pytester.path / "labels.jsonl").write_text(
        GOOD + '\n{"id": "x", "output": "hi", "rubric": "Polite", "lable": "pass"}\n')
    result = pytester.runpytest_subprocess(*judge_args,
                                           "--llmjudge-calibrate=labels.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-llmjudge: --llmjudge-calibrate: "
                                 "labels.jsonl:2: unknown key 'lable' (did you mean "
                                 "'label'?)*"])
