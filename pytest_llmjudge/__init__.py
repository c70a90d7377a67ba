"""pytest-llmjudge: judged assertions on LLM output, cached and position-debiased.

Importing this package is cheap (pytest imports it at every start-up): the
public names are loaded on first use, and litellm only when a judge is called.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .assertion import JudgeInconclusiveWarning as JudgeInconclusiveWarning
    from .assertion import assert_judged as assert_judged
    from .assertion import current_judge as current_judge
    from .exceptions import BudgetExceededError as BudgetExceededError
    from .exceptions import ConfigError as ConfigError
    from .exceptions import JudgeCallError as JudgeCallError
    from .exceptions import JudgedAssertionError as JudgedAssertionError
    from .exceptions import JudgeNotConfiguredError as JudgeNotConfiguredError
    from .exceptions import JudgeOutcomeError as JudgeOutcomeError
    from .exceptions import JudgeParseError as JudgeParseError
    from .exceptions import LLMJudgeError as LLMJudgeError
    from .exceptions import RecordMissingError as RecordMissingError
    from .exceptions import RubricError as RubricError
    from .exceptions import UntrustedJudgeError as UntrustedJudgeError
    from .judge import Judge as Judge
    from .rubric import Criterion as Criterion
    from .rubric import Rubric as Rubric
    from .rubric import Scale as Scale
    from .rubric import load_rubric as load_rubric
    from .session import SelfPreferenceWarning as SelfPreferenceWarning
    from .verdict import CriterionResult as CriterionResult
    from .verdict import Outcome as Outcome
    from .verdict import Verdict as Verdict
    from .verdict import Vote as Vote

_WHERE = {
    "JudgeInconclusiveWarning": "assertion",
    "assert_judged": "assertion",
    "current_judge": "assertion",
    "BudgetExceededError": "exceptions",
    "ConfigError": "exceptions",
    "JudgeCallError": "exceptions",
    "JudgeNotConfiguredError": "exceptions",
    "JudgedAssertionError": "exceptions",
    "JudgeOutcomeError": "exceptions",
    "JudgeParseError": "exceptions",
    "LLMJudgeError": "exceptions",
    "RecordMissingError": "exceptions",
    "RubricError": "exceptions",
    "UntrustedJudgeError": "exceptions",
    "Judge": "judge",
    "Criterion": "rubric",
    "Rubric": "rubric",
    "Scale": "rubric",
    "load_rubric": "rubric",
    "SelfPreferenceWarning": "session",
    "CriterionResult": "verdict",
    "Outcome": "verdict",
    "Verdict": "verdict",
    "Vote": "verdict",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-llmjudge")
    raise AttributeError(f"module 'pytest_llmjudge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
