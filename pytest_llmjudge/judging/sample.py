"""Sampling: gathering one judge model's votes on a task, and the stopping rule.

Every judgment starts with ``min_samples`` presentations sent concurrently
(by default two, in opposite orders). The stopping rule: stop as soon as the
decision's confidence reaches ``min_confidence``; otherwise draw two more
presentations (one of each orientation) at a time, up to ``max_samples``.
Replies come from records, then the cache, then the network; this module holds
the one place that asks the network for a completion.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.constants import REPLAYED_MODEL
from pytest_llmjudge.exceptions import (
    BudgetExceededError,
    JudgeCallError,
    JudgeParseError,
    RecordError,
)
from pytest_llmjudge.judging import decide
from pytest_llmjudge.judging.calibrated import Calibration
from pytest_llmjudge.judging.parse import logprob_pass, parse_reply, score_mean
from pytest_llmjudge.judging.plan import keys, low_and_most, presentation
from pytest_llmjudge.judging.prompt import (
    BREVITY,
    FORMAT_CHAIN,
    REASK,
    Presentation,
    reply_format,
)
from pytest_llmjudge.judging.task import Task
from pytest_llmjudge.rubric import Rubric, Scale
from pytest_llmjudge.runtime.client import (
    Reply,
    check_model,
    complete,
    redact,
)
from pytest_llmjudge.runtime.faults import FORMAT_REFUSED, TimeBudget
from pytest_llmjudge.settings import Settings
from pytest_llmjudge.types import Kind, NodeInfo
from pytest_llmjudge.verdict import Vote

if TYPE_CHECKING:
    from pytest_llmjudge.runtime.session import JudgeSession


@dataclass
class Usage:
    """Calls, tokens and cost spent on one judgment."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def add(self, reply: Reply) -> None:
        """A reply's tokens and cost (its request was counted when sent)."""
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if reply.cost is not None:
            self.cost = (self.cost or 0.0) + reply.cost

    def merge(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost


@dataclass
class ModelResult:
    """One judge model's votes on a task and what they decide (``None``: the
    model failed, see ``error``)."""

    model: str
    votes: list[Vote]
    decision: decide.Decision | None
    usage: Usage
    error: str | None
    fresh: list[Vote] = field(default_factory=list)  # asked in this run


def hopeless(a: float) -> bool:
    """A judge whose pooled agreement puts it at chance (``a`` = 0.5) adds no
    evidence with any number of votes: asking more would only spend calls."""
    return a <= 0.5 + 1e-9


def one_sided(task: Task, good: list[Vote], errors: list[Vote],
              decision: decide.Decision) -> decide.Decision:
    """A decisive decision needs votes from both orientations: when only one
    answered (the other's samples failed, or were not asked), position bias
    cannot be told apart from the answer, so the decision is inconclusive."""
    if decision.outcome == "inconclusive":
        return decision
    if not task.settings.debias and task.kind is not Kind.PAIRWISE:
        return decision  # the user asked for one orientation only
    if len({v.presentation % 2 for v in good}) > 1:  # even: as given; odd: reversed
        return decision
    cause = (f"{len(errors)} sample(s) failed" if errors
             else "max_samples allows no other")
    why = (f"only one presentation order was answered ({cause}): position bias "
           "cannot be told apart from the answer")
    reason = f"{decision.flaky_reason}; {why}" if decision.flaky_reason else why
    return dataclasses.replace(decision, outcome="inconclusive", confidence=0.5,
                               flaky_reason=reason)


def decide_votes(task: Task, votes: list[Vote], a: float) -> decide.Decision:
    """The decision ``votes`` support, by the task's kind."""
    if task.kind is Kind.CRITERIA:
        assert isinstance(task.rubric, Rubric)
        return decide.decide_criteria(task.rubric, votes, a, task.threshold,
                                      task.min_score)
    if task.kind is Kind.SCALE:
        assert isinstance(task.rubric, Scale)
        assert task.pass_score is not None
        return decide.decide_scale(task.rubric, votes, a, task.pass_score)
    assert task.mode is not None
    return decide.decide_pairwise(votes, a, task.mode.value)


class Sampler:
    """Asks one task's presentations of one judge model until the stopping rule
    is met."""

    def __init__(self, session: JudgeSession, node: NodeInfo | None,
                 accuracy: Callable[[str, Kind], float],
                 calibration: Calibration | None = None):
        self.session = session
        self.node = node
        self.accuracy = accuracy
        self.calibration = calibration

    async def run(self, task: Task, model: str) -> ModelResult:
        low, most = low_and_most(task)
        n = low
        votes: list[Vote] = []
        fresh: list[Vote] = []
        usage = Usage()
        while True:
            batch = range(len(votes), n)
            got = await asyncio.gather(*(self.vote(task, model, i, usage)
                                         for i in batch))
            for v, is_fresh in got:
                votes.append(v)
                if is_fresh and v.error is None:
                    fresh.append(v)
            errors = [v for v in votes if v.error]
            good = [v for v in votes if not v.error]
            if errors and len(good) < low:
                return ModelResult(model, votes, None, usage, errors[0].error, fresh)
            a = self.accuracy(model, task.kind)
            decision = one_sided(task, good, errors, decide_votes(task, good, a))
            capped = False
            if self.calibration is not None:
                # People's labels: errors made in every order lower confidence,
                # and a judge whose labels cap it below min_confidence is not
                # asked for more votes that cannot settle it.
                capped = self.calibration.ceiling(task, decision) < \
                    task.settings.min_confidence
                decision = self.calibration.adjust(task, decision)
            settled = decision.outcome != "inconclusive" and \
                decision.confidence >= task.settings.min_confidence
            done = len(votes) >= most or hopeless(a) or capped
            if done and errors and len(errors) > len(good) and not settled:
                # Most samples failed: the survivors do not speak for the judge.
                return ModelResult(model, votes, None, usage, errors[0].error, fresh)
            if settled or done:
                return ModelResult(model, votes, decision, usage, None, fresh)
            n = min(most, len(votes) + 2)

    async def vote(self, task: Task, model: str, index: int, usage: Usage
                   ) -> tuple[Vote, bool]:
        """Sample ``index``'s vote, and whether it was asked in this run."""
        pres = presentation(task, index)
        key = keys(task, model, pres, index)
        base: dict[str, Any] = {"presentation": index, "order": pres.order,
                                "model": model}
        # A marker's or call's cache="off"/"refresh" skips the cache (records,
        # when a record mode is set, still decide).
        cache = task.settings.cache
        bypass = cache != "on" and self.session.settings.record_mode is None
        try:
            stored = None if bypass else self.session.replies.get(
                key, self.node, pres.index, model, task.kind.value)
        except RecordError as exc:
            return Vote(**base, error=str(exc)), False
        if stored is not None:
            if model == REPLAYED_MODEL and stored.get("model"):
                # Replayed without a configured judge: name the one that answered.
                base = {**base, "model": f"{stored['model']} (recorded)"}
            try:
                return to_vote(task, pres, Reply.from_json(stored), base,
                               cached=True), False
            except (JudgeParseError, TypeError, ValueError) as exc:
                # A stored reply we cannot read is never a verdict: replaying,
                # an error naming the entry (no call in its place); else a miss.
                try:
                    self.session.replies.store.unusable(key[1], self.node,
                                                        str(exc)[:200])
                except RecordError as err:
                    return Vote(**base, error=str(err)), False
        twin = self.session.in_flight.get(key[0])
        if twin is not None:
            # The same presentation is being asked for another judgment right
            # now (duplicate items, the same check twice): share its reply
            # instead of sending a duplicate request; if it failed, ask anew.
            shared = await asyncio.shield(twin)
            if shared is not None:
                return to_vote(task, pres, shared, base, cached=True), False
        mine: asyncio.Future[Reply | None] = \
            asyncio.get_running_loop().create_future()
        self.session.in_flight[key[0]] = mine
        try:
            reply = await self.call(task, model, pres, index, usage)
            mine.set_result(reply)
        except (JudgeCallError, JudgeParseError, BudgetExceededError) as exc:
            # A reply may quote a secret back.
            return Vote(**base, error=redact(str(exc), task.settings.api_key)), True
        finally:
            if not mine.done():
                mine.set_result(None)  # failed or cancelled: twins ask anew
            if self.session.in_flight.get(key[0]) is mine:
                del self.session.in_flight[key[0]]
        if not (bypass and cache == "off"):
            try:
                self.session.replies.put(key, reply.to_json(), self.node, pres.index,
                                         model, task.kind.value)
            except RecordError as exc:  # never written over a broken file
                return Vote(**base, error=str(exc)), True
        return to_vote(task, pres, reply, base, cached=False), True

    async def call(self, task: Task, model: str, pres: Presentation, index: int,
                   usage: Usage) -> Reply:
        """Ask the judge for one presentation of ``task``."""
        names = pres.shown
        top, low = _range(task)
        kind = task.kind.value
        contract = Contract(
            kind=kind,
            fmt=lambda name: reply_format(name, kind, names, top, low),
            check=lambda content: parse_reply(content, kind, names=names, top=top,
                                              low=low),
            budget=max_tokens(task))
        return await self.ask(task.settings, model, list(pres.messages), index,
                              contract, usage)

    async def ask(self, s: Settings, model: str, messages: list[dict[str, str]],
                  index: int, contract: Contract, usage: Usage) -> Reply:
        """Ask the judge under a reply contract. A reply off the contract is
        re-asked once, and one cut at the token limit is re-asked once for
        brevity; then the vote fails."""
        check_model(model)  # a misspelt model raises ConfigError at the caller
        budget = contract.budget
        # Counted once it holds a slot: a judgment cancelled while waiting for
        # one made no call. Every HTTP request is a call: retries, re-asks and
        # a refused format's request included.
        endpoint = f"{model} {s.api_base or ''}"
        watch = self.session.watch

        def observe(sent: float, ended: float, outcome: str) -> None:
            watch.observe(endpoint, f"{model} at {s.api_base}" if s.api_base
                          else model, sent, ended, outcome, timeout=s.timeout,
                          concurrency=self.session.loop.concurrency)

        async with watch.gate(endpoint), \
                await self.session.loop.slot(model, paced=False) as slot:
            async def before_request() -> None:
                await slot.pace()
                self.session.spend_call(model)
                usage.calls += 1

            # Timeouts are bounded across the re-ask too (runtime/client.py).
            timeouts = TimeBudget()
            for attempt in range(2):
                reply = await self._ask(s, model, messages, index, contract,
                                        before_request, timeouts, observe)
                usage.add(reply)
                self.session.spend(reply)
                if reply.finish_reason == "length":
                    if attempt == 1:
                        raise JudgeCallError(
                            "truncated reply: the judge stopped at its token limit: "
                            f"reply cut at {budget} tokens twice (finish_reason="
                            "length); raise --llmjudge-max-tokens",
                            cause="reply cut", retries=attempt)
                    follow = BREVITY
                else:
                    try:
                        contract.check(reply.content)
                        return reply
                    except JudgeParseError:
                        if attempt == 1:
                            raise
                    follow = contract.reask
                messages = [*messages,
                            {"role": "assistant", "content": reply.content},
                            {"role": "user", "content": follow}]
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ask(self, s: Settings, model: str, messages: list[dict[str, str]],
                   index: int, contract: Contract,
                   before_request: Callable[[], Awaitable[None]],
                   timeouts: TimeBudget,
                   observe: Callable[[float, float, str], None]) -> Reply:
        """One request, stepping down the reply formats the endpoint refuses."""
        while True:
            name = self.session.reply_format(model, s.api_base, s.response_format)
            try:
                return await complete(
                    model=model, api_base=s.api_base, api_key=s.api_key,
                    messages=messages, response_format=contract.fmt(name),
                    temperature=s.temperature, seed=index if index >= 2 else None,
                    timeout=s.timeout, retries=s.retries, logprobs=s.logprobs,
                    max_tokens=contract.budget, before_attempt=before_request,
                    budget=timeouts, observe=observe)
            except JudgeCallError as exc:
                if exc.cause != FORMAT_REFUSED or name == FORMAT_CHAIN[-1]:
                    raise
                self.session.refuse_format(model, s.api_base, name)


@dataclass(frozen=True)
class Contract:
    """What a reply must be: the ``response_format`` for each format name,
    the check that raises ``JudgeParseError`` off the contract, the re-ask
    text, and the reply's token budget."""

    kind: str
    fmt: Callable[[str], dict[str, Any] | None]
    check: Callable[[str], object]
    budget: int
    reask: str = REASK


def max_tokens(task: Task) -> int:
    """The reply's token budget: the setting, else room for a short reasoning
    per criterion (a rambling local model stops here instead of at its
    context's end)."""
    if task.settings.max_tokens is not None:
        return task.settings.max_tokens
    n = len(task.rubric.criteria) if isinstance(task.rubric, Rubric) else 1
    return 512 + 160 * n


def to_vote(task: Task, pres: Presentation, r: Reply, base: dict[str, Any], *,
            cached: bool) -> Vote:
    """Read a reply as a vote (raises ``JudgeParseError`` off the contract)."""
    top, low = _range(task)
    parsed = parse_reply(r.content, task.kind, names=pres.shown, top=top, low=low)
    extra: dict[str, Any] = {}
    if task.kind is Kind.CRITERIA:
        order = reply_order(r.content, pres.shown)
        extra["verdicts"] = parsed.verdicts
        extra["logprob_pass"] = logprob_pass(r.logprobs, tuple(order))
    elif task.kind is Kind.SCALE:
        extra["level"] = parsed.level
        if parsed.level is not None:
            extra["score_mean"] = score_mean(r.logprobs, parsed.level, low, top)
    else:
        w = parsed.winner
        if pres.swapped and w in ("A", "B"):
            w = "B" if w == "A" else "A"
        extra["winner"] = w
    return Vote(**base, **extra, reasoning=parsed.reasoning,
                stated_confidence=parsed.confidence, cached=cached,
                tokens=r.prompt_tokens + r.completion_tokens)


def _range(task: Task) -> tuple[int, int]:
    """(highest, lowest) score of a scale task; (0, 1) otherwise."""
    if isinstance(task.rubric, Scale):
        return task.rubric.top, task.rubric.bottom
    return 0, 1


def reply_order(content: str, shown: tuple[str, ...]) -> list[str]:
    """Criterion names in the order the reply lists them (for log-probs)."""
    low = content.lower()
    pos = {n: low.find(f'"{n.lower()}"') for n in shown}
    return sorted((n for n in shown if pos[n] >= 0), key=lambda n: pos[n])
