"""What is to be judged: one validation of a call's arguments into a ``Task``.

``assert_judged``, ``check``, ``compare``, ``expect`` and ``check_many`` all
build their tasks here, so a mistake gets the same error whichever was called.
Nothing here talks to a judge.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmjudge.exceptions import ConfigError
from pytest_llmjudge.guidance import Example, check_examples
from pytest_llmjudge.marks import NO_OPTIONAL, check_pass_score, check_threshold
from pytest_llmjudge.rubric import AnyRubric, Rubric, Scale, as_rubric
from pytest_llmjudge.settings import Settings
from pytest_llmjudge.text import clip
from pytest_llmjudge.types import Kind, PairMode

DEFAULT_COMPARISON = (
    "Overall, which response answers the input better: more correct, "
    "more complete and more helpful, with nothing false or harmful")


class JudgeInputError(ConfigError, TypeError):
    """A judged value has a type that cannot be judged."""


#: How deep a dict/list output may nest (JSON encoders recurse per level).
MAX_DEPTH = 100


def _check_tree(value: object, what: str) -> None:
    """Refuse what JSON would hide or choke on: bytes anywhere inside, a value
    that contains itself, nesting deeper than ``MAX_DEPTH``. Iterative: a
    10,000-deep list is an error message, not a ``RecursionError``."""
    stack: list[tuple[object, int, str, tuple[int, ...]]] = [(value, 0, "", ())]
    while stack:
        v, depth, where, parents = stack.pop()
        at = f" at {what}{clip(where, 80)}" if where else ""
        if isinstance(v, (bytes, bytearray, memoryview)):
            raise JudgeInputError(
                f"{what} contains bytes{at}: decode them to text first (e.g. "
                "data.decode('utf-8')); they would be judged as their repr")
        if not isinstance(v, (dict, list, tuple)):
            continue
        if id(v) in parents:
            raise JudgeInputError(
                f"{what} contains itself{at} (a circular reference): it cannot "
                "be shown to the judge as JSON")
        if depth >= MAX_DEPTH:
            raise JudgeInputError(
                f"{what} is nested more than {MAX_DEPTH} levels deep{at}: judge "
                "a flatter or shorter structure")
        inner = (*parents, id(v))
        items = v.items() if isinstance(v, dict) else enumerate(v)
        for k, x in items:
            if isinstance(k, (bytes, bytearray)):
                raise JudgeInputError(f"{what} has a bytes key {k!r}{at}: use str "
                                      "keys")
            stack.append((x, depth + 1, f"{where}[{k!r}]", inner))


def _json_default(value: object) -> object:
    """What JSON cannot show natively: models and dataclasses as their fields
    (never their ``repr()``), bytes refused, other scalars as text."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model (LangChain messages, ...) anywhere
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("it contains bytes: decode them to text first")
    return str(value)  # datetime, Decimal, UUID, Path, Enum ...


def as_text(value: object, what: str, *, optional: bool = True) -> str | None:
    """Text to judge: str as is; dicts, lists, pydantic models and dataclasses
    (also nested) as JSON."""
    if value is None:
        if optional:
            return None
        raise JudgeInputError(f"{what} is None: pass the text (str) to judge")
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise JudgeInputError(
            f"{what} is bytes: decode it to text first, e.g. data.decode('utf-8')")
    shown = getattr(value, "llmjudge_text", None)
    if callable(shown) and not isinstance(value, type):
        # A value that knows how the judge should read it (Trajectory,
        # Conversation: numbered steps and turns instead of JSON).
        text = shown()
        if not isinstance(text, str):
            raise JudgeInputError(f"{what}.llmjudge_text() returned a "
                                  f"{type(text).__name__}: it must return str")
        return text
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump(indent=2))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = _json_default(value)  # judged as its fields, like a dict
    if isinstance(value, (dict, list, tuple, int, float, bool)):
        _check_tree(value, what)
        try:
            return json.dumps(value, indent=2, ensure_ascii=False,
                              default=_json_default)
        except (TypeError, ValueError, RecursionError) as exc:
            raise JudgeInputError(f"{what} cannot be shown as JSON: {exc}") from None
    raise JudgeInputError(
        f"{what} is a {type(value).__name__}: pass a str, a dict/list (judged as "
        "JSON), a pydantic model or a dataclass")


