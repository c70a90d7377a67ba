"""From votes to a decision: per-criterion evidence, confidence, flakiness.

Model (documented in the README, "How confidence works"): each vote is an
independent reading by a judge that is right with probability ``a``. A vote
adds ``±logit(a)`` to the log-odds that a criterion passes, scaled down (to at
most half) when the judge itself was unsure: by the verdict token's
log-probability where the provider returns it, else by the confidence the
judge stated. The posterior ``sigmoid(log-odds)`` is the criterion's
confidence (a flat prior: pass and fail equally likely before any vote).

``a`` is not assumed: it is estimated from how often the first two
presentations (opposite orders) agree, ``P(agree) = a² + (1-a)²``, pooled over
every judgment of the same judge and kept beside the cache, starting from a
prior worth ``PRIOR_PAIRS`` pairs at ``PRIOR_AGREEMENT``. Only the first pair
counts because the stopping rule draws more votes exactly when those disagree;
pooling every pair made a 95%-accurate judge look 87% accurate.

What the measurements say (``benchmarks/``): with independent errors the
posterior is calibrated (``calibration.py``: ECE about 0.01 over judges 65-95%
accurate). Position bias makes it conservative (balanced orders cancel the
bias, which the model counts as noise). Errors the judge makes in both orders
at once are invisible to any agreement statistic, so real judges come out
overconfident: on JudgeBench (``judgebench_replay.py``) o1-mini's decisive
verdicts are 86% right at a mean reported confidence of 94%.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_llmjudge.rubric import Criterion, Rubric, Scale
from pytest_llmjudge.verdict import CriterionResult, Vote, Winner

PRIOR_AGREEMENT = 0.8
PRIOR_PAIRS = 10.0
MAX_ACCURACY = 0.99


def accuracy_from_agreement(agree: float, pairs: float) -> float:
    """Per-vote accuracy ``a`` implied by the pooled agreement rate."""
    q = (agree + PRIOR_AGREEMENT * PRIOR_PAIRS) / (pairs + PRIOR_PAIRS)
    a = 0.5 + math.sqrt(max(0.0, 2.0 * q - 1.0)) / 2.0
    return min(a, MAX_ACCURACY)


def agreement_pairs(votes: Sequence[Vote], answers: Sequence[object]
                    ) -> tuple[int, int]:
    """(agreeing pairs, pairs) to pool for the accuracy estimate: the first two
    presentations only.

    Why only those: the stopping rule draws more votes exactly when the first
    ones disagree, so pooling every pair of every judgment over-counts
    disagreement (with ``a = 0.95`` it estimated 0.87) and makes the judge look
    worse than it is. Presentations 0 and 1 are drawn whatever they say, so their
    agreement rate is an unbiased estimate of ``a² + (1-a)²``.
    """
    first = {v.presentation: x for v, x in zip(votes, answers, strict=True)
             if v.presentation < 2}
    if len(first) < 2:
        return 0, 0
    return int(first[0] == first[1]), 1


def _finite01(p: float | None) -> float | None:
    """``p`` when it is a finite number in [0, 1], else None: a judge's number
    that is NaN, infinite or out of range is absent, never certainty."""
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        return None
    return float(p) if math.isfinite(p) and 0.0 <= p <= 1.0 else None


def _sigmoid(x: float) -> float:
    if math.isnan(x):
        return 0.5
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _certainty(p: float | None) -> float:
    """Scale in [0.5, 1]: how much a vote counts, from the verdict token's
    probability of "pass" (0 and 1 are both sure; 0.5 is a guess)."""
    p = _finite01(p)
    if p is None:
        return 1.0
    return 0.5 + 0.5 * min(1.0, max(0.0, abs(2.0 * p - 1.0)))


def _stated(c: float | None) -> float:
    """Scale in [0.5, 1] from the confidence a judge states in its own verdict:
    below 0.5 it is guessing (half weight), not sure of the opposite. A
    confidence that is not a finite number in [0, 1] is absent (as if unstated)."""
    c = _finite01(c)
    if c is None:
        return 1.0
    return 0.5 + 0.5 * min(1.0, max(0.0, 2.0 * c - 1.0))


@dataclass(frozen=True)
class Evidence:
    """Aggregated votes on one yes/no question."""

    log_odds: float
    yes: int
    no: int

    @property
    def decision(self) -> bool | None:
        if self.log_odds > 1e-9:
            return True
        if self.log_odds < -1e-9:
            return False
        return None

    @property
    def confidence(self) -> float:
        p = _sigmoid(self.log_odds)
        return max(p, 1.0 - p)


def evidence(signs: Sequence[bool], weights: Sequence[float], a: float) -> Evidence:
    """Log-odds that the answer is yes: each vote adds ``±logit(a)``, scaled by
    the judge's own certainty (``weights``, each in [0.5, 1])."""
    w = math.log(a / (1.0 - a))
    # A weight off [0.5, 1] (never made here) would be a judge's number gone
    # wrong: it counts as a guess, never as more than certainty.
    lo = sum((w if s else -w) * (c if 0.5 <= c <= 1.0 else 0.5)
             for s, c in zip(signs, weights, strict=True))
    yes = sum(1 for s in signs if s)
    return Evidence(lo, yes, len(signs) - yes)


