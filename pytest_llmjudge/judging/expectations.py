"""Turning verdicts into a test's fate: one verdict (``settle``) or all of a
test's soft checks at once (``settle_expectations``)."""

from __future__ import annotations

import textwrap
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from pytest_llmjudge.exceptions import (
    ConfigError,
    JudgedAssertionError,
    JudgeInconclusiveWarning,
    JudgeOutcomeError,
    warn_at_caller,
)
from pytest_llmjudge.judging.message import format_verdict
from pytest_llmjudge.verdict import Outcome, Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.judging.task import Task


@dataclass(frozen=True)
class Expectation:
    """A soft check in flight: its task and the future of its verdict."""

    index: int
    where: str  # file:line of the expect() call
    task: Task
    future: Future[Verdict]


def settle(verdict: Verdict, inconclusive: str) -> Verdict:
    """Turn a verdict into the test's fate (raise, xfail, skip, warn or return)."""
    __tracebackhide__ = True


    if verdict.met:  # a pass, or a negative control's fail
        return verdict
    message = format_verdict(verdict)
    if verdict.outcome is Outcome.JUDGE_ERROR:
        raise JudgeOutcomeError(message, verdict)
    if verdict.outcome is Outcome.INCONCLUSIVE and tolerated(message, inconclusive):
        return verdict
    raise JudgedAssertionError(message, verdict)


def tolerated(message: str, action: str) -> bool:
    """What ``inconclusive=`` does to an inconclusive result: xfail or skip the
    test (raises), warn (True: the caller returns), or fail (False)."""
    __tracebackhide__ = True
    if action == "xfail":
        pytest.xfail(message)
    if action == "skip":
        pytest.skip(message)
    if action == "warn":
        warn_at_caller(JudgeInconclusiveWarning(message))
        return True
    return False


def settle_expectations(pending: list[Expectation], error: BaseException | None = None
                        ) -> None:
    """Settle a test's soft checks (``judge.expect``) together when its body ends.

    Waits for every verdict, then raises once for all unmet expectations:
    ``JudgedAssertionError`` if any failed (or was inconclusive under
    ``inconclusive=fail``), else ``JudgeOutcomeError`` for judge errors. When
    nothing failed, inconclusive ones under warn/xfail/skip act as in
    ``assert_judged``. If the body itself raised (``error``), nothing more is
    raised: the unmet expectations are added to that error as a note.
    """
    __tracebackhide__ = True


    items, pending[:] = list(pending), []
    done: list[tuple[Expectation, Verdict]] = []
    crash: Exception | None = None
    for e in items:
        try:
            done.append((e, e.future.result()))
        except Exception as exc:  # e.g. a misspelt model: raised once all are in
            crash = crash or _at(exc, e.index, e.where)
    failed, errors, soft = [], [], []
    for e, v in done:
        action = e.task.settings.inconclusive
        decisive = v.outcome in (Outcome.PASS, Outcome.FAIL)
        if (decisive and not v.met) or (v.outcome is Outcome.INCONCLUSIVE
                                        and action == "fail"):
            failed.append((e, v))
        elif v.outcome is Outcome.JUDGE_ERROR:
            errors.append((e, v))
        elif v.outcome is Outcome.INCONCLUSIVE:
            soft.append((e, v))
    message = _unmet_message(len(items), failed + errors)
    if error is not None:
        if failed + errors and hasattr(error, "add_note"):
            error.add_note(message)
        return
    if crash is not None:
        raise crash.with_traceback(None)
    if failed:
        raise JudgedAssertionError(message, failed[0][1])
    if errors:
        raise JudgeOutcomeError(message, errors[0][1])
    actions = {e.task.settings.inconclusive for e, _ in soft}
    for e, v in soft:
        if e.task.settings.inconclusive == "warn":
            message = _unmet_message(len(items), [(e, v)])
            warn_at_caller(JudgeInconclusiveWarning(message))
    if "xfail" in actions:
        pytest.xfail(_unmet_message(len(items), soft))
    if "skip" in actions:
        pytest.skip(_unmet_message(len(items), soft))


def _at(exc: Exception, index: int, where: str) -> Exception:
    """``exc`` saying which expectation (and its file:line) it came from."""
    if isinstance(exc, ConfigError):
        try:
            return type(exc)(f"expectation {index} at {where}: {exc}")
        except TypeError:  # an exception class with another signature
            pass
    return exc


def _unmet_message(total: int, unmet: list[tuple[Expectation, Verdict]]) -> str:
    lines = [f"judged: {len(unmet)} of {total} expectation(s) not met"]
    for e, v in unmet:
        lines.append(f"expectation {e.index} at {e.where}:")
        lines.append(textwrap.indent(format_verdict(v), "  "))
    return "\n".join(lines)


