"""What a claim-level check found: each claim's answer, the share that held,
and the failure message that lists the claims that did not."""

from __future__ import annotations

import textwrap
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llmjudge.constants import REASONING_SHOWN
from pytest_llmjudge.text import clip, scrub
from pytest_llmjudge.verdict import Outcome, Verdict

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
