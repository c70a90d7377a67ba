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
    Fault,
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
    result = pytester.runpytest(*judge_args,
                                "--llmjudge-calibrate=labels.jsonl",
                                "--llmjudge-min-kappa=0.7")
    # The apology rubric's kappa (0.6) is below 0.7: its test errors without a
    # judge call; so does the rubric nobody labelled (not calibrated); only the
    # date rubric (kappa 1.0) judges.
    result.assert_outcomes(passed=1, errors=2)
    assert judge_server.calls == 2 * 16 + 2
    asked = {r.output for r in judge_server.requests}
    assert "Sorry about that!" not in asked
    assert "Hello there." not in asked
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
    result.stdout.fnmatch_lines([
        "*UntrustedJudgeError: the judge openai/scripted-judge is not calibrated for "
        "rubric 'The reply is written in English': no stored calibration against "
        "human labels*run with --llmjudge-calibrate=LABELS (in the same run as the "
        "tests if you like)*",
    ])
    result.stdout.fnmatch_lines([
        "NOT CALIBRATED: judge openai/scripted-judge (prompt template v2) has no "
        "calibration in .llmjudge_cache/meta for 1 rubric(s) used here; "
        "--llmjudge-min-kappa made their judged tests error:",
        "  'The reply is written in English' (nobody labelled it)",
        "  label outputs for them and run with --llmjudge-calibrate=LABELS*",
        "*JUDGE ERROR test_*::test_unlabelled*",
    ])
    assert result.ret == 1

    # A later run without --llmjudge-calibrate uses the stored result: at 0.5 the
    # judge is trusted for both labelled rubrics; the unlabelled one still errors.
    calls = judge_server.calls
    result = pytester.runpytest(*judge_args, "--llmjudge-min-kappa=0.5",
                                "--llmjudge-report=report.json")
    # Trusted is not sure: the apology judge's passes were right on 5 of 7
    # labelled examples, so its pass, calibrated on them (issue #16), is below
    # min_confidence: inconclusive.
    result.assert_outcomes(passed=1, failed=1, errors=1)
    assert judge_server.calls == calls + 2  # only test_apology was new
    result.stdout.fnmatch_lines([
        "*llmjudge calibration*",
        "judge openai/scripted-judge (prompt template v2) against human labels "
        "(stored in .llmjudge_cache/meta):",
        "  apology (rubrics/apology.yaml): kappa 0.600, agreement 80.0% on 10 of 10 "
        "labelled examples (labels.jsonl, *), trusted",
        f"  {DATE}: kappa 1.000, agreement 100.0% on 6 of 6 labelled examples *trusted",
        "NOT CALIBRATED: judge openai/scripted-judge *",
        "  'The reply is written in English' (nobody labelled it)",
    ])
    recs = json.loads((pytester.path / "report.json").read_text())["verdicts"]
    by_test = {r["nodeid"].split("::")[-1]: r for r in recs}
    assert by_test["test_unlabelled"]["outcome"] == "judge_error"
    assert by_test["test_unlabelled"]["warnings"] == [
        "not calibrated for this judge: 'The reply is written in English' "
        "(nobody labelled it)"]
    assert not by_test["test_apology"]["warnings"]
    assert not by_test["test_date"]["warnings"]
    assert by_test["test_apology"]["outcome"] == "inconclusive"
    assert by_test["test_apology"]["confidence_basis"] == \
        "calibrated on 7 labelled examples"
    assert by_test["test_date"]["outcome"] == "pass"

    # Another judge model is not calibrated: visible in the summary, refused
    # under --llmjudge-min-kappa.
    other = [a.replace("scripted-judge", "scripted-other") for a in judge_args]
    result = pytester.runpytest(*other, "--llmjudge-min-kappa=0.5")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "*is not trusted for rubric 'apology (rubrics/apology.yaml)': it is not "
        "calibrated for this judge configuration (it was calibrated with "
        "openai/scripted-judge)*",
    ])
    result.stdout.fnmatch_lines([
        "judge openai/scripted-other (prompt template v2) against human labels "
        "(stored in .llmjudge_cache/meta):",
        "  apology (rubrics/apology.yaml): NOT CALIBRATED for this judge (it was "
        "calibrated with openai/scripted-judge); re-run "
        "--llmjudge-calibrate=labels.jsonl",
        f"  {DATE}: NOT CALIBRATED for this judge*",
        "NOT CALIBRATED: judge openai/scripted-other *for 1 rubric(s) used here*",
        "  'The reply is written in English' (nobody labelled it)",
    ])
    # The same model name on another endpoint is another judge.
    with ScriptedJudgeServer(_policy()) as elsewhere:
        moved = [f"--llmjudge-api-base={elsewhere.base_url}" if
                 a.startswith("--llmjudge-api-base=") else a for a in judge_args]
        result = pytester.runpytest(*moved, "--llmjudge-min-kappa=0.5")
        assert elsewhere.calls == 0
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "*is not trusted for rubric 'apology (rubrics/apology.yaml)': it is not "
        "calibrated for this judge configuration (it was calibrated against another "
        "api_base)*",
    ])
    # Without --llmjudge-min-kappa nothing is refused; the summary still says so.
    result = pytester.runpytest(*other)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*apology (rubrics/apology.yaml): NOT CALIBRATED*"])

    # An edited rubric (same name) is no longer vouched for either; an edited
    # string rubric has no name to follow: it is unlabelled, and the summary
    # points to the labelled rubric it is closest to.
    (pytester.path / APOLOGY_FILE).write_text(
        APOLOGY.replace("apologises to the customer", "apologises sincerely"))
    edited = "The reply gives the refund date"
    pytester.makepyfile(TESTS.replace(DATE, edited))
    result = pytester.runpytest(*judge_args, "--llmjudge-min-kappa=0.5")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*not calibrated for this judge configuration "
                                 "(the rubric changed since)*"])
    result.stdout.fnmatch_lines([
        f"*is not calibrated for rubric {edited!r}: no stored calibration against "
        f"human labels for this judge, prompt template v2 and rubric (changed from "
        f"{DATE!r}?)*",
    ])
    result.stdout.fnmatch_lines([
        "  apology (rubrics/apology.yaml): NOT CALIBRATED for this judge (the rubric "
        "changed since)*",
        "NOT CALIBRATED: judge openai/scripted-judge *for 2 rubric(s) used here*",
        "  'The reply gives the refund date' (nobody labelled it; changed from "
        f"{DATE!r}?)",
        "  'The reply is written in English' (nobody labelled it)",
    ])


