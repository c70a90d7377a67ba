"""Replayable records of judge replies, committed beside the tests.

One JSON file per test module (``llmjudge_records/<module>.json``), stable key
order and one reply per entry, so that a pull request's diff shows exactly
which judge replies changed. Record modes follow vcrpy: ``none`` replays only
(a missing reply fails its test and makes no call), ``once`` records a file
that does not exist yet, ``new_episodes`` adds missing replies, ``all``
re-records everything. Entries carry the judge they were asked of (``judge``,
as configured) and the model that answered (``model``, as the provider named
it); never a key. A reply is replayed only for the judge that made it, or for a
run with no judge configured (a keyless clone replays what was recorded).

A file that cannot be parsed (a merge conflict, truncated JSON, a hand edit
gone wrong) is never written over and never stands in for an empty one: every
judgment that needs it is a judge error naming the file and how to fix it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.constants import DEFAULT_RECORD_DIR, PROMPT_VERSION, REPLAYED_MODEL
from pytest_llmjudge.exceptions import RecordError, RecordMissingError
from pytest_llmjudge.storage.atomic import write_json
from pytest_llmjudge.storage.cache import ReplyCache

if TYPE_CHECKING:
    from pytest_llmjudge.types import NodeInfo

FORMAT = 1



def _load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(entries, judge_stats) of a records file; empty when it does not exist.

    Raises ``RecordError`` when the file exists but cannot be used: replaying it
    as empty would ask the network, and recording over it would lose it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, {}
    except OSError as exc:
        raise _broken(path, f"it cannot be read: {exc}", b"") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _broken(path, f"it is not valid JSON: {exc}", raw) from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise _broken(path, "it has no 'entries' object" if isinstance(data, dict)
                      else f"it holds a JSON {type(data).__name__}, not an object",
                      raw)
    stats = data.get("judge_stats")
    return entries, stats if isinstance(stats, dict) else {}


def _broken(path: Path, why: str, raw: bytes) -> RecordError:
    if b"<<<<<<<" in raw or b">>>>>>>" in raw:
        fix = ("It holds merge-conflict markers (<<<<<<< / >>>>>>>): resolve the "
               "conflict by keeping one side (e.g. `git checkout --theirs -- "
               f"{path}`), then record what is missing with "
               "--llmjudge-record-mode=new_episodes.")
    else:
        fix = (f"Restore it (e.g. `git checkout -- {path}`) or repair it by hand, or "
               "delete it and record it anew with --llmjudge-record-mode=once and a "
               "configured judge model.")
    return RecordError(f"records file {path} cannot be used: {why}. It was left "
                       f"as it is (nothing was written over it and no judge was "
                       f"asked in its place). {fix}", path=str(path))


def _bare(model: str) -> str:
    return model.strip().lower().rsplit("/", 1)[-1]


def recorded_judge(entry: dict[str, Any], legacy: str | None) -> str | None:
    """The judge an entry was recorded with. Entries written before the
    ``judge`` field name it through the file's statistics (one judge recorded
    the file) or, failing that, the model that answered."""
    judge = entry.get("judge")
    if isinstance(judge, str) and judge.strip():
        return judge.strip()
    if legacy:
        return legacy
    answered = entry.get("model")
    if not (isinstance(answered, str) and answered.strip()):
        reply = entry.get("reply")
        answered = reply.get("model") if isinstance(reply, dict) else None
    return answered.strip() if isinstance(answered, str) and answered.strip() else None


def same_judge(recorded: str | None, model: str, exact: bool) -> bool:
    """Whether a reply recorded by ``recorded`` may be replayed for ``model``.
    ``exact``: ``recorded`` is a configured name; otherwise it is the name the
    provider answered with (``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini``)."""
    if model == REPLAYED_MODEL:
        return True
    if recorded is None:
        return False
    if exact:
        return recorded == model.strip()
    have, want = _bare(recorded), _bare(model)
    return have == want or have.startswith(want + "-")


def _legacy_judge(stats: dict[str, Any]) -> str | None:
    """The one judge a file's statistics name (``model:kind`` keys), if one."""
    models = {k.rsplit(":", 1)[0] for k in stats if isinstance(k, str) and ":" in k}
    return models.pop() if len(models) == 1 else None


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class _Lock:
    """A cross-process lock file (xdist workers may share a records file).

    The lock file names its holder (``pid host``). A lock whose holder on this
    host is no longer running (a run killed while writing) is taken over at
    once, with a note; a lock that names no holder (being written, or left by an
    older version) after 2 s; a live holder's after 30 s."""

    WAIT = 30.0
    UNNAMED = 2.0

    def __init__(self, path: Path, note: Callable[[str], None] | None = None):
        self.path = path.with_name(path.name + ".lock")
        self.note = note
        self.records = path
        self._seen = ""

    def _holder(self) -> str | None:
        """Why the existing lock may be taken over now, or None to wait."""
        try:
            self._seen = text = self.path.read_text(encoding="utf-8",
                                                     errors="replace")
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return ""  # released meanwhile: try again
        except OSError:
            return None
        parts = text.split()
        if len(parts) >= 2 and parts[0].isdigit():
            pid, host = int(parts[0]), parts[1]
            if host == socket.gethostname() and pid != os.getpid() and not _alive(pid):
                return (f"process {pid}, which is no longer running (a run killed "
                        "while writing)")
            return None
        if age > self.UNNAMED:
            return "a lock file that names no process (an older version, or a crash)"
        return None

    def _take_over(self, why: str) -> None:
        try:
            # Another waiter may have taken it over first and now hold it anew.
            if self.path.read_text(encoding="utf-8", errors="replace") != self._seen:
                return
            self.path.unlink()
        except FileNotFoundError:
            return
        if self.note is not None:
            self.note(f"records file {self.records}: took over its lock "
                      f"{self.path.name}, left by {why}. Nothing was lost; if this "
                      "keeps happening, check for runs killed while recording.")

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.WAIT
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                why = self._holder()
                if why == "":
                    continue
                if why is None and time.monotonic() > deadline:
                    why = f"a run that held it over {self.WAIT:.0f} s"
                if why is not None:
                    self._take_over(why)
                    continue
                time.sleep(0.01)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            return

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


