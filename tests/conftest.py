"""Shared fixtures: a scripted loopback judge reached through litellm for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

pytest_plugins = ["pytester"]

#: The API key used in tests; a test proves it never reaches a file.
SECRET_KEY = "sk-llmjudge-test-SECRET-9f8e7d"


@pytest.fixture
def judge_server() -> Iterator[ScriptedJudgeServer]:
    """A scripted judge; set ``judge_server.policy`` to change what it answers."""
    with ScriptedJudgeServer(ScriptedJudge()) as srv:
        yield srv


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


@pytest.fixture(params=[[], ["-n", "2"]], ids=["no-xdist", "xdist-2"])
def plugin_args(request: pytest.FixtureRequest) -> list[str]:
    """Run pytester tests without xdist and at -n 2 (as syrupy does)."""
    return list(request.param)
