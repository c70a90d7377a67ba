"""Trust holes in records and the cache (issue #10): no lost or borrowed record.

A reply is replayed only for the judge that made it (or for a run with no judge
configured); replay-only never reaches the network; a records file that cannot
be parsed is never written over; ``--llmjudge-record-mode=all`` with a selection
keeps the entries of tests that did not run; storage damage is a warning that
says what happened, once, and never deletes statistics or calibrations.
Everything runs over real HTTP against the scripted loopback judge.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llmjudge.testing import ScriptedJudge, ScriptedJudgeServer

RUBRIC = "Names Paris as the capital of France"

THREE = f'''
from pytest_llmjudge import assert_judged

def test_one():
    assert_judged("Paris is the capital of France.", "{RUBRIC}")

def test_two():
    assert_judged("The capital of France is Paris.", "{RUBRIC}")

def test_three():
    assert_judged("Paris, France's capital.", "{RUBRIC}")
'''

ONE = f'''
from pytest_llmjudge import assert_judged

def test_one():
    assert_judged("Paris is the capital of France.", "{RUBRIC}")
'''


def _policy() -> ScriptedJudge:
    return ScriptedJudge(rules={"paris": lambda o: "paris" in o.lower()})


def _base(server: ScriptedJudgeServer) -> list[str]:
    return [f"--llmjudge-api-base={server.base_url}", "-p", "no:cacheprovider"]


def _records(pytester: pytest.Pytester, module: str = "test_rec") -> Path:
    return pytester.path / "llmjudge_records" / f"{module}.json"


def _doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _record(pytester: pytest.Pytester, server: ScriptedJudgeServer, model: str,
            source: str = THREE, module: str = "test_rec", *extra: str) -> Path:
    """Record ``source`` with judge ``model``; returns the records file."""
    server.policy = _policy()
    pytester.makepyfile(**{module: source})
    n = source.count("def test_")
    result = pytester.runpytest(*_base(server), f"--llmjudge-model={model}",
                                "--llmjudge-record-mode=all", *extra)
    result.assert_outcomes(passed=n)
    path = _records(pytester, module)
    assert path.exists()
    return path


# ---------------------------------------------------------------- borrowed records

MODEL_SOURCES = ["cli", "ini", "env", "marker", "call"]


def _configure(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
               source: str, model: str) -> list[str]:
    """Configure judge ``model`` through ``source``; returns extra CLI args."""
    if source == "cli":
        return [f"--llmjudge-model={model}"]
    if source == "ini":
        pytester.makeini(f"[pytest]\nllmjudge_model = {model}\n")
        return []
    if source == "env":
        monkeypatch.setenv("LLMJUDGE_MODEL", model)
        return []
    text = _records_source(model, source)
    pytester.makepyfile(test_rec=text)
    return []


def _records_source(model: str, how: str) -> str:
    if how == "marker":
        return THREE.replace("def test_", f'@__import__("pytest").mark.llmjudge('
                             f'model="{model}")\ndef test_')
    return THREE.replace(f'"{RUBRIC}")', f'"{RUBRIC}", model="{model}")')


@pytest.mark.parametrize("source", MODEL_SOURCES)
def test_replay_for_another_judge_is_a_judge_error_naming_both(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Recorded with judge A; replay-only with judge B configured (CLI, ini,
    env, marker or call argument): a judge error naming the file, the entry,
    both judges and how to re-record. Never a pass on A's replies."""
    path = _record(pytester, judge_server, "openai/judge-a")
    before = path.read_bytes()
    calls = judge_server.calls
    extra = _configure(pytester, monkeypatch, source, "openai/judge-b")
    result = pytester.runpytest(*_base(judge_server), "--llmjudge-record-mode=none",
                                *extra)
    result.assert_outcomes(errors=3)
    assert judge_server.calls == calls  # replay-only: no request at all
    out = result.stdout.str()
    assert out.count("JUDGE ERROR") >= 3
    result.stdout.fnmatch_lines([
        f"*entry * of {path} (test test_rec.py::test_one) was recorded with judge "
        "openai/judge-a, but test_rec.py::test_one is judged by openai/judge-b*"])
    assert "--llmjudge-record-mode=new_episodes" in out
    assert path.read_bytes() == before