@pytest.mark.subprocess("xdist workers are processes of their own")
def test_calibrate_under_xdist(pytester: pytest.Pytester,
                               judge_server: ScriptedJudgeServer,
                               judge_args: list[str], labelled: Path) -> None:
    # The controller judges the labels before the workers run any test; the
    # workers read the stored result.
    judge_server.policy = _policy()
    result = pytester.runpytest(*judge_args, "-n", "2",
                                "--llmjudge-calibrate=labels.jsonl",
                                "--llmjudge-min-kappa=0.7")
    result.assert_outcomes(passed=1, errors=2)
    assert _row(result, "overall") == by_hand(APOLOGY_ROWS + DATE_ROWS) | {"trust": ""}
    result.stdout.fnmatch_lines(["*JUDGE ERROR*test_apology*"])
    result.stdout.fnmatch_lines(["*JUDGE ERROR*test_unlabelled*"])
    result.stdout.fnmatch_lines(["  'The reply is written in English' (nobody "
                                 "labelled it)"])
    # Every example was judged once (two presentations), the refused tests never.
    assert judge_server.calls == 2 * 16 + 2


def test_calibrate_only_fails_the_run_below_min_kappa(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], labelled: Path) -> None:
    judge_server.policy = _policy()
    # --collect-only: calibrate without running the tests.
    args = [*judge_args, "--collect-only", "-q", "--llmjudge-calibrate=labels.jsonl"]
    result = pytester.runpytest(*args)
    assert result.ret == 0
    assert judge_server.calls == 2 * 16
    result.stdout.fnmatch_lines(["*llmjudge calibration*"])
    result = pytester.runpytest(*args, "--llmjudge-min-kappa=0.7")
    assert result.ret == 1
    assert judge_server.calls == 2 * 16  # the cache answered
    result.stdout.fnmatch_lines(["*the judge is NOT trusted for 'apology*"])


def test_replay_only_calibration_is_what_min_kappa_checks(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], labelled: Path) -> None:
    # Record the tests' and the labels' judge replies once, with the judge...
    judge_server.policy = _policy()
    result = pytester.runpytest(*judge_args, "--llmjudge-record-mode=all",
                                "--llmjudge-calibrate=labels.jsonl")
    # The apology judge's passes were right on 5 of 7 labelled examples: its
    # pass, calibrated on them (issue #16), is below min_confidence.
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*INCONCLUSIVE*", "*confidence basis: calibrated on "
                                 "7 labelled examples*"])
    calls = judge_server.calls
    # ...then replay them as a fresh clone does: no model, no key, a new cache.
    replay = ["-p", "no:cacheprovider", "--llmjudge-record-mode=none",
              "--llmjudge-cache-dir=replay-cache"]
    # Nothing is calibrated for the replayed judge yet: every judged test errors.
    result = pytester.runpytest(*replay, "--llmjudge-min-kappa=0.5")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "NOT CALIBRATED: judge (recorded) (prompt template v2) has no calibration "
        "in replay-cache/meta for 3 rubric(s) used here; *",
    ])
    result = pytester.runpytest(*replay, "--llmjudge-calibrate=labels.jsonl")
    result.assert_outcomes(passed=3)
    assert _row(result, "apology (rubrics/apology.yaml)") == \
        by_hand(APOLOGY_ROWS) | {"trust": ""}
    result.stdout.fnmatch_lines(["labels: labels.jsonl, 16 examples; judge: "
                                 "(recorded) *",
                                 "stored beside the cache for judge (recorded), *"])
    # The next replay-only run checks against what the replay stored.
    result = pytester.runpytest(*replay, "--llmjudge-min-kappa=0.7")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines([
        "*UntrustedJudgeError: the judge (recorded) is not trusted for rubric "
        "'apology (rubrics/apology.yaml)': Cohen's kappa 0.60 *",
    ])
    result.stdout.fnmatch_lines([
        "judge (recorded) (prompt template v2) against human labels (stored in "
        "replay-cache/meta):",
        "  apology (rubrics/apology.yaml): kappa 0.600, *, NOT TRUSTED",
        f"  {DATE}: kappa 1.000, *, trusted",
        "NOT CALIBRATED: judge (recorded) *for 1 rubric(s) used here*",
        "  'The reply is written in English' (nobody labelled it)",
    ])
    assert judge_server.calls == calls  # replay: never a call


