"""Machine-readable outputs written at the end of a run: the JSON report."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from .constants import PROMPT_VERSION

if TYPE_CHECKING:
    from .report import RunState
    from .settings import Settings

REPORT_SCHEMA_VERSION = 1


def report_doc(state: RunState, settings: Settings) -> dict[str, Any]:
    from .summary import JudgeReport

    verdicts = sorted(state.records, key=lambda r: (r["nodeid"], r.get("key", "")))
    return {
        "schema": "https://pytest-llmjudge.invalid/report-v1.json",
        "schema_version": REPORT_SCHEMA_VERSION,
        "prompt_version": PROMPT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "models": sorted({r.get("model", "") for r in verdicts if r.get("model")}),
        "summary": JudgeReport(state).data(),
        "verdicts": verdicts,
    }


def write_outputs(config: pytest.Config, settings: Settings, state: RunState) -> None:
    from .report import json_default

    if settings.report:
        json_default(config.rootpath / settings.report, report_doc(state, settings))
