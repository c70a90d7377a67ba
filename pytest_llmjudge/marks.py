"""Pass marks: the numbers a verdict is held to, validated where they are given.

``threshold`` is the share of a rubric's optional criteria that must pass;
``min_score`` the pass mark on a verdict's normalised score (0..1: the weighted
share of all criteria, or a scale's range); ``pass_score`` a scale's mark in
its own units. A mark that cannot apply is an error, never ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_llmjudge.exceptions import RubricError
from pytest_llmjudge.verdict import Outcome


def finite(value: int | float) -> bool:
    """A finite number (NaN and infinities compare oddly with every bound)."""
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


#: Why a share-of-optional pass mark cannot apply (raised, never ignored).
NO_OPTIONAL = (
    "{what} has no effect here: every criterion is required, so all must pass "
    "anyway. Mark some criteria optional (required=False) for a share of optional "
    "criteria, or use min_score= for a pass mark over the weighted share of all "
    "criteria (plain-string criteria then count as optional)")


def check_threshold(value: object, what: str = "threshold") -> float:
    """Return ``value`` as a pass mark in [0, 1] or raise a ``RubricError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RubricError(f"{what} must be a number in [0, 1], got {value!r}")
    if not finite(value):
        raise RubricError(f"{what} must be a finite number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise RubricError(f"{what} must be in [0, 1], got {value!r}")
    return float(value)


def check_pass_score(value: object, low: int, high: int) -> float:
    """Return ``value`` as a pass mark in a scale's units, or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not finite(value):
        raise RubricError(f"pass_score must be a finite number on the scale "
                          f"{low}..{high}, got {value!r}")
    if not low <= value <= high:
        raise RubricError(f"pass_score {value!r} is outside the scale {low}..{high}")
    return float(value)


def whole(key: object) -> int:
    """A level key as an int: 3, "3" and 3.0 are 3; 2.5 and inf are errors."""
    if isinstance(key, bool):
        raise TypeError("a level is not a bool")
    if isinstance(key, float):
        if not key.is_integer():
            raise ValueError(f"level {key} is not a whole number")
        return int(key)
    if isinstance(key, str):
        return int(key.strip())
    if isinstance(key, int):
        return key
    raise TypeError(f"level {key!r} is not a whole number")


def shown(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def share_outcome(held: Sequence[bool | None], probs: Sequence[float], mark: float,
                  errored: bool) -> tuple[Outcome, float]:
    """The outcome of a pass mark on the share of parts that hold (turns of a
    conversation, claims of an answer), and that outcome's confidence.

    Decided only when the undecided parts (``None``: inconclusive, judge
    errors) could not change it: a pass when the parts that hold reach the mark
    even if all undecided ones fail, a fail when they miss it even if all of
    them hold; else a judge error (``errored``: the judge failed on one) or
    inconclusive. The confidence treats parts as independent, each holding
    with its probability in ``probs`` (0.5 when undecided)."""
    need = math.ceil(mark * len(held) - 1e-9)
    yes = sum(h is True for h in held)
    if yes >= need:
        outcome = Outcome.PASS
    elif yes + sum(h is None for h in held) < need:
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.JUDGE_ERROR if errored else Outcome.INCONCLUSIVE
    dist = [1.0]  # dist[k]: probability that k of the parts so far hold
    for p in probs:
        nxt = [0.0] * (len(dist) + 1)
        for k, q in enumerate(dist):
            nxt[k] += q * (1 - p)
            nxt[k + 1] += q * p
        dist = nxt
    p_pass = min(1.0, max(0.0, sum(dist[need:])))
    conf = p_pass if outcome is Outcome.PASS else 1 - p_pass \
        if outcome is Outcome.FAIL else max(p_pass, 1 - p_pass)
    return outcome, round(conf, 6)