@pytest.mark.subprocess("a variant runs at -n 2: xdist workers are processes")
@pytest.mark.parametrize("source", ["cli", "call"])
def test_same_judge_and_no_judge_replay(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """The judge that recorded replays its own replies; with no judge configured
    (a keyless clone) the recorded judge is named in the verdicts."""
    path = _record(pytester, judge_server, "openai/judge-a")
    calls = judge_server.calls
    extra = _configure(pytester, monkeypatch, source, "openai/judge-a")
    result = pytester.runpytest(*_base(judge_server),
                                "--llmjudge-record-mode=none", *extra)
    result.assert_outcomes(passed=3)
    pytester.makepyfile(test_rec=THREE)
    result = pytester.runpytest(*_base(judge_server), "-n", "2",
                                "--llmjudge-record-mode=none",
                                "--llmjudge-report=replay.json")
    result.assert_outcomes(passed=3)
    assert judge_server.calls == calls
    assert _doc(pytester.path / "replay.json")["models"] == ["judge-a (recorded)"]
    assert {e["judge"] for e in _doc(path)["entries"].values()} == {"openai/judge-a"}


@pytest.mark.subprocess("xdist workers are processes of their own")
def test_replay_for_another_judge_at_n2(pytester: pytest.Pytester,
                                        judge_server: ScriptedJudgeServer) -> None:
    _record(pytester, judge_server, "openai/judge-a")
    calls = judge_server.calls
    result = pytester.runpytest(
        *_base(judge_server), "-n", "2", "--llmjudge-model=openai/judge-b",
        "--llmjudge-record-mode=none")
    result.assert_outcomes(errors=3)
    assert judge_server.calls == calls
    result.stdout.fnmatch_lines(["*recorded with judge openai/judge-a, but * is "
                                 "judged by openai/judge-b*"])


@pytest.mark.subprocess("a variant runs at -n 2: xdist workers are processes")
# In one process: entries are replaced per entry, whichever worker writes
# (concurrent writers: test_two_workers_recording_one_file_lose_nothing).
@pytest.mark.parametrize(("mode", "plugin_args"), [
    ("new_episodes", []), ("once-new-file", [])])
def test_recording_for_another_judge_re_records_for_it(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        plugin_args: list[str], mode: str) -> None:
    """In a recording mode another judge's entry is a miss: asked of the new
    judge and recorded for it; afterwards each judge replays only its own."""
    path = _record(pytester, judge_server, "openai/judge-a")
    calls = judge_server.calls
    if mode == "once-new-file":
        path.unlink()
    result = pytester.runpytest(
        *_base(judge_server), *plugin_args, "--llmjudge-model=openai/judge-b",
        f"--llmjudge-record-mode={mode.split('-')[0]}")
    result.assert_outcomes(passed=3)
    asked = judge_server.requests[calls:]
    assert len(asked) == 6 and {r.body["model"] for r in asked} == {"judge-b"}
    entries = _doc(path)["entries"].values()
    assert {e["judge"] for e in entries} == {"openai/judge-b"}
    assert {e["model"] for e in entries} == {"judge-b"}
    calls = judge_server.calls
    pytester.runpytest(*_base(judge_server), "--llmjudge-model=openai/judge-b",
                       "--llmjudge-record-mode=none").assert_outcomes(passed=3)
    pytester.runpytest(*_base(judge_server), "--llmjudge-model=openai/judge-a",
                       "--llmjudge-record-mode=none").assert_outcomes(errors=3)
    assert judge_server.calls == calls


def test_once_on_an_existing_file_for_another_judge_is_an_error(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    """``once`` does not record into an existing file: another judge's entry
    there is an error (as a missing one is), with no request."""
    path = _record(pytester, judge_server, "openai/judge-a")
    before, calls = path.read_bytes(), judge_server.calls
    result = pytester.runpytest(*_base(judge_server), "--llmjudge-model=openai/judge-b",
                                "--llmjudge-record-mode=once")
    result.assert_outcomes(errors=3)
    assert judge_server.calls == calls
    assert path.read_bytes() == before


@pytest.mark.parametrize("stats", ["with-stats", "without-stats"])
def test_legacy_entries_without_a_judge_field_are_checked_too(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        stats: str) -> None:
    """Records written before entries named their judge (as the committed
    examples are): the judge is read from the file's statistics, or else from
    the model that answered. The same judge replays; another one errors."""
    path = _record(pytester, judge_server, "openai/judge-a")
    doc = _doc(path)
    for e in doc["entries"].values():
        del e["judge"]
    if stats == "without-stats":
        doc["judge_stats"] = {}
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    calls = judge_server.calls
    pytester.runpytest(*_base(judge_server), "--llmjudge-model=openai/judge-a",
                       "--llmjudge-record-mode=none").assert_outcomes(passed=3)
    pytester.runpytest(*_base(judge_server), "--llmjudge-record-mode=none"
                       ).assert_outcomes(passed=3)
    result = pytester.runpytest(*_base(judge_server), "--llmjudge-model=openai/judge-b",
                                "--llmjudge-record-mode=none")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*recorded with judge *judge-a, but * is judged by "
                                 "openai/judge-b*"])
    assert judge_server.calls == calls


