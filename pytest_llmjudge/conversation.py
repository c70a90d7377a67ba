"""Conversations: judge a whole chat, its last assistant turn in context, or
each assistant turn (within a sliding window of the messages before it).

Every turn is an ordinary judged task (both presentation orders, confidence,
adaptive sampling, cache, records), judged concurrently; the reports hold one
row per conversation, a row per turn under it. The result, a
``ConversationVerdict``, holds each turn's ``Verdict``; its pass mark can be a
share of turns (``min_share=0.9``). The assistant's role, the scenario and the
expected outcome reach the judge as the test author's guidance.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llmjudge.assertion import current_judge
from pytest_llmjudge.constants import REASONING_SHOWN
from pytest_llmjudge.exceptions import (
    ConfigError,
    JudgedAssertionError,
    JudgeOutcomeError,
)
from pytest_llmjudge.judging.aggregate import check_key, one_row, part_rows
from pytest_llmjudge.judging.expectations import tolerated
from pytest_llmjudge.judging.message import format_verdict, headline
from pytest_llmjudge.marks import check_threshold, share_outcome
from pytest_llmjudge.messages import (
    Message,
    ShapeError,
    read_conversation,
    show_conversation,
    show_turn,
)
from pytest_llmjudge.text import clip, scrub
from pytest_llmjudge.verdict import Outcome, Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.judging.judge import Judge
    from pytest_llmjudge.judging.task import Task

TURNS = ("each", "last", "whole")
TurnsMode = Literal["each", "last", "whole"]
#: Failing turns shown in full in a failure message (the rest are counted).
SHOWN_TURNS = 5
#: How much of a failing turn the message quotes.
QUOTE_CHARS = 240


class Conversation:
    """A conversation to show the judge as numbered messages (tool calls and
    their results under the assistant turn that made them), not as JSON:
    ``assert_judged(reply, rubric, input=Conversation(history))``."""

    def __init__(self, value: object, *, what: str = "the conversation"):
        __tracebackhide__ = True
        try:
            self.messages = read_conversation(value, what)
        except ConfigError as exc:
            raise exc.with_traceback(None) from None
        if not self.messages:
            raise ShapeError(f"{what} is empty: there is nothing to judge")

    def llmjudge_text(self) -> str:
        return show_conversation(self.messages)

    def __len__(self) -> int:
        return len(self.messages)


class TurnVerdict(BaseModel):
    """One judged turn: where it is in the conversation, what was judged."""

    model_config = ConfigDict(frozen=True)

    turn: int = Field(description="1-based number of the message in the "
                      "conversation (0 for the whole conversation).")
    role: str
    text: str = Field(description="The judged turn as shown to the judge.")
    verdict: Verdict


class ConversationVerdict(BaseModel):
    """The verdict on a conversation: per-turn verdicts and the share of turns
    that passed. ``bool(result)`` is ``result.passed``."""

    model_config = ConfigDict(frozen=True)

    turns_mode: TurnsMode
    outcome: Outcome
    passed: bool
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the "
                              "outcome, from the turns' confidences (independent).")
    share: float | None = Field(default=None, description="Share of judged turns "
                                "that passed (each).")
    min_share: float | None = None
    window: int | None = None
    rubric: str = ""
    expect: Literal["pass", "fail"] = "pass"
    turns: list[TurnVerdict] = Field(default_factory=list)
    brief: str | None = Field(default=None, description="Role, scenario and "
                              "expected outcome, as the judge was told them.")

    @property
    def met(self) -> bool:
        want = Outcome.FAIL if self.expect == "fail" else Outcome.PASS
        return self.outcome is want

    @property
    def failing(self) -> list[TurnVerdict]:
        """Turns that did not pass (failed, inconclusive or judge errors)."""
        return [t for t in self.turns if t.verdict.outcome is not Outcome.PASS]

    @property
    def calls(self) -> int:
        return sum(t.verdict.calls for t in self.turns)

    @property
    def cache_hits(self) -> int:
        return sum(t.verdict.cache_hits for t in self.turns)

    def __bool__(self) -> bool:
        return self.passed

    def explain(self) -> str:
        """The result for a plain terminal: headline, then the failing turns
        named and quoted with the judge's reasons."""
        return scrub(_explain(self))


