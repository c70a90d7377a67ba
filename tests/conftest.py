"""Shared fixtures: a scripted loopback judge reached through litellm for real,
and the suite's subprocess budget.

Speed (issue #14): a pytest subprocess pays ~3 s to import litellm, so the
pytester tests run pytest in-process (``pytester.runpytest``) unless a
separate process is the point of the test. Those tests are marked
``@pytest.mark.subprocess("why")``; a test that starts a process without the
marker fails, and a run that starts more processes than ``SUBPROCESS_BUDGET``
fails the session. ``--runpytest=subprocess`` runs every pytester run in a
subprocess instead (slow; the marker check and the budget are then off).
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import pkgutil
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

pytest_plugins = ["pytester"]

#: The API key used in tests; a test proves it never reaches a file.
SECRET_KEY = "sk-llmjudge-test-SECRET-9f8e7d"

#: How many processes a full run of the suite may start: pytest or Python
#: subprocesses (``runpytest_subprocess``, ``pytester.run``, ``pytester.popen``)
#: and the workers of in-process ``-n N`` runs. Each pays a litellm import
#: (~3 s of CPU). Raise it only for a test whose point is a separate process,
#: and say why in its ``@pytest.mark.subprocess(...)``.
#: 36 before issue #10's trust-hole suites, which check each attack class at
#: -n 2 as well (xdist workers: 2 processes per run); measured 104 with them.
#: Issues #12, #13, #14 and #16 added one -n 2 run (or start-up check) each;
#: issue #14 kept one -n 2 variant per attack class where several repeated
#: per-process logic: measured 75 in CI (Dec 2026). Later in #14, checks whose
#: -n 2 runs repeated per-process code run in one process (claim checks join
#: the apps' -n 2 run, pair labels and JUnit checks join others): measured 56
#: in CI, so the cap comes down to 66.
SUBPROCESS_BUDGET = 66

MARKER = "subprocess"


# ----------------------------------------------------------------- judge server
class _ServerPool:
    """One scripted judge server per test process, reset for every test.

    A server still answering a request when the next test starts (a slow or
    held reply) is not reused: that test gets a new one.
    """

    def __init__(self) -> None:
        self.server: ScriptedJudgeServer | None = None
        self.retired: list[ScriptedJudgeServer] = []

    def take(self) -> ScriptedJudgeServer:
        srv = self.server
        if srv is not None:
            deadline = time.monotonic() + 2.0
            while srv.in_flight and time.monotonic() < deadline:
                time.sleep(0.01)
            if srv.in_flight:
                self.retired.append(srv)
                srv = None
        if srv is None:
            srv = self.server = ScriptedJudgeServer(ScriptedJudge()).start()
        with srv._lock:
            srv.requests.clear()
            srv.headers.clear()
            srv.arrivals.clear()
            srv.peak_in_flight = 0
        srv.policy = ScriptedJudge()
        srv.one_slot = False
        return srv

    def close(self) -> None:
        for srv in [*self.retired, *([self.server] if self.server else [])]:
            srv.stop()


@pytest.fixture(scope="session")
def _judge_servers() -> Iterator[_ServerPool]:
    pool = _ServerPool()
    yield pool
    pool.close()


@pytest.fixture
def judge_server(_judge_servers: _ServerPool) -> ScriptedJudgeServer:
    """A scripted judge; set ``judge_server.policy`` to change what it answers.

    Shared by the tests of one process, emptied for each: ``calls``,
    ``requests``, ``headers``, ``arrivals`` and ``peak_in_flight`` count this
    test's requests only, and the policy starts as a plain ``ScriptedJudge()``.
    """
    return _judge_servers.take()


@pytest.fixture
def judge_args(judge_server: ScriptedJudgeServer) -> list[str]:
    """Command-line arguments that point a pytester run at the scripted judge."""
    return ["--llmjudge-model=openai/scripted-judge",
            f"--llmjudge-api-base={judge_server.base_url}",
            "-p", "no:cacheprovider"]


@pytest.fixture(autouse=True)
def _judge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean environment: our test key, nothing from the developer's shell."""
    for var in ("LLMJUDGE_MODEL", "LLMJUDGE_API_BASE", "LLMJUDGE_RECORD_MODE",
                "LLMJUDGE_CACHE_DIR", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LLMJUDGE_API_KEY", SECRET_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


#: For tests that run pytest at -n 2: the workers are processes of their own.
XDIST = pytest.mark.subprocess("xdist workers are processes of their own")


#: For a test whose plugin_args variants would be the same in one process:
#: overrides the fixture's parametrization with the in-process run only.
IN_PROCESS = pytest.mark.parametrize("plugin_args", [[]], ids=["no-xdist"])


@pytest.fixture(params=[[], pytest.param(["-n", "2"], marks=XDIST)],
                ids=["no-xdist", "xdist-2"])
def plugin_args(request: pytest.FixtureRequest) -> list[str]:
    """Run pytester tests without xdist and at -n 2 (as syrupy does)."""
    return list(request.param)


# ------------------------------------------------------------ in-process runs
@pytest.fixture(scope="session")
def _plugin_preloaded() -> None:
    """Import litellm and every plugin module once per test process.

    pytester drops the modules an in-process run imported when the run (and
    the test) ends; imported here first, they stay, so in-process runs share
    one litellm import instead of paying ~3 s each, and every run sees the
    same plugin classes. The plugin's own safe import is used (local cost
    map, no .env); the environment is left as it was.
    """
    import pytest_llmjudge

    saved = dict(os.environ)
    try:
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        for info in pkgutil.walk_packages(pytest_llmjudge.__path__,
                                          f"{pytest_llmjudge.__name__}."):
            importlib.import_module(info.name)
        litellm = importlib.import_module("pytest_llmjudge.runtime.client").litellm()
        # litellm's import adds a warnings filter for a pydantic notice
        # ("`ReadOnly` qualifier") that its response models give when first
        # built. pytest drops the filter with this fixture's warnings context,
        # so build them now, under litellm's own filter: otherwise the first
        # judge call of an in-process run with filterwarnings = error fails on
        # it. (A pytest subprocess imports litellm, and so keeps the filter,
        # in the test that makes its first call.)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*`ReadOnly` qualifier.*")
            litellm.ModelResponse()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def pytester(_plugin_preloaded: None, pytester: pytest.Pytester) -> pytest.Pytester:
    """The builtin ``pytester``, after the plugin and litellm are loaded."""
    return pytester


# ------------------------------------------------------------ subprocess budget
class _Budget:
    def __init__(self) -> None:
        self.enforced = True
        self.item: pytest.Item | None = None
        self.started = 0  # by this process
        self.total = 0  # by every process of the run (the controller's sum)
        self.by_test: dict[str, int] = {}

    def charge(self, count: int, what: str) -> None:
        item = self.item
        if item is not None and self.enforced and \
                item.get_closest_marker(MARKER) is None:
            pytest.fail(
                f"{item.nodeid} starts {what} but is not marked "
                f"@pytest.mark.{MARKER}(reason): run pytest in-process "
                "(pytester.runpytest) unless a separate process is the point of "
                "the test, and mind SUBPROCESS_BUDGET in tests/conftest.py",
                pytrace=False)
        self.started += count
        if item is not None:
            self.by_test[item.nodeid] = self.by_test.get(item.nodeid, 0) + count


_budget = _Budget()
_originals: dict[str, Any] = {}


def _xdist_workers(args: tuple[Any, ...]) -> int:
    """Worker processes an in-process run with these arguments starts."""
    argv = [str(a) for a in args]
    for i, a in enumerate(argv):
        value = None
        if a in ("-n", "--numprocesses") and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith("--numprocesses="):
            value = a.split("=", 1)[1]
        elif a.startswith("-n") and a[2:].isdigit():
            value = a[2:]
        if value is not None:
            return int(value)  # "auto" is not used here: it would be a ValueError
    return 0


def _counting_popen(self: pytest.Pytester, cmdargs: Any, *args: Any,
                    **kwargs: Any) -> Any:
    workers = _xdist_workers(tuple(cmdargs))
    _budget.charge(1 + workers, "a subprocess" + (
        f" and its {workers} xdist worker process(es)" if workers else ""))
    return _originals["popen"](self, cmdargs, *args, **kwargs)


def _counting_inline_run(self: pytest.Pytester, *args: Any, **kwargs: Any) -> Any:
    workers = _xdist_workers(args)
    if workers:
        _budget.charge(workers, f"{workers} xdist worker process(es)")
    return _originals["inline_run"](self, *args, **kwargs)


#: The warning filters of a fresh Python process (``python -c "import warnings;
#: print(warnings.filters)"``), as a pytest subprocess starts with.
_FRESH_FILTERS = (("default", DeprecationWarning, "__main__"),
                  ("ignore", DeprecationWarning, ""),
                  ("ignore", PendingDeprecationWarning, ""),
                  ("ignore", ImportWarning, ""),
                  ("ignore", ResourceWarning, ""))


def _to_stderr(message: Any, category: Any, filename: str, lineno: int,
               file: Any = None, line: str | None = None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _runpytest_inprocess(self: pytest.Pytester, *args: Any, **kwargs: Any) -> Any:
    """``runpytest_inprocess`` with a subprocess's view of warnings, and
    ``timeout=`` as the subprocess form takes it.

    The run starts from a fresh process's warning filters, not this suite's
    (``filterwarnings = error`` would otherwise reach its tests and its
    session hooks), and warnings it does not record itself go to its stderr,
    where a subprocess would print them. A run that hangs past ``timeout``
    ends this test process with every thread's traceback instead of hanging
    the suite.
    """
    timeout = kwargs.pop("timeout", None)
    if timeout is not None:
        faulthandler.dump_traceback_later(timeout, exit=True, file=sys.__stderr__)
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_FRESH_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = _to_stderr
            return _originals["runpytest_inprocess"](self, *args, **kwargs)
    finally:
        if timeout is not None:
            faulthandler.cancel_dump_traceback_later()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(reason): the test starts pytest or Python in a "
        "separate process (counted against SUBPROCESS_BUDGET in tests/conftest.py)")
    _budget.enforced = config.getoption("runpytest") != "subprocess"
    for name, wrapper in (("popen", _counting_popen),
                          ("inline_run", _counting_inline_run),
                          ("runpytest_inprocess", _runpytest_inprocess)):
        _originals[name] = getattr(pytest.Pytester, name)
        setattr(pytest.Pytester, name, wrapper)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, original in _originals.items():
        setattr(pytest.Pytester, name, original)
    _originals.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None
                            ) -> Iterator[None]:
    _budget.item = item
    try:
        return (yield)
    finally:
        _budget.item = None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: add up what each worker started."""
    _budget.total += int(node.workeroutput.get("llmjudge_subprocesses", 0))
    for nodeid, n in node.workeroutput.get("llmjudge_subprocesses_by_test", {}).items():
        _budget.by_test[nodeid] = _budget.by_test.get(nodeid, 0) + int(n)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput["llmjudge_subprocesses"] = _budget.started
        config.workeroutput["llmjudge_subprocesses_by_test"] = dict(_budget.by_test)
        return
    _budget.total += _budget.started
    if _budget.enforced and _budget.total > SUBPROCESS_BUDGET and \
            session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _budget.enforced:
        return
    line = (f"subprocess budget: {_budget.total} of {SUBPROCESS_BUDGET} processes "
            "started (SUBPROCESS_BUDGET in tests/conftest.py)")
    if _budget.total > SUBPROCESS_BUDGET:
        terminalreporter.write_sep("=", "subprocess budget exceeded", red=True)
        terminalreporter.write_line(
            f"{line}: over budget. Run pytest in-process (pytester.runpytest) "
            "unless a separate process is the point of the test.", red=True)
        for nodeid, n in sorted(_budget.by_test.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"  {n:3d}  {nodeid}")
    else:
        terminalreporter.write_line(line)
