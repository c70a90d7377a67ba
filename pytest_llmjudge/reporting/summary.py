"""``JudgeReport``: the end-of-run summary, computed as plain data, drawn with rich.

It fits pytest's output: the same width, colour only when pytest uses colour
(``--color``, ``NO_COLOR``, not a tty), one line under ``-q``, every verdict
under ``-v``.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmjudge.text import scrub
from pytest_llmjudge.verdict import Outcome

if TYPE_CHECKING:
    from pytest_llmjudge.reporting.state import RunState

OUTCOMES = tuple(o.value for o in Outcome)


def negative(r: dict[str, Any]) -> bool:
    """A negative control's record: the test wants the judge to reject it."""
    return r.get("expect") == "fail"


def met(r: dict[str, Any]) -> bool:
    """The record's verdict is what its test wants (pass, or for a negative
    control, fail)."""
    return r.get("outcome") == ("fail" if negative(r) else "pass")
BINS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0001))


def plural(n: float, word: str, many: str | None = None) -> str:
    n = int(n)
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _width(tr: pytest.TerminalReporter) -> int:
    try:
        return int(tr.config.get_terminal_writer().fullwidth)
    except Exception:
        import shutil

        return shutil.get_terminal_size().columns


class JudgeReport:
    """Summary of a run's verdicts; ``data()`` is what every output shows."""

    def __init__(self, state: RunState, config: pytest.Config | None = None):
        self.state = state
        self.verbosity = config.get_verbosity() if config is not None else 0

    def data(self) -> dict[str, Any]:
        recs = self.state.records
        counts = Counter(r["outcome"] for r in recs)
        hist = [sum(1 for r in recs if lo <= r["confidence"] < hi) for lo, hi in BINS]
        c = self.state.counters
        return {
            "judged": len(recs),
            "outcomes": {o: counts.get(o, 0) for o in OUTCOMES},
            "histogram": [{"from": lo, "to": min(hi, 1.0), "count": n}
                          for (lo, hi), n in zip(BINS, hist, strict=True)],
            # Sorted on content, not arrival: -n 0 and -n 2 print the same.
            "flaky": sorted(({"nodeid": r["nodeid"], "rubric": r["rubric"],
                              "reason": r.get("flaky_reason") or ""}
                             for r in recs if r.get("flaky")),
                            key=lambda x: (x["nodeid"], x["rubric"], x["reason"])),
            # Negative controls apart: "12 pass, 3 rejected as expected".
            "negative_controls": {
                "rejected": sum(1 for r in recs if negative(r) and met(r)),
                "passed": sum(1 for r in recs if negative(r)
                              and r["outcome"] == "pass"),
                "total": sum(1 for r in recs if negative(r))},
            "lowest_passes": sorted(
                ({"nodeid": r["nodeid"], "rubric": r["rubric"],
                  "confidence": r["confidence"]} for r in recs
                 if r["outcome"] == "pass" and not negative(r)),
                key=lambda x: (x["confidence"], x["nodeid"], x["rubric"]))[:5],
            "calls": int(c["calls"]),
            "cache_hits": int(c["cache_hits"]),
            "screened": int(c["screened"]),
            "tokens": int(c["prompt_tokens"] + c["completion_tokens"]),
            "cost": round(c["cost"], 6) if self.state.cost_known else None,
            "peak_in_flight": self.state.peak_in_flight,
        }

    @staticmethod
    def parts(d: dict[str, Any]) -> list[tuple[str, str]]:
        """(text, outcome style) of the headline's counts: negative controls
        counted apart from the passes and fails they are not."""
        neg = d.get("negative_controls") or {"rejected": 0, "passed": 0}
        counts = dict(d["outcomes"])
        counts["pass"] -= neg["passed"]
        counts["fail"] -= neg["rejected"]
        out = []
        for o in OUTCOMES:
            if counts[o]:
                out.append((f"{counts[o]} {o.replace('_', ' ')}", o))
            if o == "pass" and neg["rejected"]:
                out.append((f"{neg['rejected']} rejected as expected", "pass"))
            if o == "fail" and neg["passed"]:
                out.append((f"{plural(neg['passed'], 'negative control')} "
                            "passed (should fail)", "fail"))
        return out

    def headline(self, d: dict[str, Any]) -> str:
        parts = [t for t, _ in self.parts(d)]
        flaky = f", {len(d['flaky'])} flaky" if d["flaky"] else ""
        return (f"{plural(d['judged'], 'judged expectation')}: "
                f"{', '.join(parts) or 'none'}{flaky}")

    def usage_line(self, d: dict[str, Any]) -> str:
        cost = ("no cost" if not d["calls"] else f"${d['cost']:.4f}"
                if d["cost"] is not None else "cost unknown")
        return (f"judge calls: {d['calls']} made, {d['cache_hits']} served from "
                f"cache/records, {d['screened']} screened; {d['tokens']:,} tokens; "
                f"{cost}; peak {d['peak_in_flight']} in flight")

    def write(self, tr: pytest.TerminalReporter) -> None:
        d = self.data()
        tr.write_sep("-", "llmjudge summary")
        if self.verbosity < 0:
            tr.write_line(scrub(f"{self.headline(d)}; {self.usage_line(d)}"))
            if self.state.gate:
                tr.write_line(self.state.gate, red=True, bold=True)
            return
        from rich.console import Console

        buf = io.StringIO()
        markup = bool(getattr(tr, "hasmarkup", False))
        # soft_wrap: a node id is one long word; rich would break it (or the
        # line before it) at the width. Long lines wrap in the terminal instead,
        # as pytest's own lines do.
        console = Console(file=buf, width=max(40, _width(tr) - 1),
                          force_terminal=markup, no_color=not markup,
                          color_system="standard" if markup else None,
                          highlight=False, soft_wrap=True,
                          markup=False)  # node ids like test_x[a] are not markup
        self.render(console, d)
        for line in scrub(buf.getvalue()).rstrip("\n").split("\n"):
            tr.write_line(line.rstrip())

    def render(self, console: Any, d: dict[str, Any]) -> None:
        from rich.text import Text

        style = {"pass": "green", "fail": "red", "inconclusive": "yellow",
                 "judge_error": "red bold"}
        line = Text(f"{plural(d['judged'], 'judged expectation')}: ")
        for i, (text, o) in enumerate(self.parts(d)):
            if i:
                line.append(", ")
            line.append(text, style=style[o])
        if d["flaky"]:
            line.append(f", {len(d['flaky'])} flaky", style="yellow")
        console.print(line)
        if d["judged"]:
            top = max(h["count"] for h in d["histogram"]) or 1
            console.print("confidence:")
            for h in d["histogram"]:
                bar = "#" * max(1 if h["count"] else 0, round(20 * h["count"] / top))
                label = "<0.5" if h["from"] == 0.0 else f"{h['from']:.1f}-{h['to']:.1f}"
                console.print(f"  {label:<7} {h['count']:>4} {bar}".rstrip())
        if d["flaky"]:
            console.print(Text("flaky verdicts:", style="yellow"))
            for f in d["flaky"]:
                console.print(f"  {f['nodeid']}  ({f['rubric']})")
                console.print(f"      why: {f['reason']}")
        if d["lowest_passes"] and self.verbosity >= 0:
            console.print("lowest-confidence passes:")
            for p in d["lowest_passes"][:3 if self.verbosity == 0 else 5]:
                console.print(
                    f"  {p['confidence']:.2f}  {p['nodeid']}  ({p['rubric']})")
        if self.verbosity > 0:
            # Fixed-width columns, node id last: nothing is cut or folded.
            console.print(Text(f"{'outcome':<12}  conf  votes  {'source':<9}  test",
                               style="bold"))
            for r in sorted(self.state.records, key=lambda r: (r["nodeid"],
                                                               r.get("seq", 0))):
                # "stored": every reply came from the cache or the records.
                src = "stored" if r.get("cached") else f"{r.get('calls', 0)} calls"
                console.print(Text.assemble(
                    (f"{r['outcome']:<12}", style[r["outcome"]]),
                    f"  {r['confidence']:.2f}  {len(r.get('votes', [])):>5}  "
                    f"{src:<9}  {r['nodeid']}"))
        b = self.state.baseline
        if b is not None:
            console.print(
                f"baseline: {len(b['regressions'])} regressed, "
                f"{len(b['improvements'])} improved, "
                f"{len(b['became_flaky'])} became flaky, "
                f"{len(b['became_inconclusive'])} became inconclusive (kept apart from "
                f"regressions), {len(b['new'])} new, {len(b['missing'])} missing")
            for r in b["regressions"]:
                console.print(Text(f"  REGRESSED {r['nodeid']} ({r['rubric']}): "
                                   f"{r['was']} -> {r['now']}", style="red"))
            for r in b["became_flaky"] + b["became_inconclusive"]:
                console.print(Text(f"  doubt     {r['nodeid']} ({r['rubric']}): "
                                   f"{r['was']} -> {r['now']}"
                                   + (f", {r['flaky_reason']}" if r.get("flaky_reason")
                                      else ""), style="yellow"))
        console.print(self.usage_line(d))
        for note in self.state.notes:
            console.print(Text(f"note: {note}", style="yellow"))
        if self.state.gate:
            console.print(Text(self.state.gate, style="red bold"))
