"""One report row for a check made of several judgments (each turn of a
conversation): the reports hold what the test asserted, not its parts.

A turn that fails inside a conversation passing on ``min_share=0.75`` is not
a failed expectation, and a baseline must not read it as a regression; so the
parts are judged with ``Judge.run(task, part=True)`` and kept here, a row per
part under the check's own outcome, score (the share) and pass mark.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from pytest_llmjudge.text import clip
from pytest_llmjudge.verdict import CriterionResult, Outcome, Verdict

#: How much of a part's text a row keeps as its description.
DESCRIBED = 200


def check_key(*parts: object) -> str:
    """A stable identity for a check (history: a flip since the last run)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def one_row(parts: Sequence[tuple[str, str, Verdict]], *, outcome: Outcome,
            confidence: float, score: float | None, pass_mark: float,
            rubric: str, key: str, excerpt: str) -> Verdict:
    """The check as one ``Verdict``: ``parts`` are (name, text, verdict)."""
    rows = []
    for name, text, v in parts:
        state = True if v.outcome is Outcome.PASS else \
            False if v.outcome is Outcome.FAIL else None
        why = next((c.reasoning for c in v.criteria if c.passed is not True
                    and c.reasoning), "") or (v.error or "")
        rows.append(CriterionResult(
            name=name, description=clip(" ".join(text.split()), DESCRIBED),
            passed=state, confidence=v.confidence, reasoning=why,
            pass_votes=sum(c.pass_votes for c in v.criteria),
            fail_votes=sum(c.fail_votes for c in v.criteria)))
    verdicts = [v for _, _, v in parts]
    costs = [v.cost for v in verdicts if v.cost is not None]
    flaky = [v.flaky_reason or "flaky" for v in verdicts if v.flaky]
    first = verdicts[0]
    return Verdict(
        outcome=outcome, passed=outcome is Outcome.PASS, kind="criteria",
        rubric=rubric, score=score, pass_mark=pass_mark, confidence=confidence,
        criteria=rows, votes=[vote for v in verdicts for vote in v.votes],
        flaky=bool(flaky), flaky_reason="; ".join(flaky) or None,
        calls=sum(v.calls for v in verdicts),
        cache_hits=sum(v.cache_hits for v in verdicts),
        cached=all(v.cached for v in verdicts),
        prompt_tokens=sum(v.prompt_tokens for v in verdicts),
        completion_tokens=sum(v.completion_tokens for v in verdicts),
        cost=sum(costs) if costs else None, model=first.model,
        error=next((v.error for v in verdicts if v.error), None),
        excerpt=clip(" ".join(excerpt.split()), DESCRIBED),
        warnings=sorted({w for v in verdicts for w in v.warnings}), key=key,
        confidence_basis=first.confidence_basis)
