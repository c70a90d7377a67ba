"""Run-level reporting: verdict records on test reports, counters, the summary.

Every verdict travels on its test's report (``report.llmjudge``), which
pytest-xdist serializes to the controller, so the controller sees the same
records with or without xdist. Session counters (calls, cache hits, tokens,
cost, peak calls in flight) go through ``workeroutput`` and are merged in
``pytest_testnodedown``. The report computes; the hook prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmjudge.reporting.state import RunState, state_key
from pytest_llmjudge.runtime.context import TestContext, holder_key
from pytest_llmjudge.settings import settings_key

if TYPE_CHECKING:
    from pytest_llmjudge.runtime.session import JudgeSession

def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class _Collector:
    """Controller-side hooks: gather records from reports, counters from workers."""

    def __init__(self, state: RunState, config: pytest.Config):
        self.state = state
        self.config = config
        self.shown: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        recs = getattr(report, "llmjudge", None)
        if isinstance(recs, list):
            self.state.records.extend(r for r in recs if isinstance(r, dict))
        notices = getattr(report, "llmjudge_notices", None)
        if isinstance(notices, list):
            # Said while the run goes on (the summary repeats it as a note).
            tr = self.config.pluginmanager.get_plugin("terminalreporter")
            for n in notices:
                if tr is not None and n not in self.shown:
                    self.shown.add(n)
                    tr.ensure_newline()
                    tr.write_line(f"llmjudge: {n}", yellow=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", {}).get("llmjudge")
        if isinstance(out, dict):
            self.state.merge(out)


def register(config: pytest.Config) -> None:
    if not _is_worker(config):
        config.pluginmanager.register(_Collector(config.stash[state_key], config),
                                      "llmjudge-collector")


def attach(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None],
           ctx: TestContext) -> None:
    """Put this phase's verdict records on ``report`` (JSON-able only), and the
    JUnit properties on ``item``: pytest's junitxml reads them from the teardown
    report, which is built from ``item.user_properties``."""
    from pytest_llmjudge.exceptions import (
        JudgedAssertionError,
        JudgeNotConfiguredError,
        JudgeOutcomeError,
    )

    js = ctx.holder.built
    notices = js.watch.take_notices() if js is not None else []
    if notices:  # a slow judge, found on the judge loop: shown by the controller
        report.llmjudge_notices = notices  # type: ignore[attr-defined]
    recs = list(ctx.records)
    ctx.records.clear()
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, JudgeOutcomeError):
        report.llmjudge_status = "judge_error"  # type: ignore[attr-defined]
    elif isinstance(exc, JudgeNotConfiguredError):
        report.llmjudge_status = "not_configured"  # type: ignore[attr-defined]
    elif isinstance(exc, JudgedAssertionError) and \
            exc.verdict.outcome.value == "inconclusive":
        report.llmjudge_status = "inconclusive"  # type: ignore[attr-defined]
    if not recs:
        return
    if report.when == "call" and report.passed and any(
            r["outcome"] == "inconclusive" for r in recs):
        # inconclusive=warn let it pass: say so on the test's own line.
        report.llmjudge_status = "passed_inconclusive"  # type: ignore[attr-defined]
    # Scrubbed where they were made (JudgeSession.record); every file and line
    # written from them (JSON report, Markdown, summary) scrubs again on the
    # way out, so no second pass here.
    report.llmjudge = recs  # type: ignore[attr-defined]
    for r in recs:
        junit_properties(item.user_properties, r)


def junit_properties(props: list[tuple[str, object]], r: dict[str, Any]) -> None:
    """A verdict as JUnit properties: the rubric name first, so that a test with
    several verdicts reads as groups; then outcome, score, confidence and one
    property per criterion."""
    props.append(("llmjudge_rubric", r.get("rubric", "")))
    props.append(("llmjudge_outcome", r["outcome"]))
    if r.get("expect") == "fail":
        props.append(("llmjudge_expect", "fail (negative control)"))
    if r.get("score") is not None:
        props.append(("llmjudge_score", f"{r['score']:.3f}"))
    if r.get("pass_mark") is not None:
        props.append(("llmjudge_pass_mark", f"{r['pass_mark']:.3f}"))
    props.append(("llmjudge_confidence", f"{r['confidence']:.3f}"))
    for c in r.get("criteria") or []:
        mark = {True: "pass", False: "fail", None: "undecided"}[c.get("passed")]
        props.append(("llmjudge_criterion", f"{c.get('name')}: {mark}, votes "
                      f"{c.get('pass_votes', 0)} pass / {c.get('fail_votes', 0)} "
                      f"fail, confidence {c.get('confidence', 0):.2f}"))


def teststatus(report: pytest.TestReport) -> tuple[str, str, Any] | None:
    status = getattr(report, "llmjudge_status", None)
    if report.when != "call" or status is None:
        return None
    if status == "passed_inconclusive" and report.passed:
        return "passed", "i", ("PASSED (inconclusive)", {"yellow": True})
    if not report.failed:
        return None
    if status == "judge_error":
        return "error", "E", ("JUDGE ERROR", {"red": True})
    if status == "not_configured":
        return "error", "E", ("ERROR", {"red": True})
    return "failed", "?", ("INCONCLUSIVE", {"yellow": True})


def finish(session: pytest.Session) -> None:
    config = session.config
    holder = config.stash.get(holder_key, None)
    js: JudgeSession | None = holder.built if holder else None
    if js is not None:
        warn_problems(js)
    out = {"counters": dict(js.counters) if js else {}, "cost_known":
           bool(js and js.cost_known), "peak": js.peak_in_flight if js else 0,
           "notes": list(js.notes) if js else [],
           # A worker's learned agreement goes home, not to disk: written now,
           # it would reach another worker that has not judged yet, whose
           # verdicts would then depend on which worker finished first.
           "learned": js.take_learned() if js and _is_worker(config) else {}}
    if _is_worker(config):
        config.workeroutput["llmjudge"] = out  # type: ignore[attr-defined]
        return
    state = config.stash[state_key]
    if js is not None:
        state.merge(out)
    if state.learned and holder is not None:
        holder.get().add_learned(state.learned)  # saved when the session closes
    settings = config.stash[settings_key]
    from pytest_llmjudge.reporting.outputs import write_outputs

    write_outputs(config, settings, state, session)


def warn_problems(js: JudgeSession) -> None:
    """Warn once per storage problem, at the session's end (outside any test,
    so ``filterwarnings = error`` cannot fail judged tests for it). Where the
    filters make warnings errors, the judge summary's note says it instead."""
    import warnings

    from pytest_llmjudge.exceptions import LLMJudgeWarning

    for kind, message in js.take_problems():
        try:
            warnings.warn(kind(message), stacklevel=1)
        except LLMJudgeWarning:
            pass


def terminal_summary(tr: pytest.TerminalReporter, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    state = config.stash.get(state_key, None)
    if state is None or (not state.records and not state.counters["calls"]):
        return
    from pytest_llmjudge.reporting.summary import JudgeReport

    JudgeReport(state, config).write(tr)
