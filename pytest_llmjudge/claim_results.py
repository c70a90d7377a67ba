"""What a claim-level check found: each claim's answer, the share that held,
and the failure message that lists the claims that did not."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llmjudge.constants import REASONING_SHOWN
from pytest_llmjudge.text import clip, scrub
from pytest_llmjudge.verdict import CriterionResult, Outcome, Verdict

Metric = Literal["faithfulness", "answer_relevance", "context_recall"]
#: Unsupported claims shown in full in a failure message (the rest counted).
SHOWN_CLAIMS = 8


class ClaimVerdict(BaseModel):
    """One claim: what it says, where it came from, and the judge's answer."""

    model_config = ConfigDict(frozen=True)

    number: int = Field(description="1-based, in the text's order.")
    claim: str
    source: Literal["extracted", "uncovered", "given"] = Field(
        description="'extracted' by the judge; 'uncovered': a sentence no "
        "extracted claim covered, judged as it is; 'given' by the test.")
    supported: bool | None = Field(description="None: undecided (the orders "
                                   "disagreed, low confidence, or a judge error).")
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = ""


class ClaimsVerdict(BaseModel):
    """The verdict of a claim-level check. ``bool(result)`` is ``result.passed``."""

    model_config = ConfigDict(frozen=True)

    metric: Metric
    outcome: Outcome
    passed: bool
    confidence: float = Field(ge=0.0, le=1.0)
    share: float | None = Field(default=None, description="Share of claims "
                                "supported (relevant), undecided ones not counted.")
    min_share: float = 1.0
    expect: Literal["pass", "fail"] = "pass"
    claims: list[ClaimVerdict] = Field(default_factory=list)
    judgments: list[Verdict] = Field(default_factory=list, description="The "
                                     "criteria judgments the claims were judged in.")
    extraction_model: str = ""
    extraction_calls: int = 0
    extraction_cached: bool = False
    flaky: bool = False
    flaky_reason: str | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def met(self) -> bool:
        want = Outcome.FAIL if self.expect == "fail" else Outcome.PASS
        return self.outcome is want

    @property
    def unsupported(self) -> list[ClaimVerdict]:
        return [c for c in self.claims if c.supported is False]

    @property
    def undecided(self) -> list[ClaimVerdict]:
        return [c for c in self.claims if c.supported is None]

    @property
    def calls(self) -> int:
        return self.extraction_calls + sum(v.calls for v in self.judgments)

    @property
    def cache_hits(self) -> int:
        return int(self.extraction_cached) + sum(v.cache_hits for v in self.judgments)

    def __bool__(self) -> bool:
        return self.passed

    def explain(self) -> str:
        """Headline, then the unsupported and undecided claims with the
        judge's reasons."""
        return scrub(_explain(self))


