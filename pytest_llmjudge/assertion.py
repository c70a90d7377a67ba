"""``assert_judged``: the product's face. It validates the call, judges, and
turns the verdict into the test's fate (``judging.expectations.settle``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmjudge.judging import rank
from pytest_llmjudge.judging.expectations import settle
from pytest_llmjudge.judging.judge import Judge
from pytest_llmjudge.runtime.context import SessionHolder, TestContext, current
from pytest_llmjudge.runtime.session import JudgeSession
from pytest_llmjudge.settings import resolve
from pytest_llmjudge.verdict import Verdict


def _standalone_session() -> JudgeSession:
    js = JudgeSession(resolve({}, {}), Path(os.getcwd()))
    for kind, message in js.take_problems():  # no session end to wait for
        warnings.warn(kind(message), stacklevel=3)
    return js


#: Outside a pytest test (a script, a notebook): settings from the environment.
_standalone = SessionHolder(_standalone_session)


def current_judge() -> Judge:
    """The judge configured for the running test (settings and marker applied)."""
    ctx = current()
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
    model: str | Sequence[str] | Callable[..., Any] | None = None,
    better_than: object = None,
    at_least_as_good_as: object = None,
    generated_by: str | None = None,
    expected: object = None,
    min_score: float | None = None,
    pass_score: float | None = None,
    expect: str = "pass",
    best_of: Sequence[object] | None = None,
    **judge_options: Any,
) -> Verdict:
    """Assert that a judge finds ``output`` meets ``rubric``.

    Args:
        output: The text to judge (dicts, lists and pydantic models are judged
            as JSON).
        rubric: A string, list of strings, ``Rubric``, ``Scale`` or rubric file.
        input: The prompt or user message that produced ``output``.
        reference: An example of a good answer, for guidance only.
        context: Source material the output must be faithful to.
        threshold: Share of the optional criteria that must pass (on a
            ``Scale``: the pass mark on its 0..1 normalised score).
        model: Judge model, a list of models (a jury), or a Python callable
            that takes the messages and returns the reply text.
        better_than: Baseline output that ``output`` must beat (pairwise).
        at_least_as_good_as: Baseline output that ``output`` must not lose to.
        generated_by: Model that wrote ``output``; warns on self-judging.
        expected: The correct answer: ``output`` must agree with it on the
            facts (ground truth, unlike ``reference``).
        min_score: Pass mark on the verdict's 0..1 score: the weighted share of
            all criteria (plain-string criteria then count as optional), or a
            scale's normalised score.
        pass_score: A scale's pass mark in its own units (e.g. 7 on 0..10).
        expect: "fail" for a negative control: the test passes only when the
            judge rejects ``output``.
        best_of: Baseline outputs that ``output`` must each beat (one
            comparison per baseline, both orders, concurrently); returns the
            least confident of those verdicts.
        **judge_options: Per-call settings (``min_samples``, ``max_samples``,
            ``min_confidence``, ``temperature``, ``inconclusive``,
            ``instructions``, ``examples``, ...).

    Returns:
        The ``Verdict`` when it is what the test expects (or inconclusive
        under ``warn``).

    Raises:
        JudgedAssertionError: The verdict is a fail (for a negative control: a
            pass), or inconclusive under ``fail``.
        JudgeOutcomeError: The judge failed (``judge_error``); not a test failure.
    """
    __tracebackhide__ = True
    judge = current_judge()
    if best_of is not None:  # issue #13: "the new prompt's answer must win"
        batch = rank.best_of_tasks(judge, output, best_of, rubric, dict(
            input=input, reference=reference, context=context, threshold=threshold,
            model=model, better_than=better_than,
            at_least_as_good_as=at_least_as_good_as, generated_by=generated_by,
            expected=expected, min_score=min_score, pass_score=pass_score,
            expect=expect, **judge_options))
        verdicts = judge.session.loop.run(judge._gather(batch))
        return rank.settle_best_of(verdicts, batch[0].settings.inconclusive)
    task = judge.task(output, rubric, input=input, reference=reference,
                      context=context, threshold=threshold, model=model,
                      better_than=better_than, at_least_as_good_as=at_least_as_good_as,
                      generated_by=generated_by, expected=expected,
                      min_score=min_score, pass_score=pass_score, expect=expect,
                      **judge_options)
    verdict = judge.session.loop.run(judge.run(task))
    return settle(verdict, task.settings.inconclusive)


def assert_rejected(output: object, rubric: object = None, **kwargs: Any) -> Verdict:
    """A negative control: assert that the judge *rejects* ``output`` (a known
    bad answer). Same as ``assert_judged(..., expect="fail")``: fails with the
    judge's reasoning when the judge wrongly passes it."""
    __tracebackhide__ = True
    if "expect" in kwargs:
        raise TypeError("assert_rejected always expects a fail; drop expect=")
    return assert_judged(output, rubric, expect="fail", **kwargs)
