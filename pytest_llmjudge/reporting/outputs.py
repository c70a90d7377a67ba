"""Machine-readable outputs written at the end of a run: the JSON report, the
Markdown summary for pull requests, and the comparison with a baseline report.

The baseline is an earlier JSON report (the base branch's). Verdicts are
matched by test node id, rubric and their order within the test, so a prompt
change that changes the output still lines up with its predecessor.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmjudge.constants import PROMPT_VERSION
from pytest_llmjudge.exceptions import BaselineWarning
from pytest_llmjudge.storage.atomic import write_json, write_text
from pytest_llmjudge.text import scrub

if TYPE_CHECKING:
    from pytest_llmjudge.reporting.state import RunState
    from pytest_llmjudge.settings import Settings

REPORT_SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")


def report_doc(state: RunState) -> dict[str, Any]:
    from pytest_llmjudge.reporting.summary import JudgeReport

    verdicts = sorted(state.records, key=lambda r: (r["nodeid"], r.get("key", "")))
    return {
        "$schema": "report.schema.json",
        "schema_version": REPORT_SCHEMA_VERSION,
        "prompt_version": PROMPT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "models": sorted({r.get("model", "") for r in verdicts if r.get("model")}),
        "summary": JudgeReport(state).data(),
        "verdicts": verdicts,
    }


def _slots(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    seen: Counter[tuple[str, str]] = Counter()
    out = {}
    for r in sorted(records, key=lambda r: (r.get("nodeid", ""), r.get("seq", 0))):
        k = (str(r.get("nodeid", "")), str(r.get("rubric", "")))
        out[(k[0], k[1], seen[k])] = r
        seen[k] += 1
    return out


def compare_baseline(base: list[dict[str, Any]], now: list[dict[str, Any]]
                     ) -> dict[str, list[dict[str, Any]]]:
    """Regressions (pass -> fail) apart from verdicts that became flaky,
    inconclusive or judge errors, which are doubt, not evidence of a regression."""
    b, n = _slots(base), _slots(now)
    diff: dict[str, list[dict[str, Any]]] = {
        "regressions": [], "improvements": [], "became_flaky": [],
        "became_inconclusive": [], "new": [], "missing": []}
    for slot, cur in n.items():
        old = b.get(slot)
        row = {"nodeid": slot[0], "rubric": slot[1], "now": cur["outcome"],
               "was": old["outcome"] if old else None,
               "confidence": cur.get("confidence"),
               "flaky_reason": cur.get("flaky_reason")}
        if old is None:
            diff["new"].append(row)
            continue
        was, is_ = old["outcome"], cur["outcome"]
        # What the test wants: a pass, or for a negative control a fail. A
        # negative control the judge starts to pass is a regression.
        good = "fail" if cur.get("expect") == "fail" else "pass"
        bad = "pass" if good == "fail" else "fail"
        row["expect"] = good
        if is_ in ("inconclusive", "judge_error") and was != is_:
            diff["became_inconclusive"].append(row)
        elif was == good and is_ == bad:
            diff["regressions"].append(row)
        elif cur.get("flaky") and not old.get("flaky"):
            diff["became_flaky"].append(row)
        elif was in (bad, "inconclusive") and is_ == good:
            diff["improvements"].append(row)
    diff["missing"] = [{"nodeid": s[0], "rubric": s[1], "was": r["outcome"]}
                       for s, r in b.items() if s not in n]
    return diff


def load_baseline(path: Path, notes: list[str] | None = None
                  ) -> list[dict[str, Any]] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        verdicts = doc["verdicts"]
        if not isinstance(verdicts, list):
            raise TypeError("'verdicts' is not a list")
        return [v for v in verdicts if isinstance(v, dict)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        message = f"baseline report {path} is unusable ({exc}); no comparison made"
        try:
            warnings.warn(BaselineWarning(message), stacklevel=2)
        except BaselineWarning:
            # filterwarnings = error: at session end a raised warning would
            # crash the run before its summary; the summary says it instead.
            if notes is not None:
                notes.append(f"BaselineWarning: {message}")
        return None


def markdown(state: RunState) -> str:
    from pytest_llmjudge.reporting.summary import OUTCOMES, JudgeReport, met

    rep = JudgeReport(state)
    d = rep.data()
    lines = ["## LLM judge summary", "", rep.headline(d) + ".", "",
             "| outcome | count |", "|---|---:|"]
    lines += [f"| {o.replace('_', ' ')} | {d['outcomes'][o]} |" for o in OUTCOMES]
    bad = [r for r in state.records if not met(r)]
    if bad:
        lines += ["", "### Not passing", "", "| test | outcome | confidence | why |",
                  "|---|---|---:|---|"]
        for r in bad:
            neg = r.get("expect") == "fail"
            why = r.get("error") or r.get("flaky_reason") or "; ".join(
                f"{c['name']}: {c.get('reasoning', '')}" for c in r.get("criteria", [])
                if (c.get("passed") is not True) != neg)
            if neg and r["outcome"] == "pass":
                why = f"negative control passed (the judge should reject it). {why}"
            lines.append(f"| `{r['nodeid']}` | {r['outcome']} | {r['confidence']:.2f} "
                         f"| {_cell(why)} |")
    lines += _criteria_table(state.records)
    if d["flaky"]:
        lines += ["", "### Flaky verdicts", ""]
        lines += [f"- `{f['nodeid']}`: {_cell(f['reason'])}" for f in d["flaky"]]
    if state.baseline is not None:
        lines += ["", "### Compared with the baseline", ""]
        for key, title in (("regressions", "Regressions (pass → fail)"),
                           ("improvements", "Improvements"),
                           ("became_flaky",
                            "Became flaky (not counted as regressions)"),
                           ("became_inconclusive", "Became inconclusive or judge error "
                            "(not counted as regressions)"),
                           ("new", "New verdicts"), ("missing", "Missing verdicts")):
            rows = state.baseline[key]
            lines.append(f"- **{title}**: {len(rows)}")
            lines += [f"  - `{r['nodeid']}` ({_cell(r['rubric'])}): {r.get('was')} → "
                      f"{r.get('now', 'gone')}" for r in rows[:20]]
    if state.gate:
        lines += ["", f"**{state.gate}**"]
    lines += ["", rep.usage_line(d), ""]
    return "\n".join(lines)


#: Rows of the per-criterion table at most (a big suite links the JSON report).
CRITERIA_ROWS = 200


def _criteria_table(records: list[dict[str, Any]]) -> list[str]:
    """Every verdict's criteria: name, result, votes, confidence, score."""
    rows = []
    for r in sorted(records, key=lambda r: (r.get("nodeid", ""), r.get("seq", 0))):
        for c in r.get("criteria") or []:
            mark = {True: "pass", False: "fail", None: "undecided"}[c.get("passed")]
            score = (f"{r['level']:.2f}" if r.get("kind") == "scale"
                     and r.get("level") is not None else "")
            rows.append(f"| `{r['nodeid']}` | {_cell(r.get('rubric'))} | "
                        f"{_cell(c.get('name'))} | {mark} | {c.get('pass_votes', 0)}/"
                        f"{c.get('fail_votes', 0)} | {c.get('confidence', 0):.2f} | "
                        f"{score} |")
    if not rows:
        return []
    out = ["", "### Criteria", "", "| test | rubric | criterion | result | votes "
           "pass/fail | confidence | score |", "|---|---|---|---|---|---:|---:|"]
    out += rows[:CRITERIA_ROWS]
    if len(rows) > CRITERIA_ROWS:
        out.append(f"\n{len(rows) - CRITERIA_ROWS} more rows in the JSON report.")
    return out


