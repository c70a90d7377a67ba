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
    result = pytester.runpytest(*args, "--llmjudge-record-mode=all")
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

    # Garbage over both cache databases. (A records file that cannot be parsed
    # is never written over: tests/test_trust_holes_records.py.)
    dbs = list(cache.rglob("cache.db"))
    assert len(dbs) == 2
    for p in dbs:
        p.write_bytes(os.urandom(4096))
    calls = judge_server.calls
    result = pytester.runpytest(*args, "--llmjudge-record-mode=new_episodes",
                                "-W", "default")
    result.assert_outcomes(passed=2, errors=1)  # the same verdicts, no crash
    result.stdout.fnmatch_lines([
        "*CacheWarning: llmjudge cache at * is unreadable (file is not a database); "
        "starting a fresh one*"])
    assert judge_server.calls > calls  # nothing usable was left: asked again
    doc = json.loads(records.read_text(encoding="utf-8"))  # still whole
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


@pytest.mark.subprocess("a run killed with SIGINT, then the next run on its cache")
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
    result = pytester.runpytest(*judge_args, "-W", "default")
    result.assert_outcomes(passed=2)
    assert "CacheWarning" not in result.stdout.str()
    assert sum(1 for r in judge_server.requests if "FAST" in r.output) == fast


#: A provider key that is not shaped like one (no ``sk-``): only the variable's
#: name says it is a secret.
OPAQUE_KEY = "opaque-provider-key-7f3a9c2b1e5d"

ONE_TEST = '''
from pytest_llmjudge import assert_judged

def test_judged():
    assert_judged("Paris is the capital of France.", "Names Paris")
'''


@pytest.mark.parametrize("var,key", [("OPENAI_API_KEY", OPAQUE_KEY),
                                     ("LLMJUDGE_API_KEY", SECRET_KEY)],
                         ids=["OPENAI_API_KEY", "LLMJUDGE_API_KEY"])
def test_provider_key_quoted_back_is_never_written(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], monkeypatch: pytest.MonkeyPatch, var: str,
        key: str) -> None:
    """Whichever variable holds the key, a 401 quoting it back reaches no file the
    run writes (JSON report, markdown, junit xml, records, cache) and no output."""
    monkeypatch.delenv("LLMJUDGE_API_KEY", raising=False)
    monkeypatch.setenv(var, key)
    judge_server.policy = lambda req: Fault(
        "status", 401, message=f"Incorrect API key provided: {key}. You can find "
        f"your API key at https://example.invalid (received {key!r})")
    pytester.makepyfile(test_key=ONE_TEST)
    result = pytester.runpytest(
        *judge_args, "--llmjudge-report=out/report.json",
        "--llmjudge-markdown=out/summary.md", "--junitxml=out/junit.xml", "-rA")
    result.assert_outcomes(errors=1)
    # The key really went out, and the provider really quoted it back.
    assert judge_server.calls >= 1
    assert all(h.get("authorization") == f"Bearer {key}" for h in judge_server.headers)
    out = result.stdout.str() + result.stderr.str()
    assert "authentication failed (401): check the judge API key" in out
    assert "Incorrect API key provided: ***" in out
    assert key not in out

    root = pytester.path
    written = _files(root)
    for name in ("report.json", "summary.md", "junit.xml"):
        f = root / "out" / name
        assert f in written
        assert "Incorrect API key provided: ***" in f.read_text(encoding="utf-8"), name
    for path in written:
        assert key.encode() not in path.read_bytes(), path


def test_redact_covers_secret_variables_and_key_shapes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmjudge.runtime.client import _short, redact

    secrets = {"ACME_API_KEY": "acme-value-0001", "DEPLOY_TOKEN": "deploy-value-0002",
               "MY_SECRET_THING": "secret-value-0003", "SIGNING_KEY": "signing-value-04",
               "PEM_KEY": "line one 0005\nline two"}
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SHORT_TOKEN", "abc1234")  # < 8 characters: not redacted
    monkeypatch.setenv("HOSTNAME_OF_JUDGE", "plain-value-0006")  # not a secret name
    text = " | ".join([*secrets.values(), "abc1234", "plain-value-0006",
                       "Authorization: Bearer eyJhbGciOi.J9.abc", "key sk-proj-AbCdEf123456",
                       "GET /v1?key=AIzaSyA-1234567890abcdefghijkl&alt=json",
                       "x-api-key: anthropic-looking-0007", "judge-key-0008"])
    red = redact(text, "judge-key-0008")
    for v in [*secrets.values(), "eyJhbGciOi", "sk-proj-AbCdEf123456", "AIzaSyA",
              "anthropic-looking-0007", "judge-key-0008"]:
        assert v not in red, (v, red)
    assert "line one 0005" not in _short(Exception(text))  # one-lined, then redacted
    assert "abc1234" in red and "plain-value-0006" in red
    assert "Bearer ***" in red and "x-api-key: ***" in red and "&alt=json" in red
    # A variable set after start-up is covered too.
    monkeypatch.setenv("LATE_API_KEY", "late-value-0009")
    assert redact("got late-value-0009") == "got ***"


