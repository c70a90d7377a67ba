"""Planning, with no judge and no session: which presentation sample ``i`` of a
task shows, and the keys its reply is cached and recorded under."""

from __future__ import annotations

from typing import Any

from pytest_llmjudge.judging.prompt import (
    Presentation,
    neutralise,
    pairwise,
    present,
)
from pytest_llmjudge.judging.task import Task
from pytest_llmjudge.rubric import Rubric
from pytest_llmjudge.storage.cache import cache_key
from pytest_llmjudge.types import Kind


def low_and_most(task: Task) -> tuple[int, int]:
    """(samples asked at once, samples at most). A comparison is always judged in
    both orders, whatever debias and min_samples say: one order cannot tell a
    winner from a position bias."""
    s = task.settings
    low = max(2, s.min_samples) if task.kind is Kind.PAIRWISE else s.min_samples
    return low, max(low, s.max_samples)


def presentation(task: Task, index: int) -> Presentation:
    """Sample ``index``'s presentation: alternating orders when debiasing."""
    p = index if task.settings.debias or task.kind is Kind.PAIRWISE else 0
    if task.kind is Kind.PAIRWISE:
        assert isinstance(task.rubric, Rubric)
        return pairwise(task.rubric, p, a=task.output, b=task.other or "",
                        input=task.input, context=task.context,
                        reference=task.reference, expected=task.expected,
                        instructions=task.instructions, examples=task.examples)
    return present(task.rubric, p, output=task.output, input=task.input,
                   reference=task.reference, context=task.context,
                   expected=task.expected, instructions=task.instructions,
                   examples=task.examples)


def keys(task: Task, model: str, pres: Presentation, index: int) -> tuple[str, str]:
    """(cache key, record key). Records leave out the endpoint and, unless a
    jury is used, the model, so that a fresh clone replays them as is."""
    s = task.settings
    # Keyed by what the judge is shown: texts as neutralised for the prompt,
    # so a reply given to an earlier, weaker neutralisation of a hostile text
    # is never served for the prompt sent now (ordinary text is unchanged).
    shown = {name: None if text is None else neutralise(text) for name, text in (
        ("output", task.output), ("other", task.other), ("input", task.input),
        ("reference", task.reference), ("context", task.context))}
    parts: dict[str, Any] = {
        "kind": task.kind.value, "rubric": task.rubric.canonical(), **shown,
        "temperature": s.temperature, "presentation": pres.index, "sample": index,
    }
    guide = task.guidance()  # only what is set: older keys stay as they were
    if guide:
        parts["guidance"] = {k: neutralise(v) if isinstance(v, str) else v
                             for k, v in guide.items()}
    rparts = {**parts, "model": model} if s.jury else parts
    return (cache_key({**parts, "model": model, "api_base": s.api_base,
                       "response_format": s.response_format}), cache_key(rparts))
