"""Rubrics: what the judge checks. Atomic yes/no criteria, or a scored scale.

Everything a user may pass as a rubric (a string, a list of strings, a
``Rubric``, a ``Scale``, or a path to a YAML/JSON file) is normalised here by
``as_rubric`` so that the judge only ever sees one of two shapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Union

from pytest_llmjudge.exceptions import RubricError

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,63}$")


@dataclass(frozen=True)
class Criterion:
    """One atomic yes/no expectation.

    Args:
        name: Short identifier the judge echoes back (unique within a rubric).
        description: What must be true of the output, in words.
        required: A failing required criterion fails the verdict on its own.
        weight: Share of an optional criterion in the threshold rule.
    """

    name: str
    description: str
    required: bool = True
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise RubricError(
                f"criterion name {self.name!r} is not usable: use 1-64 letters, "
                "digits, '_', '-', '.' or spaces, not starting with punctuation"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise RubricError(
                f"criterion {self.name!r} has an empty description: say in words "
                "what must be true of the output"
            )
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
            raise RubricError(f"criterion {self.name!r}: weight must be a number")
        if not _finite(self.weight):
            raise RubricError(f"criterion {self.name!r} has weight {self.weight!r}: "
                              "weights must be finite numbers > 0")
        if not self.weight > 0:
            raise RubricError(
                f"criterion {self.name!r} has weight {self.weight}: weights must be > 0"
            )

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description.strip(),
            "required": bool(self.required),
            "weight": float(self.weight),
        }


@dataclass(frozen=True)
class Rubric:
    """A set of criteria with a pass rule.

    The verdict passes when every required criterion passes and the weighted
    share of passing optional criteria reaches ``threshold`` (when there are
    optional criteria at all).
    """

    criteria: Sequence[Criterion]
    threshold: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        crits = tuple(self.criteria)
        object.__setattr__(self, "criteria", crits)
        if not crits:
            raise RubricError(
                "the rubric has no criteria: give at least one Criterion or string"
            )
        for c in crits:
            if not isinstance(c, Criterion):
                raise RubricError(
                    f"rubric criteria must be Criterion objects, got {type(c).__name__}"
                )
        seen: dict[str, str] = {}
        for c in crits:
            # The judge's reply is matched to criteria by name, ignoring case and
            # spacing: names that differ only so would be read as one.
            folded = " ".join(c.name.split()).lower()
            if folded in seen:
                same = "named" if seen[folded] == c.name else \
                    f"named {seen[folded]!r} and"
                raise RubricError(
                    f"two criteria are {same} {c.name!r}: criterion names must be "
                    "unique (ignoring case and spaces) because the judge answers by "
                    "name"
                )
            seen[folded] = c.name
        texts: set[str] = set()
        for c in crits:
            text = " ".join(c.description.split()).lower()
            if text in texts:
                raise RubricError(
                    f"the criterion {c.description!r} is given twice: drop the "
                    "repeat (a repeated criterion would count twice)")
            texts.add(text)
        if self.threshold is not None:
            check_threshold(self.threshold)

    def canonical(self) -> dict[str, Any]:
        return {
            "kind": "criteria",
            "criteria": [c.canonical() for c in self.criteria],
            "threshold": self.threshold,
        }

    def summary(self) -> str:
        if self.name:
            return self.name
        if len(self.criteria) == 1:
            return self.criteria[0].description.strip()
        return "; ".join(c.name for c in self.criteria)


@dataclass(frozen=True)
class Scale:
    """A scored scale (Prometheus style): levels 1..N described in words.

    Args:
        criterion: What is being scored.
        levels: Description of every level, keyed 1..N (N >= 2).
        pass_level: The lowest level that passes.
        name: Short identifier used in reports.
    """

    criterion: str
    levels: Mapping[int, str]
    pass_level: int
    name: str = "score"

    def __post_init__(self) -> None:
        if not isinstance(self.criterion, str) or not self.criterion.strip():
            raise RubricError("a Scale needs a criterion: say what is being scored")
        try:
            levels = {int(k): str(v) for k, v in dict(self.levels).items()}
        except (TypeError, ValueError, OverflowError) as exc:
            raise RubricError(
                "Scale levels must map whole numbers 1..N to descriptions"
            ) from exc
        object.__setattr__(self, "levels", dict(sorted(levels.items())))
        keys = list(self.levels)
        if len(keys) < 2 or keys != list(range(1, len(keys) + 1)):
            raise RubricError(
                f"Scale levels are {keys}: number them 1..N with N >= 2 and no gaps"
            )
        if any(not v.strip() for v in self.levels.values()):
            raise RubricError("every Scale level needs a description")
        if isinstance(self.pass_level, bool) or not isinstance(self.pass_level, int) \
                or not 1 <= self.pass_level <= len(
            keys
        ):
            raise RubricError(
                f"pass_level {self.pass_level!r} is not one of the levels "
                f"1..{len(keys)}"
            )

    @property
    def top(self) -> int:
        return len(self.levels)

    def canonical(self) -> dict[str, Any]:
        return {
            "kind": "scale",
            "criterion": self.criterion.strip(),
            "levels": {str(k): v.strip() for k, v in self.levels.items()},
            "pass_level": self.pass_level,
            "name": self.name,
        }

    def summary(self) -> str:
        return (f"{self.criterion.strip()} (scale 1-{self.top}, "
                f"pass >= {self.pass_level})")


AnyRubric = Rubric | Scale
RubricLike = Union[str, Sequence[str], Rubric, Scale, Criterion, "PathLike[str]"]


def _finite(value: int | float) -> bool:
    """A finite number (NaN and infinities compare oddly with every bound)."""
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_threshold(value: object) -> float:
    """Return ``value`` as a threshold in [0, 1] or raise a ``RubricError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RubricError(f"threshold must be a number in [0, 1], got {value!r}")
    if not _finite(value):
        raise RubricError(f"threshold must be a finite number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise RubricError(f"threshold must be in [0, 1], got {value!r}")
    return float(value)


def _slug(text: str, taken: set[str]) -> str:
    words = re.findall(r"[A-Za-z0-9]+", text.lower())[:4]
    base = "_".join(words)[:40] or "criterion"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def names_rubric_file(text: str) -> bool:
    """A one-word string ending in .yaml/.yml/.json (or naming such a file)."""
    s = text.strip()
    if not s.lower().endswith((".yaml", ".yml", ".json")) or "\n" in s:
        return False
    return not any(ch.isspace() for ch in s) or Path(s).is_file()


def as_rubric(value: object) -> AnyRubric:
    """Normalise anything accepted as a rubric; raise ``RubricError`` otherwise."""
    if isinstance(value, (Rubric, Scale)):
        return value
    if isinstance(value, Criterion):
        return Rubric([value])
    if isinstance(value, (Path, PathLike)):
        return load_rubric(value)
    if isinstance(value, str):
        if not value.strip():
            raise RubricError(
                "the rubric is an empty string: describe what the output must do"
            )
        if names_rubric_file(value):  # "rubrics/x.yaml" is a file, not a criterion
            return load_rubric(value.strip())
        return Rubric([Criterion(_slug(value, set()), value)])
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = list(value)
        if not items:
            raise RubricError(
                "the rubric is an empty list: give at least one criterion")
        taken: set[str] = set()
        crits: list[Criterion] = []
        for item in items:
            if isinstance(item, Criterion):
                crits.append(item)
                taken.add(item.name)
            elif isinstance(item, str) and item.strip():
                crits.append(Criterion(_slug(item, taken), item))
            else:
                raise RubricError(
                    f"rubric list items must be non-empty strings or Criterion, "
                    f"got {item!r}"
                )
        return Rubric(crits)
    raise RubricError(
        f"a rubric must be a string, a list of strings, a Rubric, a Scale or a "
        f"path to a YAML/JSON file; got {type(value).__name__}"
    )


def load_rubric(path: str | PathLike[str]) -> AnyRubric:
    """Load a rubric shared as a YAML or JSON file (see README for the format)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"cannot read rubric file {p}: {exc.strerror}") from exc
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # lazy: only rubric files need it

            data = yaml.safe_load(text)
    except Exception as exc:
        raise RubricError(f"rubric file {p} is not valid YAML/JSON: {exc}") from exc
    try:
        return rubric_from_dict(data)
    except RubricError as exc:
        raise RubricError(f"rubric file {p}: {exc}") from exc


def rubric_from_dict(data: object) -> AnyRubric:
    """Build a rubric from the plain-data form used in rubric files."""
    if not isinstance(data, Mapping):
        raise RubricError("top level must be a mapping with 'criteria' or 'scale'")
    unknown = set(data) - {"name", "threshold", "criteria", "scale"}
    if unknown:
        raise RubricError(f"unknown keys {sorted(unknown)}")
    if "scale" in data:
        s = data["scale"]
        if not isinstance(s, Mapping):
            raise RubricError("'scale' must be a mapping")
        return Scale(
            criterion=s.get("criterion", ""),
            levels=s.get("levels", {}),
            pass_level=s.get("pass_level", 0),
            name=str(data.get("name") or s.get("name") or "score"),
        )
    raw = data.get("criteria")
    if not isinstance(raw, list):
        raise RubricError("'criteria' must be a list")
    crits: list[Criterion] = []
    taken: set[str] = set()
    for item in raw:
        if isinstance(item, str):
            crits.append(Criterion(_slug(item, taken), item))
        elif isinstance(item, Mapping):
            extra = set(item) - {"name", "description", "required", "weight"}
            if extra:
                raise RubricError(f"unknown criterion keys {sorted(extra)}")
            crits.append(
                Criterion(
                    str(item.get("name", "")),
                    str(item.get("description", "")),
                    required=bool(item.get("required", True)),
                    weight=item.get("weight", 1.0),
                )
            )
            taken.add(crits[-1].name)
        else:
            raise RubricError(
                f"criterion entries must be strings or mappings: {item!r}")
    name = data.get("name")
    return Rubric(crits, threshold=data.get("threshold"),
                  name=str(name) if name else None)
