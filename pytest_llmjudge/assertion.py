"""``assert_judged`` and the failure message, the product's face."""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._context import SessionHolder, TestContext, active
from .exceptions import JudgedAssertionError, JudgeOutcomeError
from .judge import Judge
from .session import JudgeSession
from .settings import resolve
from .verdict import Outcome, Verdict


class JudgeInconclusiveWarning(UserWarning):
    """A judged expectation was inconclusive and ``inconclusive=warn`` let it pass."""


def _standalone_session() -> JudgeSession:
    return JudgeSession(resolve({}, {}), Path(os.getcwd()))


#: Outside a pytest test (a script, a notebook): settings from the environment.
_standalone = SessionHolder(_standalone_session)


def current_judge() -> Judge:
    """The judge configured for the running test (settings and marker applied)."""
    ctx = active.get()
    if ctx is None:
        s = _standalone.get()
        ctx = TestContext(_standalone, None, s.settings)
    return Judge(ctx.holder.get(), ctx.settings, ctx.node)


def assert_judged(
    output: object,
    rubric: object = None,
    *,
    input: object = None,
    reference: object = None,
    context: object = None,
    threshold: float | None = None,
    model: str | Sequence[str] | None = None,
    better_than: object = None,
    at_least_as_good_as: object = None,
    generated_by: str | None = None,
    **judge_options: Any,
) -> Verdict:
    """Assert that a judge finds ``output`` meets ``rubric``.

    Args:
        output: The text to judge (dicts, lists and pydantic models are judged
            as JSON).
        rubric: A string, list of strings, ``Rubric``, ``Scale`` or rubric file.
        input: The prompt or user message that produced ``output``.
        reference: A known good answer, for guidance.
        context: Source material the output must be faithful to.
        threshold: Weighted share of optional criteria that must pass.
        model: Judge model (or list of models: a jury) for this call.
        better_than: Baseline output that ``output`` must beat (pairwise).
        at_least_as_good_as: Baseline output that ``output`` must not lose to.
        generated_by: Model that wrote ``output``; warns on self-judging.
        **judge_options: Per-call settings (``min_samples``, ``max_samples``,
            ``min_confidence``, ``temperature``, ``inconclusive``, ...).

    Returns:
        The ``Verdict`` when it passes (or is inconclusive under ``warn``).

    Raises:
        JudgedAssertionError: The verdict is a fail (or inconclusive under
            ``fail``).
        JudgeOutcomeError: The judge failed (``judge_error``); not a test failure.
    """
    __tracebackhide__ = True
    judge = current_judge()
    if better_than is not None and at_least_as_good_as is not None:
        raise TypeError("give better_than or at_least_as_good_as, not both")
    if better_than is not None or at_least_as_good_as is not None:
        baseline = better_than if better_than is not None else at_least_as_good_as
        mode = "better" if better_than is not None else "not_worse"
        if threshold is not None:
            raise TypeError("threshold does not apply to comparisons")
        task = judge.pair_task(output, baseline, rubric, mode=mode, input=input,
                               context=context, model=model, generated_by=generated_by,
                               **judge_options)
    else:
        if rubric is None:
            raise TypeError("assert_judged needs a rubric: what must be true of the "
                            "output (or better_than=/at_least_as_good_as= a baseline)")
        task = judge.task(output, rubric, input=input, reference=reference,
                          context=context, threshold=threshold, model=model,
                          generated_by=generated_by, **judge_options)
    verdict = judge.session.loop.run(judge.run(task))
    return settle(verdict, task.settings.inconclusive)


def settle(verdict: Verdict, inconclusive: str) -> Verdict:
    """Turn a verdict into the test's fate (raise, xfail, skip, warn or return)."""
    __tracebackhide__ = True
    import pytest

    if verdict.outcome is Outcome.PASS:
        return verdict
    message = format_verdict(verdict)
    if verdict.outcome is Outcome.JUDGE_ERROR:
        raise JudgeOutcomeError(message, verdict)
    if verdict.outcome is Outcome.INCONCLUSIVE:
        if inconclusive == "xfail":
            pytest.xfail(message)
        if inconclusive == "skip":
            pytest.skip(message)
        if inconclusive == "warn":
            warnings.warn(JudgeInconclusiveWarning(message), stacklevel=3)
            return verdict
    raise JudgedAssertionError(message, verdict)


