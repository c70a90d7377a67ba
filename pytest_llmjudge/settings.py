"""Settings: one table of options, resolved once per run into a frozen ``Settings``.

Order of precedence (first wins): call arguments > ``@pytest.mark.llmjudge`` >
command line (``--llmjudge-x``) > ini (``llmjudge_x``) > environment
(``LLMJUDGE_X``) > default. Every option is in ``OPTIONS``; ``plugin.py``
registers a flag and an ini twin for each.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest

from pytest_llmjudge.callables import named
from pytest_llmjudge.constants import ENV_PREFIX, INI_PREFIX, PER_TEST_SETTINGS
from pytest_llmjudge.exceptions import ConfigError
from pytest_llmjudge.guidance import Example, as_examples


class CacheMode(str, Enum):
    ON = "on"
    OFF = "off"
    REFRESH = "refresh"

    def __str__(self) -> str:
        return self.value


class RecordMode(str, Enum):
    """vcrpy's names: none replays only, once records a missing file, new_episodes
    adds missing entries, all re-records everything."""

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"

    def __str__(self) -> str:
        return self.value


class InconclusiveAction(str, Enum):
    FAIL = "fail"
    XFAIL = "xfail"
    SKIP = "skip"
    WARN = "warn"

    def __str__(self) -> str:
        return self.value


class ResponseFormat(str, Enum):
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    TEXT = "text"

    def __str__(self) -> str:
        return self.value


def _choice(enum: type[Enum]) -> Callable[[object], str]:
    values = [str(e.value) for e in enum]

    def parse(v: object) -> str:
        s = str(v.value if isinstance(v, Enum) else v).strip().lower()
        if s not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return s

    return parse


def _bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _num(lo: float | None = None, hi: float | None = None, integer: bool = False
         ) -> Callable[[object], Any]:
    def parse(v: object) -> Any:
        kind = "a whole number" if integer else "a number"
        if isinstance(v, bool):
            raise ValueError(f"must be {kind}")
        try:
            if integer:
                if isinstance(v, float) and not v.is_integer():
                    raise ValueError
                x: float = int(v) if isinstance(v, (int, float)) \
                    else int(str(v).strip())
            else:
                x = float(v) if isinstance(v, (int, float)) else float(str(v).strip())
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"must be {kind}") from None
        if not math.isfinite(x):  # NaN compares false with every bound
            raise ValueError(f"must be a finite number, not {x!r}")
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise ValueError(f"must be in {rng}")
        return x

    return parse


def _text(v: object) -> str | None:
    s = str(v).strip()
    return s or None


def _instructions(v: object) -> str | None:
    if not isinstance(v, str):
        raise ValueError("must be text (str): guidance for the judge")
    return v.strip() or None


def _examples(v: object) -> tuple[Example, ...]:
    """Few-shot examples: a list of dicts (a marker), or that list as JSON text
    (command line, ini, environment)."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError as exc:
            raise ValueError(f"is not a JSON list of examples: {exc}") from None
    try:
        return as_examples(v)
    except ConfigError as exc:
        raise ValueError(f"is not usable: {exc}") from None