# ------------------------------------------------------------------ public API
def judge_conversation(conversation: object, rubric: object, *,
                       turns: str = "each", window: int | None = None,
                       min_share: float | None = None, role: str | None = None,
                       scenario: str | None = None,
                       expected_outcome: str | None = None,
                       judge: Judge | None = None, **kwargs: Any
                       ) -> ConversationVerdict:
    """Judge a conversation; never raises on a failing verdict. Arguments as
    for ``assert_conversation`` (``judge``: the ``judge`` fixture, default
    the running test's judge)."""
    __tracebackhide__ = True
    return _judged(conversation, rubric, turns=turns, window=window,
                   min_share=min_share, role=role, scenario=scenario,
                   expected_outcome=expected_outcome, judge=judge, kwargs=kwargs)[0]


def _judged(conversation: object, rubric: object, *, judge: Judge | None,
            kwargs: dict[str, Any], **how: Any) -> tuple[ConversationVerdict, str]:
    """The result, and what an inconclusive one does to the test (the
    resolved setting: call, marker, command line...)."""
    __tracebackhide__ = True
    judge = judge if judge is not None else current_judge()
    plan = _plan(judge, conversation, rubric, kwargs=kwargs, **how)
    tasks = [t for _, _, _, t in plan.items]
    each = plan.mode == "each"  # then one report row for all the turns
    result = _combine(plan, judge.session.loop.run(_all(judge, tasks, each)))
    if each:
        node = judge.node.nodeid if judge.node else ""
        judge.session.finish(one_row(
            part_rows([(f"turn {t.turn}", t.text, t.verdict) for t in result.turns]),
            [t.verdict for t in result.turns], outcome=result.outcome,
            confidence=result.confidence,
            score=result.share, pass_mark=plan.min_share or 0.0,
            rubric=result.rubric, excerpt=result.turns[-1].text,
            key=check_key(node, "conversation", [t.identity(node) for t in tasks])),
            judge.node)
    return result, tasks[0].settings.inconclusive


def assert_conversation(conversation: object, rubric: object, *,
                        turns: str = "each", window: int | None = None,
                        min_share: float | None = None, role: str | None = None,
                        scenario: str | None = None,
                        expected_outcome: str | None = None,
                        **kwargs: Any) -> ConversationVerdict:
    """Assert that a judge finds a conversation meets ``rubric``.

    Args:
        conversation: Messages in order: OpenAI-style dicts (tool calls and
            tool results kept), pydantic models (LangChain, DeepEval ``Turn``),
            dataclasses, or objects with ``role`` and ``content``.
        rubric: As for ``assert_judged`` (string, list, ``Rubric``, ``Scale``,
            file).
        turns: ``"each"`` assistant turn (the default), the ``"last"``
            assistant turn in its context, or the ``"whole"`` conversation.
        window: Show the judge only the ``window`` messages before a judged
            turn (system messages always); default: all of them.
        min_share: Share of assistant turns that must pass (``"each"``;
            default 1.0: every turn).
        role: The assistant's role ("a support agent for ACME").
        scenario: What the conversation is about, from the user's side.
        expected_outcome: How the conversation should end.
        **kwargs: As for ``assert_judged``: ``context``, ``expected``,
            ``reference``, ``threshold``, ``min_score``, ``pass_score``,
            ``model``, ``instructions``, ``examples``, ``expect`` (whole and
            last only) and per-call settings.

    Returns:
        The ``ConversationVerdict`` when it is what the test expects.

    Raises:
        JudgedAssertionError: Too few turns passed (the message names and
            quotes the failing turns), or inconclusive under ``fail``.
        JudgeOutcomeError: The outcome hangs on turns the judge failed on.
    """
    __tracebackhide__ = True
    result, action = _judged(conversation, rubric, turns=turns, window=window,
                             min_share=min_share, role=role, scenario=scenario,
                             expected_outcome=expected_outcome, judge=None,
                             kwargs=kwargs)
    return settle_conversation(result, action)


