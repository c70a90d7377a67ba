"""The light link between pytest and a judged assertion.

``plugin.py`` imports only this (no pydantic, no diskcache, no litellm) so that
pytest start-up stays cheap; the ``JudgeSession`` is built on first use.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmjudge.types import NodeInfo

if TYPE_CHECKING:
    from pytest_llmjudge.runtime.session import JudgeSession
    from pytest_llmjudge.settings import Settings


class SessionHolder:
    """Builds the process's ``JudgeSession`` the first time something judges."""

    def __init__(self, factory: Callable[[], JudgeSession]):
        self._factory = factory
        self._session: JudgeSession | None = None

    @property
    def built(self) -> JudgeSession | None:
        return self._session

    def get(self) -> JudgeSession:
        if self._session is None:
            self._session = self._factory()
        return self._session


@dataclass
class TestContext:
    """What a judged assertion inside one test needs."""

    holder: SessionHolder
    node: NodeInfo | None
    settings: Settings
    records: list[dict[str, Any]] = field(default_factory=list)
    #: ``judge.expect()`` calls still to settle when the test body ends.
    expectations: list[Any] = field(default_factory=list)


#: Set by the plugin around each test; a ContextVar so async tests see it too.
active: contextvars.ContextVar[TestContext | None] = contextvars.ContextVar(
    "llmjudge_active", default=None)

#: The test this process is running, for threads the test starts: a
#: ``ThreadPoolExecutor`` worker does not inherit context variables, and pytest
#: runs one test at a time per process (xdist workers included).
_running: list[TestContext] = []


def enter(ctx: TestContext) -> None:
    """The plugin's ``pytest_runtest_setup``: ``ctx`` is the running test's."""
    active.set(ctx)
    _running[:] = [ctx]


def leave() -> None:
    """After the test's teardown: judged calls report to no test."""
    active.set(None)
    _running.clear()


def current() -> TestContext | None:
    """The running test's context: this thread's (or task's) own, else the one
    the process is running (a worker thread of the test)."""
    ctx = active.get()
    if ctx is None and _running:
        return _running[0]
    return ctx

#: The process's judge session (built on first use) and each test's context.
holder_key = pytest.StashKey[SessionHolder]()
context_key = pytest.StashKey[TestContext]()