def settle_expectations(pending: list[Any], error: BaseException | None = None
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
    import pytest

    items, pending[:] = list(pending), []
    done: list[tuple[Any, Verdict]] = []
    crash: Exception | None = None
    for e in items:
        try:
            done.append((e, e.future.result()))
        except Exception as exc:  # e.g. a misspelt model: raised once all are in
            crash = crash or _at(exc, e.index, e.where)
    failed, errors, soft = [], [], []
    for e, v in done:
        action = e.task.settings.inconclusive
        if v.outcome is Outcome.FAIL or (v.outcome is Outcome.INCONCLUSIVE
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
            warnings.warn(JudgeInconclusiveWarning(message), stacklevel=2)
    if "xfail" in actions:
        pytest.xfail(_unmet_message(len(items), soft))
    if "skip" in actions:
        pytest.skip(_unmet_message(len(items), soft))


def _at(exc: Exception, index: int, where: str) -> Exception:
    """``exc`` saying which expectation (and its file:line) it came from."""
    from .exceptions import ConfigError

    if isinstance(exc, ConfigError):
        try:
            return type(exc)(f"expectation {index} at {where}: {exc}")
        except TypeError:  # an exception class with another signature
            pass
    return exc


def _unmet_message(total: int, unmet: list[tuple[Any, Verdict]]) -> str:
    lines = [f"judged: {len(unmet)} of {total} expectation(s) not met"]
    for e, v in unmet:
        lines.append(f"expectation {e.index} at {e.where}:")
        lines.append(textwrap.indent(format_verdict(v), "  "))
    return "\n".join(lines)


def headline(v: Verdict) -> str:
    word = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE",
            "judge_error": "JUDGE ERROR"}[v.outcome.value]
    if v.kind == "pairwise":
        what = f"winner {v.winner or 'undecided'}"
    elif v.kind == "scale":
        what = f"level {v.level:.1f}" if v.level is not None else "no level"
    elif v.criteria:
        ok = sum(1 for c in v.criteria if c.passed)
        what = f"{ok}/{len(v.criteria)} criteria passed"
    else:
        what = "no verdict" if v.outcome is Outcome.JUDGE_ERROR else "no judge call"
    extra = ", flaky" if v.flaky else ""
    return f"judged: {word} {what} (confidence {v.confidence:.2f}{extra})"


def format_verdict(v: Verdict) -> str:
    """A verdict for a plain terminal: summary line first, then why."""
    lines = [headline(v), f"  rubric: {v.rubric}"]
    if v.error:
        lines.append(f"  judge error: {v.error}")
    for c in v.criteria:
        mark = {True: "pass", False: "FAIL", None: "????"}[c.passed]
        req = "" if c.required else " (optional)"
        lines.append(f"  [{mark}] {c.name}{req}: votes {c.pass_votes} pass / "
                     f"{c.fail_votes} fail, confidence {c.confidence:.2f}")
        if c.reasoning and c.passed is not True:
            lines += textwrap.wrap(c.reasoning, 88, initial_indent="         judge: ",
                                   subsequent_indent="                ")
    if v.kind == "pairwise" and v.votes:
        winners = ", ".join(f"{x.order}: {x.winner}" for x in v.votes if x.winner)
        lines.append(f"  votes: {winners}")
    if v.jury is not None:
        members = ", ".join(
            f"{m.model}={m.winner or m.outcome.value} ({m.confidence:.2f})"
            for m in v.jury.members)
        failed = f"; failed: {', '.join(v.jury.failed)}" if v.jury.failed else ""
        lines.append(f"  jury: {members}; agreement {v.jury.agreement:.0%}{failed}")
    if v.flaky_reason:
        lines.append(f"  flaky: {v.flaky_reason}")
    for w in v.warnings:
        lines.append(f"  note: {w}")
    src = "cache/records" if v.cached else f"{v.calls} call(s)"
    lines.append(f"  judge: {v.model or '-'}; {v.samples} presentation(s), {src}")
    if v.excerpt:
        body = v.excerpt.replace("\n", " ")
        lines += textwrap.wrap(body, 88, initial_indent="  output: ",
                               subsequent_indent="          ")
    return "\n".join(lines)