def _models(v: object) -> tuple[str, ...]:
    if isinstance(v, (list, tuple)):
        items = [str(x).strip() for x in v]
    else:
        items = [x.strip() for x in str(v).replace("\n", ",").split(",")]
    items = [x for x in items if x]
    if not items:
        raise ValueError("must name at least one model")
    return tuple(items)


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[object], Any]
    default: Any
    help: str
    flag: bool = False  # store_true on the command line
    metavar: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option("model", _text, None, "judge model, any litellm name (e.g. "
           "openai/gpt-4o-mini)", metavar="NAME"),
    Option("api_base", _text, None, "base URL of the judge API (OpenAI-compatible "
           "endpoints, proxies)", metavar="URL"),
    Option("jury", _models, None, "comma-separated judge models; the majority decides",
           metavar="A,B,C"),
    Option("threshold", _num(0.0, 1.0), 0.5, "weighted share of optional criteria that "
           "must pass"),
    Option("temperature", _num(0.0, 2.0), 0.0, "judge sampling temperature"),
    Option("min_samples", _num(1, 64, integer=True), 2, "judge calls per judgment "
           "before the stopping rule applies (2 = both presentation orders)"),
    Option("max_samples", _num(1, 64, integer=True), 6, "most judge calls per judgment "
           "when presentations disagree"),
    Option("min_confidence", _num(0.5, 1.0), 0.9, "confidence a verdict needs to be "
           "decisive; below it after max_samples it is inconclusive"),
    Option("inconclusive", _choice(InconclusiveAction), "fail", "what an inconclusive "
           "verdict does to its test: fail, xfail, skip or warn"),
    Option("debias", _bool, True, "judge in both presentation orders (on by default)"),
    Option("timeout", _num(0.1, 3600.0), 60.0, "seconds per judge call"),
    Option("retries", _num(0, 10, integer=True), 3, "retries per judge call on "
           "timeouts, rate limits and server errors"),
    Option("cache", _choice(CacheMode), "on", "reply cache: on, off or refresh"),
    Option("cache_dir", _text, None, "reply cache folder (default: .llmjudge_cache at "
           "the rootdir)", metavar="DIR"),
    Option("screen", _bool, True, "fail degenerate outputs (empty, punctuation, bare "
           "reasoning openers) without asking the judge"),
    Option("max_output_chars", _num(1, None, integer=True), 200_000, "longest judged "
           "text accepted"),
    Option("response_format", _choice(ResponseFormat), "json_schema", "how the reply "
           "is requested: json_schema, json_object or text"),
    Option("max_tokens", _num(16, 1_000_000, integer=True), None, "most tokens a "
           "judge reply may use (default: 512 + 160 per criterion; raise it for "
           "reasoning models)", metavar="N"),
    Option("logprobs", _bool, True, "ask for token log-probabilities (used for "
           "confidence where the provider returns them)"),
    Option("concurrency", _num(1, 1024, integer=True), 16, "judge calls in flight at "
           "once, per process"),
    Option("rpm", _num(0.001, None), None, "requests per minute per model, per "
           "process"),
    Option("record_mode", _choice(RecordMode), None, "replay/record judge replies: "
           "none (replay only), once, new_episodes, all; unset = live judge, "
           "no records"),
    Option("record_dir", _text, None, "records folder (default: llmjudge_records "
           "beside each test module)", metavar="DIR"),
    Option("report", _text, None, "write a JSON report of every verdict",
           metavar="PATH"),
    Option("markdown", _text, None, "write a Markdown summary", metavar="PATH"),
    Option("baseline", _text, None, "compare verdicts with an earlier JSON report",
           metavar="PATH"),
    Option("fail_on_regression", _bool, False, "exit non-zero when the baseline shows "
           "regressions", flag=True),
    Option("max_calls", _num(0, None, integer=True), None, "stop making judge calls "
           "after this many"),
    Option("max_cost", _num(0.0, None), None, "stop making judge calls after this cost "
           "(USD, where litellm knows prices)"),
    Option("canary", _bool, False, "run the built-in canary of degenerate and injected "
           "outputs against the configured judge", flag=True),
    Option("calibrate", _text, None, "judge a labelled file and report agreement with "
           "people", metavar="PATH"),
    Option("min_kappa", _num(-1.0, 1.0), None, "refuse judged tests whose rubric's "
           "calibrated Cohen's kappa is below this"),
    Option("instructions", _instructions, None, "extra guidance for the judge "
           "(e.g. 'vague wording is fine'), fenced like judged data",
           metavar="TEXT"),
    Option("examples", _examples, (), "few-shot examples for the judge, a JSON list "
           "of {output, verdict|score, reasoning}", metavar="JSON"),
)
BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``api_key`` is never written anywhere."""

    model: str | None = None
    api_base: str | None = None
    jury: tuple[str, ...] | None = None
    threshold: float = 0.5
    temperature: float = 0.0
    min_samples: int = 2
    max_samples: int = 6
    min_confidence: float = 0.9
    inconclusive: str = "fail"
    debias: bool = True
    timeout: float = 60.0
    retries: int = 3
    cache: str = "on"
    cache_dir: str | None = None
    screen: bool = True
    max_output_chars: int = 200_000
    response_format: str = "json_schema"
    max_tokens: int | None = None
    logprobs: bool = True
    concurrency: int = 16
    rpm: float | None = None
    record_mode: str | None = None
    record_dir: str | None = None
    report: str | None = None
    markdown: str | None = None
    baseline: str | None = None
    fail_on_regression: bool = False
    max_calls: int | None = None
    max_cost: float | None = None
    canary: bool = False
    calibrate: str | None = None
    min_kappa: float | None = None
    instructions: str | None = None
    examples: tuple[Example, ...] = ()
    api_key: str | None = field(default=None, repr=False, compare=False)

    @property
    def models(self) -> tuple[str, ...]:
        if self.jury:
            return self.jury
        return (self.model,) if self.model else ()

    def override(self, source: str, values: Mapping[str, Any]) -> Settings:
        """Apply per-test overrides (marker or call), validating every key."""
        if not values:
            return self
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in PER_TEST_SETTINGS:
                close = difflib.get_close_matches(key, PER_TEST_SETTINGS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(
                    f"{source}: unknown option {key!r}{hint}; allowed: "
                    f"{', '.join(PER_TEST_SETTINGS)}"
                )
            if raw is None:
                continue
            if key in ("model", "jury"):
                raw = named(raw)  # a Python callable as the judge
            if key == "model" and isinstance(raw, (list, tuple)):
                key, raw = "jury", raw
            changes[key] = parse_value(key, raw, source)
            if key == "model":
                changes["jury"] = None
        new = dataclasses.replace(self, **changes)
        new.check()
        return new

    def check(self) -> None:
        if self.min_samples > self.max_samples:
            raise ConfigError(
                f"min_samples ({self.min_samples}) is larger than max_samples "
                f"({self.max_samples}): raise max_samples or lower min_samples"
            )


def parse_value(name: str, raw: object, source: str) -> Any:
    opt = BY_NAME[name]
    try:
        return opt.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: {name} {raw!r} {exc}") from None


def argparse_type(name: str) -> Callable[[str], Any]:
    """``type=`` for a command-line option; errors say what is valid."""

    def parse(raw: str) -> Any:
        try:
            return BY_NAME[name].parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{raw!r} {exc}") from None

    return parse


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve CLI > ini > environment > default into ``Settings``.

    ``cli`` holds already-parsed values (None when not given); ``ini`` holds raw
    strings (None or "" when not set).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        # None means not given (flags default to None); 0 and False are values.
        if cli.get(opt.name) is not None:
            values[opt.name] = cli[opt.name]
            continue
        raw_ini = ini.get(opt.name)
        if raw_ini not in (None, "", []):
            values[opt.name] = parse_value(opt.name, raw_ini,
                                           f"ini option {INI_PREFIX}{opt.name}")
            continue
        raw_env = env.get(ENV_PREFIX + opt.name.upper())
        if raw_env not in (None, ""):
            values[opt.name] = parse_value(opt.name, raw_env,
                                           f"environment variable "
                                           f"{ENV_PREFIX}{opt.name.upper()}")
            continue
        values[opt.name] = opt.default
    key = env.get(ENV_PREFIX + "API_KEY") or None
    s = Settings(**values, api_key=key)
    s.check()
    return s


#: The run's resolved settings, set in ``pytest_configure``.
settings_key = pytest.StashKey[Settings]()
