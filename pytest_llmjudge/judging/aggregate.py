"""One report row for a check made of several judgments (the turns of a
conversation, the claims of an answer): the reports hold what the test
asserted, not its parts.

A turn that fails inside a conversation passing on ``min_share=0.75`` is not
a failed expectation, and a baseline must not read it as a regression; so the
parts are judged with ``Judge.run(task, part=True)`` and kept here, a row per
part under the check's own outcome, score (the share) and pass mark.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Literal

from pytest_llmjudge.text import clip
from pytest_llmjudge.verdict import CriterionResult, Outcome, Verdict

#: How much of a part's text a row keeps as its description.
DESCRIBED = 200


def check_key(*parts: object) -> str:
    """A stable identity for a check (history: a flip since the last run)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def part_rows(parts: Sequence[tuple[str, str, Verdict]]) -> list[CriterionResult]:
    """A row per judged part, ``parts`` being (name, text, verdict): its
    outcome, confidence and the reason it did not pass."""
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
    return rows


def one_row(rows: Sequence[CriterionResult], verdicts: Sequence[Verdict], *,
            outcome: Outcome, confidence: float, score: float | None,
            pass_mark: float, rubric: str, key: str, excerpt: str,
            expect: Literal["pass", "fail"] = "pass", flaky: bool | None = None,
            flaky_reason: str | None = None, error: str | None = None,
            warnings: Sequence[str] | None = None, calls: int = 0,
            cache_hits: int = 0, model: str = "") -> Verdict:
    """The check as one ``Verdict``: ``rows`` under it, the calls, tokens and
    votes of its ``verdicts`` (plus ``calls``/``cache_hits`` made outside
    them). Flakiness, error and warnings are the verdicts' unless given."""
    if flaky is None:
        reasons = [v.flaky_reason or "flaky" for v in verdicts if v.flaky]
        flaky, flaky_reason = bool(reasons), "; ".join(reasons) or None
    costs = [v.cost for v in verdicts if v.cost is not None]
    first = verdicts[0] if verdicts else None
    calls += sum(v.calls for v in verdicts)
    return Verdict(
        outcome=outcome, passed=outcome is Outcome.PASS, kind="criteria",
        rubric=rubric, score=score, pass_mark=pass_mark, expect=expect,
        confidence=confidence, criteria=list(rows),
        votes=[vote for v in verdicts for vote in v.votes],
        flaky=flaky, flaky_reason=flaky_reason, calls=calls,
        cache_hits=cache_hits + sum(v.cache_hits for v in verdicts),
        cached=calls == 0,
        prompt_tokens=sum(v.prompt_tokens for v in verdicts),
        completion_tokens=sum(v.completion_tokens for v in verdicts),
        cost=sum(costs) if costs else None,
        model=first.model if first else model,
        error=error if error is not None else next(
            (v.error for v in verdicts if v.error), None),
        excerpt=clip(" ".join(excerpt.split()), DESCRIBED),
        warnings=list(warnings) if warnings is not None else sorted(
            {w for v in verdicts for w in v.warnings}), key=key,
        confidence_basis=first.confidence_basis if first else "agreement only")
