"""From each judge model's decision to the ``Verdict`` (a jury's majority when
several models judge). Pure: no session, no learning; the accuracy of each
member comes in as a function."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pytest_llmjudge.constants import REPLAYED_MODEL
from pytest_llmjudge.judging import decide
from pytest_llmjudge.judging.sample import ModelResult, Usage
from pytest_llmjudge.judging.task import Task
from pytest_llmjudge.rubric import Scale
from pytest_llmjudge.text import excerpt
from pytest_llmjudge.types import Kind, PairMode
from pytest_llmjudge.verdict import Jury, JuryMember, Outcome, Verdict, Vote


def screened(task: Task, reason: str, ident: str) -> Verdict:
    """A fail decided without a judge call (a degenerate output)."""
    return Verdict(
        outcome=Outcome.FAIL, passed=False, kind=task.kind.value,
        rubric=task.summary(), confidence=1.0, score=0.0,
        model=",".join(task.settings.models), excerpt=excerpt(task.output),
        error=None, warnings=[f"screened without a judge call: {reason}",
                              *task.warnings], key=ident, cached=True,
        **pass_marks(task, []),
    )


def pass_marks(task: Task, votes: list[Vote]) -> dict[str, Any]:
    """What a verdict is held to: the scale's range and pass mark (in its
    units and on 0..1), or the pass mark over all criteria; and whether the
    test wants a pass or (a negative control) a fail."""
    out: dict[str, Any] = {"expect": task.expect}
    r = task.rubric
    if isinstance(r, Scale) and task.pass_score is not None:
        out.update(score_range=[r.bottom, r.top], pass_score=task.pass_score,
                   pass_mark=round(r.normalised(task.pass_score), 6),
                   score_basis=decide.score_basis(votes) if votes else None)
    elif task.min_score is not None:
        out["pass_mark"] = task.min_score
    return out


def combine(task: Task, results: list[ModelResult], ident: str,
            accuracy: Callable[[str], float]) -> Verdict:
    """The verdict of one model's decision, or of a jury's."""
    votes = [v for r in results for v in r.votes]
    usage = Usage()
    for r in results:
        usage.merge(r.usage)
    common: dict[str, Any] = {
        "kind": task.kind.value, "rubric": task.summary(), "votes": votes,
        "calls": usage.calls, "cache_hits": sum(1 for v in votes if v.cached),
        "cached": usage.calls == 0 and not any(v.error for v in votes),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens, "cost": usage.cost,
        "model": ",".join(shown_model(r) for r in results),
        "excerpt": excerpt(task.output), "key": ident,
        **pass_marks(task, votes),
    }
    warnings = list(task.warnings)
    failed = [r for r in results if r.decision is None]
    if failed and len(failed) * 2 >= len(results):
        return Verdict(outcome=Outcome.JUDGE_ERROR, passed=False, confidence=0.0,
                       error=failed[0].error, warnings=warnings, **common)
    decided = [r for r in results if r.decision is not None]
    if failed:
        warnings.append(f"jury member(s) failed: {', '.join(r.model for r in failed)}")
    for r in results:
        errs = [v.error for v in r.votes if v.error]
        if errs and r.decision is not None:
            warnings.append(f"{len(errs)} extra sample(s) failed and were left out: "
                            f"{errs[0]}")
    if len(decided) == 1 and not failed:
        d = decided[0].decision
        assert d is not None
        return _verdict(task, d, d.confidence, d.flaky_reason, warnings, common)
    return _jury(task, decided, warnings, common, [r.model for r in failed], accuracy)


def _verdict(task: Task, d: decide.Decision, conf: float, flaky: str | None,
             warnings: list[str], common: dict[str, Any]) -> Verdict:
    outcome = d.outcome
    if outcome != "inconclusive" and conf < task.settings.min_confidence:
        outcome = "inconclusive"
    return Verdict(outcome=Outcome(outcome), passed=outcome == "pass",
                   confidence=round(conf, 6), score=d.score, level=d.level,
                   criteria=d.criteria, winner=d.winner,
                   flaky=flaky is not None, flaky_reason=flaky, warnings=warnings,
                   **common)


def _jury(task: Task, decided: list[ModelResult], warnings: list[str],
          common: dict[str, Any], failed: list[str],
          accuracy: Callable[[str], float]) -> Verdict:
    """The members' majority decides. Its confidence is what split samples
    get: each member's decision is a vote worth ``logit(a)`` (``a``: that
    member's accuracy estimated from its agreement), scaled by how sure the
    member was; a dissenting member subtracts its weight."""
    compare = task.kind is Kind.PAIRWISE and task.mode is PairMode.COMPARE
    ds = [(r.model, r.decision) for r in decided if r.decision is not None]
    # A comparison's members all "pass"; what they vote on is the winner.
    answers = [(d.winner or "inconclusive") if compare else d.outcome
               for _, d in ds]
    counts = {o: answers.count(o) for o in set(answers)}
    best = max(counts.values())
    top = [o for o, c in counts.items() if c == best]
    agreement = best / len(answers)
    lead = next(d for (_, d), x in zip(ds, answers, strict=True) if x == top[0])
    flaky = None
    if len(counts) > 1:
        flaky = "jury split: " + ", ".join(
            f"{m}={x}" for (m, _), x in zip(ds, answers, strict=True))
    elif lead.flaky_reason:
        flaky = lead.flaky_reason
    if len(top) > 1 or top[0] == "inconclusive":
        lead = decide.Decision("inconclusive", 0.5, lead.criteria, lead.score)
        conf = 0.5
    else:
        lo = 0.0
        for (m, d), x in zip(ds, answers, strict=True):
            if x == "inconclusive":
                continue  # an undecided member abstains
            a = accuracy(m)
            w = math.log(a / (1.0 - a)) * d.confidence  # confidence is in [0.5, 1]
            lo += w if x == top[0] else -w
        conf = max(0.5, 1.0 / (1.0 + math.exp(-lo)))
    warnings = [*warnings,
                f"jury agreement {agreement:.0%} over {len(answers)} judges"]
    members = [JuryMember(model=m, outcome=Outcome(d.outcome),
                          confidence=round(d.confidence, 6), winner=d.winner)
               for m, d in ds]
    common = {**common, "jury": Jury(members=members, agreement=round(agreement, 6),
                                     failed=failed)}
    return _verdict(task, lead, conf, flaky, warnings, common)


def shown_model(result: ModelResult) -> str:
    """The judge a verdict names: when replayed with no model configured, the
    model(s) the records say answered."""
    if result.model != REPLAYED_MODEL:
        return result.model
    recorded = sorted({v.model for v in result.votes if v.model != REPLAYED_MODEL})
    return ",".join(recorded) or REPLAYED_MODEL