USER_FOLDER_TESTS = '''
from pytest_llmjudge import assert_judged

def test_judged():
    assert_judged("Paris is the capital of France.", "Names Paris")
'''


def test_cache_dir_of_the_users_is_used_but_not_marked(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str]) -> None:
    """--llmjudge-cache-dir=. keeps the cache in private sub-folders and leaves the
    project root as it was: not chmodded, not git-ignored, not tagged as a cache."""
    root = pytester.path
    pytester.makepyfile(test_user=USER_FOLDER_TESTS)
    (root / "README.md").write_text("the user's readme\n")
    os.chmod(root, 0o755)
    before = {p.name for p in root.iterdir()}
    result = pytester.runpytest(*judge_args, "--llmjudge-cache-dir=.")
    result.assert_outcomes(passed=1)
    calls = judge_server.calls
    assert calls >= 1
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert (root / "README.md").read_text() == "the user's readme\n"
    assert not (root / ".gitignore").exists()
    assert not (root / "CACHEDIR.TAG").exists()
    assert {p.name for p in root.iterdir()} - before >= {"replies", "meta"}
    for d in (root / "replies", root / "meta", root / "meta" / "replies"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    # meta/ is the plugin's own folder: marked as a cache.
    assert (root / "meta" / "CACHEDIR.TAG").read_text().startswith("Signature: ")
    # The cache works from there: the second run asks nothing.
    result = pytester.runpytest(*judge_args, "--llmjudge-cache-dir=.")
    result.assert_outcomes(passed=1)
    assert judge_server.calls == calls
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert not (root / ".gitignore").exists()


def test_cache_folder_ownership(tmp_path: Path) -> None:
    from pytest_llmjudge.storage.cache import ReplyCache

    def opened(path: Path) -> None:
        c = ReplyCache(path, "on")
        c.set("k", {"v": 1})
        assert c.get("k") == {"v": 1}
        c.close()

    # An empty folder the user made for the cache, and one we tagged before: ours.
    for name in ("empty", "tagged"):
        d = tmp_path / name
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
    opened(tmp_path / "tagged")
    os.chmod(tmp_path / "tagged", 0o755)
    (tmp_path / "tagged" / ".gitignore").unlink()
    for name in ("empty", "tagged"):
        d = tmp_path / name
        opened(d)
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        assert (d / ".gitignore").read_text() == "*\n"
        assert (d / "CACHEDIR.TAG").exists()

    # Another tool's cache folder (its own CACHEDIR.TAG) is not ours.
    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    os.chmod(other, 0o755)
    (other / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n"
                                        "# created by some-other-tool\n")
    opened(other)
    assert stat.S_IMODE(other.stat().st_mode) == 0o755
    assert not (other / ".gitignore").exists()
    assert "some-other-tool" in (other / "CACHEDIR.TAG").read_text()

    # A user's folder with a 'replies' folder of their own: a broken database in
    # it is replaced, their file is kept, their folder keeps its mode.
    user = tmp_path / "user"
    (user / "replies").mkdir(parents=True)
    os.chmod(user / "replies", 0o755)
    (user / "replies" / "notes.txt").write_text("mine")
    (user / "data.csv").write_text("a,b\n")
    (user / "replies" / "cache.db").write_bytes(os.urandom(4096))
    with pytest.warns(UserWarning, match="unreadable"):
        opened(user)
    assert (user / "replies" / "notes.txt").read_text() == "mine"
    assert stat.S_IMODE((user / "replies").stat().st_mode) == 0o755
    assert not (user / "CACHEDIR.TAG").exists()


def test_wrong_typed_rows_beside_the_cache_are_ignored(tmp_path: Path) -> None:
    """Valid JSON of the wrong shape (a damaged or foreign row) is a miss, never
    a crash: agreement statistics fall back to the prior, history to nothing."""
    from pytest_llmjudge.storage.cache import ReplyCache
    from pytest_llmjudge.runtime.session import JudgeSession
    from pytest_llmjudge.settings import resolve
    from pytest_llmjudge.verdict import Outcome, Verdict

    meta = ReplyCache(tmp_path / "meta", "on")
    meta.set("agreement:openai/j:criteria", {"agree": "x", "pairs": None})
    meta.set("agreement:openai/k:criteria", {"agree": 9, "pairs": 3})  # impossible
    meta.set("history:abc", {"outcome": "pass", "confidence": "abc"})
    meta.close()
    settings = resolve({"model": "openai/j", "cache_dir": str(tmp_path)}, {})
    session = JudgeSession(settings, tmp_path)
    assert session.stats("openai/j", "criteria") == (0.0, 0.0)
    assert session.stats("openai/k", "criteria") == (0.0, 0.0)
    v = Verdict(outcome=Outcome.FAIL, passed=False, kind="criteria", rubric="r",
                confidence=0.9, key="abc")
    flagged = session.finish(v, None)
    assert flagged.flaky and flagged.flaky_reason == (
        "changed since the last run: was pass, now fail")
    session.close()
