"""Reports and CI gating, end to end (issue #5): the summary and the JSON report
are the same with and without xdist, records replay offline and reproduce the
recorded verdicts, baselines keep doubt apart from regressions, budgets stop
calls, and JUnit / Markdown / $GITHUB_STEP_SUMMARY carry the verdicts."""

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
from tests.conftest import IN_PROCESS

MIXED = '''
from pytest_llmjudge import assert_judged

def test_pass():
    assert_judged("Sorry! A refund is on its way.", "Apologises to the customer")

def test_fail():
    assert_judged("Go away.", "Apologises to the customer")

def test_flaky():
    assert_judged("Maybe sorry.", "Answers in a biased way")

def test_judge_error():
    assert_judged("BROKEN reply please", "Apologises to the customer")

def test_two(judge):
    for text in ("Sorry, truly.", "Sorry again."):
        judge.check(text, "Apologises to the customer")
'''


def _sorry() -> ScriptedJudge:
    """Passes "Apologises..." when the output says sorry."""
    return ScriptedJudge(rules={"apologises": lambda o: "sorry" in o.lower()})


class Mixed:
    """Deterministic whatever the order of calls: a rule-following judge, a
    position-following one for the 'biased' criterion, garbage for 'BROKEN'."""

    def __init__(self) -> None:
        self.honest = _sorry()
        self.biased = ScriptedJudge(position_bias="first")

    def __call__(self, req: JudgeRequest) -> Reply:
        if "BROKEN" in req.output:
            return "no JSON here, sorry"
        if "WOBBLY" in req.output or any("biased" in d for _, d in req.criteria):
            return self.biased(req)
        return self.honest(req)


