"""Calibration: how far the configured judge agrees with people, per rubric.

The pytest-facing part: ``--llmjudge-calibrate=PATH`` reads a labels file at
start-up (``_labels``), judges every example through the normal ``Judge``
machinery (cache, records, limits) all at once before any test runs, computes
agreement, kappa and leniency (``_agreement``), stores the result keyed by the
judge configuration (``_trust``, which ``--llmjudge-min-kappa`` consults) and
prints the report (``_calibration_report``).

Imported by the plugin's hooks only when calibration is in play.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmjudge.calibration.agreement import (
    Agreement,
    CalibrationRun,
    Judged,
    summarise,
)
from pytest_llmjudge.calibration.labels import Example, labels_path, load_labels
from pytest_llmjudge.calibration.points import point, stored
from pytest_llmjudge.calibration.report import (
    not_calibrated_lines,
    report_lines,
    status_lines,
)
from pytest_llmjudge.constants import OPTION_PREFIX, PROMPT_VERSION
from pytest_llmjudge.exceptions import ConfigError
from pytest_llmjudge.judging.calibrated import comparison_canonical
from pytest_llmjudge.judging.calibrated import forget as forget_fits
from pytest_llmjudge.judging.judge import Judge
from pytest_llmjudge.judging.trust import (
    INDEX,
    NOT_CALIBRATED,
    JudgeId,
    config_key,
    digest,
    endpoint,
    forget,
    judge_id,
    rubric_ident,
)
from pytest_llmjudge.reporting.state import state_key
from pytest_llmjudge.runtime.context import holder_key
from pytest_llmjudge.settings import settings_key
from pytest_llmjudge.types import NodeInfo, PairMode

if TYPE_CHECKING:
    from pytest_llmjudge.judging.task import Task
    from pytest_llmjudge.runtime.session import JudgeSession

__all__ = ["Agreement", "CalibrationRun", "Example", "configure", "exit_status",
           "labels_path", "load_labels", "run", "summarise", "terminal_section"]

NAME = "llmjudge-calibrate"

examples_key = pytest.StashKey[list[Example]]()
result_key = pytest.StashKey[CalibrationRun]()


# ---------------------------------------------------------------- the run
def configure(config: pytest.Config, raw: str) -> None:
    """Read the labels file at start-up, so that a mistake in it is a usage error."""
    path = labels_path(config, raw)
    try:
        config.stash[examples_key] = load_labels(path)
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-llmjudge: {OPTION_PREFIX}calibrate: {exc}"
                                ) from None


def _relative(config: pytest.Config, path: Path) -> str:
    """A path as the user would type it: from the invocation folder or rootdir."""
    for base in (config.invocation_params.dir, config.rootpath):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def run(session: pytest.Session) -> CalibrationRun | None:
    """Judge every labelled example concurrently, compute and store the result."""
    config = session.config
    examples = config.stash.get(examples_key, None)
    settings = config.stash[settings_key]
    if not examples or not settings.calibrate:
        return None
    if session.testsfailed and not config.option.continue_on_collection_errors:
        return None  # collection failed: pytest stops before any test
    raw = settings.calibrate
    path = labels_path(config, raw)
    shown = _relative(config, path)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"llmjudge: calibrating the judge against {len(examples)} "
                      f"labelled examples in {shown}")
    js = config.stash[holder_key].get()
    # Calibration is never refused by the trust check it feeds.
    cal = replace(settings, min_kappa=None)
    pairs: list[tuple[Example, Judge, Task]] = []
    for ex in examples:
        judge = Judge(js, cal, NodeInfo(f"{NAME}::{shown}::{ex.id}", str(path)))
        try:
            if ex.pair:  # both orders, as every comparison
                task = judge.pair_task(ex.a, ex.b, ex.rubric, mode=PairMode.COMPARE,
                                       input=ex.input, reference=ex.reference,
                                       context=ex.context, expected=ex.expected)
            else:
                task = judge.task(ex.output, ex.rubric, input=ex.input,
                                  reference=ex.reference, context=ex.context,
                                  expected=ex.expected)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-llmjudge: {OPTION_PREFIX}calibrate: "
                                    f"{ex.where}: {exc}") from None
        pairs.append((ex, judge, task))

    async def judge_all() -> list[Any]:
        return list(await asyncio.gather(*(j.run(t) for _, j, t in pairs),
                                         return_exceptions=True))

    results = js.loop.run(judge_all())
    items: list[Judged] = []
    for (ex, judge, task), res in zip(pairs, results, strict=True):
        if isinstance(res, ConfigError):
            raise pytest.UsageError(f"pytest-llmjudge: {OPTION_PREFIX}calibrate: "
                                    f"{res}") from None
        if isinstance(res, BaseException):
            items.append(Judged(ex, task, None, f"{type(res).__name__}: {res}"))
        else:
            j = Judged(ex, task, res)
            models = task.settings.models
            a = judge.agreement_accuracy(models[0], task.kind) \
                if len(models) == 1 else 0.5
            human = ex.winner if ex.pair else j.human
            items.append(replace(j, point=point(task, res, human, a)))
    # Stored under the identity --llmjudge-min-kappa checks (also replay-only).
    who = judge_id(settings)
    result = summarise(shown, who.models, items, settings.min_confidence,
                       settings.min_kappa, who.api_base)
    store(js, result)
    config.stash[result_key] = result
    return result


def terminal_section(tr: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The calibration report, or the stored calibrations' status, and the
    rubrics --llmjudge-min-kappa found not calibrated (controller)."""
    if hasattr(config, "workerinput"):
        return
    settings = config.stash[settings_key]
    result = config.stash.get(result_key, None)
    state = config.stash.get(state_key, None)
    records = state.records if state else []
    notes = sorted({w for r in records for w in (r.get("warnings") or [])
                    if w.startswith(NOT_CALIBRATED)})
    if result is None and (not (records or settings.min_kappa is not None) or (
            not settings.models and settings.record_mode != "none")):
        return  # nothing judged, or no judge to say anything about
    js = config.stash[holder_key].get()
    who = judge_id(settings)
    folder = _relative(config, js.cache_dir / "meta")
    if result is not None:
        lines = report_lines(result)
    else:
        lines = status_lines(js, who, settings.min_kappa, folder, notes)
    lines += not_calibrated_lines(notes, who, folder)
    if not lines:
        return
    tr.write_sep("=", "llmjudge calibration")
    for line in lines:
        bad = "NOT TRUSTED" in line or "NOT CALIBRATED" in line
        tr.write_line(line, red=bad)


