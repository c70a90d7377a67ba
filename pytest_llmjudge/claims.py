"""Claim-level checks: faithfulness, answer relevance and context recall.

The judge first lists the atomic claims of a text (``judging/extract.py``: one
call, cached and recorded), then judges every claim as one criterion of an
ordinary criteria judgment, ``claims_per_call`` claims per judgment. So each
claim is judged in both presentation orders, with confidence, adaptive
sampling, cache, records, reports and xdist, and a 20-claim answer costs one
extraction and two concurrent judgments (four calls in flight) instead of 40
calls. The score is the share of supported claims; ``min_share`` is the pass
mark. The claims are shown to the judge as data (they come from the judged
text), never as the rubric's own words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.assertion import current_judge
from pytest_llmjudge.claim_results import (
    ClaimsVerdict,
    ClaimVerdict,
    Metric,
)
from pytest_llmjudge.exceptions import (
    ConfigError,
    JudgedAssertionError,
    JudgeNotConfiguredError,
    JudgeOutcomeError,
)
from pytest_llmjudge.judging.aggregate import check_key, one_row
from pytest_llmjudge.judging.expectations import tolerated
from pytest_llmjudge.judging.extract import Extraction, What, extract
from pytest_llmjudge.judging.judge import NO_MODEL
from pytest_llmjudge.judging.sample import Sampler
from pytest_llmjudge.judging.task import as_text
from pytest_llmjudge.marks import check_threshold, share_outcome
from pytest_llmjudge.rubric import Criterion, Rubric
from pytest_llmjudge.verdict import CriterionResult, Outcome, Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.judging.judge import Judge
    from pytest_llmjudge.settings import Settings

#: Claims judged together in one judgment (one criterion each).
CLAIMS_PER_CALL = 10

_ITEM = {"faithfulness": "claim", "answer_relevance": "statement",
         "context_recall": "claim"}
_TEST = {
    "faithfulness": (
        "Claim [{i}] of the <output> is supported by the <context>: the context "
        "states it or it clearly follows from it. A claim that goes beyond, adds "
        "to or contradicts the context is not supported; a sentence that states "
        "no fact (a greeting, an offer to help) is supported."),
    "answer_relevance": (
        "Statement [{i}] of the <output> helps answer the <input>: it is on the "
        "question's topic and of use to the person asking. Off-topic, evasive or "
        "filler statements are not relevant."),
    "context_recall": (
        "Claim [{i}] of the <output> (a fact of the expected answer) is supported "
        "by the <context>: the context states it or it clearly follows from it."),
}
_NOTE = {
    "faithfulness": "The <output> lists numbered claims taken from an answer; "
                    "check each against the <context> only, not against what "
                    "you know.",
    "answer_relevance": "The <output> lists numbered statements taken from an "
                        "answer to the <input>; check whether each one helps "
                        "answer it.",
    "context_recall": "The <output> lists numbered claims taken from the expected "
                      "answer; check whether the <context> supports each one.",
}


class ClaimsAssertionError(JudgedAssertionError):
    """Too few claims held; ``result`` is the whole ``ClaimsVerdict``."""

    def __init__(self, message: str, verdict: Verdict, result: ClaimsVerdict):
        super().__init__(message, verdict)
        self.result = result


class ClaimsJudgeError(JudgeOutcomeError):
    """The judge failed (extraction, or claims the outcome depends on)."""

    def __init__(self, message: str, verdict: Verdict, result: ClaimsVerdict):
        super().__init__(message, verdict)
        self.result = result


# ------------------------------------------------------------------ public API
def judge_faithfulness(output: object, context: object, *, input: object = None,
                       min_share: float | None = None,
                       claims: Sequence[str] | None = None,
                       claims_per_call: int = CLAIMS_PER_CALL,
                       judge: Judge | None = None, **kwargs: Any) -> ClaimsVerdict:
    """The share of ``output``'s claims that ``context`` supports; never raises
    on a failing result. Arguments as for ``assert_faithful``."""
    __tracebackhide__ = True
    return _run("faithfulness", output, context=context, input=input,
                min_share=min_share, claims=claims, per_call=claims_per_call,
                judge=judge, kwargs=kwargs)[0]


def assert_faithful(output: object, context: object, *, input: object = None,
                    min_share: float | None = None,
                    claims: Sequence[str] | None = None,
                    claims_per_call: int = CLAIMS_PER_CALL,
                    **kwargs: Any) -> ClaimsVerdict:
    """Assert that ``context`` supports the claims of ``output`` (faithfulness,
    groundedness: no hallucination beyond the retrieved documents).

    Args:
        output: The answer (str, or anything ``assert_judged`` reads).
        context: What the answer may rest on: a str, or a list of documents.
        input: The question, shown for context.
        min_share: Share of claims that must be supported (default 1.0).
        claims: The claims to check, when you have them (no extraction call).
        claims_per_call: Claims judged together in one judgment.
        **kwargs: ``expect="fail"`` for a negative control, ``model``,
            ``instructions``, ``examples`` and per-call settings.

    Raises:
        JudgedAssertionError: Too few claims supported (the message lists the
            unsupported ones with the judge's reasons), or inconclusive.
        JudgeOutcomeError: Extraction failed, or the outcome hangs on claims
            the judge failed on.
    """
    __tracebackhide__ = True
    return settle_claims(*_run("faithfulness", output, context=context, input=input,
                               min_share=min_share, claims=claims,
                               per_call=claims_per_call, judge=None, kwargs=kwargs))


def judge_relevance(output: object, input: object, *,
                    min_share: float | None = None,
                    claims: Sequence[str] | None = None,
                    claims_per_call: int = CLAIMS_PER_CALL,
                    judge: Judge | None = None, **kwargs: Any) -> ClaimsVerdict:
    """The share of ``output``'s statements that help answer ``input``."""
    __tracebackhide__ = True
    return _run("answer_relevance", output, context=None, input=input,
                min_share=min_share, claims=claims, per_call=claims_per_call,
                judge=judge, kwargs=kwargs)[0]


def assert_relevant(output: object, input: object, *,
                    min_share: float | None = None,
                    claims: Sequence[str] | None = None,
                    claims_per_call: int = CLAIMS_PER_CALL,
                    **kwargs: Any) -> ClaimsVerdict:
    """Assert that the statements of ``output`` answer ``input`` (answer
    relevance): ``min_share`` of them at least (default 1.0). Other arguments
    as for ``assert_faithful``."""
    __tracebackhide__ = True
    return settle_claims(*_run("answer_relevance", output, context=None, input=input,
                               min_share=min_share, claims=claims,
                               per_call=claims_per_call, judge=None, kwargs=kwargs))


def judge_context_recall(expected: object, context: object, *,
                         input: object = None, min_share: float | None = None,
                         claims: Sequence[str] | None = None,
                         claims_per_call: int = CLAIMS_PER_CALL,
                         judge: Judge | None = None, **kwargs: Any) -> ClaimsVerdict:
    """The share of the claims of ``expected`` that ``context`` supports."""
    __tracebackhide__ = True
    return _run("context_recall", expected, context=context, input=input,
                min_share=min_share, claims=claims, per_call=claims_per_call,
                judge=judge, kwargs=kwargs)[0]


def assert_context_recall(expected: object, context: object, *,
                          input: object = None, min_share: float | None = None,
                          claims: Sequence[str] | None = None,
                          claims_per_call: int = CLAIMS_PER_CALL,
                          **kwargs: Any) -> ClaimsVerdict:
    """Assert that the retrieved ``context`` holds the facts of the
    ``expected`` answer (context recall): ``min_share`` of its claims at least
    (default 1.0). Other arguments as for ``assert_faithful``."""
    __tracebackhide__ = True
    return settle_claims(*_run("context_recall", expected, context=context,
                               input=input, min_share=min_share, claims=claims,
                               per_call=claims_per_call, judge=None, kwargs=kwargs))


def settle_claims(result: ClaimsVerdict, action: str = "fail") -> ClaimsVerdict:
    """The test's fate, as ``assert_judged`` settles a verdict; ``action``:
    what an inconclusive result does (fail, xfail, skip, warn)."""
    __tracebackhide__ = True
    if result.met:
        return result
    message = result.explain()
    first = _as_verdict(result, "", "")  # the whole check, as the reports show it
    if result.outcome is Outcome.JUDGE_ERROR:
        raise ClaimsJudgeError(message, first, result)
    if result.outcome is Outcome.INCONCLUSIVE and tolerated(message, action):
        return result
    raise ClaimsAssertionError(message, first, result)


# ------------------------------------------------------------------ running
def _run(metric: Metric, text: object, *, context: object, input: object,
         min_share: float | None, claims: Sequence[str] | None, per_call: int,
         judge: Judge | None, kwargs: dict[str, Any]) -> tuple[ClaimsVerdict, str]:
    __tracebackhide__ = True
    judge = judge if judge is not None else current_judge()
    try:
        mark, expect, shown, ctx, question, given = _inputs(
            metric, text, context, input, min_share, claims, per_call, kwargs)
        # Validated once, at the caller's line, with the settings the claims'
        # judgments will use (a misspelt option raises here).
        probe = judge.task("(claims)", Rubric([Criterion("claim 1", "x")]),
                           input=question, context=ctx, **kwargs)
    except ConfigError as exc:
        raise exc.with_traceback(None) from None
    result = judge.session.loop.run(_check(
        judge, metric, shown, ctx, question, given, mark, expect, per_call,
        probe.settings, kwargs))
    return result, probe.settings.inconclusive


def _inputs(metric: Metric, text: object, context: object, input: object,
            min_share: float | None, claims: Sequence[str] | None, per_call: int,
            kwargs: dict[str, Any]) -> tuple[float, str, str, str | None,
                                             str | None, list[str] | None]:
    what = "expected" if metric == "context_recall" else "output"
    for k in ("threshold", "min_score", "pass_score", "better_than",
              "at_least_as_good_as", "reference", "expected", "best_of", "rubric"):
        if k in kwargs:
            raise ConfigError(f"{k}= does not apply to a claim-level check: the "
                              "pass mark is min_share= (the share of claims that "
                              "must hold)")
    expect = kwargs.pop("expect", "pass")
    if expect not in ("pass", "fail"):
        raise ConfigError(f"expect must be 'pass' or 'fail', got {expect!r}")
    mark = 1.0 if min_share is None else check_threshold(min_share, "min_share")
    if isinstance(per_call, bool) or not isinstance(per_call, int) or per_call < 1:
        raise ConfigError(f"claims_per_call must be a whole number >= 1, got "
                          f"{per_call!r}")
    shown = as_text(text, what, optional=False)
    assert shown is not None
    if not shown.strip():
        raise ConfigError(f"{what} is empty: there are no claims to check")
    ctx = _documents(context) if metric != "answer_relevance" else None
    if metric != "answer_relevance" and not (ctx or "").strip():
        raise ConfigError("context is empty: give the documents the answer may "
                          "rest on (a str or a list of them)")
    question = as_text(input, "input")
    if metric == "answer_relevance" and not (question or "").strip():
        raise ConfigError("input is empty: answer relevance needs the question")
    given = None
    if claims is not None:
        if isinstance(claims, str) or not all(isinstance(c, str) and c.strip()
                                              for c in claims) or not claims:
            raise ConfigError("claims= must be a non-empty list of non-empty str")
        given = [" ".join(c.split()) for c in claims]
    return mark, expect, shown, ctx, question, given


def _documents(context: object) -> str | None:
    """A list of documents as numbered blocks; anything else as the judge reads it."""
    if isinstance(context, (list, tuple)) and context and \
            all(isinstance(d, str) for d in context):
        return "\n\n".join(f"[document {i}]\n{d}" for i, d in
                           enumerate(context, 1))
    return as_text(context, "context")


async def _check(judge: Judge, metric: Metric, text: str, ctx: str | None,
                 question: str | None, given: list[str] | None, mark: float,
                 expect: str, per_call: int, settings: Settings,
                 kwargs: dict[str, Any]) -> ClaimsVerdict:
    what: What = "statements" if metric == "answer_relevance" else "claims"
    if not settings.models and judge.session.settings.record_mode != "none":
        raise JudgeNotConfiguredError(NO_MODEL)  # as assert_judged says it
    if given is not None:
        got = Extraction(claims=given)
        sources = ["given"] * len(given)
    else:
        sampler = Sampler(judge.session, judge.node, judge.accuracy)
        got = await extract(sampler, settings, text, what, question)
        sources = ["extracted"] * len(got.claims) + ["uncovered"] * len(got.added)
    items = got.all
    base: dict[str, Any] = {"metric": metric, "min_share": mark, "expect": expect,
                            "extraction_model": got.model,
                            "extraction_calls": got.calls,
                            "extraction_cached": got.cached}
    ident = check_key(judge.node.nodeid if judge.node else "", metric, text, ctx,
                      question)
    if got.error is not None:
        return _report(judge, ident, text, ClaimsVerdict(
            **base, outcome=Outcome.JUDGE_ERROR, passed=False, confidence=0.0,
            error=got.error))
    if not items:
        return _report(judge, ident, text, ClaimsVerdict(
            **base, outcome=Outcome.INCONCLUSIVE, passed=False, confidence=0.5,
            error=f"no {_ITEM[metric]}s were found in the text: nothing to check "
            "(a text with no statement of fact, or an extraction that missed "
            "them; judge it with assert_judged instead)"))
    tasks = []
    for start in range(0, len(items), per_call):
        chunk = list(enumerate(items[start:start + per_call], start + 1))
        # Named by the check alone: calibration labels and baselines find it
        # whatever the number of claims a re-extraction gives.
        rubric = Rubric([Criterion(f"{_ITEM[metric]} {i}",
                                   _TEST[metric].format(i=i)) for i, _ in chunk],
                        name=metric)
        listing = "\n".join(f"[{i}] {c}" for i, c in chunk)
        own = kwargs.get("instructions")
        guide = _NOTE[metric] + (f"\n\n{own}" if own else "")
        rest = {k: v for k, v in kwargs.items() if k != "instructions"}
        # Every claim is required in its judgment, so the judgment's confidence
        # is the product of its claims': sampling stops once they reach
        # min_confidence each on average, and goes on while one is undecided.
        rest["min_confidence"] = max(0.5, settings.min_confidence ** len(chunk))
        tasks.append(judge.task(listing, rubric, input=question, context=ctx,
                                instructions=guide, **rest))
    verdicts = list(await asyncio.gather(*(judge.run(t, part=True) for t in tasks)))
    result = _combine(base, items, sources, verdicts, settings.min_confidence)
    if got.cut:
        result = result.model_copy(update={"warnings": [
            *result.warnings, f"{got.cut} more claim(s) than the "
            f"{len(got.claims)} judged were extracted and left out"]})
    result = _history(judge, ident, result, items, got.fresh)
    return _report(judge, ident, text, result)


def _report(judge: Judge, ident: str, text: str, r: ClaimsVerdict) -> ClaimsVerdict:
    """One row in the reports for the whole check (its judgments are parts of
    it, not expectations): a flip against the last run is flagged there."""
    got = judge.session.finish(_as_verdict(r, ident, text), judge.node)
    if got.flaky and got.flaky_reason != r.flaky_reason:
        return r.model_copy(update={"flaky": True, "flaky_reason": got.flaky_reason})
    return r


def _combine(base: dict[str, Any], items: list[str], sources: list[str],
             verdicts: list[Verdict], min_conf: float) -> ClaimsVerdict:
    found: dict[str, tuple[bool | None, float, str]] = {}
    for v in verdicts:
        for c in v.criteria:
            state = c.passed if c.confidence >= min_conf else None
            found[c.name] = (state, c.confidence, c.reasoning)
    claims = []
    item = "statement" if base["metric"] == "answer_relevance" else "claim"
    for i, (text, src) in enumerate(zip(items, sources, strict=True), 1):
        state, conf, why = found.get(f"{item} {i}", (None, 0.5, ""))
        claims.append(ClaimVerdict(number=i, claim=text, source=src,  # type: ignore[arg-type]
                                   supported=state, confidence=conf, reasoning=why))
    states = [c.supported for c in claims]
    probs = [c.confidence if c.supported is True else 1 - c.confidence
             if c.supported is False else 0.5 for c in claims]
    errored = any(v.outcome is Outcome.JUDGE_ERROR for v in verdicts)
    outcome, conf = share_outcome(states, probs, base["min_share"], errored)
    decided = [s for s in states if s is not None]
    flaky = [v for v in verdicts if v.flaky]
    error = next((v.error for v in verdicts if v.error), None)
    return ClaimsVerdict(
        **base, outcome=outcome, passed=outcome is Outcome.PASS,
        confidence=conf,
        share=sum(decided) / len(decided) if decided else None, claims=claims,
        judgments=verdicts, flaky=bool(flaky), error=error,
        flaky_reason="; ".join(v.flaky_reason or "" for v in flaky) or None)


def _as_verdict(r: ClaimsVerdict, key: str, text: str) -> Verdict:
    """The check as one ``Verdict`` for the reports: a row per claim (its
    text as the description), the share as the score, ``min_share`` as the
    pass mark; the extraction's call counted with the judgments'."""
    item = _ITEM[r.metric]
    votes = {c.name: c for v in r.judgments for c in v.criteria}
    rows = [CriterionResult(
        name=f"{item} {c.number}", description=c.claim, passed=c.supported,
        confidence=c.confidence, reasoning=c.reasoning,
        pass_votes=getattr(votes.get(f"{item} {c.number}"), "pass_votes", 0),
        fail_votes=getattr(votes.get(f"{item} {c.number}"), "fail_votes", 0))
        for c in r.claims]
    return one_row(rows, r.judgments, outcome=r.outcome, confidence=r.confidence,
                   score=r.share, pass_mark=r.min_share, rubric=r.metric, key=key,
                   excerpt=text, expect=r.expect, flaky=r.flaky,
                   flaky_reason=r.flaky_reason, error=r.error, warnings=r.warnings,
                   calls=r.extraction_calls, cache_hits=int(r.extraction_cached),
                   model=r.extraction_model)


def _history(judge: Judge, ident: str, result: ClaimsVerdict, items: list[str],
             fresh: bool) -> ClaimsVerdict:
    """Flag a verdict that a re-extraction changed: the same text and context
    gave other claims, and another outcome, in an earlier run."""
    print_ = check_key(*items)
    now = {"outcome": result.outcome.value, "claims": print_, "n": len(items)}
    prev = judge.session.remember(f"claims:{ident}", now)
    if not fresh or not isinstance(prev, dict) or prev.get("claims") == print_:
        return result
    was, n = prev.get("outcome"), prev.get("n")
    if was in ("pass", "fail") and result.outcome.value in ("pass", "fail") and \
            was != result.outcome.value:
        reason = (f"re-extracting the claims changed the verdict: {was} on {n} "
                  f"claim(s) in an earlier run, {result.outcome.value} on "
                  f"{len(items)} now")
        joined = f"{result.flaky_reason}; {reason}" if result.flaky_reason else reason
        return result.model_copy(update={"flaky": True, "flaky_reason": joined})
    return result.model_copy(update={"warnings": [
        *result.warnings, f"the claims were extracted differently than in an "
        f"earlier run ({n} then, {len(items)} now); the verdict held"]})
