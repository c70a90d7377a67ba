"""Confidence calibrated on people's labels (issue #16).

Agreement between presentation orders only sees errors a judge makes in one
order. Some errors it makes in every order (it simply prefers the wrong
answer); no number of votes reveals them, so agreement-only confidence is too
high on real judges (JudgeBench: o1-mini's decisive verdicts right 86% of the
time at a stated 94%).

The model: on a share ``eps`` of outputs the judge is systematically wrong
(its votes follow the wrong answer exactly as they follow the right one
elsewhere); on the rest its errors are independent, as the agreement model
assumes. With ``c`` the agreement-only confidence of the majority side and
``r = c / (1 - c)`` its odds, the majority is right with odds

    ((1 - eps) * r + eps) / ((1 - eps) + eps * r)

so agreement still counts (a split vote, ``r`` near 1, stays near 0.5), but no
amount of it lifts confidence above ``1 - eps``: correlated errors lower the
confidence they deserve to. ``eps`` is learnt per kind of decisive verdict
(pass, fail; a comparison's winner or tie) from the labelled examples a
``--llmjudge-calibrate`` run judged, on a grid, from a Beta(1, 9) prior (a
judge wrong in every order on about one output in ten, worth ten examples).
The confidence is averaged over that posterior, so a handful of labels moves
it little and says so in its basis ("calibrated on n labelled examples").
Without a stored calibration nothing changes ("agreement only").
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.judging import decide
from pytest_llmjudge.judging.trust import config_key, judge_id
from pytest_llmjudge.types import Kind, PairMode

if TYPE_CHECKING:
    from pytest_llmjudge.judging.task import Task
    from pytest_llmjudge.runtime.session import JudgeSession

AGREEMENT_ONLY = "agreement only"
#: Beta prior on ``eps``, the share of outputs the judge gets wrong in every order.
PRIOR_EPS = (1.0, 9.0)
GRID = tuple(i / 200 for i in range(101))  # eps in [0, 0.5]
#: Labelled points kept per kind of verdict in a stored calibration.
KEEP_POINTS = 2000


def basis(n: int) -> str:
    return f"calibrated on {n} labelled examples"


def mixed(c: float, eps: float) -> float:
    """The majority side's confidence, ``c`` from agreement alone, when a share
    ``eps`` of outputs is judged wrong in every order."""
    c = min(max(c, 0.5), 1.0 - 1e-12)
    r = c / (1.0 - c)
    odds = ((1.0 - eps) * r + eps) / ((1.0 - eps) + eps * r)
    return odds / (1.0 + odds)


@dataclass(frozen=True)
class Fit:
    """The posterior of ``eps`` on ``GRID`` for one kind of verdict."""

    n: int
    weights: tuple[float, ...]

    def confidence(self, c: float) -> float:
        return sum(w * mixed(c, e) for w, e in zip(self.weights, GRID, strict=True))

    @property
    def ceiling(self) -> float:
        """The most any amount of agreement can reach."""
        return sum(w * (1.0 - e) for w, e in zip(self.weights, GRID, strict=True))


def fit(points: Sequence[tuple[float, bool]]) -> Fit:
    """``eps``'s posterior from (agreement-only confidence, was it right) pairs."""
    a, b = PRIOR_EPS
    logs = []
    for e in GRID:
        lp = (a - 1.0) * math.log(e) if a != 1.0 else 0.0
        lp += (b - 1.0) * math.log1p(-e)
        for c, right in points:
            p = min(max(mixed(c, e), 1e-12), 1.0 - 1e-12)
            lp += math.log(p if right else 1.0 - p)
        logs.append(lp)
    top = max(logs)
    ws = [math.exp(x - top) for x in logs]
    total = sum(ws)
    return Fit(len(points), tuple(w / total for w in ws))


def comparison_canonical(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """The identity a comparison's calibration is stored under: apart from the
    same rubric's pass/fail calibration."""
    return {"comparison": canonical}


def winner_decided(task: Task) -> bool:
    """A comparison whose confidence is its winner's: ``compare``, and
    ``better_than`` (a pass is "A won"). Pair labels calibrate these;
    ``at_least_as_good_as`` adds a tie's chance to A's, which they do not."""
    return task.kind is Kind.PAIRWISE and task.mode in (PairMode.COMPARE,
                                                        PairMode.BETTER)


def verdict_kind(task: Task, d: decide.Decision) -> str | None:
    """What kind of decisive verdict ``d`` is (None: no lean to calibrate)."""
    if d.outcome == "inconclusive" or d.confidence <= 0.5:
        return None
    if winner_decided(task):
        return None if d.winner is None else ("tie" if d.winner == "tie" else "winner")
    return d.outcome


def points_of(record: Mapping[str, Any] | None) -> dict[str, list[tuple[float, bool]]]:
    """A stored calibration's labelled points by kind (a damaged row: none)."""
    raw = (record or {}).get("confidence")
    out: dict[str, list[tuple[float, bool]]] = {}
    if not isinstance(raw, Mapping):
        return out
    for kind, pts in raw.items():
        if not isinstance(pts, list):
            continue
        good = [(float(p[0]), bool(p[1])) for p in pts
                if isinstance(p, list) and len(p) == 2
                and isinstance(p[0], (int, float)) and math.isfinite(p[0])
                and 0.5 <= p[0] <= 1.0 and isinstance(p[1], bool)]
        if good:
            out[str(kind)] = good
    return out


_memo: weakref.WeakKeyDictionary[JudgeSession, dict[str, dict[str, Fit]]] = \
    weakref.WeakKeyDictionary()


def forget(session: JudgeSession) -> None:
    """Drop the memoised fits after a calibration run stored new points."""
    _memo.pop(session, None)


class Calibration:
    """The stored calibrations of one session, applied to decisions."""

    def __init__(self, session: JudgeSession):
        self.session = session

    def fits(self, task: Task) -> dict[str, Fit]:
        """The fits for this task's judge and rubric (none for a jury: its
        members' confidences are combined, not calibrated one by one)."""
        if len(task.settings.models) != 1:
            return {}
        canonical = task.rubric.canonical()
        if winner_decided(task):
            canonical = comparison_canonical(canonical)
        key = config_key(judge_id(task.settings), canonical)
        memo = _memo.setdefault(self.session, {})
        if key not in memo:
            rec = self.session.meta.get(f"calibration:{key}")
            memo[key] = {k: fit(p) for k, p in points_of(rec).items()}
        return memo[key]

    def adjust(self, task: Task, d: decide.Decision) -> decide.Decision:
        """``d`` with its confidence calibrated, where labels speak for its kind."""
        kind = verdict_kind(task, d)
        f = self.fits(task).get(kind or "")
        if f is None:
            return d
        return dataclasses.replace(d, confidence=f.confidence(d.confidence))

    def ceiling(self, task: Task, d: decide.Decision) -> float:
        """The highest confidence more votes can bring: that of the current
        lean's kind, else of any kind. A lean calibrated below min_confidence
        is not asked for more votes in vain."""
        fits = self.fits(task)
        kind = verdict_kind(task, d)
        if kind in fits:
            return fits[kind].ceiling
        kinds = ("winner", "tie") if winner_decided(task) else ("pass", "fail")
        if any(k not in fits for k in kinds):
            return 1.0  # a kind nobody labelled is not held back
        return max(fits[k].ceiling for k in kinds)

    def basis(self, task: Task, d: decide.Decision | None) -> str:
        kind = verdict_kind(task, d) if d is not None else None
        f = self.fits(task).get(kind or "")
        return AGREEMENT_ONLY if f is None else basis(f.n)
