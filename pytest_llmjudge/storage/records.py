"""Replayable records of judge replies, committed beside the tests.

One JSON file per test module (``llmjudge_records/<module>.json``), stable key
order and one reply per entry, so that a pull request's diff shows exactly
which judge replies changed. Record modes follow vcrpy: ``none`` replays only
(a missing reply fails its test and makes no call), ``once`` records a file
that does not exist yet, ``new_episodes`` adds missing replies, ``all``
re-records everything. Entries carry the model that answered; never a key.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.constants import DEFAULT_RECORD_DIR, PROMPT_VERSION
from pytest_llmjudge.exceptions import RecordMissingError, RecordWarning
from pytest_llmjudge.storage.atomic import write_json
from pytest_llmjudge.storage.cache import ReplyCache

if TYPE_CHECKING:
    from pytest_llmjudge.types import NodeInfo

FORMAT = 1



def _load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(entries, judge_stats) of a records file; empty when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError) as exc:
        warnings.warn(RecordWarning(f"records file {path} is unreadable ({exc}); "
                                    "treating it as empty"), stacklevel=2)
        return {}, {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        warnings.warn(RecordWarning(f"records file {path} has no 'entries' object; "
                                    "treating it as empty"), stacklevel=2)
        return {}, {}
    stats = data.get("judge_stats")
    return entries, stats if isinstance(stats, dict) else {}


def _stat_pair(value: Any) -> tuple[float, float] | None:
    try:
        agree, pairs = float(value["agree"]), float(value["pairs"])
    except (TypeError, KeyError, ValueError):
        return None
    return (agree, pairs) if 0 <= agree <= pairs else None


def _dump(path: Path, entries: dict[str, Any], stats: dict[str, Any]) -> None:
    """Write atomically: a run interrupted mid-write leaves the old file intact."""
    # Entries are grouped by test, then presentation, so that one test's replies
    # sit together in a diff; inside an entry keys are sorted.
    ordered = dict(sorted(entries.items(), key=lambda kv: (
        str(kv[1].get("test", "")) if isinstance(kv[1], dict) else "",
        kv[1].get("presentation", 0) if isinstance(kv[1], dict) else 0, kv[0])))
    doc = {"format": FORMAT, "prompt_version": PROMPT_VERSION,
           "note": ("Judge replies recorded by pytest-llmjudge; review changes "
                    "like code."),
           "entries": {k: _sorted(v) for k, v in ordered.items()},
           # The agreement statistics the recording run judged with: replaying
           # with them gives the recorded verdicts on any machine.
           "judge_stats": stats}
    write_json(path, _sorted(doc, top=True), sort_keys=False)


def _sorted(value: Any, top: bool = False) -> Any:
    """Sort dict keys recursively, except the (already ordered) entries map."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return {k: (v if top and k == "entries" else _sorted(v)) for k, v in items}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


class _Lock:
    """A cross-process lock file (xdist workers may share a records file)."""

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".lock")

    def __enter__(self) -> None:
        deadline = time.monotonic() + 30
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return
            except FileExistsError:
                if time.monotonic() > deadline:  # a crashed holder: take it over
                    return
                time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


