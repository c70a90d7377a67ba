"""pytest hooks, fixtures and options for pytest-llmjudge (nothing else).

Loading this module imports no litellm, pydantic, diskcache or rich: a run that
judges nothing pays nothing. Business logic lives in the modules it calls.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmjudge.constants import INI_PREFIX, MARKER, OPTION_PREFIX
from pytest_llmjudge.exceptions import ConfigError
from pytest_llmjudge.reporting.run import (
    attach,
    finish,
    register,
    terminal_summary,
    teststatus,
)
from pytest_llmjudge.reporting.state import RunState, state_key
from pytest_llmjudge.runtime import warmup
from pytest_llmjudge.runtime.context import (
    SessionHolder,
    TestContext,
    context_key,
    enter,
    holder_key,
    leave,
)
from pytest_llmjudge.settings import OPTIONS, argparse_type, resolve, settings_key
from pytest_llmjudge.types import NodeInfo

if TYPE_CHECKING:
    from pytest_llmjudge.judging.judge import Judge


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--llmjudge-*`` flag with its ini twin."""
    group = parser.getgroup("llmjudge", "LLM judge assertions")
    for opt in OPTIONS:
        flag = OPTION_PREFIX + opt.name.replace("_", "-")
        dest = INI_PREFIX + opt.name
        if opt.flag:
            group.addoption(flag, action="store_true", default=None, dest=dest,
                            help=f"{opt.help}.")
        else:
            group.addoption(flag, dest=dest, default=None, metavar=opt.metavar,
                            type=argparse_type(opt.name),
                            help=f"{opt.help}. Default: {opt.default!r}")
        parser.addini(dest, help=f"{opt.help} (pytest-llmjudge)", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve settings once; the judge session itself is built on first use."""
    config.addinivalue_line("markers", f"{MARKER}(**settings): per-test judge settings "
                            "(model, threshold, min_samples, inconclusive, ...)")
    names = [o.name for o in OPTIONS]
    try:
        settings = resolve(
            {n: config.getoption(INI_PREFIX + n) for n in names},
            {n: config.getini(INI_PREFIX + n) for n in names})
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-llmjudge: {exc}") from None
    config.stash[settings_key] = settings
    if settings.calibrate and not hasattr(config, "workerinput"):
        from pytest_llmjudge.calibration.run import (
            configure,  # a bad labels file is a usage error
        )

        configure(config, settings.calibrate)
    winput = getattr(config, "workerinput", {})
    run_id = winput.get("llmjudge_run_id") or f"{time.time():.6f}"
    started = float(winput.get("llmjudge_started") or time.time())

    def build() -> Any:
        from pytest_llmjudge.runtime.session import JudgeSession

        return JudgeSession(settings, config.rootpath, run_id=run_id, started=started)

    config.stash[holder_key] = SessionHolder(build)
    config.stash[state_key] = RunState(run_id=run_id, started=started)
    register(config)
    warmup.watch(config)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent under -p no:xdist
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the run id and start time down to a worker."""
    state = node.config.stash[state_key]
    node.workerinput["llmjudge_run_id"] = state.run_id
    node.workerinput["llmjudge_started"] = state.started


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, which then applies
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """``--llmjudge-canary``: add one generated test per canary case."""
    if config.stash[settings_key].canary:
        from pytest_llmjudge.canary import add_items

        add_items(session, items)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Start importing litellm in the background at the first judged test."""
    warmup.on_collected(item)


def pytest_collection_finish(session: pytest.Session) -> None:
    """After deselection: start the background import if a judged test is left."""
    warmup.on_collection_finish(session)


@pytest.hookimpl(tryfirst=True)  # inside pytest's warnings context for the test
def pytest_runtest_protocol(item: pytest.Item) -> None:
    """While litellm is imported in the background, keep its warning filters."""
    warmup.in_test()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Make the test's judge settings (marker applied) visible to assert_judged."""
    settings = item.config.stash[settings_key]
    marks = list(item.iter_markers(MARKER))
    overrides: dict[str, Any] = {}
    problem = None
    try:
        for mark in reversed(marks):  # the closest marker wins
            if mark.args:
                raise ConfigError(f"@pytest.mark.{MARKER} takes keyword arguments only")
            overrides.update(mark.kwargs)
        settings = settings.override(f"@pytest.mark.{MARKER}", overrides)
    except ConfigError as exc:  # the user's marker, not our hook, is at fault
        problem = f"{item.nodeid}: {exc}"
    if problem is not None:  # outside the except: the message is shown once
        pytest.fail(problem, pytrace=False)
    ctx = TestContext(item.config.stash[holder_key], NodeInfo(item.nodeid,
                      str(item.path)), settings)
    item.stash[context_key] = ctx
    enter(ctx)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """After fixture teardown: judged assertions outside a test do not report to it."""
    leave()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Soft checks: after the body, settle its ``judge.expect()`` calls, so that
    unmet expectations fail the test's call phase (one combined message)."""
    __tracebackhide__ = True
    ctx = item.stash.get(context_key, None)
    try:
        result = yield
    except BaseException as exc:
        if ctx is not None and ctx.expectations:
            from pytest_llmjudge.judging.expectations import settle_expectations

            settle_expectations(ctx.expectations, exc)
        raise
    if ctx is not None and ctx.expectations:
        from pytest_llmjudge.judging.expectations import settle_expectations

        settle_expectations(ctx.expectations)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach this phase's verdicts to the report (xdist carries them home)."""
    report = yield
    ctx = item.stash.get(context_key, None)
    if ctx is not None:
        attach(item, report, call, ctx)
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config
                             ) -> tuple[str, str, Any] | None:
    """Judge errors and inconclusive verdicts get their own words."""
    return teststatus(report)


@pytest.fixture
def judge(request: pytest.FixtureRequest) -> Judge:
    """A configured judge for non-raising use: ``judge.check(...) -> Verdict``."""
    from pytest_llmjudge.assertion import current_judge

    warmup.start(request.config, f"{request.node.nodeid} asks for the judge fixture")
    return current_judge()


@pytest.hookimpl(tryfirst=True)  # after collection, before any test (xdist too)
def pytest_runtestloop(session: pytest.Session) -> None:
    """``--llmjudge-calibrate``: judge the labelled examples (controller only)."""
    if session.config.stash[settings_key].calibrate and \
            not hasattr(session.config, "workerinput"):
        from pytest_llmjudge.calibration.run import run

        run(session)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write reports; hand worker counters to the controller; close the loop."""
    finish(session)
    if session.config.stash[settings_key].calibrate:
        from pytest_llmjudge.calibration.run import exit_status

        exit_status(session)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            exitstatus: int, config: pytest.Config) -> None:
    """Print the judge summary (controller only, and only if something was judged)."""
    terminal_summary(terminalreporter, config)
    if config.stash[settings_key].canary and not hasattr(config, "workerinput"):
        from pytest_llmjudge.canary import terminal_section

        terminal_section(terminalreporter)
    settings = config.stash[settings_key]
    state = config.stash.get(state_key, None)
    # Importing calibration costs ~20 ms: only when there is something to show.
    if settings.calibrate or settings.min_kappa is not None or (
            state is not None and state.records):
        from pytest_llmjudge.calibration.run import (
            terminal_section as calibration_section,
        )

        calibration_section(terminalreporter, config)


def pytest_unconfigure(config: pytest.Config) -> None:
    warmup.watch(None)
    holder = config.stash.get(holder_key, None)
    if holder is not None and holder.built is not None:
        holder.built.close()