def settle_conversation(result: ConversationVerdict, action: str = "fail"
                        ) -> ConversationVerdict:
    """The test's fate, as ``assert_judged`` settles a single verdict;
    ``action``: what an inconclusive result does (fail, xfail, skip, warn)."""
    __tracebackhide__ = True
    if result.met:
        return result
    message = result.explain()
    first = (result.failing or result.turns)[0].verdict
    if result.outcome is Outcome.JUDGE_ERROR:
        err = next(t.verdict for t in result.turns
                   if t.verdict.outcome is Outcome.JUDGE_ERROR)
        raise ConversationJudgeError(message, err, result)
    if result.outcome is Outcome.INCONCLUSIVE and tolerated(message, action):
        return result
    raise ConversationAssertionError(message, first, result)


class ConversationAssertionError(JudgedAssertionError):
    """A judged conversation did not meet its rubric; ``verdict`` is the first
    failing turn's, ``result`` the whole ``ConversationVerdict``."""

    def __init__(self, message: str, verdict: Verdict, result: ConversationVerdict):
        super().__init__(message, verdict)
        self.result = result


class ConversationJudgeError(JudgeOutcomeError):
    """The judge failed on turns the outcome depends on (``judge_error``)."""

    def __init__(self, message: str, verdict: Verdict, result: ConversationVerdict):
        super().__init__(message, verdict)
        self.result = result


# ------------------------------------------------------------------ planning
class _Plan:
    def __init__(self, mode: TurnsMode, window: int | None, min_share: float | None,
                 brief: str | None) -> None:
        self.mode, self.window, self.min_share = mode, window, min_share
        self.brief = brief
        #: (message number, role, judged text, task)
        self.items: list[tuple[int, str, str, Task]] = []


def _plan(judge: Judge, conversation: object, rubric: object, *, turns: str,
          window: int | None, min_share: float | None, role: str | None,
          scenario: str | None, expected_outcome: str | None,
          kwargs: dict[str, Any]) -> _Plan:
    __tracebackhide__ = True
    try:
        if turns not in TURNS:
            raise ConfigError(f"turns={turns!r}: use 'each' (every assistant turn), "
                              "'last' (the last assistant turn in its context) or "
                              "'whole' (the conversation as one text)")
        if "input" in kwargs:
            raise ConfigError("input= is the conversation itself here: give what "
                              "the user wants as scenario= (or context=)")
        for k in ("better_than", "at_least_as_good_as"):
            if kwargs.get(k) is not None:
                raise ConfigError(f"{k}= does not apply to a conversation: compare "
                                  "two replies with assert_judged")
        if window is not None and (isinstance(window, bool) or
                                   not isinstance(window, int) or window < 0):
            raise ConfigError(f"window must be a whole number of messages >= 0, "
                              f"got {window!r}")
        if window is not None and turns == "whole":
            raise ConfigError("window= applies to turns='each' or 'last' (the "
                              "messages shown before a judged turn)")
        if min_share is not None:
            if turns != "each":
                raise ConfigError("min_share= is the share of assistant turns that "
                                  "must pass: it applies to turns='each'")
            min_share = check_threshold(min_share, "min_share")
        expect = kwargs.get("expect", "pass")
        if turns == "each" and expect != "pass":
            raise ConfigError("expect='fail' over each turn is ambiguous: make "
                              "the negative control one turn (turns='last') or "
                              "the whole conversation")
        for name, v in (("role", role), ("scenario", scenario),
                        ("expected_outcome", expected_outcome)):
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ConfigError(f"{name}= must be a non-empty str, got {v!r}")
        msgs = read_conversation(conversation, "the conversation")
    except ConfigError as exc:
        raise exc.with_traceback(None) from None
    brief = _brief(role, scenario, expected_outcome)
    mode: TurnsMode = "each" if turns == "each" else \
        "last" if turns == "last" else "whole"
    plan = _Plan(mode, window, (1.0 if min_share is None else min_share)
                 if turns == "each" else None, brief)
    own = kwargs.pop("instructions", None)
    base = own if own is not None else judge.settings.instructions
    if turns == "whole":
        if not msgs:
            raise ShapeError("the conversation is empty: there is nothing to "
                             "judge").with_traceback(None)
        guide = _join(brief, WHOLE_NOTE, base)
        plan.items.append((0, "conversation", show_conversation(msgs),
                           judge.task(show_conversation(msgs), rubric,
                                      instructions=guide, **kwargs)))
        return plan
    # In a chat a turn is a reply: a message that only calls tools is a step,
    # shown (with its results) before the reply. An agent's steps alone (no
    # assistant text anywhere) are judged step by step.
    steps = [i for i, m in enumerate(msgs) if m.role == "assistant"]
    picks = [i for i in steps if msgs[i].content.strip()] or steps
    if not picks:
        raise ShapeError("the conversation has no assistant turn to judge: "
                         "use turns='whole', or pass the assistant's messages "
                         "with role 'assistant'").with_traceback(None)
    if turns == "last":
        picks = picks[-1:]
    note = TURN_NOTE if window is None else TURN_NOTE + WINDOW_NOTE.format(k=window)
    guide = _join(brief, note, base)
    for i in picks:
        shown = _window(msgs[:i], window)
        context = show_conversation([msgs[j] for j in shown],
                                    [j + 1 for j in shown]) if shown else None
        text = show_turn(msgs[i])
        task = judge.task(text, rubric, input=context, instructions=guide,
                          **kwargs)
        plan.items.append((i + 1, msgs[i].role, text, task))
    return plan