@dataclass(frozen=True)
class Task:
    """A validated judgment request."""

    kind: Kind
    rubric: AnyRubric
    output: str
    input: str | None
    reference: str | None
    context: str | None
    settings: Settings
    threshold: float
    mode: PairMode | None = None  # pairwise only
    other: str | None = None  # pairwise: B
    generated_by: str | None = None
    warnings: tuple[str, ...] = ()
    #: The correct answer the output must agree with (ground truth).
    expected: str | None = None
    instructions: str | None = None
    examples: tuple[Example, ...] = ()
    #: Scales: the pass mark in the scale's units.
    pass_score: float | None = None
    #: Criteria: the pass mark on the weighted share of all criteria.
    min_score: float | None = None
    #: "fail" for a negative control: the judge must reject the output.
    expect: str = "pass"

    def identity(self, node: str | None) -> str:
        """The judgment's identity in a run's history (flip detection)."""
        mode = self.mode.value if self.mode is not None else ""
        parts: list[object] = [node, self.kind.value, mode, self.rubric.canonical(),
                               self.output, self.other, self.input, self.reference,
                               self.context]
        extra = self.guidance()
        if extra:
            parts.append(extra)
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]

    def guidance(self) -> dict[str, Any]:
        """What the judge is shown beyond the rubric and texts (only what is
        set: a call without any keeps its earlier cache keys)."""
        out: dict[str, Any] = {}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.instructions is not None:
            out["instructions"] = self.instructions
        if self.examples:
            out["examples"] = [e.canonical() for e in self.examples]
        return out

    def summary(self) -> str:
        """The rubric in a few words, with the pass mark this call holds it to."""
        r = self.rubric
        if isinstance(r, Scale) and r.mark() is None and self.pass_score is not None:
            return dataclasses.replace(r, pass_score=self.pass_score).summary()
        return r.summary()

    def guided_rubric(self) -> AnyRubric:
        """The rubric with the instructions and examples this call gives the
        judge: its identity for calibration (a different example set is a
        different judge configuration)."""
        if self.instructions == self.rubric.instructions and \
                tuple(self.examples) == tuple(self.rubric.examples):
            return self.rubric
        return dataclasses.replace(self.rubric, instructions=self.instructions,
                                   examples=self.examples)

    def noted(self, notes: Sequence[str]) -> Task:
        """The same task carrying ``notes`` (shown on its verdict)."""
        return dataclasses.replace(self, warnings=(*self.warnings, *notes))


#: Pass marks a comparison cannot have: it is decided by which output wins.
_MARKS = ("threshold", "min_score", "pass_score")


def from_call(base: Settings, output: object, rubric: object = None, *,
              better_than: object = None, at_least_as_good_as: object = None,
              what: str = "assert_judged", **kwargs: Any) -> Task:
    """The one reading of a judged call: a comparison when a baseline is given
    (``better_than=`` / ``at_least_as_good_as=``), otherwise a pointwise check."""
    __tracebackhide__ = True  # a mistake in the call is shown at the user's line
    if better_than is not None and at_least_as_good_as is not None:
        raise TypeError("give better_than or at_least_as_good_as, not both")
    if better_than is not None or at_least_as_good_as is not None:
        mode = PairMode.BETTER if better_than is not None else PairMode.NOT_WORSE
        baseline = better_than if better_than is not None else at_least_as_good_as
        return pair(base, output, baseline, rubric, mode=mode, **kwargs)
    if rubric is None:
        raise TypeError(f"{what} needs a rubric: what must be true of the output "
                        "(or better_than=/at_least_as_good_as= a baseline)")
    return point(base, output, rubric, **kwargs)


