"""Agreement statistics: people against the judge (pure code, no I/O).

Kappa rather than agreement alone: a judge that passes everything agrees 90%
with labels that are 90% pass, and its kappa is 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.calibration.pairs import PairGroup, cohen_kappa, pair_groups
from pytest_llmjudge.judging import decide
from pytest_llmjudge.judging.trust import distrust
from pytest_llmjudge.rubric import Rubric
from pytest_llmjudge.verdict import Outcome

if TYPE_CHECKING:
    from pytest_llmjudge.calibration.labels import Example
    from pytest_llmjudge.judging.task import Task
    from pytest_llmjudge.rubric import AnyRubric
    from pytest_llmjudge.verdict import Verdict

#: Agreement targets the confidence-threshold table answers for.
TARGETS = (0.90, 0.95)
JUDGE_COLUMNS = tuple(o.value for o in Outcome)


@dataclass
class Agreement:
    """People (pass/fail) against the judge (pass, fail, inconclusive, judge_error)."""

    matrix: dict[tuple[bool, str], int] = field(default_factory=dict)

    def add(self, human: bool, judge: str) -> None:
        self.matrix[(human, judge)] = self.matrix.get((human, judge), 0) + 1

    def count(self, human: bool | None = None, judge: str | None = None) -> int:
        return sum(n for (h, j), n in self.matrix.items()
                   if (human is None or h == human) and (judge is None or j == judge))

    @property
    def n(self) -> int:
        return self.count()

    @property
    def decided(self) -> int:
        return self.count(judge="pass") + self.count(judge="fail")

    @property
    def agree(self) -> int:
        return self.count(True, "pass") + self.count(False, "fail")

    @property
    def agreement(self) -> float | None:
        return self.agree / self.decided if self.decided else None

    @property
    def judge_pass_rate(self) -> float | None:
        return self.count(judge="pass") / self.decided if self.decided else None

    @property
    def human_pass_rate(self) -> float | None:
        """The people's pass rate on the examples the judge decided (so that it
        compares with the judge's)."""
        if not self.decided:
            return None
        return (self.count(True, "pass") + self.count(True, "fail")) / self.decided

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa over decided examples; None when undefined (judge and
        people each gave one verdict only)."""
        po, pj, ph = self.agreement, self.judge_pass_rate, self.human_pass_rate
        if po is None or pj is None or ph is None:
            return None
        return cohen_kappa(po, pj * ph + (1 - pj) * (1 - ph))

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.n, "decided": self.decided, "agree": self.agree,
                "agreement": self.agreement, "kappa": self.kappa,
                "judge_pass_rate": self.judge_pass_rate,
                "human_pass_rate": self.human_pass_rate,
                "confusion": {f"{'pass' if h else 'fail'}/{j}": n
                              for (h, j), n in sorted(self.matrix.items())}}


@dataclass
class Judged:
    """One example after judging."""

    example: Example
    task: Task | None
    verdict: Verdict | None
    error: str | None = None
    #: (kind of verdict, agreement-only confidence, right): calibrates confidence
    point: tuple[str, float, bool] | None = None

    @property
    def judge(self) -> str:
        return "judge_error" if self.verdict is None else self.verdict.outcome.value

    @property
    def human(self) -> bool | None:
        """The people's overall verdict, given or implied by labelled criteria."""
        ex = self.example
        if ex.label is not None:
            return ex.label
        r = ex.rubric
        names = {c.name for c in r.criteria} if isinstance(r, Rubric) else None
        if not isinstance(r, Rubric) or set(ex.criteria) != names:
            return None
        threshold = self.task.threshold if self.task else 0.5
        share = self.task.min_score if self.task else r.min_score
        return decide.rule(r, threshold, share)(dict(ex.criteria))

    @property
    def lean(self) -> bool | None:
        """Which way the judge leant, also when its confidence fell short."""
        v = self.verdict
        if v is None or v.outcome.value == "judge_error":
            return None
        if v.outcome.value in ("pass", "fail"):
            return v.outcome.value == "pass"
        return _lean(self.example.rubric, v, self.task.threshold if self.task else 0.5,
                     self.task.min_score if self.task else None)

    def criterion(self, name: str) -> str:
        if self.verdict is None or self.verdict.outcome.value == "judge_error":
            return "judge_error"
        for c in self.verdict.criteria:
            if c.name == name:
                return {True: "pass", False: "fail", None: "inconclusive"}[c.passed]
        return "judge_error"


def _lean(rubric: AnyRubric, v: Verdict, threshold: float,
          min_score: float | None = None) -> bool | None:
    if not isinstance(rubric, Rubric):
        return v.criteria[0].passed if v.criteria else None
    decided = {c.name: c.passed for c in v.criteria}
    if set(decided) != {c.name for c in rubric.criteria}:
        return None
    rule = decide.rule(rubric, threshold, min_score)
    ends = {rule({n: (fill if d is None else d) for n, d in decided.items()})
            for fill in (True, False)}
    return ends.pop() if len(ends) == 1 else None


def _member_outcomes(j: Judged) -> dict[str, str]:
    """Each jury member's own decision, re-derived from its votes (the sign of the
    evidence does not depend on the accuracy estimate)."""

    v, task = j.verdict, j.task
    if v is None or task is None:
        return {}
    models = list(dict.fromkeys(x.model for x in v.votes))
    out: dict[str, str] = {}
    for m in models:
        votes = [x for x in v.votes if x.model == m and x.error is None]
        if not votes:
            out[m] = "judge_error"
        elif isinstance(task.rubric, Rubric):
            d = decide.decide_criteria(task.rubric, votes, 0.9, task.threshold,
                                       task.min_score)
            out[m] = d.outcome
        else:
            mark = task.pass_score if task.pass_score is not None else 0.0
            out[m] = decide.decide_scale(task.rubric, votes, 0.9, mark).outcome
    return out