def _cell(text: object) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")[:300]


def _path(config: pytest.Config, value: str) -> Path:
    """A path flag's value: absolute, or from where pytest was started (as
    ``--junitxml`` is), not from the rootdir."""
    p = Path(value)
    return p if p.is_absolute() else config.invocation_params.dir / p


def write_outputs(config: pytest.Config, settings: Settings, state: RunState,
                  session: pytest.Session) -> None:
    """Compare with the baseline, then write the JSON report and Markdown."""
    passing_so_far = session.exitstatus == pytest.ExitCode.OK
    if settings.baseline:
        base = load_baseline(_path(config, settings.baseline), state.notes)
        if base is not None:
            state.baseline = compare_baseline(base, state.records)
            n = len(state.baseline["regressions"])
            if settings.fail_on_regression and n:
                state.gate = (f"--llmjudge-fail-on-regression: {n} verdict(s) "
                              "regressed from pass to fail against the baseline; "
                              "the run fails")
        elif settings.fail_on_regression:
            # A gate that cannot compare must not open silently.
            state.gate = (f"--llmjudge-fail-on-regression: the baseline "
                          f"{settings.baseline} is unusable (see the warning), so "
                          "regressions cannot be ruled out; the run fails")
        if state.gate and passing_so_far:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if settings.report:
        write_json(_path(config, settings.report), report_doc(state))
    if not state.records and not settings.markdown:
        return
    md = scrub(markdown(state)) if (settings.markdown or os.environ.get(
        "GITHUB_STEP_SUMMARY")) else ""
    if settings.markdown:
        write_text(_path(config, settings.markdown), md)
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step and state.records:
        with open(step, "a", encoding="utf-8") as f:
            f.write(md + "\n")
