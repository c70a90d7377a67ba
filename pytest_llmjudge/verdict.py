"""The public result of a judgment: a frozen pydantic ``Verdict``."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Outcome(str, Enum):
    """What a judgment concluded. Only ``pass`` passes a test."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    JUDGE_ERROR = "judge_error"

    def __str__(self) -> str:
        return self.value


Winner = Literal["A", "B", "tie"]


class Vote(BaseModel):
    """One judge reply for one presentation (order) and sample."""

    model_config = ConfigDict(frozen=True)

    presentation: int = Field(description="Index of the presentation (0 = as given).")
    order: str = Field(description="How this presentation ordered what it showed.")
    model: str = Field(description="Judge model that answered.")
    verdicts: dict[str, Literal["pass", "fail"]] = Field(
        default_factory=dict, description="Per-criterion verdict (pointwise)."
    )
    reasoning: dict[str, str] = Field(
        default_factory=dict, description="Per-criterion reasoning given by the judge."
    )
    level: int | None = Field(default=None, description="Scale level (scale rubrics).")
    score_mean: float | None = Field(
        default=None, description="Scales: the probability-weighted mean score from "
        "the score token's log-probabilities (G-Eval), where the provider gave them.")
    winner: Winner | None = Field(
        default=None,
        description="Comparison winner in the caller's labels (A = first).",
    )
    stated_confidence: float | None = Field(
        default=None, description="Confidence the judge stated in its reply."
    )
    logprob_pass: dict[str, float] = Field(
        default_factory=dict,
        description="Per-criterion probability of 'pass' from token log-probabilities.",
    )
    cached: bool = Field(default=False, description="Served from cache or records.")
    tokens: int = 0
    error: str | None = Field(default=None,
                              description="Why this vote failed, if it did.")


class CriterionResult(BaseModel):
    """The aggregated result of one criterion over all votes."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    required: bool = True
    weight: float = 1.0
    passed: bool | None = Field(description="None when the votes left it undecided.")
    pass_votes: int = 0
    fail_votes: int = 0
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(default="", description="Judge reasoning for the majority.")


class JuryMember(BaseModel):
    """One judge model's own decision within a jury."""

    model_config = ConfigDict(frozen=True)

    model: str
    outcome: Outcome
    confidence: float = Field(ge=0.0, le=1.0)
    winner: Winner | None = Field(default=None, description="Comparisons only.")


class Jury(BaseModel):
    """How the judges of a jury (``model=[...]``) decided, and how far they agreed."""

    model_config = ConfigDict(frozen=True)

    members: list[JuryMember] = Field(default_factory=list)
    agreement: float = Field(ge=0.0, le=1.0, description="Share of members in the "
                             "majority (1.0: unanimous).")
    failed: list[str] = Field(default_factory=list,
                              description="Members whose judge calls failed.")


class Verdict(BaseModel):
    """Everything known about one judged expectation.

    ``bool(verdict)`` is ``verdict.passed``.
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    passed: bool
    kind: Literal["criteria", "scale", "pairwise"]
    rubric: str = Field(description="Short description of the rubric.")
    score: float | None = Field(
        default=None,
        description="Weighted share of passing criteria, or the scale level mapped to "
        "[0, 1] ((level - 1) / (N - 1)); for comparisons the share of votes for A.",
    )
    level: float | None = Field(default=None, description="Mean scale level (scales), "
                                "in the scale's units.")
    score_range: list[int] | None = Field(
        default=None, description="Scales: the lowest and highest score.")
    pass_score: float | None = Field(
        default=None, description="Scales: the pass mark in the scale's units.")
    pass_mark: float | None = Field(
        default=None, description="The pass mark on ``score`` (0..1), for scales and "
        "for criteria judged by min_score.")
    score_basis: str | None = Field(
        default=None, description="Scales: 'logprob-weighted' (the mean over the "
        "score token's probabilities) or 'arg-max' (the score the judge wrote).")
    expect: Literal["pass", "fail"] = Field(
        default="pass", description="'fail' for a negative control: the judge must "
        "reject the output, and a fail is what the test wants.")
    confidence: float = Field(ge=0.0, le=1.0)
    criteria: list[CriterionResult] = Field(default_factory=list)
    votes: list[Vote] = Field(default_factory=list)
    winner: Winner | None = None
    flaky: bool = False
    flaky_reason: str | None = None
    calls: int = Field(default=0, description="Judge calls made over the network.")
    cache_hits: int = Field(default=0, description="Replies served from cache/records.")
    cached: bool = Field(default=False, description="True when no call was needed.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = Field(default=None, description="USD, where litellm knows it.")
    model: str = ""
    error: str | None = Field(default=None, description="Cause of a judge_error.")
    excerpt: str = Field(default="", description="Start of the judged output.")
    warnings: list[str] = Field(default_factory=list)
    key: str = Field(default="", description="Identity of the judged assertion.")
    jury: Jury | None = Field(default=None, description="Per-member decisions when "
                              "several judge models decided (a jury).")
    confidence_basis: str = Field(
        default="agreement only",
        description="What the confidence rests on: \"agreement only\" (how often "
        "the presentation orders agree; blind to errors a judge makes in every "
        "order) or \"calibrated on N labelled examples\" (people's labels).")

    @property
    def met(self) -> bool:
        """The verdict is what the test expects: a pass, or for a negative
        control (``expect="fail"``) a fail."""
        want = Outcome.FAIL if self.expect == "fail" else Outcome.PASS
        return self.outcome is want

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def samples(self) -> int:
        return len(self.votes)

    def __bool__(self) -> bool:
        return self.passed