def _report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _stable(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A report's verdicts without what may differ between two runs (the time)."""
    return [{k: v for k, v in r.items() if k not in ("created",)}
            for r in doc["verdicts"]]


def _summary(stdout: str) -> list[str]:
    """The llmjudge section: up to pytest's next "=" line (the short test summary,
    which xdist orders by completion, and CI=true prints in full)."""
    lines = stdout.split("- llmjudge summary -")[1].splitlines()[1:]
    end = next((i for i, ln in enumerate(lines) if ln.startswith("=")), len(lines))
    assert end > 3, lines
    return lines[:end]


@pytest.mark.subprocess("xdist workers are processes of their own")
def test_same_summary_and_report_with_and_without_xdist(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary, JSON report, Markdown, JUnit properties and GitHub step
    summary of a -n 2 run are those of the same run in one process."""
    judge_server.policy = Mixed()
    pytester.makepyfile(test_mixed=MIXED)
    runs = {}
    files: dict[str, tuple[str, dict[str, dict[str, str]], str]] = {}
    for name, extra in (("plain", []), ("xdist", ["-n", "2"])):
        step = pytester.path / f"step-{name}.md"
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
        result = pytester.runpytest(
            *judge_args, *extra, f"--llmjudge-cache-dir=cache-{name}",
            f"--llmjudge-report=report-{name}.json", "--llmjudge-max-samples=4",
            f"--junitxml=junit-{name}.xml", f"--llmjudge-markdown=summary-{name}.md")
        result.assert_outcomes(passed=2, failed=2, errors=1)
        runs[name] = (result.stdout.str(), _report(pytester.path / f"report-{name}.json"))
        md = (pytester.path / f"summary-{name}.md").read_text(encoding="utf-8")
        assert step.read_text(encoding="utf-8") == md + "\n"  # once (controller)
        files[name] = (md, _junit(pytester.path / f"junit-{name}.xml"),
                       step.read_text(encoding="utf-8"))
    assert files["plain"][0].startswith("## LLM judge summary")
    assert files["plain"][1]["test_pass"]["llmjudge_outcome"] == "pass"
    assert files["plain"][1]["test_fail"]["llmjudge_outcome"] == "fail"
    for name in ("plain", "xdist"):  # confidences differ run to run: not compared
        for props in files[name][1].values():
            props.pop("llmjudge_confidence", None)
    assert files["plain"][1] == files["xdist"][1]
    (plain_out, plain), (xdist_out, xdist) = runs["plain"], runs["xdist"]
    assert _summary(plain_out) == _summary(xdist_out)
    assert "6 judged expectations: 3 pass, 1 fail, 1 inconclusive, 1 judge error, " \
        "1 flaky" in plain_out
    assert plain["summary"] == xdist["summary"]
    assert _stable(plain) == _stable(xdist)
    # Both runs pooled the same agreement for the next run (xdist workers hand
    # theirs to the controller, which saves it once they are all done).
    from pytest_llmjudge.runtime.session import JudgeSession
    from pytest_llmjudge.settings import resolve

    learned = []
    for name in ("plain", "xdist"):
        s = resolve({"cache_dir": str(pytester.path / f"cache-{name}")}, {})
        js = JudgeSession(s, pytester.path)
        learned.append(js.stats("openai/scripted-judge", "criteria"))
        js.close()
    assert learned[0] == learned[1] and learned[0][1] >= 4, learned
    outcomes = {r["nodeid"].split("::")[1]: r["outcome"] for r in plain["verdicts"]}
    assert outcomes == {"test_pass": "pass", "test_fail": "fail",
                        "test_flaky": "inconclusive", "test_judge_error": "judge_error",
                        "test_two": "pass"}


def test_report_matches_its_published_schema(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_llmjudge.reporting.outputs import SCHEMA_FILE

    judge_server.policy = Mixed()
    pytester.makepyfile(test_mixed=MIXED)
    pytester.runpytest(*judge_args, "--llmjudge-report=r.json")
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    doc = _report(pytester.path / "r.json")
    jsonschema.validate(doc, schema)  # raises on any mismatch
    broken = {**doc, "verdicts": [{**doc["verdicts"][0], "confidence": "high"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


SIMPLE = '''
from pytest_llmjudge import assert_judged

def test_sorry():
    assert_judged("Sorry! A refund is on its way.", "Apologises to the customer")

def test_rude():
    verdict = __import__("pytest_llmjudge").current_judge().check(
        "Go away.", "Apologises to the customer")
    assert verdict.outcome.value == "fail"
'''


def test_replay_without_a_record_names_the_file_and_calls_nothing(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    pytester.makepyfile(test_simple=SIMPLE)
    # No model at all, as on a fork's pull request without secrets.
    result = pytester.runpytest(
        f"--llmjudge-api-base={judge_server.base_url}", "-p", "no:cacheprovider",
        "--llmjudge-record-mode=none")
    assert judge_server.calls == 0
    result.assert_outcomes(errors=1, failed=1)
    path = pytester.path / "llmjudge_records" / "test_simple.json"
    result.stdout.fnmatch_lines([
        f"*no recorded judge reply for test_simple.py::test_sorry in {path} (key *, "
        "record mode 'none'). Record it with --llmjudge-record-mode=once (or "
        "new_episodes) and a configured judge model, then commit the file.*"])


def test_recording_on_a_warm_cache_records_and_then_replays(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = _sorry()
    pytester.makepyfile(test_simple=SIMPLE)
    pytester.runpytest(*judge_args).assert_outcomes(passed=2)
    assert judge_server.calls == 4
    # The cache already holds every reply: recording must still write them.
    for mode in ("once", "new_episodes"):
        records = pytester.path / "llmjudge_records" / "test_simple.json"
        records.unlink(missing_ok=True)
        pytester.runpytest(
            *judge_args, f"--llmjudge-record-mode={mode}").assert_outcomes(passed=2)
        assert judge_server.calls == 4, mode
        doc = _report(records)
        assert len(doc["entries"]) == 4, mode
        tests = [e["test"] for e in doc["entries"].values()]
        assert tests == sorted(tests)  # one test's replies sit together
        assert {e["model"] for e in doc["entries"].values()} == {"scripted-judge"}
    # A fresh clone: no cache, no model, replay only.
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--llmjudge-record-mode=none",
        "--llmjudge-cache-dir=fresh-clone", "--llmjudge-report=replay.json")
    result.assert_outcomes(passed=2)
    assert judge_server.calls == 4
    # The verdicts name the judge the records say answered.
    assert _report(pytester.path / "replay.json")["models"] == [
        "scripted-judge (recorded)"]


def test_replay_on_a_fresh_clone_reproduces_the_recorded_verdicts(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """Confidence depends on what the judge's agreement taught earlier runs;
    records carry those statistics so that replay elsewhere decides the same."""
    judge_server.policy = _sorry()
    many = "\n".join(f'''
def test_warm_{i}(judge):
    judge.check("sorry {i}", "Apologises to the customer")''' for i in range(8))
    pytester.makepyfile(test_warm=many)
    pytester.runpytest(*judge_args).assert_outcomes(passed=8)
    pytester.makepyfile(test_simple=SIMPLE)
    pytester.runpytest(*judge_args, "test_simple.py",
                       "--llmjudge-record-mode=all",
                       "--llmjudge-report=recorded.json")
    recorded = _report(pytester.path / "recorded.json")
    replayed_run = pytester.runpytest(
        "-p", "no:cacheprovider", "test_simple.py", "--llmjudge-record-mode=none",
        "--llmjudge-cache-dir=elsewhere", "--llmjudge-report=replayed.json")
    replayed_run.assert_outcomes(passed=2)
    replayed = _report(pytester.path / "replayed.json")
    pick = [(r["nodeid"], r["outcome"], r["confidence"]) for r in recorded["verdicts"]]
    assert pick == [(r["nodeid"], r["outcome"], r["confidence"])
                    for r in replayed["verdicts"]]
    # ... and they are not what the prior alone would give: the statistics mattered.
    cold = pytester.runpytest(*judge_args, "test_simple.py",
                              "--llmjudge-cache-dir=cold",
                              "--llmjudge-report=cold.json")
    cold.assert_outcomes(passed=2)
    cold_conf = [r["confidence"] for r in _report(pytester.path / "cold.json")["verdicts"]]
    assert cold_conf != [c for _, _, c in pick]


GATED = '''
def test_a(judge):
    judge.check("{a}", "Apologises to the customer")

def test_b(judge):
    judge.check("{b}", "{b_rubric}")
'''


def test_baseline_flags_regressions_and_keeps_doubt_apart(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = Mixed()
    pytester.makepyfile(test_gate=GATED.format(a="Sorry!", b="Sorry too.",
                                               b_rubric="Apologises to the customer"))
    pytester.runpytest(*judge_args, "--llmjudge-report=base.json"
                       ).assert_outcomes(passed=2)
    # test_a regresses (its output lost the apology); on test_b's new output the
    # judge follows the presentation order: doubt, not a regression.
    pytester.makepyfile(test_gate=GATED.format(a="No.", b="Sorry WOBBLY.",
                                               b_rubric="Apologises to the customer"))
    gate = ["--llmjudge-baseline=base.json", "--llmjudge-fail-on-regression"]
    result = pytester.runpytest(*judge_args, *gate, "--llmjudge-markdown=pr.md")
    result.assert_outcomes(passed=2)  # the tests themselves only look
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "baseline: 1 regressed, 0 improved, 0 became flaky, 1 became inconclusive "
        "(kept apart from regressions), 0 new, 0 missing",
        "  REGRESSED test_gate.py::test_a (Apologises to the customer): pass -> fail",
        "  doubt     test_gate.py::test_b (Apologises to the customer): pass -> "
        "inconclusive, position bias*",
        "*--llmjudge-fail-on-regression: 1 verdict(s) regressed from pass to fail "
        "against the baseline; the run fails*"])
    md = (pytester.path / "pr.md").read_text(encoding="utf-8")
    assert "- **Regressions (pass → fail)**: 1" in md
    assert "Became inconclusive or judge error (not counted as regressions)**: 1" in md

    # Doubt alone does not fail the gate.
    pytester.makepyfile(test_gate=GATED.format(a="Sorry!", b="Sorry WOBBLY.",
                                               b_rubric="Apologises to the customer"))
    result = pytester.runpytest(*judge_args, *gate)
    assert result.ret == pytest.ExitCode.OK
    # A gate that cannot compare fails, and says why.
    result = pytester.runpytest(*judge_args, "--llmjudge-baseline=nope.json",
                                "--llmjudge-fail-on-regression")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the baseline nope.json is unusable*the run fails*"])


def test_call_budget_stops_new_calls(pytester: pytest.Pytester,
                                     judge_server: ScriptedJudgeServer,
                                     judge_args: list[str],
                                     plugin_args: list[str]) -> None:
    pytester.makepyfile(test_many="\n".join(f'''
def test_{i}():
    __import__("pytest_llmjudge").assert_judged("Sorry {i}", "Apologises")''' for i in range(4)))
    result = pytester.runpytest(*judge_args, *plugin_args,
                                "--llmjudge-max-calls=3", "--llmjudge-max-samples=2")
    assert judge_server.calls == 3
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 1 and outcomes.get("errors", 0) == 3
    result.stdout.fnmatch_lines(["*the judge-call budget of 3 (--llmjudge-max-calls) is "
                                 "spent: no more judge calls in this run*"])


def test_max_cost_without_a_price_says_it_is_not_enforced(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = _sorry()
    pytester.makepyfile(test_simple=SIMPLE)
    result = pytester.runpytest(*judge_args, "--llmjudge-max-cost=0.01")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["note: --llmjudge-max-cost=0.01 is not enforced for "
                                 "scripted-judge: litellm knows no price for it*"])


def _junit(path: Path) -> dict[str, dict[str, str]]:
    """JUnit ``<property>`` values by test case name."""
    xml = path.read_text(encoding="utf-8")
    props = re.findall(r'<testcase [^>]*name="(\w+)"[^>]*>\s*<properties>(.*?)</properties>',
                       xml, re.DOTALL)
    return {name: dict(re.findall(r'<property name="(\w+)" value="([^"]*)"', body))
            for name, body in props}


# -n 2: test_same_summary_and_report_with_and_without_xdist (issue #14)
@IN_PROCESS
def test_junit_properties_and_step_summary(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], plugin_args: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    judge_server.policy = _sorry()
    pytester.makepyfile(test_simple=SIMPLE)
    step = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    result = pytester.runpytest(*judge_args, *plugin_args,
                                "--junitxml=junit.xml",
                                "--llmjudge-markdown=summary.md")
    result.assert_outcomes(passed=2)
    xml = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    props = re.findall(r'<testcase [^>]*name="(\w+)"[^>]*>\s*<properties>(.*?)</properties>',
                       xml)
    got = {name: dict(re.findall(r'<property name="(\w+)" value="([^"]*)"', body))
           for name, body in props}
    assert set(got) == {"test_sorry", "test_rude"}
    assert got["test_sorry"]["llmjudge_outcome"] == "pass"
    assert got["test_rude"]["llmjudge_outcome"] == "fail"
    assert 0.5 < float(got["test_sorry"]["llmjudge_confidence"]) <= 1.0
    md = (pytester.path / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("## LLM judge summary")
    assert "| pass | 1 |" in md and "| fail | 1 |" in md
    assert step.read_text(encoding="utf-8") == md + "\n"  # once, from the controller


def test_summary_follows_pytest_output_options(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = Mixed()
    pytester.makepyfile(test_mixed=MIXED)
    plain = pytester.runpytest(*judge_args, "--color=no")
    out = plain.stdout.str()
    assert "\x1b[" not in out
    # Node ids are never broken across lines, and no line ends in spaces.
    summary = out.split("- llmjudge summary -")[1]
    assert "  test_mixed.py::test_flaky  (Answers in a biased way)" in summary
    assert not [ln for ln in summary.splitlines() if ln != ln.rstrip()]
    colour = pytester.runpytest(*judge_args, "--color=yes")
    assert "\x1b[" in colour.stdout.str().split("llmjudge summary")[1]
    quiet = pytester.runpytest(*judge_args, "-q")
    q = quiet.stdout.str().split("- llmjudge summary -")[1].splitlines()
    assert q[1].startswith("6 judged expectations: 3 pass, 1 fail, 1 inconclusive, "
                           "1 judge error, 1 flaky; judge calls: ")
    verbose = pytester.runpytest(*judge_args, "-v")
    verbose.stdout.fnmatch_lines(["outcome       conf  votes  source     test",
                                  "inconclusive  0.50      6  stored     "
                                  "test_mixed.py::test_flaky"])


def test_rerecording_all_drops_replies_no_longer_asked_for(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = _sorry()
    pytester.makepyfile(test_simple=SIMPLE)
    pytester.runpytest(*judge_args, "--llmjudge-record-mode=all"
                       ).assert_outcomes(passed=2)
    records = pytester.path / "llmjudge_records" / "test_simple.json"
    before = _report(records)["entries"]
    assert len(before) == 4
    # test_sorry's output changes; test_rude is not run this time (-k).
    pytester.makepyfile(test_simple=SIMPLE.replace("Sorry! A refund", "Sorry! Refund"))
    pytester.runpytest(*judge_args, "--llmjudge-record-mode=all",
                       "-k", "sorry").assert_outcomes(passed=1, deselected=1)
    after = _report(records)["entries"]
    by_test = {t: {k for k, e in after.items() if e["test"] == t}
               for t in {e["test"] for e in after.values()}}
    rude = {k for k, e in before.items() if e["test"].endswith("test_rude")}
    assert by_test["test_simple.py::test_rude"] == rude  # kept: it did not run
    sorry = by_test["test_simple.py::test_sorry"]
    assert len(sorry) == 2 and not sorry & set(before)  # the old replies are gone
