"""The labels file: outputs people judged pass or fail against a rubric, and
pairs of outputs people compared (``a``, ``b``, ``label: A|B|tie``).

Kept apart from the statistics so that a mistake in the file is reported with
its line (or example number) before anything is judged.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.exceptions import ConfigError, RubricError
from pytest_llmjudge.judging.task import DEFAULT_COMPARISON
from pytest_llmjudge.rubric import (
    Rubric,
    Scale,
    as_rubric,
    load_rubric,
    names_rubric_file,
    rubric_from_dict,
)
from pytest_llmjudge.text import clip

if TYPE_CHECKING:
    import pytest

    from pytest_llmjudge.rubric import AnyRubric

FIELDS = ("id", "output", "a", "b", "rubric", "input", "reference", "expected",
          "context", "label", "criteria", "note")
#: A pair example's label, as written (any case) -> the caller's winner label.
WINNERS = {"a": "A", "b": "B", "tie": "tie"}


@dataclass(frozen=True)
class Example:
    """One labelled example: an output and what people decided about it."""

    id: str
    where: str  # file and line (JSON lines) or example number
    rubric: AnyRubric
    rubric_name: str
    output: Any
    input: Any = None
    reference: Any = None
    expected: Any = None  # the correct answer (ground truth), unlike reference
    context: Any = None
    label: bool | None = None  # the people's overall verdict
    criteria: Mapping[str, bool] = field(default_factory=dict)
    note: str = ""
    # A pair example (``output`` is None): the two outputs compared and the
    # people's winner ("A", "B" or "tie").
    a: Any = None
    b: Any = None
    winner: str | None = None

    @property
    def pair(self) -> bool:
        return self.winner is not None


def _word(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("pass", "passed", "true", "yes"):
        return True
    if s in ("fail", "failed", "false", "no"):
        return False
    raise ConfigError(f"{where}: {value!r} is not a verdict: use pass or fail")


def _rubric(raw: object, base: Path, where: str,
            seen: dict[str, tuple[AnyRubric, str]]) -> tuple[AnyRubric, str]:
    """The example's rubric and how to name it; file paths are relative to the
    labels file."""

    memo = json.dumps(raw, sort_keys=True, default=str)
    if memo in seen:
        return seen[memo]
    try:
        if isinstance(raw, str) and names_rubric_file(raw):
            p = Path(raw.strip())
            r = load_rubric(p if p.is_absolute() else base / p)
            name = f"{r.name} ({raw.strip()})" if getattr(r, "name", None) and \
                r.name != "score" else raw.strip()
        elif isinstance(raw, Mapping):
            r = rubric_from_dict(raw)
            name = r.name if r.name and r.name != "score" else r.summary()
        else:
            r = as_rubric(raw)
            name = r.summary()
    except RubricError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    name = clip(name, 60)
    seen[memo] = (r, name)
    return r, name


def _example(obj: object, where: str, index: int, base: Path, default: object,
             seen: dict[str, tuple[AnyRubric, str]]) -> Example:

    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: each example must be a mapping with output, "
                          "rubric and label (or criteria), or a pair: a, b and "
                          "label (A|B|tie)")
    for key in obj:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: "
                              f"{', '.join(FIELDS)}")
    if "a" in obj or "b" in obj:
        return _pair(obj, where, index, base, seen)
    if obj.get("output") is None:
        raise ConfigError(f"{where}: the example has no 'output' (the judged text)")
    raw = obj.get("rubric", default)
    if raw is None:
        raise ConfigError(f"{where}: the example has no 'rubric' and the file gives "
                          "no default rubric")
    rubric, name = _rubric(raw, base, where, seen)
    label = _word(obj["label"], f"{where}: label") if obj.get("label") is not None \
        else None
    crit_raw = obj.get("criteria") or {}
    if not isinstance(crit_raw, Mapping):
        raise ConfigError(f"{where}: 'criteria' must map criterion names to pass/fail")
    criteria: dict[str, bool] = {}
    if crit_raw:
        if isinstance(rubric, Scale):
            raise ConfigError(f"{where}: per-criterion labels need a rubric with "
                              "criteria, not a Scale: give label: pass|fail")
        names = [c.name for c in rubric.criteria]
        for k, v in crit_raw.items():
            if k not in names:
                raise ConfigError(f"{where}: the rubric has no criterion {k!r}; its "
                                  f"criteria are {', '.join(names)}")
            criteria[str(k)] = _word(v, f"{where}: criteria.{k}")
    if label is None and not criteria:
        raise ConfigError(f"{where}: no human verdict: give label: pass|fail, or "
                          "criteria: {name: pass|fail}")
    return Example(id=str(obj.get("id") or f"#{index}"), where=where, rubric=rubric,
                   rubric_name=name, output=obj["output"], input=obj.get("input"),
                   reference=obj.get("reference"), context=obj.get("context"),
                   expected=obj.get("expected"),
                   label=label, criteria=criteria, note=str(obj.get("note") or ""))


def _winner(value: object, where: str) -> str:
    s = str(value).strip().lower()
    if s in WINNERS:
        return WINNERS[s]
    if isinstance(value, bool) or s in ("pass", "passed", "true", "yes", "fail",
                                        "failed", "false", "no"):
        raise ConfigError(f"{where}: label {value!r} is for an output judged against "
                          "a rubric; a pair (a, b) is labelled A, B or tie: use "
                          "label: A|B|tie")
    raise ConfigError(f"{where}: label {value!r} is not a comparison label: use "
                      "label: A|B|tie")


def _pair(obj: Mapping[str, Any], where: str, index: int, base: Path,
          seen: dict[str, tuple[AnyRubric, str]]) -> Example:
    """A pair example: people said which of ``a`` and ``b`` is better (or a tie)."""
    name = f" {obj['id']!r}" if obj.get("id") is not None else ""
    if "output" in obj:
        raise ConfigError(f"{where}: example{name} mixes 'output' with 'a'/'b': give "
                          "'output' (judged against a rubric, label: pass|fail) or "
                          "'a' and 'b' (a comparison, label: A|B|tie), not both")
    missing = [k for k in ("a", "b") if obj.get(k) is None]
    if missing:
        raise ConfigError(f"{where}: pair example{name} has no {missing[0]!r}: a "
                          "comparison needs both 'a' and 'b'")
    if obj.get("criteria"):
        raise ConfigError(f"{where}: pair example{name} has 'criteria': a pair is "
                          "labelled as a whole, with label: A|B|tie")
    if obj.get("label") is None:
        raise ConfigError(f"{where}: pair example{name} has no human verdict: give "
                          "label: A|B|tie")
    winner = _winner(obj["label"], where)
    # The file's default rubric is for pass/fail examples; a pair without its
    # own rubric asks what compare() asks by default.
    raw = obj.get("rubric")
    rubric, rname = _rubric(DEFAULT_COMPARISON if raw is None else raw, base, where,
                            seen)
    if not isinstance(rubric, Rubric):
        raise ConfigError(f"{where}: pair example{name}: comparisons take criteria, "
                          "not a Scale")
    return Example(id=str(obj.get("id") or f"#{index}"), where=where, rubric=rubric,
                   rubric_name=rname, output=None, input=obj.get("input"),
                   reference=obj.get("reference"), context=obj.get("context"),
                   expected=obj.get("expected"), note=str(obj.get("note") or ""),
                   a=obj["a"], b=obj["b"], winner=winner)


def load_labels(path: Path) -> list[Example]:
    """Read a labelled file (JSON lines, YAML or JSON); raise ``ConfigError``
    naming the line or example at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {path}: {exc.strerror}"
                          ) from None
    suffix = path.suffix.lower()
    rows: list[tuple[str, object]] = []
    default: object = None
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path.name}:{n}", json.loads(line)))
            except ValueError as exc:
                raise ConfigError(f"{path.name}:{n}: not valid JSON ({exc})") from None
    elif suffix in (".yaml", ".yml", ".json"):
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:
            raise ConfigError(f"{path}: not valid {suffix[1:].upper()}: {exc}"
                              ) from None
        if isinstance(data, Mapping):
            extra = set(data) - {"rubric", "examples"}
            if extra:
                raise ConfigError(f"{path}: unknown top-level keys {sorted(extra)}; "
                                  "use rubric (the default) and examples")
            default, data = data.get("rubric"), data.get("examples")
        if not isinstance(data, list):
            raise ConfigError(f"{path}: expected a list of examples (or a mapping "
                              "with 'examples')")
        rows = [(f"{path.name} example {i}", obj) for i, obj in enumerate(data, 1)]
    else:
        raise ConfigError(f"{path}: a labels file is JSON lines (.jsonl), YAML or "
                          "JSON")
    seen: dict[str, tuple[AnyRubric, str]] = {}
    out = [_example(obj, where, i, path.parent, default, seen)
           for i, (where, obj) in enumerate(rows, 1)]
    if not out:
        raise ConfigError(f"{path} holds no labelled examples")
    ids = [e.id for e in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{path}: example ids must be unique; repeated: "
                          f"{', '.join(dup)}")
    return out


def labels_path(config: pytest.Config, raw: str) -> Path:
    """PATH as given (absolute, or from the invocation folder), else from the
    rootdir (for the ini option)."""
    p = Path(raw).expanduser()
    if p.is_absolute():
        return p
    for base in (config.invocation_params.dir, config.rootpath):
        if (base / p).exists():
            return base / p
    return config.invocation_params.dir / p

