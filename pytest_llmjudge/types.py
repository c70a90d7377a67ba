"""Small typed values shared across layers (the bottom of the import graph)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class NodeInfo:
    """The test a judgment belongs to (for records, history and reports)."""

    nodeid: str
    path: str | None = None


class Kind(str, Enum):
    """What a judgment decides: criteria pass/fail, a level on a scale, or a winner."""

    CRITERIA = "criteria"
    SCALE = "scale"
    PAIRWISE = "pairwise"

    def __str__(self) -> str:
        return self.value


class PairMode(str, Enum):
    """What a comparison asserts: report a winner, beat the baseline, or not lose."""

    COMPARE = "compare"
    BETTER = "better"
    NOT_WORSE = "not_worse"

    def __str__(self) -> str:
        return self.value
