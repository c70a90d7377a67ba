"""Rankings: which of several candidates is best, from pairwise comparisons.

Every pair of candidates is an ordinary comparison (``Judge.compare``): shown
in both orders (each candidate first and second), with confidence, cache,
records and reports; all pairs are judged at once. A candidate wins when it
beats every other one (a Condorcet winner); candidates that tie with each
other and beat all the rest are a tie; anything else (a cycle, an undecided
pair) is inconclusive, or a judge error when the judge failed on a pair.
Pairwise rather than listwise: a listwise prompt over n candidates needs n
rotations to put each one in every position and still mixes position with
list length; pairs reuse the comparison machinery that is already debiased
and measured (see ``benchmarks/``).

``best_of``: the output must beat each baseline (``better_than`` for each,
concurrently); only those pairs are judged.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llmjudge.exceptions import (
    ConfigError,
    JudgedAssertionError,
    JudgeOutcomeError,
)
from pytest_llmjudge.judging.expectations import settle
from pytest_llmjudge.judging.message import format_verdict
from pytest_llmjudge.text import scrub
from pytest_llmjudge.types import PairMode
from pytest_llmjudge.verdict import Outcome, Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.judging.judge import Judge
    from pytest_llmjudge.judging.task import Task

#: More candidates than this is a mistake (n * (n - 1) comparisons).
MAX_CANDIDATES = 12


class PairResult(BaseModel):
    """One comparison of the ranking: candidate ``a`` shown as A."""

    model_config = ConfigDict(frozen=True)

    a: int
    b: int
    verdict: Verdict

    @property
    def winner(self) -> int | Literal["tie"] | None:
        """The winning candidate's index, "tie", or None (undecided)."""
        v = self.verdict
        if v.outcome is not Outcome.PASS or v.winner is None:
            return None
        return "tie" if v.winner == "tie" else self.a if v.winner == "A" else self.b


class Ranking(BaseModel):
    """Candidates ranked by pairwise comparisons, both orders each."""

    model_config = ConfigDict(frozen=True)

    status: Literal["winner", "tie", "inconclusive", "judge_error"]
    winner: int | None = Field(default=None, description="Index of the candidate "
                               "that beat every other one.")
    tied: list[int] = Field(default_factory=list, description="Candidates tied "
                            "for first (status 'tie').")
    confidence: float = Field(ge=0.0, le=1.0, description="For a winner or a tie: "
                              "the product of the confidences of the comparisons "
                              "that make it.")
    order: list[int] = Field(description="Candidates by points (a win 1, a tie "
                             "0.5), best first; equal points keep their order.")
    points: list[float]
    pairs: list[PairResult]

    def __bool__(self) -> bool:
        return self.status == "winner"

    @property
    def calls(self) -> int:
        return sum(p.verdict.calls for p in self.pairs)

    def explain(self) -> str:
        head = {"winner": f"WINNER candidate {self.winner}",
                "tie": f"TIE between candidates {', '.join(map(str, self.tied))}",
                "inconclusive": "INCONCLUSIVE (no candidate beat every other one)",
                "judge_error": "JUDGE ERROR (the judge failed on a comparison "
                               "that could decide it)"}[self.status]
        lines = [f"ranking: {head} (confidence {self.confidence:.2f}); "
                 f"{len(self.points)} candidates, {len(self.pairs)} comparisons "
                 "in both orders",
                 "  order: " + ", ".join(f"{i} ({self.points[i]:g})"
                                         for i in self.order)]
        for p in self.pairs:
            w = p.winner
            said = ("tie" if w == "tie" else f"{w} wins" if w is not None else
                    p.verdict.outcome.value.replace("_", " "))
            why = f" - {p.verdict.flaky_reason}" if p.verdict.flaky_reason else ""
            if p.verdict.error:
                why = f" - {p.verdict.error}"
            lines.append(f"  {p.a} vs {p.b}: {said} (confidence "
                         f"{p.verdict.confidence:.2f}){why}")
        return scrub("\n".join(lines))


def pair_tasks(judge: Judge, candidates: Sequence[object], rubric: object,
               kwargs: dict[str, Any]) -> list[tuple[int, int, Task]]:
    """Validated comparisons of every pair (on the caller's thread)."""
    __tracebackhide__ = True
    if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
        raise ConfigError("rank takes a list of candidates (2 or more), not "
                          f"a {type(candidates).__name__}").with_traceback(None)
    n = len(candidates)
    if not 2 <= n <= MAX_CANDIDATES:
        raise ConfigError(f"rank takes 2 to {MAX_CANDIDATES} candidates, got {n} "
                          f"({n * (n - 1)} judge calls per extra sample); rank a "
                          "shortlist").with_traceback(None)
    if kwargs.get("expect", "pass") != "pass":
        raise ConfigError("expect= does not apply to a ranking").with_traceback(None)
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            out.append((i, j, judge.pair_task(candidates[i], candidates[j], rubric,
                                              mode=PairMode.COMPARE, **kwargs)))
    return out


