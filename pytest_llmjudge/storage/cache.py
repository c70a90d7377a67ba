"""The reply cache: diskcache on disk, JSON only, never needed for correctness.

diskcache pickles by default and unpickles whatever it reads
(CVE-2025-69872): a poisoned cache file could run code. ``JSONOnlyDisk``
stores values as UTF-8 JSON text and refuses to unpickle anything it reads,
keys included; a row it cannot read is a miss. A cache that cannot be opened
is replaced by a fresh one with a warning; a failing cache never fails a test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT

from pytest_llmjudge.constants import PROMPT_VERSION
from pytest_llmjudge.exceptions import CacheWarning
from pytest_llmjudge.text import scrub_json

_README = (
    "# pytest-llmjudge cache\n\nJudge replies cached by pytest-llmjudge (JSON only).\n"
    "Safe to delete; re-running the tests refills it. Do not commit it.\n"
)
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-llmjudge.\n"
)



class JSONOnlyDisk(diskcache.Disk):
    """A diskcache ``Disk`` that never pickles and never unpickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError("llmjudge cache keys are strings")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:  # a pickled key: written by someone else; never load it
            raise KeyError("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if read:
            raise TypeError("llmjudge cache stores JSON text only")
        # Every row passes here (set, set_many, add): no secret is stored.
        text = json.dumps(scrub_json(value), sort_keys=True, ensure_ascii=False)
        return super().store(text, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE or read:
            raise _Unreadable()
        if mode not in (MODE_RAW, MODE_TEXT, MODE_BINARY):
            raise _Unreadable()
        raw = super().fetch(mode, filename, value, read)
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        if not isinstance(raw, str):
            raise _Unreadable()
        return json.loads(raw)


class _Unreadable(Exception):
    pass


def cache_key(parts: dict[str, Any]) -> str:
    """Stable hash of everything that changes a judge reply (never secrets)."""
    blob = json.dumps({"v": PROMPT_VERSION, **parts}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
#: What the plugin puts in a cache folder before it is tagged (``meta`` may be
#: made first, by another xdist worker).
_OUR_SUBDIRS = frozenset({"replies", "meta"})
#: What diskcache puts in its folder (value files go in two-hex-digit folders).
_DISKCACHE_FILES = frozenset({"cache.db", "cache.db-wal", "cache.db-shm",
                              "cache.db-journal"})


def _names(path: Path) -> set[str] | None:
    try:
        return {e.name for e in os.scandir(path)}
    except OSError:
        return None


def _tagged(path: Path) -> bool:
    """``path`` carries the CACHEDIR.TAG pytest-llmjudge writes (not another tool's)."""
    try:
        with open(path / "CACHEDIR.TAG", encoding="utf-8", errors="replace") as f:
            text = f.read(512)
    except OSError:
        return False
    return text.startswith(_TAG_SIGNATURE) and "pytest-llmjudge" in text


def _is_ours(path: Path) -> bool:
    """A cache folder of ours: tagged by us, or holding nothing but our folders."""
    if _tagged(path):
        return True
    names = _names(path)
    return names is not None and names <= _OUR_SUBDIRS


def _is_diskcache(path: Path) -> bool:
    """A diskcache folder holding nothing but diskcache's files (safe to remove)."""
    names = _names(path)
    return names is not None and all(
        n in _DISKCACHE_FILES
        or (len(n) == 2 and all(c in "0123456789abcdef" for c in n))
        for n in names)


def _private_dir(path: Path, ours: Any = _is_ours) -> bool:
    """Create ``path`` (and any missing parent) private to the user.

    An existing folder is made private only if ``ours(path)`` says the plugin
    owns it: a folder the user points the cache at (the project root, say) is
    used as given. Returns whether the folder is the plugin's.
    """
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        p.mkdir(exist_ok=True, mode=0o700)
    if not (missing or ours(path)):
        return False
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return True


def _prepare_dir(path: Path) -> None:
    """Create the cache folder; mark it as a cache only if it is the plugin's.

    ``.gitignore`` (``*``) and ``CACHEDIR.TAG`` tell git and backup tools to
    skip the folder; written into a folder of the user's (``--llmjudge-cache-dir
    =.``) they would hide the user's own files, so there the cache keeps to its
    ``replies`` and ``meta`` sub-folders (created private) and marks nothing.
    """
    if not _private_dir(path):
        return
    # The tag first: another worker that looks in meanwhile sees a folder of ours.
    for name, text in (("CACHEDIR.TAG", _TAG), (".gitignore", "*\n"),
                       ("README.md", _README)):
        f = path / name
        if not f.exists():
            try:
                f.write_text(text, encoding="utf-8")
            except OSError:
                pass


def _remove_replies(path: Path) -> None:
    """Remove a broken diskcache folder; only its database if the folder is not ours."""
    if _is_diskcache(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in _DISKCACHE_FILES:
        try:
            (path / name).unlink()
        except OSError:
            pass


class ReplyCache:
    """Judge replies by key. ``mode``: on (read+write), refresh (write only), off.

    ``warn`` is how a problem is told (default: a ``CacheWarning`` here; a
    pytest session collects them and warns once, outside any test). ``keep``:
    a damaged database holds what cannot be re-asked (agreement statistics,
    calibrations), so it is set aside beside the cache, never deleted.
    """

    def __init__(self, directory: Path, mode: str = "on",
                 warn: Callable[[str], None] | None = None, keep: bool = False):
        self.directory = directory
        self.mode = mode
        self._warn = warn
        self.keep = keep
        self._cache: diskcache.Cache | None = None

    def _tell(self, message: str) -> None:
        if self._warn is not None:
            self._warn(message)
        else:
            warnings.warn(CacheWarning(message), stacklevel=3)

    def open(self) -> None:
        """Open now: a damaged cache is then warned about on the caller's
        thread rather than on the judge loop's."""
        self._open()

    def _open(self) -> diskcache.Cache | None:
        if self._cache is not None or self.mode == "off":
            return self._cache
        try:
            _prepare_dir(self.directory)
            self._cache = self._connect()
        except (sqlite3.DatabaseError, OSError) as exc:
            kept = self._set_aside() if self.keep else None
            self._tell(
                f"llmjudge cache at {self.directory} is unreadable ({exc}); "
                + (f"the damaged database was kept as {kept} (nothing deleted); "
                   if kept else "")
                + "starting a fresh one")
            self._reset()
        return self._cache

    def _set_aside(self) -> Path | None:
        """Move a damaged database out of the way, keeping its bytes."""
        db = self.directory / "replies" / "cache.db"
        if not db.is_file():
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        to = self.directory / f"damaged-{stamp}-{os.getpid()}.db"
        try:
            os.replace(db, to)
        except OSError:
            return None
        return to

    def _connect(self) -> diskcache.Cache:
        # diskcache would create its folder 0o755 and put large values in
        # sub-folders; keep the folder private and every value in the database.
        _private_dir(self.directory / "replies", _is_diskcache)
        c = diskcache.Cache(str(self.directory / "replies"), disk=JSONOnlyDisk,
                            timeout=30, size_limit=2**32, disk_min_file_size=2**30)
        c.get("__probe__")  # touch the database so corruption shows here
        return c

    def _reset(self) -> None:
        if not self.keep:
            _remove_replies(self.directory / "replies")
        else:
            for name in _DISKCACHE_FILES - {"cache.db"}:
                try:
                    (self.directory / "replies" / name).unlink()
                except OSError:
                    pass
        try:
            self._cache = self._connect()
        except (sqlite3.DatabaseError, OSError) as exc:
            self._tell(
                f"llmjudge cache at {self.directory} cannot be used ({exc}); "
                "running without a cache")
            self.mode = "off"
            self._cache = None

    def get(self, key: str) -> dict[str, Any] | None:
        if self.mode != "on":
            return None
        c = self._open()
        if c is None:
            return None
        try:
            value = c.get(key, default=None, retry=True)
        except (_Unreadable, KeyError, ValueError, sqlite3.DatabaseError, OSError):
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        if self.mode == "off":
            return
        c = self._open()
        if c is None:
            return
        try:
            c.set(key, value, retry=True)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._tell(f"llmjudge cache write failed: {exc}")

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        """Write several values in one transaction (one commit, not one each)."""
        if self.mode == "off" or not items:
            return
        c = self._open()
        if c is None:
            return
        try:
            with c.transact(retry=True):
                for key, value in items.items():
                    c.set(key, value, retry=True)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._tell(f"llmjudge cache write failed: {exc}")

    def add(self, key: str, deltas: dict[str, float]) -> dict[str, float]:
        """Atomically add ``deltas`` to a JSON dict of counters; return the total.

        The transaction makes it safe for several xdist workers at once.
        """
        c = self._open()
        if c is None:
            return dict(deltas)
        try:
            with c.transact(retry=True):
                try:
                    cur = c.get(key, default=None, retry=True)
                except (_Unreadable, KeyError, ValueError):
                    cur = None
                base = cur if isinstance(cur, dict) else {}
                new = {k: float(base.get(k, 0.0)) + float(deltas.get(k, 0.0))
                       for k in set(base) | set(deltas)}
                c.set(key, new, retry=True)
                return new
        except (sqlite3.DatabaseError, OSError):
            return dict(deltas)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
