"""One exception tree: ``LLMJudgeError`` for judge problems, an ``AssertionError``
for judged failures, so that pytest reports each as what it is."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_llmjudge.verdict import Verdict


class LLMJudgeError(Exception):
    """Root of every error the plugin raises that is not a failed assertion."""


class ConfigError(LLMJudgeError, ValueError):
    """A setting, marker argument or call argument is wrong; says what to change."""


class JudgeNotConfiguredError(ConfigError):
    """No judge model is configured: the test errors (a setup problem), it does not
    fail (nothing was judged)."""


class RubricError(ConfigError):
    """A rubric cannot be used as given (empty, duplicate names, bad file)."""


class JudgeCallError(LLMJudgeError):
    """The judge could not be reached or kept failing after retries."""

    def __init__(self, message: str, *, cause: str = "error", retries: int = 0):
        super().__init__(message)
        self.cause = cause
        self.retries = retries


class JudgeParseError(LLMJudgeError):
    """The judge replied, but not in the documented reply contract."""

    def __init__(self, message: str, *, reply: str = ""):
        super().__init__(message)
        self.reply = reply


class RecordError(LLMJudgeError):
    """A records file or one of its entries cannot be used as it is: the
    judgment is a judge error that names the file, and nothing is asked of the
    network in its place nor written over the file."""

    def __init__(self, message: str, *, path: str = "", key: str = ""):
        super().__init__(message)
        self.path = path
        self.key = key


class RecordMissingError(RecordError):
    """Replay mode needs a recorded reply that the records file does not hold."""

    def __init__(self, *, path: str, key: str, mode: str, test: str):
        # "once" only records files that do not exist yet: advise what will work.
        flag = ("--llmjudge-record-mode=new_episodes" if os.path.exists(path) else
                "--llmjudge-record-mode=once (or new_episodes)")
        super().__init__(
            f"no recorded judge reply for {test} in {path} (key {key[:16]}…, "
            f"record mode {mode!r}). Record it with {flag} and a configured judge "
            "model, then commit the file.", path=path, key=key)
        self.mode = mode


class BudgetExceededError(LLMJudgeError):
    """The run's judge-call or cost budget is spent; no new calls are made."""


class JudgeOutcomeError(LLMJudgeError):
    """A judged assertion could not be decided because the judge failed.

    Raised by ``assert_judged`` for the ``judge_error`` outcome, so that pytest
    reports an error, never an ordinary failure or a pass.
    """

    def __init__(self, message: str, verdict: Verdict):
        super().__init__(message)
        self.verdict = verdict


class UntrustedJudgeError(JudgeOutcomeError):
    """Calibration showed the judge agrees too little with people for this rubric
    (``--llmjudge-min-kappa``); reported as a judge error, never a test failure."""


class JudgedAssertionError(AssertionError):
    """A judged expectation was not met; carries the full ``Verdict``."""

    def __init__(self, message: str, verdict: Verdict):
        super().__init__(message)
        self.verdict = verdict


class LLMJudgeWarning(UserWarning):
    """Root of every warning the plugin raises: filter them all with one name."""


class JudgeInconclusiveWarning(LLMJudgeWarning):
    """A judged expectation was inconclusive and ``inconclusive=warn`` let it pass."""


class SelfPreferenceWarning(LLMJudgeWarning):
    """The judge is the model (or family) that wrote the judged output."""


class CacheWarning(LLMJudgeWarning):
    """The judge cache could not be used as it is; the run goes on without it."""


class RecordWarning(LLMJudgeWarning):
    """A records file could not be used as it is."""


class BaselineWarning(LLMJudgeWarning):
    """The baseline report could not be compared with this run."""


def warn_at_caller(warning: LLMJudgeWarning) -> None:
    """Warn at the first frame outside this package: the user's line, however
    deep inside the plugin the cause was found."""
    package = os.path.dirname(os.path.abspath(__file__))
    # stacklevel 1 is this function; 2 its caller, and so on up the stack.
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(
            frame.f_code.co_filename).startswith(package + os.sep):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    warnings.warn(warning, stacklevel=level)
