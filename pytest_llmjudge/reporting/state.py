"""The run's aggregate: what the controller (or a lone process) knows, merged
from xdist workers at ``pytest_testnodedown``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

COUNTERS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "cost",
            "screened")


@dataclass
class RunState:
    """What the controller (or a lone process) knows about the run."""

    run_id: str
    started: float
    records: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))
    cost_known: bool = False
    peak_in_flight: int = 0
    workers: int = 0
    baseline: dict[str, list[dict[str, Any]]] | None = None
    gate: str | None = None  # why --llmjudge-fail-on-regression failed the run
    notes: list[str] = field(default_factory=list)
    learned: dict[str, list[float]] = field(default_factory=dict)  # from workers

    def merge(self, out: dict[str, Any]) -> None:
        for k in COUNTERS:
            self.counters[k] += float(out.get("counters", {}).get(k, 0) or 0)
        self.cost_known = self.cost_known or bool(out.get("cost_known"))
        self.peak_in_flight = max(self.peak_in_flight, int(out.get("peak", 0) or 0))
        self.notes += [n for n in out.get("notes", []) if n not in self.notes]
        for k, (agree, pairs) in (out.get("learned") or {}).items():
            got = self.learned.setdefault(k, [0.0, 0.0])
            got[0] += float(agree)
            got[1] += float(pairs)
        self.workers += 1


#: Set in ``pytest_configure``; read by the collector, reports and calibration.
state_key = pytest.StashKey[RunState]()
