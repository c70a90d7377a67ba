"""Issue #14: litellm is imported in the background once a run knows it will
judge; runs that judge nothing never import it (``test_core``), the import is
safe beside the app's own imports and ``.env`` handling, and the results are
the same with the background import switched off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.runtime import warmup
from pytest_llmjudge.testing import ScriptedJudgeServer

PROBE = '''
import faulthandler
import json
import os
import sys
from pathlib import Path

# A hang (an import deadlock) ends the run with every thread's traceback.
HANG = open("hang.txt", "w")
faulthandler.dump_traceback_later(150, exit=True, file=HANG)

from pytest_llmjudge.runtime import warmup

seen = {}


def pytest_runtest_setup(item):
    seen.setdefault("first_test", {"status": warmup.state.status(),
                                   "reason": warmup.state.reason})


def pytest_unconfigure(config):
    seen["litellm"] = "litellm" in sys.modules
    seen["dotenv"] = os.environ.get("LLMJUDGE_DOTENV_PROBE")
    seen["app_env"] = os.environ.get("APP_ENV_PROBE")
    seen["cost_map"] = os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP")
    Path("probe.json").write_text(json.dumps(seen))
'''

JUDGED = '''
from pytest_llmjudge import assert_judged


def test_judged():
    assert assert_judged("Sorry for the trouble.", "Apologises").passed
'''

# Collected after test_a_judged.py (whose import of assert_judged starts the
# background import): the app imports litellm and the OpenAI SDK itself, and
# loads its own env file, while that import runs.
APP = '''
import dotenv
import litellm
import openai

dotenv.load_dotenv("app.env")


def test_app_uses_its_own_litellm():
    import litellm.types.utils

    assert litellm.types.utils.ModelResponse is litellm.ModelResponse
    assert openai.OpenAI is not None


def test_judged_again(judge):
    assert judge.check("We are sorry; here is a refund.", "Apologises").passed
'''


@pytest.mark.subprocess("the background import needs a process that has not "
                        "imported litellm yet")
def test_background_import_beside_the_apps_own_imports(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    monkeypatch.delenv("APP_ENV_PROBE", raising=False)
    monkeypatch.delenv("LLMJUDGE_DOTENV_PROBE", raising=False)
    pytester.makeconftest(PROBE)
    pytester.makepyfile(test_a_judged=JUDGED, test_b_app=APP)
    (pytester.path / ".env").write_text("LLMJUDGE_DOTENV_PROBE=loaded\n")
    (pytester.path / "app.env").write_text("APP_ENV_PROBE=loaded\n")
    # A deadlock would hang here: the timeout ends the run instead.
    result = pytester.runpytest_subprocess(*judge_args, "-p", "no:randomly",
                                           timeout=240)
    hang = (pytester.path / "hang.txt").read_text()
    assert hang == "", hang
    result.assert_outcomes(passed=3)
    seen: dict[str, Any] = json.loads((pytester.path / "probe.json").read_text())
    assert seen["first_test"]["status"] in ("running", "done")
    assert seen["first_test"]["reason"] == \
        "a module imported pytest_llmjudge.assert_judged"
    assert seen["litellm"] is True
    assert seen["dotenv"] is None  # litellm's import loaded no .env ...
    assert seen["app_env"] == "loaded"  # ... but the app's own call did
    assert seen["cost_map"] == "True"
    assert judge_server.calls == 4


# --------------------------------------------------------------- in-process
ITEMS = '''
import pytest
from pytest_llmjudge import Rubric

def test_module_holds_a_rubric():
    pass
'''

PLAIN_ITEMS = '''
import pytest

class Proxy:
    def __getattr__(self, name):
        raise RuntimeError("a proxy that refuses every attribute")

PROXY = Proxy()

def test_plain():
    pass

def test_fixture(judge):
    pass

@pytest.mark.llmjudge(min_samples=2)
def test_marked():
    pass
'''


LOOKS = '''
import json
from pathlib import Path

from pytest_llmjudge.runtime import warmup


def pytest_collection_modifyitems(items):
    Path("judged.json").write_text(json.dumps({i.name: warmup.judged(i)
                                               for i in items}))
'''


def test_which_tests_look_judged(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LOOKS)
    pytester.makepyfile(test_items=ITEMS, test_plain_items=PLAIN_ITEMS)
    pytester.runpytest("--collect-only", "-p", "no:cacheprovider")
    assert json.loads((pytester.path / "judged.json").read_text()) == {
        "test_module_holds_a_rubric": True, "test_plain": False,
        "test_fixture": True, "test_marked": True}


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> warmup._Import:
    state = warmup._Import()
    monkeypatch.setattr(warmup, "state", state)
    return state


@pytest.mark.parametrize(("args", "env", "expect"), [
    ([], "1", "done"),
    (["--collect-only"], "1", "not started"),
    (["--llmjudge-record-mode=none"], "1", "not started"),
    ([], "0", "not started"),
    (["-k", "nothing_matches"], "1", "not started"),
    (["-k", "judged"], "1", "done"),
])
def test_when_the_background_import_starts(
        pytester: pytest.Pytester, fresh_state: warmup._Import,
        judge_args: list[str], monkeypatch: pytest.MonkeyPatch,
        args: list[str], env: str, expect: str) -> None:
    monkeypatch.setenv("LLMJUDGE_EAGER_IMPORT", env)
    pytester.makepyfile(test_a_judged=JUDGED, test_plain="def test_plain(): pass")
    result = pytester.runpytest(*judge_args, *args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED,
                          pytest.ExitCode.TESTS_FAILED)
    if fresh_state.thread is not None:
        fresh_state.thread.join(timeout=60)
    assert fresh_state.status() == expect
    if expect == "done":
        assert "pytest_llmjudge.assert_judged" in fresh_state.reason or \
            "test_judged" in fresh_state.reason


def test_verdicts_are_the_same_without_the_background_import(
        pytester: pytest.Pytester, judge_args: list[str],
        monkeypatch: pytest.MonkeyPatch, fresh_state: warmup._Import) -> None:
    pytester.makepyfile(test_a_judged=JUDGED)
    reports = []
    for env in ("1", "0"):
        monkeypatch.setenv("LLMJUDGE_EAGER_IMPORT", env)
        report = Path(pytester.path, f"r{env}.json")
        pytester.runpytest(*judge_args, f"--llmjudge-report={report}",
                           f"--llmjudge-cache-dir=cache{env}"
                           ).assert_outcomes(passed=1)
        doc = json.loads(report.read_text(encoding="utf-8"))
        reports.append([(v["outcome"], v["confidence"]) for v in doc["verdicts"]])
    assert reports[0] == reports[1] == [("pass", reports[0][0][1])]
