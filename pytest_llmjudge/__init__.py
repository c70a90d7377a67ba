"""pytest-llmjudge: judged assertions on LLM output, cached and position-debiased.

Importing this package is cheap (pytest imports it at every start-up): the
public names are loaded on first use, and litellm only when a judge is called.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_llmjudge.assertion import assert_judged as assert_judged
    from pytest_llmjudge.assertion import assert_rejected as assert_rejected
    from pytest_llmjudge.assertion import current_judge as current_judge
    from pytest_llmjudge.claim_results import ClaimsVerdict as ClaimsVerdict
    from pytest_llmjudge.claim_results import ClaimVerdict as ClaimVerdict
    from pytest_llmjudge.claims import ClaimsAssertionError as ClaimsAssertionError
    from pytest_llmjudge.claims import ClaimsJudgeError as ClaimsJudgeError
    from pytest_llmjudge.claims import assert_context_recall as assert_context_recall
    from pytest_llmjudge.claims import assert_faithful as assert_faithful
    from pytest_llmjudge.claims import assert_relevant as assert_relevant
    from pytest_llmjudge.claims import judge_context_recall as judge_context_recall
    from pytest_llmjudge.claims import judge_faithfulness as judge_faithfulness
    from pytest_llmjudge.claims import judge_relevance as judge_relevance
    from pytest_llmjudge.conversation import Conversation as Conversation
    from pytest_llmjudge.conversation import (
        ConversationVerdict as ConversationVerdict,
    )
    from pytest_llmjudge.conversation import TurnVerdict as TurnVerdict
    from pytest_llmjudge.conversation import (
        assert_conversation as assert_conversation,
    )
    from pytest_llmjudge.conversation import judge_conversation as judge_conversation
    from pytest_llmjudge.exceptions import BudgetExceededError as BudgetExceededError
    from pytest_llmjudge.exceptions import ConfigError as ConfigError
    from pytest_llmjudge.exceptions import JudgeCallError as JudgeCallError
    from pytest_llmjudge.exceptions import JudgedAssertionError as JudgedAssertionError
    from pytest_llmjudge.exceptions import (
        JudgeInconclusiveWarning as JudgeInconclusiveWarning,
    )
    from pytest_llmjudge.exceptions import (
        JudgeNotConfiguredError as JudgeNotConfiguredError,
    )
    from pytest_llmjudge.exceptions import JudgeOutcomeError as JudgeOutcomeError
    from pytest_llmjudge.exceptions import JudgeParseError as JudgeParseError
    from pytest_llmjudge.exceptions import LLMJudgeError as LLMJudgeError
    from pytest_llmjudge.exceptions import LLMJudgeWarning as LLMJudgeWarning
    from pytest_llmjudge.exceptions import RecordError as RecordError
    from pytest_llmjudge.exceptions import RecordMissingError as RecordMissingError
    from pytest_llmjudge.exceptions import RubricError as RubricError
    from pytest_llmjudge.exceptions import (
        SelfPreferenceWarning as SelfPreferenceWarning,
    )
    from pytest_llmjudge.exceptions import UntrustedJudgeError as UntrustedJudgeError
    from pytest_llmjudge.guidance import Example as Example
    from pytest_llmjudge.judging.judge import Judge as Judge
    from pytest_llmjudge.judging.rank import PairResult as PairResult
    from pytest_llmjudge.judging.rank import Ranking as Ranking
    from pytest_llmjudge.rubric import Criterion as Criterion
    from pytest_llmjudge.rubric import Rubric as Rubric
    from pytest_llmjudge.rubric import Scale as Scale
    from pytest_llmjudge.rubric import load_rubric as load_rubric
    from pytest_llmjudge.trajectory import Trajectory as Trajectory
    from pytest_llmjudge.trajectory import TrajectoryMatch as TrajectoryMatch
    from pytest_llmjudge.trajectory import (
        TrajectoryMismatchError as TrajectoryMismatchError,
    )
    from pytest_llmjudge.trajectory import assert_trajectory as assert_trajectory
    from pytest_llmjudge.trajectory import match_trajectory as match_trajectory
    from pytest_llmjudge.verdict import CriterionResult as CriterionResult
    from pytest_llmjudge.verdict import Outcome as Outcome
    from pytest_llmjudge.verdict import Verdict as Verdict
    from pytest_llmjudge.verdict import Vote as Vote

_WHERE = {
    "JudgeInconclusiveWarning": "exceptions",
    "assert_judged": "assertion",
    "assert_rejected": "assertion",
    "Example": "guidance",
    "current_judge": "assertion",
    "BudgetExceededError": "exceptions",
    "ConfigError": "exceptions",
    "JudgeCallError": "exceptions",
    "JudgeNotConfiguredError": "exceptions",
    "JudgedAssertionError": "exceptions",
    "JudgeOutcomeError": "exceptions",
    "JudgeParseError": "exceptions",
    "LLMJudgeError": "exceptions",
    "LLMJudgeWarning": "exceptions",
    "RecordError": "exceptions",
    "RecordMissingError": "exceptions",
    "RubricError": "exceptions",
    "UntrustedJudgeError": "exceptions",
    "Judge": "judging.judge",
    "Criterion": "rubric",
    "Rubric": "rubric",
    "Scale": "rubric",
    "load_rubric": "rubric",
    "SelfPreferenceWarning": "exceptions",
    "CriterionResult": "verdict",
    "Outcome": "verdict",
    "Verdict": "verdict",
    "Vote": "verdict",
    # issue #13: apps (trajectories, conversations, rankings)
    "Trajectory": "trajectory",
    "TrajectoryMatch": "trajectory",
    "TrajectoryMismatchError": "trajectory",
    "assert_trajectory": "trajectory",
    "match_trajectory": "trajectory",
    "Conversation": "conversation",
    "ConversationVerdict": "conversation",
    "TurnVerdict": "conversation",
    "assert_conversation": "conversation",
    "judge_conversation": "conversation",
    # issue #13: claim-level checks
    "assert_faithful": "claims",
    "assert_relevant": "claims",
    "assert_context_recall": "claims",
    "judge_faithfulness": "claims",
    "judge_relevance": "claims",
    "judge_context_recall": "claims",
    "ClaimsAssertionError": "claims",
    "ClaimsJudgeError": "claims",
    "ClaimsVerdict": "claim_results",
    "ClaimVerdict": "claim_results",
    "PairResult": "judging.rank",
    "Ranking": "judging.rank",
}

__all__ = sorted(_WHERE)
#: Names whose import says a module will judge: litellm starts loading.
_JUDGES = frozenset({"assert_judged", "current_judge", "assert_faithful",
                     "assert_relevant", "assert_context_recall"})


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        if name in _JUDGES:  # a module that judges
            from pytest_llmjudge.runtime.warmup import api_imported

            api_imported(name)
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-llmjudge")
    raise AttributeError(f"module 'pytest_llmjudge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