def exit_status(session: pytest.Session) -> None:
    """A calibration below --llmjudge-min-kappa fails the run, even if no test
    used that rubric."""
    result = session.config.stash.get(result_key, None)
    if result is not None and result.untrusted() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def store(session: JudgeSession, run: CalibrationRun) -> None:
    """Keep each rubric's result beside the cache, keyed by the judge configuration."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    who = JudgeId(run.models, run.api_base)
    for g in run.groups:
        t = g.trust
        canonical = g.rubric.canonical()
        session.meta.set(f"calibration:{config_key(who, canonical)}", {
            "kappa": t.kappa, "agreement": t.agreement, "examples": t.n,
            "decided": t.decided, "judge_pass_rate": t.judge_pass_rate,
            "human_pass_rate": t.human_pass_rate, "models": sorted(run.models),
            "prompt_version": PROMPT_VERSION, "rubric": g.name, "labels": run.shown,
            "when": when, "confidence": stored(j.point for j in g.items)})
        ident = rubric_ident(g.rubric)
        session.meta.set(f"calibration-rubric:{ident}", {
            "name": g.name, "canonical": canonical, "hash": digest(canonical),
            "models": sorted(run.models), "endpoint": endpoint(who),
            "prompt_version": PROMPT_VERSION, "labels": run.shown, "when": when})
        session.meta.add(INDEX, {ident: 1.0})
    for p in run.pairs:
        # Apart from the rubric's pass/fail calibration (--llmjudge-min-kappa
        # does not judge comparisons): only calibrated confidence reads it.
        key = config_key(who, comparison_canonical(p.rubric.canonical()))
        session.meta.set(f"calibration:{key}", {
            **p.agreement.to_json(), "comparison": True, "models": sorted(run.models),
            "prompt_version": PROMPT_VERSION, "rubric": p.name, "labels": run.shown,
            "when": when, "confidence": stored(j.point for j in p.items)})
    forget(session)
    forget_fits(session)
    run.stored = True
