"""Guidance for the judge beyond the rubric: ``instructions=`` and few-shot
``examples=``.

Both are the test author's words, yet they are fenced like judged data: an
example's output is text someone's app produced, and a copied instruction can
carry anything. Both are part of the cache key and of a calibration's identity
(a different example set is a different judge).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmjudge.exceptions import RubricError

#: Keys an example may have; ``verdict`` for criteria, ``score`` for scales.
EXAMPLE_KEYS = ("output", "verdict", "score", "reasoning", "input")
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Example:
    """One judged example shown to the judge before the real output.

    Args:
        output: The example output (dicts and lists are shown as JSON).
        verdict: "pass" or "fail" (criteria rubrics).
        score: The level it deserves (scales).
        reasoning: Why, in a sentence.
        input: The prompt it answered, if that matters.
    """

    output: str
    verdict: str | None = None
    score: int | None = None
    reasoning: str = ""
    input: str | None = None

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {"output": self.output}
        for k in ("verdict", "score", "input"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.reasoning:
            out["reasoning"] = self.reasoning
        return out


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, indent=2, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise RubricError(f"{what} cannot be shown as JSON: {exc}") from None
    raise RubricError(f"{what} must be text (str), not {type(value).__name__}")


def as_examples(value: object, to_text: Any = None) -> tuple[Example, ...]:
    """Validate ``examples=``: a list of ``Example`` or dicts with ``output`` and
    ``verdict`` ("pass"/"fail") or ``score``, optional ``reasoning``/``input``.
    ``to_text`` turns an output that is not a str into text (models as JSON)."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise RubricError(
            "examples must be a list of dicts like {'output': ..., 'verdict': "
            "'pass' | 'fail', 'reasoning': ...} (or 'score': N for a Scale), "
            f"not {type(value).__name__}")
    if len(value) > MAX_EXAMPLES:
        raise RubricError(f"{len(value)} examples: give at most {MAX_EXAMPLES} (each "
                          "is sent with every judge call)")
    out: list[Example] = []
    for i, item in enumerate(value):
        what = f"examples[{i}]"
        if isinstance(item, Example):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise RubricError(f"{what} must be a dict with 'output' and 'verdict', "
                              f"not {type(item).__name__}")
        unknown = sorted(set(map(str, item)) - set(EXAMPLE_KEYS))
        if unknown:
            raise RubricError(f"{what} has unknown keys {unknown}; allowed: "
                              f"{', '.join(EXAMPLE_KEYS)}")
        if "output" not in item or item["output"] is None:
            raise RubricError(f"{what} has no 'output': the example text to judge")
        raw = item["output"]
        output = (to_text(raw, f"{what}['output']")
                  if to_text is not None and not isinstance(raw, str)
                  else _text(raw, f"{what}['output']"))
        verdict = item.get("verdict")
        if verdict is not None:
            v = str(verdict).strip().lower() if isinstance(verdict, str) else verdict
            if isinstance(v, bool):
                v = "pass" if v else "fail"
            if v not in ("pass", "fail"):
                raise RubricError(f"{what}: verdict {verdict!r} must be 'pass' or "
                                  "'fail'")
            verdict = v
        score = item.get("score")
        if score is not None and (isinstance(score, bool)
                                  or not isinstance(score, int)):
            raise RubricError(f"{what}: score {score!r} must be a whole number on the "
                              "scale")
        if verdict is None and score is None:
            raise RubricError(f"{what} says neither 'verdict' (pass/fail) nor 'score': "
                              "say what the judge should conclude about it")
        reasoning = item.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise RubricError(f"{what}: reasoning must be text")
        inp = item.get("input")
        out.append(Example(output, verdict, score, reasoning,
                           None if inp is None else _text(inp, f"{what}['input']")))
    return tuple(out)


def check_examples(examples: Sequence[Example], scale: tuple[int, int] | None) -> None:
    """Examples fit the rubric kind: a verdict for criteria, a score within the
    range for a scale."""
    for i, e in enumerate(examples):
        if scale is None and e.verdict is None:
            raise RubricError(f"examples[{i}] gives a score but the rubric is "
                              "criteria: give 'verdict': 'pass' or 'fail'")
        if scale is not None:
            if e.score is None:
                raise RubricError(f"examples[{i}] gives no 'score' but the rubric is "
                                  f"a scale {scale[0]}..{scale[1]}")
            if not scale[0] <= e.score <= scale[1]:
                raise RubricError(f"examples[{i}]: score {e.score} is outside the "
                                  f"scale {scale[0]}..{scale[1]}")


def as_instructions(value: object) -> str | None:
    """Validate ``instructions=``: extra guidance text (None: none)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RubricError("instructions must be text (str), not "
                          f"{type(value).__name__}")
    return value.strip() or None