def _vote_certainty(v: Vote, name: str) -> float:
    if _finite01(v.logprob_pass.get(name)) is not None:
        return _certainty(v.logprob_pass[name])
    return _stated(v.stated_confidence)  # an absurd log-probability is absent


@dataclass(frozen=True)
class Decision:
    outcome: str  # pass | fail | inconclusive
    confidence: float
    criteria: list[CriterionResult]
    score: float | None = None
    level: float | None = None
    winner: Winner | None = None
    flaky_reason: str | None = None
    agree: int = 0
    pairs: int = 0


def rule(rubric: Rubric, threshold: float, min_score: float | None = None
         ) -> Callable[[dict[str, bool]], bool]:
    """Required criteria must pass; then either the weighted share of all
    criteria reaches ``min_score`` or (without it) the weighted share of the
    optional ones reaches ``threshold``."""
    def passes(d: dict[str, bool]) -> bool:
        if not all(d[c.name] for c in rubric.criteria if c.required):
            return False
        if min_score is not None:
            total = sum(c.weight for c in rubric.criteria)
            got = sum(c.weight for c in rubric.criteria if d[c.name])
            return got / total >= min_score - 1e-12
        opt = [c for c in rubric.criteria if not c.required]
        if not opt:
            return True
        total = sum(c.weight for c in opt)
        got = sum(c.weight for c in opt if d[c.name])
        return got / total >= threshold - 1e-12

    return passes


def _disagreement(name: str, votes: Sequence[Vote], signs: Sequence[bool]
                  ) -> str | None:
    if len(set(signs)) < 2:
        return None
    yes = sum(signs)
    by_parity = {(v.presentation % 2, s) for v, s in zip(votes, signs, strict=True)}
    parities = {p for p, _ in by_parity}
    if len(by_parity) == len(parities) == 2:
        return (
            f"position bias on {name!r}: the verdict followed the presentation order "
            f"({yes} pass / {len(signs) - yes} fail)"
        )
    return f"presentations disagree on {name!r} ({yes} pass / {len(signs) - yes} fail)"


def decide_criteria(rubric: Rubric, votes: Sequence[Vote], a: float,
                    threshold: float, min_score: float | None = None) -> Decision:
    good = [v for v in votes if v.error is None]
    results: dict[str, Evidence] = {}
    crs: list[CriterionResult] = []
    reasons: list[str] = []
    agree = pairs = 0
    for c in rubric.criteria:
        signs = [v.verdicts[c.name] == "pass" for v in good]
        ev = evidence(signs, [_vote_certainty(v, c.name) for v in good], a)
        results[c.name] = ev
        ag, pr = agreement_pairs(good, signs)
        agree, pairs = agree + ag, pairs + pr
        if (r := _disagreement(c.name, good, signs)) is not None:
            reasons.append(r)
        crs.append(_criterion_result(c, ev, good))
    passes = rule(rubric, threshold, min_score)
    decided = {n: e.decision for n, e in results.items()}
    undecided = [n for n, d in decided.items() if d is None]
    # An undecided criterion leaves the verdict inconclusive only if it matters.
    outcomes = set()
    for fill in (True, False):
        outcomes.add(passes({n: (fill if d is None else d)
                             for n, d in decided.items()}))
    if len(outcomes) > 1:
        return Decision("inconclusive", 0.5, crs, _score(rubric, decided),
                        flaky_reason="; ".join(reasons) or None, agree=agree,
                        pairs=pairs)
    outcome = outcomes.pop()
    full = {n: (bool(d) if d is not None else outcome) for n, d in decided.items()}
    sensitive = [n for n in full if n not in undecided
                 and passes({**full, n: not full[n]}) != outcome]
    if sensitive:
        conf = math.prod(results[n].confidence for n in sensitive)
    else:
        support = [n for n in full if n not in undecided and full[n] == outcome]
        conf = 1.0 - math.prod(1.0 - results[n].confidence for n in support)
    return Decision("pass" if outcome else "fail", conf, crs, _score(rubric, decided),
                    flaky_reason="; ".join(reasons) or None, agree=agree, pairs=pairs)


def _score(rubric: Rubric, decided: dict[str, bool | None]) -> float:
    total = sum(c.weight for c in rubric.criteria)
    return sum(c.weight for c in rubric.criteria if decided[c.name]) / total


def _criterion_result(c: Criterion, ev: Evidence, votes: Sequence[Vote]
                      ) -> CriterionResult:
    side = "pass" if ev.decision is not False else "fail"
    reasons = [v.reasoning.get(c.name, "") for v in votes
               if v.verdicts.get(c.name) == side]
    return CriterionResult(
        name=c.name, description=c.description, required=c.required, weight=c.weight,
        passed=ev.decision, pass_votes=ev.yes, fail_votes=ev.no,
        confidence=ev.confidence, reasoning=next((r for r in reasons if r), ""),
    )


