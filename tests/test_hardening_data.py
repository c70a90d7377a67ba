"""Data on disk: secrets never written, private cache folders, corrupt files survived,
and an interrupted run leaves a cache the next run opens."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    ScriptedJudge,
    ScriptedJudgeServer,
)
from tests.conftest import SECRET_KEY

TESTS = '''
import pytest
from pytest_llmjudge import assert_judged, JudgedAssertionError

R = "Names Paris as the capital of France"

def test_pass():
    assert_judged("Paris is the capital of France.", R)

def test_fail():
    with pytest.raises(JudgedAssertionError):
        assert_judged("Lyon is the capital of France.", R)

def test_key_rejected():
    assert_judged("REJECT-KEY Paris", R)
'''


class Policy:
    """Answers by the rules; for REJECT-KEY outputs, a 401 quoting the key back, as
    some providers do."""

    def __init__(self) -> None:
        self.inner = ScriptedJudge(rules={"paris": lambda o: "paris" in o.lower()})

    def __call__(self, req: JudgeRequest) -> object:
        if "REJECT-KEY" in req.output:
            return Fault("status", 401, message=f"Incorrect API key provided: "
                         f"{SECRET_KEY}. You can find your API key at ...")
        return self.inner(req)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_no_secret_on_disk_private_cache_and_corruption(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    judge_server.policy = Policy()
    pytester.makepyfile(test_data=TESTS)
    args = [*judge_args, "--llmjudge-report=out/report.json",
            "--llmjudge-markdown=out/summary.md"]
    result = pytester.runpytest_subprocess(*args, "--llmjudge-record-mode=all")
    result.assert_outcomes(passed=2, errors=1)
    # The key really was sent, and the provider really quoted it back.
    assert all(h.get("authorization") == f"Bearer {SECRET_KEY}"
               for h in judge_server.headers)
    out = result.stdout.str() + result.stderr.str()
    assert "authentication failed (401): check the judge API key" in out
    assert "Incorrect API key provided: ***" in out
    assert SECRET_KEY not in out

    root = pytester.path
    cache = root / ".llmjudge_cache"
    records = root / "llmjudge_records" / "test_data.json"
    written = _files(root)
    assert records in written
    assert root / "out" / "report.json" in written
    assert root / "out" / "summary.md" in written
    assert any(p.name == "cache.db" for p in written)
    for path in written:
        assert SECRET_KEY.encode() not in path.read_bytes(), path
    report = json.loads((root / "out" / "report.json").read_text())
    assert "***" in json.dumps(report)  # the error is there, redacted

    # Every folder of the cache is private to the user.
    dirs = [cache, *(p for p in cache.rglob("*") if p.is_dir())]
    assert len(dirs) >= 3
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d

    # Garbage over both cache databases and the records file.
    dbs = list(cache.rglob("cache.db"))
    assert len(dbs) == 2
    for p in [*dbs, records]:
        p.write_bytes(os.urandom(4096))
    calls = judge_server.calls
    result = pytester.runpytest_subprocess(*args, "--llmjudge-record-mode=new_episodes",
                                           "-W", "default")
    result.assert_outcomes(passed=2, errors=1)  # the same verdicts, no crash
    result.stdout.fnmatch_lines([
        "*CacheWarning: llmjudge cache at * is unreadable (file is not a database); "
        "starting a fresh one*"])
    result.stdout.fnmatch_lines(["*RecordWarning: records file * is unreadable*"])
    assert judge_server.calls > calls  # nothing usable was left: asked again
    doc = json.loads(records.read_text(encoding="utf-8"))  # rewritten, valid
    assert len(doc["entries"]) == 4
    for path in _files(root):
        assert SECRET_KEY.encode() not in path.read_bytes(), path


class Gate:
    """Holds SLOW outputs until released (or 60 s); answers the rest at once."""

    def __init__(self) -> None:
        self.inner = ScriptedJudge(rules={"paris": lambda o: "paris" in o.lower()})
        self.release = threading.Event()
        self.slow_seen = threading.Event()

    def __call__(self, req: JudgeRequest) -> object:
        if "SLOW" in req.output:
            self.slow_seen.set()
            self.release.wait(60)
        return self.inner(req)


INTERRUPTED = '''
from pytest_llmjudge import assert_judged

R = "Names Paris as the capital of France"

def test_1_fast():
    assert_judged("FAST Paris is the capital.", R)

def test_2_slow():
    assert_judged("SLOW Paris is the capital.", R)
'''


def test_keyboard_interrupt_leaves_a_usable_cache(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    gate = Gate()
    judge_server.policy = gate
    pytester.makepyfile(test_ki=INTERRUPTED)
    proc = pytester.popen([sys.executable, "-m", "pytest", *judge_args, "-p",
                           "no:randomly"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert gate.slow_seen.wait(60), "the slow judge call never arrived"
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        # It must not wait for the judge call in flight (held for 60 s).
        out, err = proc.communicate(timeout=30)
        print(f"stopped {time.monotonic() - t0:.2f} s after SIGINT")
    finally:
        gate.release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = out.decode() + err.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "KeyboardInterrupt" in text
    # A clean stop: no orphaned tasks, leaked sessions or dying threads.
    for noise in ("Task was destroyed", "never retrieved", "Unclosed",
                  "Exception in thread", "Traceback (most recent call last)"):
        assert noise not in text, text
    fast = sum(1 for r in judge_server.requests if "FAST" in r.output)
    assert fast == 2

    # The next run opens the cache (no warning), reuses the finished judgment and
    # completes the interrupted one.
    judge_server.policy = ScriptedJudge(rules={"paris": lambda o: "paris" in o.lower()})
    result = pytester.runpytest_subprocess(*judge_args, "-W", "default")
    result.assert_outcomes(passed=2)
    assert "CacheWarning" not in result.stdout.str()
    assert sum(1 for r in judge_server.requests if "FAST" in r.output) == fast