#: Kinds whose replies are votes (claim extraction's are not): agreement
#: statistics are kept for these only.
_JUDGED_KINDS = ("criteria", "scale", "pairwise")


class ReplyStore:
    """Where replies come from: records (per mode), then the cache."""

    def __init__(self, cache: ReplyCache, mode: str | None, record_dir: str | None,
                 rootdir: Path, started: float | None = None,
                 stats: Callable[[str, str], tuple[float, float]] | None = None,
                 note: Callable[[str], None] | None = None):
        self.cache = cache
        self._run_stats = stats  # the session's frozen (agree, pairs) per judge
        self._note = note  # run-level notes (stale locks taken over)
        self._stats: dict[Path, dict[str, Any]] = {}
        self.mode = mode
        self.record_dir = record_dir
        self.rootdir = rootdir
        self._files: dict[Path, dict[str, Any]] = {}
        self._broken: dict[Path, RecordError] = {}
        self._legacy: dict[Path, str | None] = {}
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
            try:
                self._files[path], self._stats[path] = _load(path)
            except RecordError as exc:
                self._broken[path] = exc
                self._files[path], self._stats[path] = {}, {}
            self._legacy[path] = _legacy_judge(self._stats[path])
        return self._files[path]

    def _replays(self, path: Path) -> bool:
        """Replies for ``path`` come from the records only (no judge is asked)."""
        return self.mode == "none" or (self.mode == "once" and self._existed[path])

    def preload(self, node: NodeInfo | None) -> None:
        """Read the test's records file (once) if replies are recorded."""
        if self.mode is not None:
            self._entries(self.path_for(node))

    def stats(self, node: NodeInfo | None, model: str, kind: str
              ) -> tuple[float, float] | None:
        """The agreement statistics recorded with this test's records file, if
        replies are replayed from it (None: use the run's own). Another judge's
        statistics are never used: the bare ``kind`` ones only when no judge is
        configured."""
        if self.mode is None or self.mode == "all":
            return None
        path = self.path_for(node)
        self._entries(path)
        stats = self._stats[path]
        found = _stat_pair(stats.get(f"{model}:{kind}"))
        if found is None and model == REPLAYED_MODEL:
            found = _stat_pair(stats.get(kind))
        return found

    def _problem(self, path: Path, rkey: str, entry: Any, model: str,
                 node: NodeInfo | None) -> str | None:
        """Why ``entry`` cannot answer for ``model`` (None: it can)."""
        where = (f"entry {rkey[:16]}… of {path}"
                 f" (test {entry.get('test') or '?'})" if isinstance(entry, dict)
                 else f"entry {rkey[:16]}… of {path}")
        if not (isinstance(entry, dict) and isinstance(entry.get("reply"), dict)):
            return (f"{where} is unreadable (no 'reply' object): restore the file "
                    "(e.g. `git checkout -- FILE`) or re-record it with "
                    "--llmjudge-record-mode=new_episodes and a configured judge "
                    "model".replace("FILE", str(path)))
        judge = recorded_judge(entry, self._legacy.get(path))
        exact = isinstance(entry.get("judge"), str) or bool(self._legacy.get(path))
        if same_judge(judge, model, exact):
            return None
        test = node.nodeid if node else "this judgment"
        return (f"{where} was recorded with judge {judge or 'an unknown judge'}, "
                f"but {test} is judged by {model}: a reply is never replayed for "
                f"another judge. Re-record it for {model} with "
                f"--llmjudge-record-mode=new_episodes (and commit the file), or "
                f"configure {judge or 'the recorded judge'} again, or run with no "
                "judge model configured to replay what was recorded")

    def get(self, key: str, rkey: str, node: NodeInfo | None, presentation: int = 0,
            model: str = "", kind: str = "") -> dict[str, Any] | None:
        if self.mode is None:
            return self.cache.get(key)
        path = self.path_for(node)
        entries = self._entries(path)
        if path in self._broken:
            raise self._broken[path]
        replay = self._replays(path)
        if self.mode != "all" and rkey in entries:
            problem = self._problem(path, rkey, entries[rkey], model, node)
            if problem is None:
                return dict(entries[rkey]["reply"])
            if replay:
                raise RecordError(problem, path=str(path), key=rkey)
            # Recording: another judge's (or an unreadable) entry is a miss,
            # recorded anew below for this judge.
        elif replay:
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

    def unusable(self, rkey: str, node: NodeInfo | None, why: str) -> None:
        """A stored reply could not be read as a vote. Replaying, that is an
        error naming the entry (never a call in its place); otherwise a miss."""
        if self.mode is None:
            return
        path = self.path_for(node)
        self._entries(path)
        if self._replays(path):
            raise RecordError(
                f"entry {rkey[:16]}… of {path} holds a reply that cannot be read "
                f"({why}): restore the file (e.g. `git checkout -- {path}`) or "
                "re-record it with --llmjudge-record-mode=new_episodes and a "
                "configured judge model", path=str(path), key=rkey)

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
        if model and model != REPLAYED_MODEL:
            entry["judge"] = model
        with _Lock(path, self._note):
            current, stats = _load(path)  # raises, never writes, on a broken file
            current[rkey] = entry
            if self._run_stats is not None and kind in _JUDGED_KINDS:
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
        tests keep their entries. A file that cannot be parsed is left alone."""
        written, self._written = self._written, {}
        for path, tests in written.items():
            with _Lock(path, self._note):
                try:
                    current, stats = _load(path)
                except RecordError:
                    continue
                kept = {k: e for k, e in current.items()
                        if not (isinstance(e, dict) and e.get("test") in tests
                                and k not in tests[e["test"]])}
                if len(kept) != len(current):
                    _dump(path, kept, stats)