WHOLE_NOTE = ("The <output> is a whole conversation, its messages numbered in "
              "order; judge the conversation as a whole.")
TURN_NOTE = ("The <output> is one assistant turn of a conversation; the <input> "
             "holds the messages before it, for context. Judge only that turn.")
WINDOW_NOTE = " Only the last {k} message(s) before it are shown."


def _brief(role: str | None, scenario: str | None, outcome: str | None
           ) -> str | None:
    parts = [f"{k}: {v.strip()}" for k, v in (
        ("The assistant's role", role), ("Scenario", scenario),
        ("Expected outcome of the conversation", outcome)) if v is not None]
    return "\n".join(parts) or None


def _join(*parts: str | None) -> str:
    return "\n\n".join(p for p in parts if p)


def _window(before: Sequence[Message], k: int | None) -> list[int]:
    """The places (0-based) of the messages shown before a judged turn: all
    of them, or the system messages and the last ``k`` others (results
    attached to a shown call stay with it)."""
    if k is None:
        return list(range(len(before)))
    visible = [i for i, m in enumerate(before)
               if m.role not in ("system", "developer") and not m.attached]
    keep = set(visible[len(visible) - k:] if k else [])
    return [i for i, m in enumerate(before)
            if i in keep or m.role in ("system", "developer")]


async def _all(judge: Judge, tasks: list[Task], part: bool) -> list[Verdict]:
    return list(await asyncio.gather(*(judge.run(t, part=part) for t in tasks)))