def point(base: Settings, output: object, rubric: object, *, input: object = None,
          reference: object = None, context: object = None, expected: object = None,
          threshold: float | None = None, min_score: float | None = None,
          pass_score: float | None = None, expect: str = "pass",
          model: str | Sequence[str] | None = None,
          generated_by: str | None = None, **options: Any) -> Task:
    """Validate a pointwise judgment (criteria or a scale)."""
    __tracebackhide__ = True
    try:
        _check_generated_by(generated_by)
        want = _expect(expect)
        settings = _settings(base, model, options)
        r = as_rubric(rubric)
        if min_score is not None and isinstance(r, Rubric) and _plain(rubric):
            # Plain strings under a pass mark over all criteria are averaged
            # (G-Eval style), not each required.
            r = dataclasses.replace(r, criteria=[dataclasses.replace(
                c, required=False) for c in r.criteria])
        thr, mark, share = _marks(r, settings, threshold, min_score, pass_score)
        texts = _texts(settings, output=output, input=input, reference=reference,
                       context=context, expected=expected)
        guide = _guidance(r, settings, texts)
    except ConfigError as exc:
        # Show the user's line, not our insides.
        raise exc.with_traceback(None) from exc.__cause__
    kind = Kind.SCALE if isinstance(r, Scale) else Kind.CRITERIA
    return Task(kind, r, _required(texts["output"]), texts["input"],
                guide["reference"], texts["context"], settings, thr,
                generated_by=generated_by, expected=guide["expected"],
                instructions=guide["instructions"], examples=guide["examples"],
                pass_score=mark, min_score=share, expect=want)


def pair(base: Settings, a: object, b: object, rubric: object = None, *,
         mode: PairMode, input: object = None, context: object = None,
         reference: object = None, expected: object = None, expect: str = "pass",
         model: str | Sequence[str] | None = None,
         generated_by: str | None = None, **options: Any) -> Task:
    """Validate a comparison of ``a`` with ``b``."""
    __tracebackhide__ = True
    try:
        given = [k for k in _MARKS if options.get(k) is not None]
        if given:
            raise ConfigError(
                f"{given[0]} does not apply to comparisons: they are decided by "
                "which output wins (better_than= / at_least_as_good_as=), not by a "
                "pass mark; drop it")
        for k in _MARKS:
            options.pop(k, None)
        _check_generated_by(generated_by)
        want = _expect(expect)
        if want == "fail" and mode is PairMode.COMPARE:
            raise ConfigError("expect='fail' needs a pass/fail question: use "
                              "better_than= (the output must not beat it), not "
                              "compare()")
        settings = _settings(base, model, options)
        r = as_rubric(rubric if rubric is not None else DEFAULT_COMPARISON)
        if not isinstance(r, Rubric):
            raise ConfigError("comparisons take criteria, not a Scale")
        texts = _texts(settings, output=a, other=b, input=input, context=context,
                       reference=reference, expected=expected)
        guide = _guidance(r, settings, texts)
    except ConfigError as exc:
        raise exc.with_traceback(None) from exc.__cause__
    return Task(Kind.PAIRWISE, r, _required(texts["output"]), texts["input"],
                guide["reference"], texts["context"], settings, 1.0, mode=mode,
                other=texts["other"], generated_by=generated_by,
                expected=guide["expected"], instructions=guide["instructions"],
                examples=guide["examples"], expect=want)


def _plain(rubric: object) -> bool:
    """A rubric given as a string or a list of strings (no Criterion objects)."""
    if isinstance(rubric, str):
        return True
    return isinstance(rubric, (list, tuple)) and all(isinstance(x, str)
                                                     for x in rubric)


def _expect(value: object) -> str:
    if value not in ("pass", "fail"):
        raise ConfigError(f"expect={value!r}: use expect='pass' (the default) or "
                          "expect='fail' for a negative control the judge must "
                          "reject")
    return str(value)


