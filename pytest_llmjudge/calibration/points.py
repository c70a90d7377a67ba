"""Labelled points for calibrated confidence (issue #16): for each labelled
example the judge leant on, the agreement-only confidence of its lean and
whether people agreed. Stored with the calibration; ``judging.calibrated``
learns from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.judging.calibrated import KEEP_POINTS, verdict_kind
from pytest_llmjudge.judging.sample import decide_votes

if TYPE_CHECKING:
    from pytest_llmjudge.judging.task import Task
    from pytest_llmjudge.verdict import Verdict

Point = tuple[str, float, bool]


def point(task: Task | None, verdict: Verdict | None, human: bool | str | None,
          a: float) -> Point | None:
    """(kind of verdict, agreement-only confidence, right) for one example; None
    when there is nothing to learn (no lean, no label, a jury, no judge)."""
    if task is None or verdict is None or human is None or \
            len(task.settings.models) != 1:
        return None
    votes = [v for v in verdict.votes if v.error is None]
    if not votes:
        return None
    # Re-decided from the votes with the agreement model alone, so that an
    # earlier calibration never feeds back into the next one.
    d = decide_votes(task, votes, a)
    kind = verdict_kind(task, d)
    if kind is None:
        return None
    right = (d.outcome == "pass") == human if isinstance(human, bool) \
        else d.winner == human
    return kind, round(d.confidence, 6), right


def stored(points: Iterable[Point | None]) -> dict[str, Any]:
    """The JSON a calibration record keeps: ``{kind: [[confidence, right], ...]}``."""
    out: dict[str, list[list[Any]]] = {}
    for p in points:
        if p is not None:
            got = out.setdefault(p[0], [])
            if len(got) < KEEP_POINTS:
                got.append([p[1], p[2]])
    return out