def test_cache_keys_on_model_and_api_base(pytester: pytest.Pytester,
                                          judge_server: ScriptedJudgeServer) -> None:
    """A cached reply is served only to the same judge at the same endpoint."""
    judge_server.policy = _policy()
    pytester.makepyfile(test_rec=ONE)
    args = ["-p", "no:cacheprovider", f"--llmjudge-api-base={judge_server.base_url}"]
    pytester.runpytest(*args, "--llmjudge-model=openai/judge-a").assert_outcomes(
        passed=1)
    assert judge_server.calls == 2
    pytester.runpytest(*args, "--llmjudge-model=openai/judge-a").assert_outcomes(
        passed=1)
    assert judge_server.calls == 2  # the same judge: cached
    pytester.runpytest(*args, "--llmjudge-model=openai/judge-b").assert_outcomes(
        passed=1)
    assert judge_server.calls == 4  # another judge: asked
    with ScriptedJudgeServer(_policy()) as other:
        pytester.runpytest("-p", "no:cacheprovider", "--llmjudge-model=openai/judge-a",
                           f"--llmjudge-api-base={other.base_url}"
                           ).assert_outcomes(passed=1)
        assert other.calls == 2  # another endpoint: asked there
    assert judge_server.calls == 4


# ---------------------------------------------------------------- replay never calls

def _break_entry(doc: dict[str, Any], how: str) -> None:
    key = sorted(doc["entries"])[0]
    entry = doc["entries"][key]
    if how == "reply-string":
        entry["reply"] = "oops"
    elif how == "entry-list":
        doc["entries"][key] = [1, 2]
    elif how == "content-garbage":
        entry["reply"]["content"] = "not json at all"
    elif how == "content-wrong-criteria":
        entry["reply"]["content"] = json.dumps({"criteria": [
            {"name": "nothing_like_it", "verdict": "pass", "reasoning": "x"}]})
    elif how == "tokens-not-a-number":
        entry["reply"]["prompt_tokens"] = "many"
    else:
        raise AssertionError(how)


ENTRY_DAMAGE = ["reply-string", "entry-list", "content-garbage",
                "content-wrong-criteria", "tokens-not-a-number"]


@pytest.mark.parametrize("how", ENTRY_DAMAGE)
def test_replay_only_never_calls_for_a_damaged_entry(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        how: str) -> None:
    """Replay-only, with the judge configured or none: a damaged entry is a
    judge error naming the file and the entry, and not one request is made."""
    path = _record(pytester, judge_server, "openai/scripted-judge", ONE)
    doc = _doc(path)
    _break_entry(doc, how)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    before, calls = path.read_bytes(), judge_server.calls
    for model in (["--llmjudge-model=openai/scripted-judge"], []):
        result = pytester.runpytest(*_base(judge_server), *model,
                                               "--llmjudge-record-mode=none")
        result.assert_outcomes(errors=1)
        assert judge_server.calls == calls  # not one request
        result.stdout.fnmatch_lines([f"*entry * of {path}*"])
        assert "JUDGE ERROR" in result.stdout.str()
        assert path.read_bytes() == before


