"""Unit tests of the pure parts: reply parsing, rubric validation, settings
resolution, the JSON-only cache and what goes into a cache key."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import diskcache
import pytest
from diskcache.core import MODE_RAW

from pytest_llmjudge.storage import cache as cache_mod
from pytest_llmjudge.judging.parse import parse_reply
from pytest_llmjudge.judging import plan
from pytest_llmjudge.storage.cache import JSONOnlyDisk, ReplyCache, cache_key
from pytest_llmjudge.exceptions import ConfigError, JudgeParseError, RubricError
from pytest_llmjudge.judging.judge import Judge
from pytest_llmjudge.rubric import (
    Criterion,
    Rubric,
    Scale,
    as_rubric,
    load_rubric,
    rubric_from_dict,
)
from pytest_llmjudge.runtime.session import JudgeSession
from pytest_llmjudge.settings import OPTIONS, Settings, argparse_type, resolve

NAMES = ("apology", "refund")


def _reply(apology: object = "pass", refund: object = "fail", **extra: Any) -> str:
    return json.dumps({"criteria": [
        {"name": "apology", "reasoning": "says sorry", "verdict": apology},
        {"name": "refund", "reasoning": "no refund", "verdict": refund}], **extra})


# ------------------------------------------------------------------ _parse
def test_parse_plain_json() -> None:
    p = parse_reply(_reply(confidence=0.8), "criteria", names=NAMES)
    assert p.verdicts == {"apology": "pass", "refund": "fail"}
    assert p.reasoning == {"apology": "says sorry", "refund": "no refund"}
    assert p.confidence == 0.8


def test_parse_json_inside_text() -> None:
    text = f"Let me check each criterion.\n{_reply()}\nI hope this helps!"
    assert parse_reply(text, "criteria", names=NAMES).verdicts["apology"] == "pass"


def test_parse_code_fence() -> None:
    text = f"Verdict:\n```json\n{_reply(apology='fail')}\n```\n"
    assert parse_reply(text, "criteria", names=NAMES).verdicts["apology"] == "fail"


def test_parse_last_object_wins() -> None:
    text = (f"Draft: {_reply(apology='pass')}\nOn reflection: {_reply(apology='fail')}"
            '\n{"note": "not a verdict"}')
    # The last *valid* object decides; trailing objects of another shape do not.
    assert parse_reply(text, "criteria", names=NAMES).verdicts["apology"] == "fail"


def test_parse_names_are_matched_loosely_and_repeats_must_agree() -> None:
    text = json.dumps({"criteria": [
        {"name": " Apology ", "verdict": "pass"},
        {"name": "apology", "verdict": "yes"},
        {"name": '"REFUND"', "verdict": "fail"}]})
    p = parse_reply(text, "criteria", names=NAMES)
    assert p.verdicts == {"apology": "pass", "refund": "fail"}
    assert p.reasoning == {"apology": "", "refund": ""}
    assert p.confidence is None
    # A reply that says pass and fail for one criterion is unreadable, not a pass.
    contradicts = json.dumps({"criteria": [
        {"name": "apology", "verdict": "pass"}, {"name": "apology", "verdict": "fail"},
        {"name": "refund", "verdict": "fail"}]})
    with pytest.raises(JudgeParseError):
        parse_reply(contradicts, "criteria", names=NAMES)


def test_parse_missing_criterion_is_an_error() -> None:
    text = json.dumps({"criteria": [{"name": "apology", "verdict": "pass"}]})
    with pytest.raises(JudgeParseError, match=r"with every criterion of "
                       r"\['apology', 'refund'\]") as info:
        parse_reply(text, "criteria", names=NAMES)
    assert info.value.reply == text


@pytest.mark.parametrize("reply", ["", "   ", "Looks great to me!", "{not json}",
                                   '{"criteria": "all good"}', "[1, 2, 3]"])
def test_parse_unreadable_replies_are_errors(reply: str) -> None:
    with pytest.raises(JudgeParseError):
        parse_reply(reply, "criteria", names=NAMES)


@pytest.mark.parametrize(("word", "expected"), [
    ("pass", "pass"), ("PASS", "pass"), ("passed", "pass"), ("yes", "pass"),
    ("true", "pass"), (True, "pass"), ("'pass'", "pass"), (" Yes ", "pass"),
    ("fail", "fail"), ("Failed", "fail"), ("no", "fail"), ("false", "fail"),
    (False, "fail"),
])
def test_parse_verdict_synonyms(word: object, expected: str) -> None:
    p = parse_reply(_reply(apology=word), "criteria", names=NAMES)
    assert p.verdicts["apology"] == expected


@pytest.mark.parametrize("word", ["maybe", "partially", 1, None, "passes"])
def test_parse_unknown_verdict_word_is_missing(word: object) -> None:
    with pytest.raises(JudgeParseError):
        parse_reply(_reply(apology=word), "criteria", names=NAMES)


@pytest.mark.parametrize(("raw", "expected"), [
    ("0.7", 0.7), ("1", 1.0), ("0", 0.0), ("95", 0.95), ("100", 1.0), ("1.5", 0.015),
    ("150", None), ("-0.2", None), ('"high"', None), ("true", None), ("NaN", None),
])
def test_parse_confidence(raw: str, expected: float | None) -> None:
    text = _reply()[:-1] + f', "confidence": {raw}}}'
    got = parse_reply(text, "criteria", names=NAMES).confidence
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_parse_scale_and_pairwise() -> None:
    assert parse_reply('{"reasoning": "ok", "score": "4"}', "scale", top=5).level == 4
    assert parse_reply('{"score": 3.0, "confidence": 90}', "scale", top=5).confidence \
        == pytest.approx(0.9)
    for bad in ('{"score": 6}', '{"score": 0}', '{"score": true}', '{"score": 2.5}'):
        with pytest.raises(JudgeParseError):
            parse_reply(bad, "scale", top=5)
    for raw, winner in (("A", "A"), ("b", "B"), ("[A]", "A"), ("Tie", "tie"),
                        ("A=B", "tie")):
        got = parse_reply(json.dumps({"winner": raw}), "pairwise")
        assert got.winner == winner
    with pytest.raises(JudgeParseError):
        parse_reply('{"winner": "C"}', "pairwise")


# ------------------------------------------------------------------ rubrics
@pytest.mark.parametrize(("make", "message"), [
    (lambda: Criterion("", "Says sorry"), "criterion name '' is not usable"),
    (lambda: Criterion(" lead", "Says sorry"), "is not usable"),
    (lambda: Criterion("x" * 65, "Says sorry"), "is not usable"),
    (lambda: Criterion("ok", "  "), "criterion 'ok' has an empty description"),
    (lambda: Criterion("ok", "Says sorry", weight=0), "weights must be > 0"),
    (lambda: Criterion("ok", "Says sorry", weight=-1), "weights must be > 0"),
    (lambda: Criterion("ok", "Says sorry", weight=True), "weight must be a number"),
    (lambda: Rubric([]), "the rubric has no criteria"),
    (lambda: Rubric(["Says sorry"]),  # type: ignore[list-item]
     "must be Criterion objects, got str"),
    (lambda: Rubric([Criterion("a", "x"), Criterion("a", "y")]),
     "two criteria are named 'a'"),
    (lambda: Rubric([Criterion("a", "x")], threshold=1.5), "threshold must be in"),
    (lambda: Rubric([Criterion("a", "x")], threshold=True), "threshold must be a num"),
    (lambda: Scale("", {1: "a", 2: "b"}, 1), "a Scale needs a criterion"),
    (lambda: Scale("Polite", {1: "a"}, 1), "a scale needs at least two scores"),
    (lambda: Scale("Polite", {1: "a", 3: "b"}, 1, low=2), "levels [1] are outside"),
    (lambda: Scale("Polite", {0: "a", 1: "b"}, 1, pass_score=1), "give one pass mark"),
    (lambda: Scale("Polite", {0: "a", 200: "b"}, 1), "is too wide"),
    (lambda: Scale("Polite", {0: "a", 10: "b"}, pass_score=11), "outside the scale"),
    (lambda: Scale("Polite", {0: "a", 10: "b"}, min_score=1.5), "min_score must be"),
    (lambda: Scale("Polite", {0: "a", 2.5: "b"}, 1), "map whole numbers"),
    (lambda: Rubric([Criterion("a", "x")], threshold=0.5), "has no effect here"),
    (lambda: Scale("Polite", {"one": "a", "two": "b"}, 1),  # type: ignore[dict-item]
     "map whole numbers"),
    (lambda: Scale("Polite", {1: "a", 2: " "}, 1), "every Scale level needs a desc"),
    (lambda: Scale("Polite", {1: "a", 2: "b"}, 3), "pass_level 3 is not one of"),
    (lambda: Scale("Polite", {1: "a", 2: "b"}, 0), "pass_level 0 is not one of"),
    (lambda: as_rubric(""), "the rubric is an empty string"),
    (lambda: as_rubric([]), "the rubric is an empty list"),
    (lambda: as_rubric(["Says sorry", ""]), "must be non-empty strings or Criterion"),
    (lambda: as_rubric(42), "a rubric must be a string, a list of strings"),
    (lambda: rubric_from_dict([1]), "top level must be a mapping"),
    (lambda: rubric_from_dict({"criteria": [], "extra": 1}), "unknown keys ['extra']"),
    (lambda: rubric_from_dict({"criteria": "Says sorry"}), "'criteria' must be a list"),
    (lambda: rubric_from_dict({"criteria": [{"name": "a", "desc": "x"}]}),
     "unknown criterion keys ['desc']"),
    (lambda: rubric_from_dict({"scale": "1-5"}), "'scale' must be a mapping"),
])
def test_rubric_validation(make: Any, message: str) -> None:
    with pytest.raises(RubricError) as info:
        make()
    assert message in str(info.value)


def test_string_and_list_rubrics_get_unique_names() -> None:
    r = as_rubric(["Says sorry", "Says sorry!", Criterion("tone", "Is polite")])
    assert isinstance(r, Rubric)
    assert [c.name for c in r.criteria] == ["says_sorry", "says_sorry_2", "tone"]
    assert all(c.required for c in r.criteria)
    assert as_rubric(Criterion("tone", "Is polite")) == Rubric(
        [Criterion("tone", "Is polite")])


def test_rubric_files_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "r.yml"
    good.write_text("criteria:\n  - Says sorry\n  - name: refund\n"
                    "    description: Offers a refund\n    required: false\n")
    expected = Rubric([Criterion("says_sorry", "Says sorry"),
                       Criterion("refund", "Offers a refund", required=False)])
    assert load_rubric(good) == expected == as_rubric(good) == as_rubric(str(good))
    bad = tmp_path / "bad.yaml"
    bad.write_text("criteria: [unclosed\n")
    with pytest.raises(RubricError, match="is not valid YAML/JSON"):
        load_rubric(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"criteria": [{"name": "a", "description": ""}]}')
    with pytest.raises(RubricError, match=r"rubric file .*wrong\.json: criterion 'a' "
                       "has an empty description"):
        as_rubric(wrong)
    with pytest.raises(RubricError, match="cannot read rubric file"):
        as_rubric("rubrics/missing.yaml")  # a file name, not a criterion
    # A sentence that merely ends like a file name is still a criterion.
    r = as_rubric("Writes the result to out.json")
    assert isinstance(r, Rubric)
    assert r.criteria[0].description.endswith("out.json")


# ------------------------------------------------------------------ settings
def test_every_option_has_a_matching_settings_default() -> None:
    defaults = Settings()
    for opt in OPTIONS:
        assert getattr(defaults, opt.name) == opt.default, opt.name


def test_resolve_precedence_cli_ini_env_default() -> None:
    env = {"LLMJUDGE_MIN_SAMPLES": "3", "LLMJUDGE_TEMPERATURE": "0.1",
           "LLMJUDGE_THRESHOLD": "0.7", "LLMJUDGE_API_KEY": "sk-unit"}
    ini = {"min_samples": "4", "temperature": "0.2", "max_samples": "", "debias": "yes"}
    cli = {"min_samples": 5, "debias": False, "max_samples": None}
    s = resolve(cli, ini, env)
    assert s.min_samples == 5         # CLI beats ini and environment
    assert s.temperature == 0.2       # ini beats environment
    assert s.threshold == 0.7         # environment beats the default
    assert s.max_samples == 6         # None and "" are "not given": the default
    assert s.debias is False          # False on the command line is a value
    assert s.api_key == "sk-unit"
    assert "sk-unit" not in repr(s)
    assert resolve({}, {}, {}) == Settings()


@pytest.mark.parametrize(("cli", "ini", "env", "message"), [
    ({}, {"threshold": "high"}, {}, "ini option llmjudge_threshold: threshold 'high' "
     "must be a number"),
    ({}, {}, {"LLMJUDGE_CACHE": "sometimes"}, "environment variable LLMJUDGE_CACHE: "
     "cache 'sometimes' must be one of on, off, refresh"),
    ({}, {}, {"LLMJUDGE_MIN_SAMPLES": "2.5"}, "must be a whole number"),
    ({}, {}, {"LLMJUDGE_DEBIAS": "perhaps"}, "must be true or false"),
    ({"min_samples": 8}, {}, {}, "min_samples (8) is larger than max_samples (6)"),
])
def test_resolve_errors_name_the_source(cli: dict[str, Any], ini: dict[str, Any],
                                        env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(cli, ini, env)
    assert message in str(info.value)


def test_override_marker_and_call_values() -> None:
    base = Settings(model="openai/a", jury=None, min_samples=2)
    s = base.override("marker", {"min_samples": "3", "threshold": None,
                                 "model": ["openai/x", "openai/y"]})
    assert (s.min_samples, s.threshold) == (3, 0.5)
    assert s.jury == s.models == ("openai/x", "openai/y")
    assert s.override("call", {"model": "openai/z"}).models == ("openai/z",)
    assert base.override("call", {}) is base
    with pytest.raises(ConfigError, match=r"call: unknown option 'min_sample' \(did "
                       r"you mean 'min_samples'\?\); allowed: model, "):
        base.override("call", {"min_sample": 3})
    with pytest.raises(ConfigError, match="marker: inconclusive 'maybe' must be one of "
                       "fail, xfail, skip, warn"):
        base.override("marker", {"inconclusive": "maybe"})
    with pytest.raises(ConfigError,
                       match=r"min_samples \(7\) is larger than max_samples"):
        base.override("marker", {"min_samples": 7})


def test_command_line_values_name_what_is_valid() -> None:
    import argparse

    assert argparse_type("cache")("REFRESH") == "refresh"
    with pytest.raises(argparse.ArgumentTypeError,
                       match="'often' must be one of on, off, refresh"):
        argparse_type("cache")("often")
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \[0.0, 1.0\]"):
        argparse_type("threshold")("2")


# ------------------------------------------------------------------ cache
class _Evil:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


def _poison(directory: Path, key: str, value: object) -> None:
    """Write a pickled row the way plain diskcache would (someone else's cache)."""
    plain = diskcache.Cache(str(directory / "replies"))
    plain.set(key, value)
    plain.close()


def test_json_only_cache_never_unpickles(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _poison(tmp_path, "k1", {"content": "a pickled reply"})
    _poison(tmp_path, "k2", ["also", "pickled"])

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("pickle.load(s) was called")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    cache = ReplyCache(tmp_path, "on")
    assert cache.get("k1") is None
    assert cache.get("k2") is None
    # Overwriting the row stores JSON text, read back without pickle.
    cache.set("k1", {"content": "json", "n": 1})
    assert cache.get("k1") == {"content": "json", "n": 1}
    cache.close()
    db = sqlite3.connect(tmp_path / "replies" / "cache.db")
    mode, raw = db.execute("SELECT mode, value FROM Cache WHERE key = 'k1'").fetchone()
    db.close()
    assert mode == MODE_RAW
    assert json.loads(raw) == {"content": "json", "n": 1}


def test_poisoned_cache_row_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _poison(tmp_path, "evil", _Evil(marker))
    assert not marker.exists()
    cache = ReplyCache(tmp_path, "on")
    assert cache.get("evil") is None
    cache.close()
    assert not marker.exists()
    # The control: plain diskcache would have run it.
    plain = diskcache.Cache(str(tmp_path / "replies"))
    plain.get("evil")
    plain.close()
    assert marker.exists()


def test_json_only_disk_refuses_pickled_keys_and_non_json(tmp_path: Path) -> None:
    disk = JSONOnlyDisk(str(tmp_path))
    with pytest.raises(KeyError, match="refusing to unpickle"):
        disk.get(pickle.dumps(("a", 1)), raw=False)
    with pytest.raises(TypeError):
        disk.put(("a", 1))
    c = diskcache.Cache(str(tmp_path / "c"), disk=JSONOnlyDisk)
    with pytest.raises(TypeError):
        c.set("k", {1, 2})  # not JSON
    c.close()


def test_cache_modes(tmp_path: Path) -> None:
    off = ReplyCache(tmp_path / "off", "off")
    off.set("k", {"v": 1})
    assert off.get("k") is None
    assert not (tmp_path / "off").exists()

    refresh = ReplyCache(tmp_path / "c", "refresh")
    on = ReplyCache(tmp_path / "c", "on")
    on.set("k", {"v": "old"})
    assert refresh.get("k") is None  # refresh never reads...
    refresh.set("k", {"v": "new"})   # ...but writes
    assert on.get("k") == {"v": "new"}
    assert on.add("n", {"calls": 1}) == {"calls": 1.0}
    assert on.add("n", {"calls": 2, "cost": 0.5}) == {"calls": 3.0, "cost": 0.5}
    for c in (refresh, on):
        c.close()
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_text().startswith("Signature: ")
    assert (tmp_path / "c" / ".gitignore").read_text() == "*\n"


def _keys(settings: Settings, tmp_path: Path, index: int = 0, model: str = "openai/j",
          **task: Any) -> tuple[str, str]:
    session = JudgeSession(settings, tmp_path)
    judge = Judge(session, settings)
    args: dict[str, Any] = {"output": "Sorry!", "rubric": "Apologises",
                            "input": "Where is my order?", "reference": "We are sorry.",
                            "context": "Order 1 is late.", **task}
    t = judge.task(args.pop("output"), args.pop("rubric"), **args)
    return plan.keys(t, model, plan.presentation(t, index), index)


def test_cache_key_covers_every_input_but_no_secret(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    base = Settings(model="openai/j", api_base="http://127.0.0.1:1/v1", api_key="sk-A")
    key, rkey = _keys(base, tmp_path)
    variants = {
        "output": _keys(base, tmp_path, output="Sorry!!"),
        "rubric": _keys(base, tmp_path, rubric="Apologises politely"),
        "input": _keys(base, tmp_path, input="Where is it?"),
        "reference": _keys(base, tmp_path, reference=None),
        "context": _keys(base, tmp_path, context="Order 2 is late."),
        "presentation": _keys(base, tmp_path, index=1),
        "temperature": _keys(replace(base, temperature=0.3),
                             tmp_path),
        "model": _keys(base, tmp_path, model="openai/other"),
        "api_base": _keys(replace(base, api_base="http://x/v1"),
                          tmp_path),
        "response_format": _keys(Settings(**{**base.__dict__,
                                             "response_format": "text"}), tmp_path),
    }
    for part, (k, _) in variants.items():
        assert k != key, part
    assert len({k for k, _ in variants.values()}) == len(variants)
    # Samples beyond the presentations differ even when debias is off.
    nodebias = replace(base, debias=False)
    assert _keys(nodebias, tmp_path, index=2)[0] != _keys(nodebias, tmp_path)[0]
    # Records replay on another machine: no endpoint (nor model, without a jury).
    assert variants["api_base"][1] == variants["model"][1] == rkey
    assert variants["output"][1] != rkey
    # Not part of the key: the API key, the pass rule and the sampling budget.
    same = [replace(base, api_key="sk-B"),
            replace(base, api_key=None),
            replace(base, threshold=0.9, min_samples=4,
                        timeout=5.0, retries=0)]
    for s in same:
        assert _keys(s, tmp_path) == (key, rkey)
    assert _keys(base, tmp_path) == (key, rkey)  # stable, despite per-call nonces
    # A new prompt version never reuses old replies.
    monkeypatch.setattr(cache_mod, "PROMPT_VERSION", "999")
    assert _keys(base, tmp_path)[0] != key
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_report_schema_describes_every_verdict_field() -> None:
    """The published schema keeps up with the Verdict model (a new field must be
    added to report.schema.json too)."""
    from pytest_llmjudge.reporting.outputs import SCHEMA_FILE
    from pytest_llmjudge.verdict import Verdict

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    published = set(schema["$defs"]["Verdict"]["properties"])
    assert set(Verdict.model_fields) <= published, set(Verdict.model_fields) - published
    generated = Verdict.model_json_schema()["$defs"]
    for name in generated:
        assert schema["$defs"][name] == generated[name], name
