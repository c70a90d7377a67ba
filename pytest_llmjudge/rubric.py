"""Rubrics: what the judge checks. Atomic yes/no criteria, or a scored scale.

Everything a user may pass as a rubric (a string, a list of strings, a
``Rubric``, a ``Scale``, or a path to a YAML/JSON file) is normalised here by
``as_rubric`` so that the judge only ever sees one of two shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Union

from pytest_llmjudge.exceptions import RubricError
from pytest_llmjudge.guidance import (
    Example,
    as_examples,
    as_instructions,
    check_examples,
)
from pytest_llmjudge.marks import (
    NO_OPTIONAL,
    check_pass_score,
    check_threshold,
    finite,
    shown,
    whole,
)

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
        if not finite(self.weight):
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
    min_score: float | None = None
    instructions: str | None = None
    examples: Sequence[Example] = ()
    reference: str | None = None
    expected: str | None = None

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
        if self.threshold is not None and self.min_score is not None:
            raise RubricError("give one pass mark, not threshold and min_score: "
                              "threshold is the share of optional criteria, "
                              "min_score the weighted share of all criteria")
        if self.threshold is not None:
            check_threshold(self.threshold)
            if all(c.required for c in crits):
                raise RubricError(NO_OPTIONAL.format(what="threshold"))
        if self.min_score is not None:
            check_threshold(self.min_score, "min_score")
        _guidance(self)

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "criteria",
            "criteria": [c.canonical() for c in self.criteria],
            "threshold": self.threshold,
        }
        if self.min_score is not None:
            out["min_score"] = float(self.min_score)
        return _with_guidance(self, out)

    def summary(self) -> str:
        if self.name:
            return self.name
        if len(self.criteria) == 1:
            return self.criteria[0].description.strip()
        return "; ".join(c.name for c in self.criteria)


@dataclass(frozen=True)
class Scale:
    """A scored scale over any integer range (``0..10``, ``1..5``, ``0..3``).

    Levels are described in words for some or all points; points between
    described ones may be left undescribed. The pass mark is given once, in
    the scale's own units (``pass_score=7``; ``pass_level`` is the same, kept
    for older code) or normalised to 0..1 (``min_score=0.7``); or at the call.

    Args:
        criterion: What is being scored.
        levels: Descriptions keyed by score (at least one; the range defaults
            to the lowest..highest key).
        pass_level: The lowest passing score (same as ``pass_score``).
        name: Short identifier used in reports.
        pass_score: The lowest passing score, in the scale's units.
        min_score: The pass mark on the normalised score ``(s - low) / (high -
            low)``.
        low, high: The range, when the described levels do not span it.
        instructions, examples, reference, expected: Defaults for calls that
            use this rubric (see ``assert_judged``).
    """

    criterion: str
    levels: Mapping[int, str]
    pass_level: int | None = None
    name: str = "score"
    pass_score: float | None = None
    min_score: float | None = None
    low: int | None = None
    high: int | None = None
    instructions: str | None = None
    examples: Sequence[Example] = ()
    reference: str | None = None
    expected: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.criterion, str) or not self.criterion.strip():
            raise RubricError("a Scale needs a criterion: say what is being scored")
        try:
            levels = {whole(k): str(v) for k, v in dict(self.levels).items()}
        except (TypeError, ValueError, OverflowError) as exc:
            raise RubricError(
                "Scale levels must map whole numbers (e.g. 0..10 or 1..5) to "
                "descriptions"
            ) from exc
        object.__setattr__(self, "levels", dict(sorted(levels.items())))
        if any(not v.strip() for v in self.levels.values()):
            raise RubricError("every Scale level needs a description (or leave "
                              "that score out of levels)")
        keys = list(self.levels)
        if not keys:
            raise RubricError("a Scale needs levels: describe at least its lowest "
                              "and highest score, e.g. {0: 'wrong', 10: 'perfect'}")
        for attr in ("low", "high"):
            v = getattr(self, attr)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise RubricError(f"Scale {attr}={v!r} must be a whole number")
        low = keys[0] if self.low is None else self.low
        high = keys[-1] if self.high is None else self.high
        if not low < high:
            raise RubricError(
                f"Scale levels are {keys}: a scale needs at least two scores, e.g. "
                "levels {1: ..., 5: ...} or low=0, high=10")
        if high - low > 100:
            raise RubricError(f"Scale range {low}..{high} is too wide: use at most "
                              "101 points (e.g. 0..10 or 0..100)")
        outside = [k for k in keys if not low <= k <= high]
        if outside:
            raise RubricError(f"Scale levels {outside} are outside the range "
                              f"{low}..{high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        marks = [n for n in ("pass_level", "pass_score", "min_score")
                 if getattr(self, n) is not None]
        if len(marks) > 1:
            raise RubricError(f"give one pass mark, not {' and '.join(marks)}: "
                              "pass_score= in the scale's units or min_score= on 0..1")
        if self.pass_level is not None:
            pl = self.pass_level
            if isinstance(pl, bool) or not isinstance(pl, int) \
                    or not low <= pl <= high:
                raise RubricError(
                    f"pass_level {self.pass_level!r} is not one of the levels "
                    f"{low}..{high}")
        if self.pass_score is not None:
            check_pass_score(self.pass_score, low, high)
        if self.min_score is not None:
            check_threshold(self.min_score, "min_score")
        _guidance(self)

    @property
    def top(self) -> int:
        """The highest score."""
        assert self.high is not None
        return self.high

    @property
    def bottom(self) -> int:
        """The lowest score."""
        assert self.low is not None
        return self.low

    def mark(self) -> float | None:
        """The pass mark in the scale's units (None: left to the call)."""
        if self.pass_score is not None:
            return float(self.pass_score)
        if self.pass_level is not None:
            return float(self.pass_level)
        if self.min_score is not None:
            return self.bottom + float(self.min_score) * (self.top - self.bottom)
        return None

    def normalised(self, score: float) -> float:
        """``score`` on 0..1."""
        return (score - self.bottom) / (self.top - self.bottom)

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "scale",
            "criterion": self.criterion.strip(),
            "levels": {str(k): v.strip() for k, v in self.levels.items()},
            "pass_level": self.pass_level,
            "name": self.name,
        }
        keys = list(self.levels)
        if (self.low, self.high) != (keys[0], keys[-1]):
            out["range"] = [self.low, self.high]
        for k in ("pass_score", "min_score"):
            if getattr(self, k) is not None:
                out[k] = float(getattr(self, k))
        return _with_guidance(self, out)

    def summary(self) -> str:
        mark = self.mark()
        at = "" if mark is None else f", pass >= {shown(mark)}"
        return f"{self.criterion.strip()} (scale {self.bottom}-{self.top}{at})"