@pytest.mark.subprocess("xdist workers are processes of their own")
def test_replay_only_never_calls_at_n2(pytester: pytest.Pytester,
                                       judge_server: ScriptedJudgeServer) -> None:
    path = _record(pytester, judge_server, "openai/scripted-judge")
    doc = _doc(path)
    for e in doc["entries"].values():
        e["reply"]["content"] = "garbage"
    path.write_text(json.dumps(doc), encoding="utf-8")
    calls = judge_server.calls
    result = pytester.runpytest(
        *_base(judge_server), "-n", "2", "--llmjudge-model=openai/scripted-judge",
        "--llmjudge-record-mode=none")
    result.assert_outcomes(errors=3)
    assert judge_server.calls == calls


# ---------------------------------------------------------------- broken files

def _conflict(text: str) -> str:
    lines = text.splitlines(keepends=True)
    mid = len(lines) // 2
    return "".join(lines[:mid] + ["<<<<<<< HEAD\n"] + lines[mid:mid + 3]
                   + ["=======\n"] + lines[mid:mid + 3] + [">>>>>>> branch\n"]
                   + lines[mid:])


BREAKAGES = {
    "merge-conflict": _conflict,
    "truncated": lambda t: t[: len(t) // 2],
    "top-level-list": lambda t: "[" + t + "]",
    "entries-not-object": lambda t: json.dumps({"format": 1, "entries": [1]}),
    "hand-edit-trailing-comma": lambda t: t.rstrip().rstrip("}") + ",}\n",
    "not-utf8": lambda t: "\udcff",
}


def _break_file(path: Path, how: str) -> bytes:
    if how == "not-utf8":
        path.write_bytes(b"\xff\xfe{" + os.urandom(64))
    else:
        path.write_text(BREAKAGES[how](path.read_text(encoding="utf-8")),
                        encoding="utf-8")
    return path.read_bytes()


@pytest.mark.parametrize("how", sorted(BREAKAGES))
def test_an_unparseable_records_file_is_never_written_over(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        how: str) -> None:
    """Every record mode: the file's bytes are unchanged, nothing is asked in
    its place, and each judged test is an error that names the file and says
    how to fix it."""
    path = _record(pytester, judge_server, "openai/scripted-judge", THREE)
    before = _break_file(path, how)
    calls = judge_server.calls
    for mode in ("once", "new_episodes", "all", "none"):
        result = pytester.runpytest(
            *_base(judge_server), "--llmjudge-model=openai/scripted-judge",
            f"--llmjudge-record-mode={mode}")
        result.assert_outcomes(errors=3)
        assert path.read_bytes() == before, mode  # byte for byte
        assert judge_server.calls == calls, mode  # and nothing asked in its place
        result.stdout.fnmatch_lines([f"*records file {path} cannot be used*left as "
                                     "it is*"])
        out = result.stdout.str()
        if how == "merge-conflict":
            assert "merge-conflict markers" in out
            assert "git checkout --theirs" in out
        else:
            assert f"git checkout -- {path}" in out
        assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.subprocess("xdist workers are processes of their own")
@pytest.mark.parametrize(("how", "mode"), [("truncated", "all")])
# (merge-conflict markers: the same refusal, checked in process above)
def test_an_unparseable_records_file_is_never_written_over_at_n2(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        how: str, mode: str) -> None:
    path = _record(pytester, judge_server, "openai/scripted-judge", THREE)
    before = _break_file(path, how)
    calls = judge_server.calls
    result = pytester.runpytest(
        *_base(judge_server), "-n", "2", "--llmjudge-model=openai/scripted-judge",
        f"--llmjudge-record-mode={mode}")
    result.assert_outcomes(errors=3)
    assert path.read_bytes() == before
    assert judge_server.calls == calls


def test_a_file_broken_while_recording_is_not_written_over(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    """The file is valid when the test starts and broken (a checkout, an editor)
    before the reply is written: the write re-reads it and stops."""
    path = _record(pytester, judge_server, "openai/scripted-judge", ONE)
    path.unlink()
    broken = b'{"entries": {<<<<<<< HEAD\n'

    class BreakThenAnswer:
        def __init__(self) -> None:
            self.inner = _policy()

        def __call__(self, req: Any) -> Any:
            path.write_bytes(broken)
            return self.inner(req)

    judge_server.policy = BreakThenAnswer()
    result = pytester.runpytest(*_base(judge_server), "--llmjudge-cache=off",
                                "--llmjudge-model=openai/scripted-judge",
                                "--llmjudge-record-mode=new_episodes")
    result.assert_outcomes(errors=1)
    assert path.read_bytes() == broken
    result.stdout.fnmatch_lines([f"*records file {path} cannot be used*"])


# ---------------------------------------------------------------- all + selection

def _by_test(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k, e in _doc(path)["entries"].items():
        out.setdefault(e["test"], {})[k] = e
    return out


class Reworded:
    """The scripted judge, with a marker in its reasoning so re-recorded
    entries can be told from the old ones."""

    def __init__(self, mark: str) -> None:
        self.inner = _policy()
        self.mark = mark

    def __call__(self, req: Any) -> Any:
        reply = self.inner(req)
        for c in reply.get("criteria", []):
            c["reasoning"] = f"{self.mark}: {c.get('reasoning', '')}"
        return reply


@pytest.mark.subprocess("a variant runs at -n 2: xdist workers are processes")
@pytest.mark.parametrize(("select", "plugin_args"), [
    ("-k", []), ("nodeid", []), ("lf", []), ("two-nodeids", []),
    ("-k", ["-n", "2"])])  # one -n 2 variant (suite time, issue #14)
def test_all_with_a_selection_keeps_the_other_tests_entries(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        plugin_args: list[str], select: str) -> None:
    """``all`` with -k, node ids or --lf re-records the tests that ran; every
    other test's entries are kept, entry for entry."""
    path = _record(pytester, judge_server, "openai/scripted-judge", THREE)
    old = _by_test(path)
    assert len(old) == 3
    api = f"--llmjudge-api-base={judge_server.base_url}"
    ran = {"test_rec.py::test_two"}
    if select == "-k":
        sel = ["-k", "test_two"]
    elif select == "nodeid":
        sel = ["test_rec.py::test_two"]
    elif select == "two-nodeids":
        sel = ["test_rec.py::test_two", "test_rec.py::test_three"]
        ran.add("test_rec.py::test_three")
    else:
        # A replayed run in which only test_two failed (before judging), then
        # --lf re-records it alone. pytest's cache provider is on for these.
        pytester.makepyfile(test_rec=THREE.replace(
            'def test_two():\n', 'def test_two():\n    assert False, "first run"\n'))
        pytester.runpytest(api, "--llmjudge-record-mode=none").assert_outcomes(
            passed=2, failed=1)
        pytester.makepyfile(test_rec=THREE)
        sel = ["--lf"]
    judge_server.policy = Reworded("second take")
    args = [api, "--llmjudge-model=openai/scripted-judge", "--llmjudge-record-mode=all",
            "--llmjudge-cache=off", *plugin_args, *sel,
            *([] if select == "lf" else ["-p", "no:cacheprovider"])]
    pytester.runpytest(*args).assert_outcomes(passed=len(ran))
    new = _by_test(path)
    assert set(new) == set(old)
    for test in old:
        if test in ran:
            assert all("second take" in e["reply"]["content"]
                       for e in new[test].values()), test
        else:
            assert new[test] == old[test], test  # kept, entry for entry


@pytest.mark.subprocess("two xdist workers write one records file")
def test_two_workers_recording_one_file_lose_nothing(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    """-n 2: both workers write the one records file; every entry is there."""
    judge_server.policy = _policy()
    many = "\n".join(f'''
def test_{i}():
    __import__("pytest_llmjudge").assert_judged("Paris {i}", "{RUBRIC}")'''
                     for i in range(10))
    pytester.makepyfile(test_rec=many)
    for mode in ("new_episodes", "all"):
        result = pytester.runpytest(
            *_base(judge_server), "-n", "2", "--llmjudge-model=openai/scripted-judge",
            f"--llmjudge-record-mode={mode}", "--llmjudge-cache=off")
        result.assert_outcomes(passed=10)
        tests = _by_test(_records(pytester))
        assert len(tests) == 10 and all(len(v) == 2 for v in tests.values()), mode
        assert not (_records(pytester).parent / "test_rec.json.lock").exists()


# ---------------------------------------------------------------- stale locks

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.subprocess("a variant runs at -n 2: xdist workers are processes")
@pytest.mark.parametrize(("lock", "xdist"), [
    ("dead-pid", "no-xdist"), ("unnamed-old", "no-xdist"),
    ("dead-pid", "xdist-2")])  # one -n 2 variant (suite time, issue #14)
def test_a_stale_lock_is_taken_over_with_a_warning(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        lock: str, xdist: str) -> None:
    path = _record(pytester, judge_server, "openai/scripted-judge", ONE)
    doc_before = _doc(path)
    pytester.makepyfile(test_rec=THREE)
    lockfile = path.with_name(path.name + ".lock")
    if lock == "dead-pid":
        pid = _dead_pid()
        lockfile.write_text(f"{pid} {socket.gethostname()}\n")
        said = f"left by process {pid}, which is no longer running"
    else:
        lockfile.write_text("")
        os.utime(lockfile, (1_000_000_000, 1_000_000_000))
        said = "left by a lock file that names no process"
    extra = ["-n", "2"] if xdist == "xdist-2" else []
    result = pytester.runpytest(
        *_base(judge_server), *extra, "--llmjudge-model=openai/scripted-judge",
        "--llmjudge-record-mode=new_episodes", "-W", "default")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert said in out  # said, not silently waited out
    assert "took over its lock" in out
    assert "held it over 30 s" not in out
    assert not lockfile.exists()
    entries = _doc(path)["entries"]
    assert len(entries) == 6
    assert all(entries[k] == v for k, v in doc_before["entries"].items())


# ---------------------------------------------------------------- cache damage

CACHE_DAMAGE = ["garbage-db", "db-is-a-directory", "cache-dir-is-a-file"]


def _damage_cache(cache: Path, how: str) -> None:
    db = cache / "replies" / "cache.db"
    if how == "garbage-db":
        db.write_bytes(os.urandom(4096))
    elif how == "db-is-a-directory":
        for p in db.parent.glob("cache.db*"):
            p.unlink()
        db.mkdir()
    else:
        import shutil

        shutil.rmtree(cache)
        cache.write_text("not a folder")


def _seed_meta(pytester: pytest.Pytester, cache: Path) -> None:
    """Rows the meta store keeps (statistics, a calibration) that no re-run
    can bring back without people's labels."""
    from pytest_llmjudge.storage.cache import ReplyCache

    meta = ReplyCache(cache / "meta", "on")
    meta.set("calibration:seeded", {"kappa": 0.91, "n": 40})
    meta.add("agreement:openai/scripted-judge:criteria", {"agree": 7.0, "pairs": 9.0})
    meta.close()


def _meta_rows(cache: Path) -> tuple[Any, Any]:
    from pytest_llmjudge.storage.cache import ReplyCache

    meta = ReplyCache(cache / "meta", "on")
    try:
        return (meta.get("calibration:seeded"),
                meta.get("agreement:openai/scripted-judge:criteria"))
    finally:
        meta.close()


@pytest.mark.subprocess("a variant runs at -n 2: xdist workers are processes")
@pytest.mark.parametrize(("how", "filters", "plugin_args"), [
    *((h, f, []) for h in CACHE_DAMAGE for f in ("default", "error")),
    ("garbage-db", "error", ["-n", "2"])])  # one -n 2 variant (suite time, #14)
def test_a_damaged_cache_warns_once_and_keeps_statistics(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        plugin_args: list[str], how: str, filters: str) -> None:
    """A damaged replies database: every judged test still runs (under
    ``filterwarnings = error`` too), the problem is said once at the session's
    end, and the statistics and calibrations beside the cache survive."""
    judge_server.policy = _policy()
    pytester.makepyfile(test_rec=THREE)
    pytester.makeini(f"[pytest]\nfilterwarnings = {filters}\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    args = [*_base(judge_server), "--llmjudge-model=openai/scripted-judge"]
    pytester.runpytest(*args).assert_outcomes(passed=3)  # fills the cache
    args += plugin_args  # the run under test: at -n 2 in one variant
    cache = pytester.path / ".llmjudge_cache"
    _seed_meta(pytester, cache)
    _damage_cache(cache, how)
    calls = judge_server.calls
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    said = ("cannot be used" if how == "cache-dir-is-a-file" else "is unreadable")
    assert f"llmjudge cache at {cache}" in out and said in out, out
    if filters == "default":  # a warning, in the warnings summary
        # (each distinct problem once: the replies' and the meta store's)
        n = out.count(f"CacheWarning: llmjudge cache at {cache} {said}")
        assert n >= 1 and (n == 1 or plugin_args), out
    else:  # made an error by the filters: said in the judge summary instead
        assert "CacheWarning" not in out
        assert "note: llmjudge cache at" in out
    assert judge_server.calls == calls + 6  # nothing usable: asked again
    if how != "cache-dir-is-a-file":
        calibration, agreement = _meta_rows(cache)
        assert calibration == {"kappa": 0.91, "n": 40}
        assert agreement["agree"] >= 7.0 and agreement["pairs"] >= 9.0


@pytest.mark.subprocess("on-disk bytes across runs: an in-process run's sqlite connections can outlive it and write into the replaced file")
def test_a_damaged_meta_store_is_set_aside_not_deleted(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    judge_server.policy = _policy()
    pytester.makepyfile(test_rec=ONE)
    pytester.makeini("[pytest]\nfilterwarnings = error\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    args = [*_base(judge_server), "--llmjudge-model=openai/scripted-judge"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    cache = pytester.path / ".llmjudge_cache"
    db = cache / "meta" / "replies" / "cache.db"
    # A header SQLite refuses at once (page size 1). Random bytes were flaky: a
    # header that reads as a valid page size lets SQLite write to the file
    # before it is found damaged.
    damaged = b"SQLite format 3\x00" + bytes(range(256)) * 16
    db.write_bytes(damaged)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    kept = list((cache / "meta").glob("damaged-*.db"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    result.stdout.fnmatch_lines([f"*the damaged database was kept as {kept[0]} "
                                 "(nothing deleted)*"])


# ---------------------------------------------------------------- concurrent reports

@pytest.mark.subprocess("two pytest processes write one report path at once")
def test_two_runs_writing_one_report_leave_whole_files(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer) -> None:
    judge_server.policy = _policy()
    pytester.makepyfile(test_rec=THREE)
    out = pytester.path / "out"
    cmd = [sys.executable, "-m", "pytest", *_base(judge_server),
           "--llmjudge-model=openai/scripted-judge", f"--llmjudge-report={out}/r.json",
           f"--llmjudge-markdown={out}/r.md"]
    for _ in range(2):
        procs = [pytester.popen([*cmd, f"--llmjudge-cache-dir=c{i}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL) for i in range(2)]
        for p in procs:
            o, e = p.communicate(timeout=300)
            assert p.returncode == 0, o.decode() + e.decode()
        doc = _doc(out / "r.json")  # a whole document, from one run or the other
        assert len(doc["verdicts"]) == 3
        md = (out / "r.md").read_text(encoding="utf-8")
        assert md.startswith("## LLM judge summary") and md.endswith("\n")
        assert sorted(p.name for p in out.iterdir()) == ["r.json", "r.md"]