@dataclass
class Group:
    """The examples of one rubric."""

    name: str
    rubric: AnyRubric
    items: list[Judged]
    overall: Agreement
    criteria: dict[str, Agreement]
    members: dict[str, Agreement]
    unanimous: int = 0
    jury_share: float | None = None  # mean share of members with the majority

    @property
    def trust(self) -> Agreement:
        """What min_kappa is checked against: the overall verdicts, or the pooled
        criterion verdicts when no overall verdict was labelled or implied."""
        if self.overall.n or not self.criteria:
            return self.overall
        pooled = Agreement()
        for a in self.criteria.values():
            for k, n in a.matrix.items():
                pooled.matrix[k] = pooled.matrix.get(k, 0) + n
        return pooled


def _group(name: str, items: list[Judged]) -> Group:
    first = items[0]
    rubric = first.task.guided_rubric() if first.task else first.example.rubric
    g = Group(name, rubric, items, Agreement(), {}, {})
    shares: list[float] = []
    for j in items:
        human = j.human
        if human is not None:
            g.overall.add(human, j.judge)
        for cname, value in j.example.criteria.items():
            g.criteria.setdefault(cname, Agreement()).add(value, j.criterion(cname))
        members = _member_outcomes(j) if j.task and len(j.task.settings.models) > 1 \
            else {}
        if members:
            outs = list(members.values())
            best = max(outs.count(o) for o in set(outs))
            shares.append(best / len(outs))
            g.unanimous += best == len(outs)
            if human is not None:
                for m, o in members.items():
                    g.members.setdefault(m, Agreement()).add(human, o)
    if shares:
        g.jury_share = sum(shares) / len(shares)
    order = [c.name for c in getattr(g.rubric, "criteria", ())]
    g.criteria = dict(sorted(g.criteria.items(), key=lambda kv: order.index(kv[0])))
    return g


def _floor3(x: float) -> float:
    return math.floor(x * 1000 + 1e-9) / 1000


@dataclass(frozen=True)
class Threshold:
    """Decisive verdicts at one min_confidence, against people."""

    min_confidence: float
    decisive: int
    agree: int
    inconclusive: int

    @property
    def agreement(self) -> float | None:
        return self.agree / self.decisive if self.decisive else None


def thresholds(items: Sequence[Judged], configured: float,
               targets: Sequence[float] = TARGETS
               ) -> tuple[Threshold, dict[float, Threshold | None], float | None]:
    """(this run at ``configured``, the lowest min_confidence reaching each
    target (None: unreachable), the best agreement any threshold gives)."""
    base = [j for j in items if j.human is not None and j.verdict is not None
            and j.judge != "judge_error"]
    pts = [(j.verdict.confidence, j.lean == j.human) for j in base  # type: ignore[union-attr]
           if j.lean is not None]

    def at(t: float) -> Threshold:
        got = [ok for c, ok in pts if c >= t]
        return Threshold(t, len(got), sum(got), len(base) - len(got))

    cands = sorted({0.5, *(max(0.5, _floor3(c)) for c, _ in pts)})
    rows = [at(t) for t in cands]
    best = max((r.agreement for r in rows if r.agreement is not None), default=None)
    found: dict[float, Threshold | None] = {}
    for target in targets:
        found[target] = next((r for r in rows if r.agreement is not None
                              and r.agreement >= target - 1e-12), None)
    return at(configured), found, best


@dataclass
class CalibrationRun:
    """Everything the calibration report shows."""

    shown: str  # the labels file as the user named it
    models: tuple[str, ...]
    groups: list[Group]
    overall: Agreement
    items: list[Judged]
    configured: Threshold
    targets: dict[float, Threshold | None]
    best: float | None
    min_kappa: float | None
    api_base: str | None = None  # part of the judge's identity
    stored: bool = False
    pairs: list[PairGroup] = field(default_factory=list)  # comparisons

    def untrusted(self) -> list[Group]:
        if self.min_kappa is None:
            return []
        return [g for g in self.groups
                if distrust(g.trust.kappa, g.trust.decided, g.trust.n, self.min_kappa)]


def summarise(shown: str, models: tuple[str, ...], items: list[Judged],
              min_confidence: float, min_kappa: float | None,
              api_base: str | None = None) -> CalibrationRun:
    """Group the judged examples by rubric and compute every figure."""
    by_rubric: dict[str, list[Judged]] = {}
    for j in items:
        if j.example.pair:
            continue  # comparisons: counted apart (calibration.pairs)
        by_rubric.setdefault(json.dumps(j.example.rubric.canonical(), sort_keys=True),
                             []).append(j)
    groups = [_group(js[0].example.rubric_name, js) for js in by_rubric.values()]
    overall = Agreement()
    for g in groups:
        for k, n in g.trust.matrix.items():
            overall.matrix[k] = overall.matrix.get(k, 0) + n
    configured, found, best = thresholds(items, min_confidence)
    return CalibrationRun(shown, models, groups, overall, items, configured, found,
                          best, min_kappa, api_base, pairs=pair_groups(items))