class _Erring:
    """The scripted judge, failing with HTTP 400 (a judge error, not retried) on
    every output but those in ``answer``."""

    def __init__(self, answer: set[str]):
        self.base = _policy()
        self.answer = answer

    def __call__(self, req: JudgeRequest) -> Reply:
        if req.output in self.answer:
            return self.base(req)
        return Fault("status", status=400, message="scripted bad request")


def test_kappa_over_too_few_decided_examples_is_not_trusted(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    (pytester.path / "rubrics").mkdir()
    (pytester.path / APOLOGY_FILE).write_text(APOLOGY, encoding="utf-8")
    pytester.makepyfile(TESTS)
    rows = [{"id": i, "output": o, "rubric": APOLOGY_FILE, "label": h}
            for i, o, h in APOLOGY_LABELS]
    (pytester.path / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    # The judge answers on p1 (people pass) and f1 (people fail), both rightly,
    # and errors on the other 8: kappa over the 2 decided is a perfect 1.0.
    decided = {APOLOGY_LABELS[0][1], APOLOGY_LABELS[5][1]}
    judge_server.policy = _Erring(decided)
    assert by_hand([(True, True), (False, False)])["kappa"] == "1.000"
    args = [*judge_args, "-k", "apology", "--llmjudge-calibrate=labels.jsonl",
            "--llmjudge-min-kappa=0.5"]
    result = pytester.runpytest(*args)
    assert _row(result, "apology (rubrics/apology.yaml)") == {
        "n": "10", "decided": "2", "agree": "100.0%", "kappa": "1.000",
        "judge": "50.0%", "people": "50.0%", "lenient": "+0.0",
        "trust": "NOT TRUSTED (too few decided: 2 of 10)"}
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*UntrustedJudgeError: the judge openai/scripted-judge is not trusted for "
        "rubric 'apology (rubrics/apology.yaml)': too few examples decided (2 of 10) "
        "when it was calibrated against human labels (labels.jsonl, *); at least 80% "
        "must be pass or fail*",
    ])
    assert result.ret == 1
    # Every example errors: still "too few decided", never "all pass or all fail".
    judge_server.policy = _Erring(set())
    result = pytester.runpytest(*args, "--llmjudge-cache-dir=fresh")
    assert _row(result, "apology (rubrics/apology.yaml)") == {
        "n": "10", "decided": "0", "agree": "-", "kappa": "n/a", "judge": "-",
        "people": "-", "lenient": "-",
        "trust": "NOT TRUSTED (too few decided: 0 of 10)"}
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*UntrustedJudgeError: *: too few examples decided "
                                 "(0 of 10) when it was calibrated*"])
    assert "all pass or all fail" not in result.stdout.str()


def test_trust_needs_four_in_five_examples_decided() -> None:
    from pytest_llmjudge.calibration.agreement import Agreement, distrust

    a = Agreement()
    a.add(True, "pass")
    a.add(False, "fail")
    for _ in range(8):
        a.add(True, "judge_error")
    assert (a.kappa, a.decided, a.n) == (1.0, 2, 10)
    assert distrust(a.kappa, a.decided, a.n, 0.5) == "few"
    assert distrust(1.0, 8, 10, 0.5) is None
    assert distrust(1.0, 7, 10, 0.5) == "few"
    assert distrust(None, 10, 10, 0.5) == "undefined"
    assert distrust(0.49, 10, 10, 0.5) == "low"


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
    result = pytester.runpytest(*judge_args, "--collect-only", "-q",
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
    result = pytester.runpytest(
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

    from pytest_llmjudge.calibration.run import load_labels
    from pytest_llmjudge.exceptions import ConfigError

    path = tmp_path / "labels.jsonl"
    path.write_text(f"{GOOD}\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_labels(path)
    assert fnmatch(str(info.value), message), str(info.value)


def test_labels_file_rubric_paths_are_relative_to_it(tmp_path: Path) -> None:
    from pytest_llmjudge.calibration.run import load_labels

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
    result = pytester.runpytest(*judge_args,
                                "--llmjudge-calibrate=labels.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-llmjudge: --llmjudge-calibrate: "
                                 "labels.jsonl:2: unknown key 'lable' (did you mean "
                                 "'label'?)*"])