def decide_scale(rubric: Scale, votes: Sequence[Vote], a: float, mark: float
                 ) -> Decision:
    """Each vote's score (the probability-weighted mean where log-probabilities
    came, else the score written) is a pass vote when it reaches ``mark``, the
    pass mark in the scale's units."""
    good = [v for v in votes if v.error is None and v.level is not None]
    values = [_vote_score(v) for v in good]
    signs = [x >= mark - 1e-9 for x in values]
    ev = evidence(signs, [_stated(v.stated_confidence) for v in good], a)
    levels = [int(v.level or 0) for v in good]
    mean = sum(values) / len(values) if values else None
    ag, pr = agreement_pairs(good, signs)
    reason = _disagreement(rubric.name, good, signs)
    if reason is None and levels and len(set(levels)) > 1:
        reason = f"presentations gave different levels {sorted(levels)}"
    side = ev.decision
    cr = CriterionResult(
        name=rubric.name, description=rubric.criterion, passed=side,
        pass_votes=ev.yes, fail_votes=ev.no, confidence=ev.confidence,
        reasoning=next((v.reasoning.get("score", "") for v, s in zip(
            good, signs, strict=True) if s == (side is not False)), ""),
    )
    outcome = "inconclusive" if side is None else ("pass" if side else "fail")
    score = None if mean is None else rubric.normalised(mean)
    return Decision(outcome, ev.confidence, [cr], score, mean, flaky_reason=reason,
                    agree=ag, pairs=pr)


def _vote_score(v: Vote) -> float:
    m = v.score_mean
    if isinstance(m, (int, float)) and math.isfinite(m):
        return float(m)
    return float(v.level or 0)


def score_basis(votes: Sequence[Vote]) -> str:
    """Which score a scale verdict used: the probability-weighted mean (every
    answered vote had log-probabilities) or the written score."""
    good = [v for v in votes if v.error is None and v.level is not None]
    weighted = [v for v in good if v.score_mean is not None]
    if good and len(weighted) == len(good):
        return "logprob-weighted"
    return "arg-max" if not weighted else "logprob-weighted where given, else arg-max"


def decide_pairwise(votes: Sequence[Vote], a: float, mode: str) -> Decision:
    """``mode``: 'compare' (3-way), 'better' (A beats B) or 'not_worse' (A >= B)."""
    good = [v for v in votes if v.error is None and v.winner is not None]
    cert = [_stated(v.stated_confidence) for v in good]
    winners = [str(v.winner) for v in good]
    w = math.log(a / (1.0 - a))
    choices: tuple[Winner, ...] = ("A", "B", "tie")
    weight = {k: sum(w * c
                     for x, c in zip(winners, cert, strict=True) if x == k)
              for k in choices}
    ranked = sorted(weight.items(), key=lambda kv: kv[1], reverse=True)
    margin = ranked[0][1] - ranked[1][1]
    winner = ranked[0][0] if margin > 1e-9 else None
    ag, pr = agreement_pairs(good, winners)
    reason = None
    if len(set(winners)) > 1:
        shown_first = [(v.order.startswith("B") == (x == "B"))
                       for v, x in zip(good, winners, strict=True)]
        if "tie" not in winners and len(set(shown_first)) == 1:
            reason = ("position bias: the judge preferred the response shown "
                      f"{'first' if shown_first[0] else 'second'} in every order")
        else:
            reason = f"presentations disagree on the winner ({', '.join(winners)})"
    score = (sum(1.0 if x == "A" else 0.5 if x == "tie" else 0.0 for x in winners)
             / len(winners)) if winners else None
    if mode == "compare":
        conf = _sigmoid(margin) if winner else 0.5
        outcome = "inconclusive" if winner is None else "pass"
        return Decision(outcome, conf, [], score, winner=winner, flaky_reason=reason,
                        agree=ag, pairs=pr)
    ok = {"better": {"A"}, "not_worse": {"A", "tie"}}[mode]
    ev = evidence([x in ok for x in winners], cert, a)
    name = "better_than" if mode == "better" else "at_least_as_good_as"
    cr = CriterionResult(name=name, description=f"candidate {name.replace('_', ' ')} "
                         "baseline", passed=ev.decision, pass_votes=ev.yes,
                         fail_votes=ev.no, confidence=ev.confidence,
                         reasoning=next((v.reasoning.get("winner", "")
                                         for v in good), ""))
    outcome = ("inconclusive" if ev.decision is None
               else "pass" if ev.decision else "fail")
    return Decision(outcome, ev.confidence if outcome != "inconclusive" else 0.5, [cr],
                    score, winner=winner, flaky_reason=reason, agree=ag, pairs=pr)
