"""``Judge``: validates a judged expectation, gathers votes, decides a ``Verdict``.

Every judgment starts with ``min_samples`` presentations sent concurrently
(by default two, in opposite orders). The stopping rule: stop as soon as the
verdict's confidence reaches ``min_confidence``; otherwise draw two more
presentations (one of each orientation) at a time, up to ``max_samples``; a
verdict still below ``min_confidence`` then is inconclusive. Replies come
from records, then the cache, then the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _aggregate as agg
from ._context import active
from ._parse import logprob_pass, parse_reply
from ._prompt import REASK, Presentation, pairwise, present, response_schema
from ._screen import degenerate_reason
from .cache import cache_key
from .constants import EXCERPT_CHARS
from .exceptions import (
    BudgetExceededError,
    ConfigError,
    JudgeCallError,
    JudgeNotConfiguredError,
    JudgeParseError,
    RecordMissingError,
)
from .rubric import AnyRubric, Rubric, Scale, as_rubric, check_threshold
from .settings import Settings
from .verdict import Jury, JuryMember, Outcome, Verdict, Vote

if TYPE_CHECKING:
    from ._client import Reply
    from ._context import NodeInfo
    from .session import JudgeSession

DEFAULT_COMPARISON = "Overall, which response answers the input better: more correct, " \
    "more complete and more helpful, with nothing false or harmful"

NO_MODEL = (
    "no judge model is configured. Set one with --llmjudge-model=NAME, "
    "llmjudge_model = NAME under [tool.pytest.ini_options], the LLMJUDGE_MODEL "
    "environment variable, @pytest.mark.llmjudge(model=NAME) or model=NAME in the "
    "call (any litellm model name, e.g. openai/gpt-4o-mini)"
)


#: The model named in verdicts replayed from records when no model is configured.
REPLAYED_MODEL = "(recorded)"


class JudgeInputError(ConfigError, TypeError):
    """A judged value has a type that cannot be judged."""


def as_text(value: object, what: str, *, optional: bool = True) -> str | None:
    """Text to judge: str as is, dicts/lists/pydantic models as JSON."""
    if value is None:
        if optional:
            return None
        raise JudgeInputError(f"{what} is None: pass the text (str) to judge")
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        raise JudgeInputError(
            f"{what} is bytes: decode it to text first, e.g. data.decode('utf-8')")
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump(indent=2))
    if isinstance(value, (dict, list, tuple, int, float, bool)):
        try:
            return json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError) as exc:
            raise JudgeInputError(f"{what} cannot be shown as JSON: {exc}") from None
    raise JudgeInputError(
        f"{what} is a {type(value).__name__}: pass a str, a dict/list (judged as "
        "JSON) or a pydantic model")


@dataclass(frozen=True)
class Task:
    """A validated judgment request."""

    kind: str  # criteria | scale | pairwise
    rubric: AnyRubric
    output: str
    input: str | None
    reference: str | None
    context: str | None
    settings: Settings
    threshold: float
    mode: str = ""  # pairwise: compare | better | not_worse
    other: str | None = None  # pairwise: B
    generated_by: str | None = None
    warnings: tuple[str, ...] = ()

    def identity(self, node: str | None) -> str:
        blob = json.dumps([node, self.kind, self.mode, self.rubric.canonical(),
                           self.output, self.other, self.input, self.reference,
                           self.context], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


class Judge:
    """A configured judge. ``check`` never raises on a failing verdict."""

    def __init__(self, session: JudgeSession, settings: Settings,
                 node: NodeInfo | None = None):
        self.session = session
        self.settings = settings
        self.node = node
        self._pending: list[Expectation] = []  # expect() outside a pytest test

    # ---------------------------------------------------------------- building
    def task(self, output: object, rubric: object, *, input: object = None,
             reference: object = None, context: object = None,
             threshold: float | None = None, model: str | Sequence[str] | None = None,
             generated_by: str | None = None, **options: Any) -> Task:
        """Validate a pointwise judgment (raises at the caller's line)."""
        __tracebackhide__ = True
        try:
            _check_generated_by(generated_by)
            settings = self._settings(model, options)
            r = as_rubric(rubric)
            thr = check_threshold(threshold) if threshold is not None else (
                r.threshold if isinstance(r, Rubric) and r.threshold is not None
                else settings.threshold)
            texts = self._texts(settings, output=output, input=input,
                                reference=reference, context=context)
        except ConfigError as exc:
            # Show the user's line, not our insides.
            raise exc.with_traceback(None) from exc.__cause__
        return Task("scale" if isinstance(r, Scale) else "criteria", r, texts["output"],
                    texts["input"], texts["reference"], texts["context"], settings, thr,
                    generated_by=generated_by,
                    warnings=self._preload(settings, generated_by))

    def pair_task(self, a: object, b: object, rubric: object = None, *, mode: str,
                  input: object = None, context: object = None,
                  model: str | Sequence[str] | None = None,
                  generated_by: str | None = None, **options: Any) -> Task:
        __tracebackhide__ = True
        try:
            _check_generated_by(generated_by)
            settings = self._settings(model, options)
            r = as_rubric(rubric if rubric is not None else DEFAULT_COMPARISON)
            if not isinstance(r, Rubric):
                raise ConfigError("comparisons take criteria, not a Scale")
            texts = self._texts(settings, output=a, other=b, input=input,
                                context=context)
        except ConfigError as exc:
            # Show the user's line, not our insides.
            raise exc.with_traceback(None) from exc.__cause__
        return Task("pairwise", r, texts["output"], texts["input"], None,
                    texts["context"], settings, 1.0, mode=mode, other=texts["other"],
                    generated_by=generated_by,
                    warnings=self._preload(settings, generated_by))

    def _preload(self, settings: Settings, generated_by: str | None
                 ) -> tuple[str, ...]:
        """On the caller's thread: read this test's records file now (a damaged
        one is warned about where pytest shows warnings), and say whether the
        judge wrote the output itself."""
        self.session.replies.store.preload(self.node)
        return self.session.self_preference(settings, generated_by)

    def _settings(self, model: str | Sequence[str] | None,
                  options: Mapping[str, Any]) -> Settings:
        values = dict(options)
        if model is not None:
            values["model"] = model
        return self.settings.override("judge call", values)

    @staticmethod
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

    # ---------------------------------------------------------------- public API
    def check(self, output: object, rubric: object, **kwargs: Any) -> Verdict:
        """Judge ``output`` against ``rubric``; returns the ``Verdict`` (never raises
        on fail). Keyword arguments as for ``assert_judged``."""
        __tracebackhide__ = True
        task = self.task(output, rubric, **kwargs)
        return self.session.loop.run(self.run(task))

    async def acheck(self, output: object, rubric: object, **kwargs: Any) -> Verdict:
        """Async ``check``; shares the process-wide judge loop and limits."""
        __tracebackhide__ = True
        task = self.task(output, rubric, **kwargs)
        return await self.session.loop.run_async(self.run(task))

    def compare(self, a: object, b: object, rubric: object = None, **kwargs: Any
                ) -> Verdict:
        """Judge which of ``a`` and ``b`` is better; ``verdict.winner`` is "A", "B"
        or "tie" (None when the orders disagree: inconclusive)."""
        __tracebackhide__ = True
        task = self.pair_task(a, b, rubric, mode="compare", **kwargs)
        return self.session.loop.run(self.run(task))

    async def acompare(self, a: object, b: object, rubric: object = None,
                       **kwargs: Any) -> Verdict:
        """Async ``compare``."""
        __tracebackhide__ = True
        task = self.pair_task(a, b, rubric, mode="compare", **kwargs)
        return await self.session.loop.run_async(self.run(task))

    def expect(self, output: object, rubric: object = None, *,
               better_than: object = None, at_least_as_good_as: object = None,
               **kwargs: Any) -> None:
        """A soft check: record a judged expectation without stopping the test.

        Judging starts at once, alongside the rest of the test. When the test
        body ends, all its expectations are settled together and the test fails
        once, listing every expectation that was not met. Arguments as for
        ``assert_judged``; a wrong argument raises here, at the caller's line.
        """
        __tracebackhide__ = True
        if better_than is not None and at_least_as_good_as is not None:
            raise TypeError("give better_than or at_least_as_good_as, not both")
        if better_than is not None or at_least_as_good_as is not None:
            if kwargs.pop("threshold", None) is not None:
                raise TypeError("threshold does not apply to comparisons")
            mode = "better" if better_than is not None else "not_worse"
            baseline = better_than if better_than is not None else at_least_as_good_as
            task = self.pair_task(output, baseline, rubric, mode=mode, **kwargs)
        elif rubric is None:
            raise TypeError("expect needs a rubric: what must be true of the output "
                            "(or better_than=/at_least_as_good_as= a baseline)")
        else:
            task = self.task(output, rubric, **kwargs)
        caller = sys._getframe(1)
        where = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
        pending = self._expectations()
        pending.append(Expectation(len(pending) + 1, where, task,
                                   self.session.loop.submit(self.run(task))))

    def verify_expectations(self) -> None:
        """Wait for this judge's pending ``expect()`` calls and fail once for all
        unmet ones. In a test the plugin calls it after the body; outside pytest,
        call it yourself."""
        __tracebackhide__ = True
        from .assertion import settle_expectations  # assertion imports this module

        settle_expectations(self._expectations())

    def _expectations(self) -> list[Expectation]:
        ctx = active.get()
        if ctx is not None and self.node is not None and ctx.node == self.node:
            return ctx.expectations
        return self._pending

    def check_many(self, items: Iterable[Mapping[str, Any] | tuple[Any, Any]]
                   ) -> list[Verdict]:
        """Judge many expectations concurrently; items are ``(output, rubric)`` or
        dicts of ``check`` arguments. Returns verdicts in order."""
        __tracebackhide__ = True
        tasks = self._item_tasks(items)
        return self.session.loop.run(self._gather(tasks))

    async def acheck_many(self, items: Iterable[Mapping[str, Any] | tuple[Any, Any]]
                          ) -> list[Verdict]:
        """Async ``check_many``."""
        __tracebackhide__ = True
        tasks = self._item_tasks(items)
        return await self.session.loop.run_async(self._gather(tasks))

    def _item_tasks(self, items: Iterable[Mapping[str, Any] | tuple[Any, Any]]
                    ) -> list[Task]:
        __tracebackhide__ = True
        tasks = []
        for n, item in enumerate(items):
            try:
                if isinstance(item, tuple):
                    tasks.append(self.task(*item))
                elif isinstance(item, Mapping) and "output" in item and "rubric" in item:
                    kw = dict(item)
                    tasks.append(self.task(kw.pop("output"), kw.pop("rubric"), **kw))
                else:
                    raise ConfigError(
                        "check_many takes (output, rubric) tuples or dicts with "
                        f"'output' and 'rubric' keys; got {type(item).__name__}")
            except (ConfigError, TypeError) as exc:
                # Say which item, and end the traceback at the caller's line.
                raise type(exc)(f"check_many item {n}: {exc}").with_traceback(
                    None) from None
        return tasks

    async def _gather(self, tasks: list[Task]) -> list[Verdict]:
        return list(await asyncio.gather(*(self.run(t) for t in tasks)))

    # ---------------------------------------------------------------- judging
    async def run(self, task: Task) -> Verdict:
        """Decide one task (on the judge loop)."""
        node = self.node.nodeid if self.node else None
        ident = task.identity(node)
        # Comparisons are not screened: a degenerate side simply loses.
        screen = task.settings.screen and task.kind != "pairwise"
        reason = degenerate_reason(task.output) if screen else None
        if reason is not None:
            verdict = self._screened(task, reason, ident)
        elif not task.settings.models and self.session.settings.record_mode != "none":
            raise JudgeNotConfiguredError(NO_MODEL)
        else:
            if task.settings.min_kappa is not None:
                from ._trust import vouch  # raises UntrustedJudgeError

                task = vouch(self, task, ident)
            # Replay-only runs (record mode none) need no model: a fresh clone
            # without keys replays the committed records as recorded.
            models = task.settings.models or (REPLAYED_MODEL,)
            per_model = await asyncio.gather(
                *(self._run_model(task, m) for m in models))
            verdict = self._combine(task, per_model, ident)
        verdict = self.session.finish(verdict, self.node)
        return verdict

    def _screened(self, task: Task, reason: str, ident: str) -> Verdict:
        return Verdict(
            outcome=Outcome.FAIL, passed=False, kind=task.kind,  # type: ignore[arg-type]
            rubric=task.rubric.summary(), confidence=1.0, score=0.0,
            model=",".join(task.settings.models), excerpt=_excerpt(task.output),
            error=None, warnings=[f"screened without a judge call: {reason}",
                                  *task.warnings], key=ident, cached=True,
        )

    async def _run_model(self, task: Task, model: str) -> _ModelResult:
        s = task.settings
        # A comparison is always judged in both orders, whatever debias and
        # min_samples say: one order cannot tell a winner from a position bias.
        low = max(2, s.min_samples) if task.kind == "pairwise" else s.min_samples
        most = max(low, s.max_samples)
        n = low
        votes: list[Vote] = []
        fresh: list[Vote] = []
        usage = _Usage()
        while True:
            batch = range(len(votes), n)
            got = await asyncio.gather(*(self._vote(task, model, i, usage)
                                         for i in batch))
            for v, is_fresh in got:
                votes.append(v)
                if is_fresh and v.error is None:
                    fresh.append(v)
            errors = [v for v in votes if v.error]
            good = [v for v in votes if not v.error]
            if errors and len(good) < low:
                return _ModelResult(model, votes, None, usage, errors[0].error, fresh)
            a = self.session.accuracy(model, task.kind, self.node)
            decision = self._decide(task, good, a)
            settled = decision.outcome != "inconclusive" and \
                decision.confidence >= s.min_confidence
            if settled or len(votes) >= most or _hopeless(a):
                return _ModelResult(model, votes, decision, usage, None, fresh)
            n = min(most, len(votes) + 2)

    def _decide(self, task: Task, votes: list[Vote], a: float) -> agg.Decision:
        if task.kind == "criteria":
            assert isinstance(task.rubric, Rubric)
            return agg.decide_criteria(task.rubric, votes, a, task.threshold)
        if task.kind == "scale":
            assert isinstance(task.rubric, Scale)
            return agg.decide_scale(task.rubric, votes, a)
        return agg.decide_pairwise(votes, a, task.mode)

    def _presentation(self, task: Task, index: int) -> Presentation:
        p = index if task.settings.debias or task.kind == "pairwise" else 0
        if task.kind == "pairwise":
            assert isinstance(task.rubric, Rubric)
            return pairwise(task.rubric, p, a=task.output, b=task.other or "",
                            input=task.input, context=task.context)
        return present(task.rubric, p, output=task.output, input=task.input,
                       reference=task.reference, context=task.context)

    def _key(self, task: Task, model: str, pres: Presentation, index: int
             ) -> tuple[str, str]:
        """(cache key, record key). Records leave out the endpoint and, unless a
        jury is used, the model, so that a fresh clone replays them as is."""
        s = task.settings
        parts = {
            "kind": task.kind, "rubric": task.rubric.canonical(), "output": task.output,
            "other": task.other, "input": task.input, "reference": task.reference,
            "context": task.context, "temperature": s.temperature,
            "presentation": pres.index, "sample": index,
        }
        rparts = {**parts, "model": model} if s.jury else parts
        return (cache_key({**parts, "model": model, "api_base": s.api_base,
                           "response_format": s.response_format}), cache_key(rparts))

    async def _vote(self, task: Task, model: str, index: int, usage: _Usage
                    ) -> tuple[Vote, bool]:
        pres = self._presentation(task, index)
        key = self._key(task, model, pres, index)
        names = pres.shown
        top = task.rubric.top if isinstance(task.rubric, Scale) else 0
        base = {"presentation": index, "order": pres.order, "model": model}
        # A marker's or call's cache="off"/"refresh" skips the cache (records,
        # when a record mode is set, still decide).
        cache = task.settings.cache
        bypass = cache != "on" and self.session.settings.record_mode is None
        try:
            stored = None if bypass else self.session.replies.get(
                key, self.node, pres.index, model, task.kind)
        except RecordMissingError as exc:
            return Vote(**base, error=str(exc)), False
        if stored is not None:
            if model == REPLAYED_MODEL and stored.get("model"):
                # Replayed without a configured judge: name the one that answered.
                base = {**base, "model": f"{stored['model']} (recorded)"}
            try:
                return self._to_vote(task, pres, stored, base, cached=True), False
            except JudgeParseError:
                pass  # a stored reply we cannot read is a miss, never a verdict
        try:
            reply = await self._call(task, model, pres, index, names, top, usage)
        except (JudgeCallError, JudgeParseError, BudgetExceededError) as exc:
            from ._client import redact  # a reply may quote a secret back

            return Vote(**base, error=redact(str(exc), task.settings.api_key)), True
        if not (bypass and cache == "off"):
            self.session.replies.put(key, reply.to_json(), self.node, pres.index,
                                     model, task.kind)
        return self._to_vote(task, pres, reply, base, cached=False), True

    async def _call(self, task: Task, model: str, pres: Presentation, index: int,
                    names: tuple[str, ...], top: int, usage: _Usage) -> Reply:
        from ._client import check_model, complete

        s = task.settings
        check_model(model)  # a misspelt model raises ConfigError at the caller
        messages = list(pres.messages)
        for attempt in range(2):
            fmt = self.session.response_format(model, s.response_format,
                                               response_schema(task.kind, names, top))
            async with await self.session.loop.slot(model, paced=False) as slot:
                # Counted once it holds a slot: a judgment cancelled while
                # waiting for one made no call.
                self.session.spend_call(model)
                try:
                    reply = await complete(
                        model=model, api_base=s.api_base, api_key=s.api_key,
                        messages=messages, response_format=fmt,
                        temperature=s.temperature, seed=index if index >= 2 else None,
                        timeout=s.timeout, retries=s.retries, logprobs=s.logprobs,
                        before_attempt=slot.pace)
                except JudgeCallError as exc:
                    if fmt is None or exc.cause != "response_format unsupported":
                        raise
                    # The provider refused structured output: ask in plain text
                    # (the reply is still parsed strictly). The refused request
                    # was a call too.
                    usage.calls += 1
                    self.session.disable_format(model)
                    self.session.spend_call(model)  # the second request is a call
                    reply = await complete(
                        model=model, api_base=s.api_base, api_key=s.api_key,
                        messages=messages, response_format=None,
                        temperature=s.temperature, seed=index if index >= 2 else None,
                        timeout=s.timeout, retries=s.retries, logprobs=s.logprobs,
                        before_attempt=slot.pace)
            usage.add(reply)
            self.session.spend(reply)
            try:
                parse_reply(reply.content, task.kind, names=names, top=top)
                return reply
            except JudgeParseError:
                if attempt == 1:
                    raise
                messages = [*messages, {"role": "assistant", "content": reply.content},
                            {"role": "user", "content": REASK}]
        raise AssertionError("unreachable")  # pragma: no cover

    def _to_vote(self, task: Task, pres: Presentation, reply: Reply | dict[str, Any],
                 base: dict[str, Any], *, cached: bool) -> Vote:
        from ._client import Reply as _Reply  # light: no litellm import

        r = reply if isinstance(reply, _Reply) else _Reply.from_json(reply)
        top = task.rubric.top if isinstance(task.rubric, Scale) else 0
        parsed = parse_reply(r.content, task.kind, names=pres.shown, top=top)
        extra: dict[str, Any] = {}
        if task.kind == "criteria":
            order = [n for n in _reply_order(r.content, pres.shown)]
            extra["verdicts"] = parsed.verdicts
            extra["logprob_pass"] = logprob_pass(r.logprobs, tuple(order))
        elif task.kind == "scale":
            extra["level"] = parsed.level
        else:
            w = parsed.winner
            if pres.swapped and w in ("A", "B"):
                w = "B" if w == "A" else "A"
            extra["winner"] = w
        return Vote(**base, **extra, reasoning=parsed.reasoning,
                    stated_confidence=parsed.confidence, cached=cached,
                    tokens=r.prompt_tokens + r.completion_tokens)

    # ---------------------------------------------------------------- verdicts
    def _combine(self, task: Task, results: list[_ModelResult], ident: str) -> Verdict:
        votes = [v for r in results for v in r.votes]
        usage = _Usage()
        for r in results:
            usage.merge(r.usage)
        common: dict[str, Any] = dict(
            kind=task.kind, rubric=task.rubric.summary(), votes=votes,
            calls=usage.calls, cache_hits=sum(1 for v in votes if v.cached),
            cached=usage.calls == 0 and not any(v.error for v in votes),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, cost=usage.cost,
            model=",".join(_shown_model(r) for r in results),
            excerpt=_excerpt(task.output),
            key=ident,
        )
        warnings = list(task.warnings)
        for r in results:
            # Pool the first pair's agreement only when both of its replies are
            # new: a cached pair was counted by the run that asked it (raising
            # max_samples later must not count it again).
            if r.decision is not None and {0, 1} <= {v.presentation for v in r.fresh}:
                self.session.learn(r.model, task.kind, r.decision.agree, r.decision.pairs)
        failed = [r for r in results if r.decision is None]
        if failed and len(failed) * 2 >= len(results):
            return Verdict(outcome=Outcome.JUDGE_ERROR, passed=False, confidence=0.0,
                           error=failed[0].error, warnings=warnings, **common)
        decided = [r for r in results if r.decision is not None]
        if failed:
            warnings.append(f"jury member(s) failed: {', '.join(r.model for r in failed)}")
        for r in results:
            errs = [v.error for v in r.votes if v.error]
            if errs and r.decision is not None:
                warnings.append(f"{len(errs)} extra sample(s) failed and were left out: "
                                f"{errs[0]}")
        if len(decided) == 1 and not failed:
            d = decided[0].decision
            assert d is not None
            return self._verdict(task, d, d.confidence, d.flaky_reason, warnings, common)
        return self._jury(task, decided, warnings, common,
                          [r.model for r in failed])

    def _verdict(self, task: Task, d: agg.Decision, conf: float, flaky: str | None,
                 warnings: list[str], common: dict[str, Any]) -> Verdict:
        s = task.settings
        outcome = d.outcome
        if outcome != "inconclusive" and conf < s.min_confidence:
            outcome = "inconclusive"
        return Verdict(outcome=Outcome(outcome), passed=outcome == "pass",
                       confidence=round(conf, 6), score=d.score, level=d.level,
                       criteria=d.criteria, winner=d.winner,  # type: ignore[arg-type]
                       flaky=flaky is not None, flaky_reason=flaky, warnings=warnings,
                       **common)

    def _jury(self, task: Task, decided: list[_ModelResult], warnings: list[str],
              common: dict[str, Any], failed: list[str]) -> Verdict:
        """The members' majority decides. Its confidence is what split samples
        get: each member's decision is a vote worth ``logit(a)`` (``a``: that
        member's accuracy estimated from its agreement), scaled by how sure the
        member was; a dissenting member subtracts its weight."""
        compare = task.kind == "pairwise" and task.mode == "compare"
        ds = [(r.model, r.decision) for r in decided if r.decision is not None]
        # A comparison's members all "pass"; what they vote on is the winner.
        answers = [(d.winner or "inconclusive") if compare else d.outcome
                   for _, d in ds]
        counts = {o: answers.count(o) for o in set(answers)}
        best = max(counts.values())
        top = [o for o, c in counts.items() if c == best]
        agreement = best / len(answers)
        lead = next(d for (_, d), x in zip(ds, answers, strict=True) if x == top[0])
        flaky = None
        if len(counts) > 1:
            flaky = "jury split: " + ", ".join(
                f"{m}={x}" for (m, _), x in zip(ds, answers, strict=True))
        elif lead.flaky_reason:
            flaky = lead.flaky_reason
        if len(top) > 1 or top[0] == "inconclusive":
            lead = agg.Decision("inconclusive", 0.5, lead.criteria, lead.score)
            conf = 0.5
        else:
            lo = 0.0
            for (m, d), x in zip(ds, answers, strict=True):
                if x == "inconclusive":
                    continue  # an undecided member abstains
                a = self.session.accuracy(m, task.kind, self.node)
                w = math.log(a / (1.0 - a)) * d.confidence  # confidence is in [0.5, 1]
                lo += w if x == top[0] else -w
            conf = max(0.5, 1.0 / (1.0 + math.exp(-lo)))
        warnings = [*warnings,
                    f"jury agreement {agreement:.0%} over {len(answers)} judges"]
        members = [JuryMember(model=m, outcome=Outcome(d.outcome),
                              confidence=round(d.confidence, 6),
                              winner=d.winner)  # type: ignore[arg-type]
                   for m, d in ds]
        common = {**common, "jury": Jury(members=members, agreement=round(agreement, 6),
                                         failed=failed)}
        return self._verdict(task, lead, conf, flaky, warnings, common)


@dataclass(frozen=True)
class Expectation:
    """A soft check in flight: its task and the future of its verdict."""

    index: int
    where: str  # file:line of the expect() call
    task: Task
    future: Future[Verdict]


def _hopeless(a: float) -> bool:
    """A judge whose pooled agreement puts it at chance (``a`` = 0.5) adds no
    evidence with any number of votes: asking more would only spend calls."""
    return a <= 0.5 + 1e-9


def _shown_model(result: _ModelResult) -> str:
    """The judge a verdict names: when replayed with no model configured, the
    model(s) the records say answered."""
    if result.model != REPLAYED_MODEL:
        return result.model
    recorded = sorted({v.model for v in result.votes if v.model != REPLAYED_MODEL})
    return ",".join(recorded) or REPLAYED_MODEL


def _check_generated_by(value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"generated_by must be the name of the model that wrote the "
                          f"output (a str, e.g. 'openai/gpt-4o'), not "
                          f"{type(value).__name__}")


def _reply_order(content: str, shown: tuple[str, ...]) -> list[str]:
    """Criterion names in the order the reply lists them (for log-probs)."""
    low = content.lower()
    pos = {n: low.find(f'"{n.lower()}"') for n in shown}
    return sorted((n for n in shown if pos[n] >= 0), key=lambda n: pos[n])


def _excerpt(text: str) -> str:
    t = text.strip()
    return t if len(t) <= EXCERPT_CHARS else t[:EXCERPT_CHARS] + "…"


class _Usage:
    def __init__(self) -> None:
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost: float | None = None

    def add(self, reply: Reply) -> None:
        self.calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if reply.cost is not None:
            self.cost = (self.cost or 0.0) + reply.cost

    def merge(self, other: _Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost


@dataclass
class _ModelResult:
    model: str
    votes: list[Vote]
    decision: agg.Decision | None
    usage: _Usage
    error: str | None
    fresh: list[Vote]
