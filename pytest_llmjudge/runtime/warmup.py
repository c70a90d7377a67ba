"""Import litellm in the background as soon as a run knows it will judge (#14).

litellm takes seconds to import, and its first call seconds more (the OpenAI
SDK's resources load lazily). Paid inside the first judged test, that is the
wait before the first verdict. The import starts instead in a daemon thread
when a module imports ``assert_judged`` or ``current_judge`` from the package
(before the rest of a test module, its app included, is imported), when
collection finds a judged test (the ``llmjudge`` marker, the ``judge``
fixture, or a test module holding anything from ``pytest_llmjudge``), or when
a test asks for the ``judge`` fixture; an xdist worker does the same from its
own collection. It runs beside collection and other tests: when they wait
(I/O, sleeps, the app's own calls) it costs them nothing; when they are busy
in Python the two share the GIL (see ``benchmarks/first_verdict.py``).

Not started: under ``--collect-only``, ``--setup-plan`` and ``--setup-only``,
in a replay-only run (``--llmjudge-record-mode=none`` makes no call), or with
``LLMJUDGE_EAGER_IMPORT=0``. With ``-k``, ``-m``, ``--deselect``, ``--lf`` or
``--sw`` it waits for the end of collection and looks at the tests left.

Safety: the import takes the same lock as the judge's own first import
(``client._IMPORT_LOCK``), so the judge waits for it rather than importing
twice; the app under test importing litellm (or its dependencies) in the main
thread meanwhile waits on Python's per-module import locks, and litellm never
imports the app's modules, so no lock is held in the opposite order. The
``.env`` and cost-map hygiene is the judge's own import's; the environment is
set by the thread that starts the import, before the thread exists. If the
import fails, nothing is lost: the first judged call imports on demand and
reports. A run that ends before the import finishes (a fully cached run, say)
waits for it at ``pytest_unconfigure`` (see ``watch``).
"""

from __future__ import annotations

import os
import threading
import weakref
from types import ModuleType
from typing import Any

import pytest

from pytest_llmjudge.constants import MARKER
from pytest_llmjudge.settings import settings_key

ENV = "LLMJUDGE_EAGER_IMPORT"
FIXTURE = "judge"
_DESELECTING = ("keyword", "markexpr", "deselect", "lf", "stepwise")


class _Import:
    """The process's background import: one per process, as the import is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.reason = ""
        self.error: BaseException | None = None
        #: The run in progress (pytest_configure to pytest_unconfigure), for
        #: ``api_imported``: a module-level import has no config at hand.
        self.config: pytest.Config | None = None

    def started(self) -> bool:
        return self.thread is not None

    def status(self) -> str:
        if self.thread is None:
            return "not started"
        if self.thread.is_alive():
            return "running"
        return f"failed: {self.error!r}" if self.error else "done"


state = _Import()
_judged_modules: weakref.WeakKeyDictionary[ModuleType, bool] = \
    weakref.WeakKeyDictionary()


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _runs_tests(config: pytest.Config) -> bool:
    opt = config.option
    return not (getattr(opt, "collectonly", False) or getattr(opt, "setupplan", False)
                or getattr(opt, "setuponly", False))


def start(config: pytest.Config, reason: str) -> bool:
    """Start the background import, once per process; True if started now."""
    if state.started() or not enabled() or not _runs_tests(config):
        return False
    settings = config.stash.get(settings_key, None)
    if settings is None or settings.record_mode == "none":
        return False
    model = settings.model or (settings.jury[0] if settings.jury else None)
    with state.lock:
        if state.started():
            return False
        from pytest_llmjudge.runtime.client import (
            add_litellm_filters,
            prepare_environment,
        )

        prepare_environment()  # here, not in the thread: os.environ is shared
        add_litellm_filters()  # see in_test()
        state.reason = reason
        state.thread = threading.Thread(target=_run, args=(model,),
                                        name="llmjudge-import", daemon=True)
        state.thread.start()
    return True


def in_test() -> None:
    """``pytest_runtest_protocol``, first: while the import runs, litellm's own warning
    filters (which its import adds to whichever warnings context is current,
    and pytest replaces per test) are added to this test's context too."""
    if state.thread is not None and state.thread.is_alive():
        from pytest_llmjudge.runtime.client import add_litellm_filters

        add_litellm_filters()


def _run(model: str | None) -> None:
    try:
        # The session's modules too: pydantic, diskcache.
        from pytest_llmjudge.runtime import client, session  # noqa: F401

        client.warm(model)
    except BaseException as exc:  # the first judged call imports on demand
        state.error = exc


def judged(item: pytest.Item) -> bool:
    """Whether ``item`` looks like a judged test."""
    if FIXTURE in getattr(item, "fixturenames", ()) or \
            item.get_closest_marker(MARKER) is not None:
        return True
    module = getattr(item, "module", None)
    if module is None:
        return False
    found = _judged_modules.get(module)
    if found is None:
        found = _judged_modules[module] = any(
            _ours(v) for v in list(vars(module).values()))
    return found


def _ours(value: Any) -> bool:
    """Whether a module global comes from pytest_llmjudge (never raises)."""
    try:
        name = value.__name__ if isinstance(value, ModuleType) else \
            getattr(value, "__module__", None)
    except Exception:  # a proxy object's own __getattr__
        return False
    return isinstance(name, str) and (
        name == "pytest_llmjudge" or name.startswith("pytest_llmjudge."))


def watch(config: pytest.Config | None) -> None:
    """``pytest_configure`` (a config) and ``pytest_unconfigure`` (None).

    At the end of a run, an import still under way is waited for: a daemon
    thread frozen mid-import at interpreter exit keeps its module locks, and
    a finaliser that imports (litellm's HTTP handlers' ``__del__`` do) then
    hangs the exit for ever.
    """
    state.config = config
    thread = state.thread
    if config is None and thread is not None and \
            thread is not threading.current_thread():
        thread.join()


def api_imported(name: str) -> None:
    """A module imported ``assert_judged`` or ``current_judge`` from the package
    (a test module being collected, most often): it will judge."""
    config = state.config
    if config is not None and not state.started() and not _deselecting(config):
        start(config, f"a module imported pytest_llmjudge.{name}")


def _deselecting(config: pytest.Config) -> bool:
    return any(getattr(config.option, o, None) for o in _DESELECTING)


def on_collected(item: pytest.Item) -> None:
    """``pytest_itemcollected``: start at the first judged test found, unless
    options may deselect it (then ``on_collection_finish`` decides)."""
    if not state.started() and judged(item) and not _deselecting(item.config):
        start(item.config, f"collected {item.nodeid}")


def on_collection_finish(session: pytest.Session) -> None:
    if not state.started():
        first = next((i for i in session.items if judged(i)), None)
        if first is not None:
            start(session.config, f"selected {first.nodeid}")