def _marks(r: AnyRubric, settings: Settings, threshold: object, min_score: object,
           pass_score: object) -> tuple[float, float | None, float | None]:
    """(threshold over optional criteria, a scale's pass mark in its units, the
    pass mark over all criteria). Every mark given applies or is an error."""
    given = {k: v for k, v in (("threshold", threshold), ("min_score", min_score),
                               ("pass_score", pass_score)) if v is not None}
    if len(given) > 1:
        raise ConfigError(f"give one pass mark, not {' and '.join(given)}")
    if isinstance(r, Scale):
        # threshold on a scale is the pass mark on its normalised score.
        share = given.get("min_score", given.get("threshold"))
        if "pass_score" in given:
            mark: float | None = check_pass_score(given["pass_score"], r.bottom, r.top)
        elif share is not None:
            what = "min_score" if "min_score" in given else "threshold"
            mark = r.bottom + check_threshold(share, what) * (r.top - r.bottom)
        else:
            mark = r.mark()
        if mark is None:
            raise ConfigError(
                f"the scale {r.bottom}..{r.top} has no pass mark: give pass_score= "
                "in its units (e.g. pass_score=7) or min_score= on 0..1, in the Scale "
                "or in the call")
        return settings.threshold, mark, None
    if "pass_score" in given:
        raise ConfigError("pass_score is a Scale's pass mark in its own units; for "
                          "criteria use min_score= (the weighted share of all "
                          "criteria that must pass) or threshold=")
    if "min_score" in given:
        return settings.threshold, None, check_threshold(given["min_score"],
                                                         "min_score")
    if "threshold" in given:
        thr = check_threshold(given["threshold"])
        if all(c.required for c in r.criteria):
            raise ConfigError(NO_OPTIONAL.format(what="threshold"))
        return thr, None, r.min_score
    thr = r.threshold if r.threshold is not None else settings.threshold
    if r.min_score is not None and all(c.required for c in r.criteria) \
            and r.min_score < 1.0:
        raise ConfigError(NO_OPTIONAL.format(what="min_score").replace(
            ", or use min_score= for a pass mark over the weighted share of all "
            "criteria (plain-string criteria then count as optional)", ""))
    return thr, None, r.min_score


def _guidance(r: AnyRubric, settings: Settings, texts: dict[str, str | None]
              ) -> dict[str, Any]:
    """The call's (or marker's) guidance over the rubric file's defaults:
    instructions are joined (the rubric's first), examples added to the
    rubric's, reference and expected taken from the call when given."""
    parts = [x for x in (r.instructions, settings.instructions) if x]
    examples = (*r.examples, *settings.examples)
    check_examples(examples, (r.bottom, r.top) if isinstance(r, Scale) else None)
    return {
        "instructions": "\n\n".join(parts) or None,
        "examples": examples,
        "reference": texts["reference"] if texts["reference"] is not None
        else r.reference,
        "expected": texts["expected"] if texts["expected"] is not None
        else r.expected,
    }


def from_item(base: Settings, n: int, item: object) -> Task:
    """One ``check_many`` item: an ``(output, rubric)`` tuple or a dict of call
    arguments (comparisons included)."""
    __tracebackhide__ = True
    try:
        if isinstance(item, tuple):
            return from_call(base, *item, what="check_many")
        if isinstance(item, Mapping) and "output" in item:
            kw = dict(item)
            return from_call(base, kw.pop("output"), kw.pop("rubric", None),
                             what="check_many", **kw)
        raise ConfigError(
            "check_many takes (output, rubric) tuples or dicts with an 'output' key "
            f"and 'rubric' (or 'better_than'); got {type(item).__name__}")
    except (ConfigError, TypeError) as exc:
        # Say which item, and end the traceback at the caller's line.
        raise type(exc)(f"check_many item {n}: {exc}").with_traceback(None) from None


def _required(text: str | None) -> str:
    if text is None:  # pragma: no cover - as_text raised already
        raise JudgeInputError("the judged output is None")
    return text


def _settings(base: Settings, model: str | Sequence[str] | None,
              options: Mapping[str, Any]) -> Settings:
    values = dict(options)
    if model is not None:
        values["model"] = model
    return base.override("judge call", values)


def _texts(settings: Settings, **values: object) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, value in values.items():
        required = name in ("output", "other")
        what = {"output": "the judged output", "other": "the baseline output"
                }.get(name, name)
        text = as_text(value, what, optional=not required)
        if text is not None and len(text) > settings.max_output_chars:
            raise ConfigError(
                f"{what} is {len(text):,} characters, over max_output_chars="
                f"{settings.max_output_chars:,}: judge a shorter excerpt or raise "
                "--llmjudge-max-output-chars")
        out[name] = text
    return out


def _check_generated_by(value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"generated_by must be the name of the model that wrote the "
                          f"output (a str, e.g. 'openai/gpt-4o'), not "
                          f"{type(value).__name__}")