AnyRubric = Rubric | Scale
RubricLike = Union[str, Sequence[str], Rubric, Scale, Criterion, "PathLike[str]"]


def _with_guidance(r: Rubric | Scale, out: dict[str, Any]) -> dict[str, Any]:
    """``out`` with what the rubric tells the judge beyond its criteria (only
    what is set: a rubric without any keeps its identity and cache keys)."""
    if r.instructions:
        out["instructions"] = r.instructions
    if r.examples:
        out["examples"] = [e.canonical() for e in r.examples]
    for k in ("reference", "expected"):
        if getattr(r, k) is not None:
            out[k] = getattr(r, k)
    return out


def _guidance(r: Rubric | Scale) -> None:
    """Validate a rubric's instructions, examples, reference and expected."""
    object.__setattr__(r, "instructions", as_instructions(r.instructions))
    exs = as_examples(r.examples) if not all(
        isinstance(e, Example) for e in r.examples) else tuple(r.examples)
    check_examples(exs, (r.bottom, r.top) if isinstance(r, Scale) else None)
    object.__setattr__(r, "examples", exs)
    for k in ("reference", "expected"):
        v = getattr(r, k)
        if v is not None and not isinstance(v, str):
            raise RubricError(f"a rubric's {k} must be text (str)")



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
    unknown = set(data) - {"name", "threshold", "criteria", "scale", "min_score",
                           *GUIDANCE_KEYS}
    if unknown:
        raise RubricError(f"unknown keys {sorted(unknown)}")
    guide = {k: data[k] for k in GUIDANCE_KEYS if data.get(k) is not None}
    if "examples" in guide:
        guide["examples"] = as_examples(guide["examples"])
    if "scale" in data:
        s = data["scale"]
        if not isinstance(s, Mapping):
            raise RubricError("'scale' must be a mapping")
        extra = set(s) - {"criterion", "levels", "pass_level", "pass_score",
                          "min_score", "low", "high", "name"}
        if extra:
            raise RubricError(f"unknown scale keys {sorted(extra)}")
        if "threshold" in data:
            raise RubricError("a scale's pass mark is pass_score (its units) or "
                              "min_score (0..1) under 'scale', not threshold")
        marks = {k: s[k] for k in ("pass_level", "pass_score", "min_score")
                 if s.get(k) is not None}
        if data.get("min_score") is not None:
            marks["min_score"] = data["min_score"]
        return Scale(
            criterion=s.get("criterion", ""),
            levels=s.get("levels", {}),
            name=str(data.get("name") or s.get("name") or "score"),
            low=s.get("low"), high=s.get("high"), **marks, **guide,
        )
    raw = data.get("criteria")
    if not isinstance(raw, list):
        raise RubricError("'criteria' must be a list")
    crits: list[Criterion] = []
    taken: set[str] = set()
    # Under min_score (a pass mark over all criteria, G-Eval style) a criterion
    # counts toward the share unless it says required: true.
    averaged = data.get("min_score") is not None
    for item in raw:
        if isinstance(item, str):
            crits.append(Criterion(_slug(item, taken), item, required=not averaged))
        elif isinstance(item, Mapping):
            extra = set(item) - {"name", "description", "required", "weight"}
            if extra:
                raise RubricError(f"unknown criterion keys {sorted(extra)}")
            crits.append(
                Criterion(
                    str(item.get("name", "")),
                    str(item.get("description", "")),
                    required=bool(item.get("required", not averaged)),
                    weight=item.get("weight", 1.0),
                )
            )
            taken.add(crits[-1].name)
        else:
            raise RubricError(
                f"criterion entries must be strings or mappings: {item!r}")
    name = data.get("name")
    return Rubric(crits, threshold=data.get("threshold"),
                  name=str(name) if name else None, min_score=data.get("min_score"),
                  **guide)


#: Rubric-file keys that give the judge more than the criteria.
GUIDANCE_KEYS = ("instructions", "examples", "reference", "expected")