def share_outcome(states: Sequence[bool | None], probs: Sequence[float],
                  mark: float, errored: bool) -> tuple[Outcome, float]:
    """Decided only when the undecided claims could not change it (see
    ``conversation.decide_share``), and the probability that enough hold."""
    n = len(states)
    need = -(-round(mark * n * 1e6) // 10**6)  # ceil, without float noise
    yes = sum(s is True for s in states)
    open_ = sum(s is None for s in states)
    if yes >= need:
        outcome = Outcome.PASS
    elif yes + open_ < need:
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.JUDGE_ERROR if errored else Outcome.INCONCLUSIVE
    dist = [1.0]
    for p in probs:
        nxt = [0.0] * (len(dist) + 1)
        for k, q in enumerate(dist):
            nxt[k] += q * (1 - p)
            nxt[k + 1] += q * p
        dist = nxt
    return outcome, min(1.0, max(0.0, sum(dist[need:])))


def as_verdict(r: ClaimsVerdict, key: str, text: str) -> Verdict:
    """The check as one ``Verdict`` for the reports: a row per claim (its
    text as the description), the share as the score, ``min_share`` as the
    pass mark, and the calls, tokens and votes of every judgment in it."""
    item = "statement" if r.metric == "answer_relevance" else "claim"
    rows = {c.name: c for v in r.judgments for c in v.criteria}
    criteria = [CriterionResult(
        name=f"{item} {c.number}", description=c.claim, passed=c.supported,
        confidence=c.confidence, reasoning=c.reasoning,
        pass_votes=rows[f"{item} {c.number}"].pass_votes
        if f"{item} {c.number}" in rows else 0,
        fail_votes=rows[f"{item} {c.number}"].fail_votes
        if f"{item} {c.number}" in rows else 0) for c in r.claims]
    costs = [v.cost for v in r.judgments if v.cost is not None]
    first = r.judgments[0] if r.judgments else None
    return Verdict(
        outcome=r.outcome, passed=r.passed, kind="criteria", rubric=r.metric,
        score=r.share, pass_mark=r.min_share, expect=r.expect,
        confidence=r.confidence, criteria=criteria,
        votes=[vote for v in r.judgments for vote in v.votes],
        flaky=r.flaky, flaky_reason=r.flaky_reason, calls=r.calls,
        cache_hits=r.cache_hits, cached=r.calls == 0,
        prompt_tokens=sum(v.prompt_tokens for v in r.judgments),
        completion_tokens=sum(v.completion_tokens for v in r.judgments),
        cost=sum(costs) if costs else None,
        model=first.model if first else r.extraction_model, error=r.error,
        excerpt=clip(" ".join(text.split()), 200), warnings=list(r.warnings),
        key=key, confidence_basis=first.confidence_basis if first
        else "agreement only")


# ------------------------------------------------------------------ showing
def _explain(r: ClaimsVerdict) -> str:
    word = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE",
            "judge_error": "JUDGE ERROR"}[r.outcome.value]
    item = "statement" if r.metric == "answer_relevance" else "claim"
    held = "relevant" if r.metric == "answer_relevance" else "supported"
    n = len(r.claims)
    ok = sum(c.supported is True for c in r.claims)
    lines = [f"judged {r.metric.replace('_', ' ')}: {word} {ok}/{n} {item}s "
             f"{held} (pass mark {r.min_share:.2f} of {item}s; confidence "
             f"{r.confidence:.2f})" + (" [negative control]" if r.expect == "fail"
                                       else "")]
    if r.error:
        lines.append(f"  {'judge error' if r.outcome is Outcome.JUDGE_ERROR else 'why'}"
                     f": {clip(r.error, REASONING_SHOWN)}")
    bad = r.unsupported + r.undecided
    for c in bad[:SHOWN_CLAIMS]:
        mark = "NOT " + held.upper() if c.supported is False else "UNDECIDED"
        src = "" if c.source != "uncovered" else \
            " (a sentence no extracted claim covered)"
        lines.append(f"  [{mark}] {item} {c.number}{src}: \"{clip(c.claim, 240)}\"")
        if c.reasoning:
            lines += textwrap.wrap(clip(c.reasoning, REASONING_SHOWN), 88,
                                   initial_indent="      judge: ",
                                   subsequent_indent="             ")
    if len(bad) > SHOWN_CLAIMS:
        lines.append(f"  ... and {len(bad) - SHOWN_CLAIMS} more: " + ", ".join(
            str(c.number) for c in bad[SHOWN_CLAIMS:]))
    good = [str(c.number) for c in r.claims if c.supported is True]
    if good and bad:
        lines.append(f"  {held}: {item}(s) {', '.join(good)}")
    if r.flaky_reason:
        lines.append(f"  flaky: {clip(r.flaky_reason, REASONING_SHOWN)}")
    lines += [f"  warning: {w}" for w in r.warnings]
    model = next((v.model for v in r.judgments if v.model), r.extraction_model or "-")
    samples = sum(v.samples for v in r.judgments)
    asked = "from cache/records" if r.extraction_cached else r.extraction_calls
    lines.append(f"  judge: {model}; {len(r.judgments)} judgment(s), {samples} "
                 f"presentation(s), {r.calls} call(s) (extraction {asked}), "
                 f"{r.cache_hits} from cache/records")
    return "\n".join(lines)
