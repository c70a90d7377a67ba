"""Comparisons against people (pure code, no I/O): pairs labelled A, B or tie.

Four figures per comparison rubric: agreement (of the pairs the judge decided,
the share where its winner is the people's), Cohen's kappa over the three
answers (a judge that always says A agrees with labels that are mostly A, and
its kappa is 0), position-consistency (the share of pairs whose two
presentation orders chose the same winner: a judge that prefers whatever it is
shown first never is) and the decisive share (pairs with a winner at all).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_llmjudge.calibration.agreement import Judged
    from pytest_llmjudge.rubric import AnyRubric
    from pytest_llmjudge.verdict import Verdict

#: The people's answers, and the judge's (None: no winner, judge error included).
WINNERS = ("A", "B", "tie")


def winner(v: Verdict | None) -> str | None:
    """The judge's winner in the caller's labels; None when it decided none."""
    if v is None or v.outcome.value == "judge_error":
        return None
    return v.winner


def consistent(v: Verdict | None) -> bool | None:
    """Did both presentation orders choose the same winner (each order's most
    common answer, a tie between answers counting as no choice)? None when
    one order gave no answer."""
    if v is None:
        return None
    chosen: list[str | None] = []
    for p in sorted({x.presentation for x in v.votes}):
        got = Counter(x.winner for x in v.votes
                      if x.presentation == p and x.error is None and x.winner)
        if not got:
            continue
        top = got.most_common(2)
        chosen.append(top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else None)
    if len(chosen) < 2:
        return None
    return chosen[0] is not None and len(set(chosen)) == 1


def cohen_kappa(po: float, pe: float) -> float | None:
    """Cohen's kappa from observed and chance agreement; None when chance
    agreement is certain (each side gave one answer only). Shared by the
    pass/fail groups (``agreement``) and the comparisons here."""
    if pe >= 1 - 1e-12:
        return None
    return (po - pe) / (1 - pe)


@dataclass
class PairAgreement:
    """People (A, B, tie) against the judge (A, B, tie, or None: no winner)."""

    matrix: dict[tuple[str, str | None], int] = field(default_factory=dict)
    orders: int = 0  # pairs where both presentation orders answered
    same: int = 0  # ... and chose the same winner

    def add(self, human: str, judge: str | None, same: bool | None) -> None:
        self.matrix[(human, judge)] = self.matrix.get((human, judge), 0) + 1
        if same is not None:
            self.orders += 1
            self.same += same

    def count(self, human: str | None = None, judge: str | None = "*") -> int:
        return sum(n for (h, j), n in self.matrix.items()
                   if (human is None or h == human) and (judge == "*" or j == judge))

    @property
    def n(self) -> int:
        return self.count()

    @property
    def decided(self) -> int:
        return sum(self.count(judge=w) for w in WINNERS)

    @property
    def agree(self) -> int:
        return sum(self.count(w, w) for w in WINNERS)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.decided if self.decided else None

    @property
    def decisive(self) -> float | None:
        return self.decided / self.n if self.n else None

    @property
    def position_consistency(self) -> float | None:
        return self.same / self.orders if self.orders else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa over the decided pairs and the three answers; None when
        undefined (judge and people each gave the same one answer)."""
        d = self.decided
        if not d:
            return None
        po = self.agree / d
        pe = sum((self.count(judge=w) / d) * (sum(self.count(w, x) for x in WINNERS)
                                              / d) for w in WINNERS)
        return cohen_kappa(po, pe)

    def to_json(self) -> dict[str, Any]:
        return {"pairs": self.n, "decided": self.decided, "agree": self.agree,
                "agreement": self.agreement, "kappa": self.kappa,
                "decisive_share": self.decisive,
                "position_consistency": self.position_consistency,
                "confusion": {f"{h}/{j or 'none'}": n
                              for (h, j), n in sorted(self.matrix.items(),
                                                      key=str)}}


@dataclass
class PairGroup:
    """The pair examples of one comparison rubric."""

    name: str
    rubric: AnyRubric
    items: list[Judged]
    agreement: PairAgreement

    @property
    def title(self) -> str:
        return f"comparisons: {self.name}"


def pair_groups(items: Sequence[Judged]) -> list[PairGroup]:
    """Group the judged pair examples by rubric and count them."""
    by_rubric: dict[str, list[Judged]] = {}
    for j in items:
        if j.example.pair:
            key = json.dumps(j.example.rubric.canonical(), sort_keys=True)
            by_rubric.setdefault(key, []).append(j)
    out = []
    for js in by_rubric.values():
        a = PairAgreement()
        for j in js:
            human = j.example.winner
            assert human is not None  # pair examples always carry one
            a.add(human, winner(j.verdict), consistent(j.verdict))
        out.append(PairGroup(js[0].example.rubric_name, js[0].example.rubric, js, a))
    return out