# ------------------------------------------------------------------ deciding
def _combine(plan: _Plan, verdicts: list[Verdict]) -> ConversationVerdict:
    turns = [TurnVerdict(turn=n, role=role, text=text, verdict=v)
             for (n, role, text, _), v in zip(plan.items, verdicts, strict=True)]
    first = verdicts[0]
    if plan.mode != "each":
        return ConversationVerdict(
            turns_mode=plan.mode, outcome=first.outcome, passed=first.passed,
            confidence=first.confidence, rubric=first.rubric, expect=first.expect,
            window=plan.window, turns=turns, brief=plan.brief,
            share=None if first.outcome not in (Outcome.PASS, Outcome.FAIL)
            else float(first.passed))
    mark = plan.min_share if plan.min_share is not None else 1.0
    held = [True if v.outcome is Outcome.PASS else False
            if v.outcome is Outcome.FAIL else None for v in verdicts]
    outcome, conf = share_outcome(
        held, [v.confidence if h else 1 - v.confidence if h is False else 0.5
               for v, h in zip(verdicts, held, strict=True)], mark,
        errored=any(v.outcome is Outcome.JUDGE_ERROR for v in verdicts))
    passes = sum(v.outcome is Outcome.PASS for v in verdicts)
    return ConversationVerdict(
        turns_mode="each", outcome=outcome, passed=outcome is Outcome.PASS,
        confidence=conf, share=passes / len(verdicts), min_share=mark,
        window=plan.window, rubric=first.rubric, turns=turns, brief=plan.brief)


# ------------------------------------------------------------------ showing
def _explain(r: ConversationVerdict) -> str:
    if r.turns_mode != "each":
        t = r.turns[0]
        where = ("the whole conversation" if r.turns_mode == "whole" else
                 f"the last assistant turn (turn {t.turn})")
        lines = [f"judged conversation, {where}:",
                 textwrap.indent(format_verdict(t.verdict), "  ")]
        if r.brief:
            lines.insert(1, textwrap.indent(r.brief, "  "))
        return "\n".join(lines)
    word = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE",
            "judge_error": "JUDGE ERROR"}[r.outcome.value]
    n = len(r.turns)
    ok = sum(t.verdict.outcome is Outcome.PASS for t in r.turns)
    mark = r.min_share if r.min_share is not None else 1.0
    lines = [f"judged conversation: {word} {ok}/{n} assistant turns passed "
             f"(share {ok / n:.2f}, pass mark {mark:.2f}; confidence "
             f"{r.confidence:.2f})",
             f"  rubric: {r.rubric}",
             "  turns: each assistant turn" + (
                 f", with the {r.window} message(s) before it" if r.window is not None
                 else ", with every message before it")]
    if r.brief:
        lines.append(textwrap.indent(r.brief, "  "))
    failing = r.failing
    for t in failing[:SHOWN_TURNS]:
        quote = clip(" ".join(t.text.split()), QUOTE_CHARS)
        lines.append(f"  turn {t.turn} ({t.role}): \"{quote}\"")
        lines.append(f"    {headline(t.verdict)}")
        lines += _reasons(t.verdict)
    if len(failing) > SHOWN_TURNS:
        lines.append(f"  ... and {len(failing) - SHOWN_TURNS} more turn(s) not "
                     "passing: " + ", ".join(str(t.turn) for t in
                                             failing[SHOWN_TURNS:]))
    good = [str(t.turn) for t in r.turns if t.verdict.outcome is Outcome.PASS]
    if good:
        lines.append(f"  passed: turn(s) {', '.join(good)}")
    model = next((t.verdict.model for t in r.turns if t.verdict.model), "-")
    lines.append(f"  judge: {model}; {sum(t.verdict.samples for t in r.turns)} "
                 f"presentation(s), {r.calls} call(s), {r.cache_hits} from "
                 "cache/records")
    return "\n".join(lines)


def _reasons(v: Verdict) -> list[str]:
    """A failing turn's reasons: the criteria that did not pass, the error."""
    out = []
    if v.error:
        out.append(f"      judge error: {clip(v.error, REASONING_SHOWN)}")
    for c in v.criteria:
        if c.passed is True:
            continue
        mark = "FAIL" if c.passed is False else "????"
        out.append(f"      [{mark}] {c.name}: votes {c.pass_votes} pass / "
                   f"{c.fail_votes} fail")
        if c.reasoning:
            out += textwrap.wrap(clip(c.reasoning, REASONING_SHOWN), 88,
                                 initial_indent="        judge: ",
                                 subsequent_indent="               ")
    if v.flaky_reason:
        out.append(f"      flaky: {clip(v.flaky_reason, REASONING_SHOWN)}")
    return out