class ReplyStore:
    """Where replies come from: records (per mode), then the cache."""

    def __init__(self, cache: ReplyCache, mode: str | None, record_dir: str | None,
                 rootdir: Path, started: float | None = None,
                 stats: Callable[[str, str], tuple[float, float]] | None = None):
        self.cache = cache
        self._run_stats = stats  # the session's frozen (agree, pairs) per judge
        self._stats: dict[Path, dict[str, Any]] = {}
        self.mode = mode
        self.record_dir = record_dir
        self.rootdir = rootdir
        self._files: dict[Path, dict[str, Any]] = {}
        self._existed: dict[Path, bool] = {}
        self._paths: dict[str | None, Path] = {}
        self._fresh: dict[Path, set[str]] = {}  # stats keys "all" has rewritten
        self._written: dict[Path, dict[str, set[str]]] = {}  # "all": test -> keys
        # "once" asks whether a file existed before this run; under xdist another
        # worker may have created it since, so compare with the run's start time.
        self.started = time.time() if started is None else started

    def path_for(self, node: NodeInfo | None) -> Path:
        where = node.path if node else None
        hit = self._paths.get(where)  # called for every vote: skip the Path work
        if hit is not None:
            return hit
        module = Path(where) if where else self.rootdir / "session.py"
        folder = (self.rootdir / self.record_dir) if self.record_dir else (
            module.parent / DEFAULT_RECORD_DIR)
        self._paths[where] = path = folder / f"{module.stem}.json"
        return path

    def _entries(self, path: Path) -> dict[str, Any]:
        if path not in self._files:
            try:
                self._existed[path] = path.stat().st_mtime < self.started
            except OSError:
                self._existed[path] = False
            self._files[path], self._stats[path] = _load(path)
        return self._files[path]

    def preload(self, node: NodeInfo | None) -> None:
        """Read the test's records file (once) if replies are recorded."""
        if self.mode is not None:
            self._entries(self.path_for(node))

    def stats(self, node: NodeInfo | None, model: str, kind: str
              ) -> tuple[float, float] | None:
        """The agreement statistics recorded with this test's records file, if
        replies are replayed from it (None: use the run's own)."""
        if self.mode is None or self.mode == "all":
            return None
        path = self.path_for(node)
        self._entries(path)
        stats = self._stats[path]
        return _stat_pair(stats.get(f"{model}:{kind}")) or _stat_pair(stats.get(kind))

    def get(self, key: str, rkey: str, node: NodeInfo | None, presentation: int = 0,
            model: str = "", kind: str = "") -> dict[str, Any] | None:
        if self.mode is None:
            return self.cache.get(key)
        path = self.path_for(node)
        entries = self._entries(path)
        replay = self.mode == "none" or (self.mode == "once" and self._existed[path])
        if self.mode != "all":
            hit = entries.get(rkey)
            if isinstance(hit, dict) and isinstance(hit.get("reply"), dict):
                return dict(hit["reply"])
        if replay:
            raise RecordMissingError(
                path=str(path), key=rkey, mode=self.mode,
                test=node.nodeid if node else "this judgment")
        if self.mode == "all":
            return None
        # Recording (once on a new file, new_episodes): a reply this machine has
        # cached is recorded too, or a warm cache would leave the file empty.
        cached = self.cache.get(key)
        if cached is not None:
            self._record(path, rkey, cached, node, presentation, model, kind)
        return cached

    def put(self, key: str, rkey: str, reply: dict[str, Any], node: NodeInfo | None,
            presentation: int, model: str = "", kind: str = "") -> None:
        self.cache.set(key, reply)
        if self.mode in (None, "none"):
            return
        self._record(self.path_for(node), rkey, reply, node, presentation, model, kind)

    def _record(self, path: Path, rkey: str, reply: dict[str, Any],
                node: NodeInfo | None, presentation: int, model: str, kind: str
                ) -> None:
        entry = {"test": node.nodeid if node else "", "presentation": presentation,
                 "model": reply.get("model"), "reply": reply}
        with _Lock(path):
            current, stats = _load(path)
            current[rkey] = entry
            if self._run_stats is not None:
                # Keep statistics already recorded (they decided the entries
                # there), except when everything is re-recorded.
                agree, pairs = self._run_stats(model, kind)
                value = {"agree": agree, "pairs": pairs}
                for k in (f"{model}:{kind}", kind):
                    if self.mode == "all" and k not in self._fresh.setdefault(
                            path, set()):
                        stats[k] = value
                        self._fresh[path].add(k)
                    else:
                        stats.setdefault(k, value)
            _dump(path, current, stats)
        self._entries(path)[rkey] = entry
        self._stats[path] = stats
        if self.mode == "all":
            test = str(entry["test"])
            self._written.setdefault(path, {}).setdefault(test, set()).add(rkey)

    def close(self) -> None:
        """``all``: drop the entries of re-recorded tests that this run no longer
        asked for, so the diff shows removals too. Only tests that recorded in
        this process are pruned: a ``-k`` selection or another xdist worker's
        tests keep their entries."""
        written, self._written = self._written, {}
        for path, tests in written.items():
            with _Lock(path):
                current, stats = _load(path)
                kept = {k: e for k, e in current.items()
                        if not (isinstance(e, dict) and e.get("test") in tests
                                and k not in tests[e["test"]])}
                if len(kept) != len(current):
                    _dump(path, kept, stats)