async def gather_pairs(judge: Judge, tasks: list[tuple[int, int, Task]]
                       ) -> list[PairResult]:
    verdicts = await asyncio.gather(*(judge.run(t) for _, _, t in tasks))
    return [PairResult(a=i, b=j, verdict=v)
            for (i, j, _), v in zip(tasks, verdicts, strict=True)]


def decide(n: int, pairs: list[PairResult]) -> Ranking:
    """The ranking the comparisons support, and no more."""
    points = [0.0] * n
    beats: dict[int, set[int]] = {i: set() for i in range(n)}
    ties: dict[int, set[int]] = {i: set() for i in range(n)}
    conf: dict[tuple[int, int], float] = {}
    for p in pairs:
        w = p.winner
        conf[(p.a, p.b)] = conf[(p.b, p.a)] = p.verdict.confidence
        if w == "tie":
            points[p.a] += 0.5
            points[p.b] += 0.5
            ties[p.a].add(p.b)
            ties[p.b].add(p.a)
        elif isinstance(w, int):
            points[w] += 1.0
            beats[w].add(p.b if w == p.a else p.a)
    order = sorted(range(n), key=lambda i: -points[i])
    everyone = set(range(n))
    for i in range(n):
        if beats[i] == everyone - {i}:
            return Ranking(status="winner", winner=i, confidence=_product(
                conf[(i, j)] for j in beats[i]), order=order, points=points,
                pairs=pairs)
    for i in range(n):  # a group tied among itself that beats all the rest
        group = {i} | ties[i]
        if len(group) > 1 and all(ties[g] >= group - {g} and
                                  beats[g] >= everyone - group for g in group):
            used = [conf[(g, h)] for g in group for h in everyone if h != g
                    and (g < h or h not in group)]
            return Ranking(status="tie", tied=sorted(group),
                           confidence=_product(used), order=order, points=points,
                           pairs=pairs)
    failed = any(p.verdict.outcome is Outcome.JUDGE_ERROR for p in pairs)
    return Ranking(status="judge_error" if failed else "inconclusive",
                   confidence=0.0 if failed else 0.5, order=order, points=points,
                   pairs=pairs)


def _product(values: Any) -> float:
    out = 1.0
    for v in values:
        out *= float(v)
    return round(out, 6)


# ------------------------------------------------------------------ best_of
def best_of_tasks(judge: Judge, output: object, baselines: object, rubric: object,
                  kwargs: dict[str, Any]) -> list[Task]:
    """``output`` better than each baseline: one comparison per baseline."""
    __tracebackhide__ = True
    if isinstance(baselines, (str, bytes)) or not isinstance(baselines, Sequence) \
            or not baselines:
        raise ConfigError("best_of= takes a non-empty list of baseline outputs "
                          "that the output must beat").with_traceback(None)
    if kwargs.get("expect", "pass") != "pass":
        raise ConfigError("expect='fail' with best_of= is ambiguous (lose to one "
                          "baseline, or to all?): assert_rejected(output, "
                          "better_than=baseline) per baseline").with_traceback(None)
    for k in ("better_than", "at_least_as_good_as"):
        if kwargs.pop(k, None) is not None:
            raise ConfigError(f"give best_of= or {k}=, not both").with_traceback(None)
    return [judge.pair_task(output, b, rubric, mode=PairMode.BETTER, **kwargs)
            for b in baselines]


def settle_best_of(verdicts: list[Verdict], inconclusive: str) -> Verdict:
    """All comparisons met: the least confident one is returned. Otherwise the
    test's fate as for one verdict, the message listing every unmet one."""
    __tracebackhide__ = True
    unmet = [(k, v) for k, v in enumerate(verdicts) if not v.met]
    if not unmet:
        return min(verdicts, key=lambda v: v.confidence)
    lines = [f"judged: best_of: the output must beat each of {len(verdicts)} "
             f"baseline(s); {len(unmet)} not met"]
    for k, v in unmet:
        lines.append(f"against baseline {k}:")
        lines.append(textwrap.indent(format_verdict(v), "  "))
    message = "\n".join(lines)
    of = {o: [v for _, v in unmet if v.outcome is o] for o in Outcome}
    if of[Outcome.FAIL] or (of[Outcome.INCONCLUSIVE] and inconclusive == "fail"):
        first = (of[Outcome.FAIL] or of[Outcome.INCONCLUSIVE])[0]
        raise JudgedAssertionError(message, first)
    if of[Outcome.JUDGE_ERROR]:
        raise JudgeOutcomeError(message, of[Outcome.JUDGE_ERROR][0])
    # Inconclusive only, under xfail / skip / warn: as for one verdict.
    return settle(of[Outcome.INCONCLUSIVE][0], inconclusive)
