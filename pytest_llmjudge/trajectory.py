"""Agent trajectories: deterministic matchers (no judge) and a readable form
for judged criteria.

``assert_trajectory(actual, expected, mode=..., args=...)`` compares the tool
calls an agent made with the ones a test expects:

- ``strict``: the same calls in the same order;
- ``unordered``: the same calls in any order;
- ``subset``: every call the agent made is one of the expected ones (it did
  nothing beyond them; expected calls may be missing);
- ``superset``: every expected call was made (other calls may come too).

Arguments are compared ``exact`` (after parsing JSON argument strings),
``ignore``\\d, ``subset`` (the actual arguments are a part of the expected
ones), ``superset`` (the actual arguments include every expected one: give
only the keys that matter), ``judged`` (the judge decides whether they mean
the same: "Paris, FR" for "Paris"; each pair in both orders, concurrently,
cached; a judge failure the match hangs on is a judge error, never a plain
mismatch) or by your callable ``(actual, expected) -> bool``;
``args_by_tool={"search": "ignore"}`` sets it per tool.

``Trajectory(value)`` wraps a trajectory so that ``assert_judged`` shows it
to the judge as numbered steps (tool, arguments, result) instead of JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmjudge.exceptions import ConfigError, JudgeOutcomeError
from pytest_llmjudge.messages import (
    Message,
    ShapeError,
    ToolCall,
    fields_of,
    is_message,
    read_conversation,
    read_steps,
    show_args,
    show_conversation,
    show_steps,
    unwrap,
)
from pytest_llmjudge.text import clip
from pytest_llmjudge.verdict import Outcome, Verdict

MODES = ("strict", "unordered", "subset", "superset")
ARG_MODES = ("exact", "ignore", "subset", "superset", "judged")
JUDGED_ARGS = ("The actual arguments of this call to the tool {name!r} mean the same "
               "as the expected ones: the same values, though spelling, letter "
               "case, formatting, units and synonyms may differ; nothing the "
               "expected arguments set is missing or different in meaning")
ArgMatcher = Callable[[Any, Any], Any]
ArgSpec = str | ArgMatcher
#: Widest cell of the side-by-side table.
CELL = 60


class TrajectoryMismatchError(AssertionError):
    """The agent's tool calls do not match the expected ones; carries the
    ``TrajectoryMatch``."""

    def __init__(self, message: str, match: TrajectoryMatch):
        super().__init__(message)
        self.match = match


@dataclass(frozen=True)
class TrajectoryMatch:
    """The outcome of comparing two trajectories. ``bool(match)`` is
    ``match.matched``."""

    matched: bool
    mode: str
    args: str
    expected: tuple[ToolCall, ...]
    actual: tuple[ToolCall, ...]
    #: (expected index, actual index) of the calls matched with each other.
    pairs: tuple[tuple[int, int], ...]
    #: Expected calls with no actual one (0-based), and actual calls with no
    #: expected one, whether or not the mode minds them.
    missing: tuple[int, ...]
    unexpected: tuple[int, ...]
    #: The first mismatch in words (``None`` when matched).
    reason: str | None

    def __bool__(self) -> bool:
        return self.matched

    def explain(self) -> str:
        """The failure message: the first mismatch, then expected and actual
        steps side by side (``>`` marks the rows that break the match)."""
        head = (f"trajectory {'matches' if self.matched else 'MISMATCH'} "
                f"(mode {self.mode}, args {self.args})")
        lines = [head + (f": {self.reason}" if self.reason else "")]
        return "\n".join(lines + _table(self))


class Trajectory:
    """A trajectory to show the judge: numbered steps (tool, arguments,
    result), and the messages around them when it is a message list.

    ``assert_judged(Trajectory(messages), "Reaches the goal with no
    unnecessary step", expected=Trajectory(reference))``.
    """

    def __init__(self, value: object, *, what: str = "the trajectory"):
        __tracebackhide__ = True
        try:
            items = unwrap(value, what)
            self.messages: list[Message] | None = None
            if items and all(is_message(fields_of(x, what)) for x in items):
                self.messages = read_conversation(items, what)
            self.steps = read_steps(items, what)
        except ConfigError as exc:
            raise exc.with_traceback(None) from None
        if not self.steps and not self.messages:
            raise ShapeError(f"{what} is empty: there is nothing to judge")

    def llmjudge_text(self) -> str:
        """How the judge is shown it (``assert_judged`` calls this)."""
        if self.messages is not None:
            return "Agent trajectory (messages in order):\n" + \
                show_conversation(self.messages)
        return "Agent trajectory (tool calls in order):\n" + show_steps(self.steps)

    def __len__(self) -> int:
        return len(self.steps)


def match_trajectory(actual: object, expected: object, *, mode: str = "strict",
                     args: ArgSpec = "exact",
                     args_by_tool: Mapping[str, ArgSpec] | None = None
                     ) -> TrajectoryMatch:
    """Compare the tool calls of ``actual`` with those of ``expected``
    (message lists, step lists, pydantic models, dataclasses); never raises
    on a mismatch. Raises ``ConfigError`` on a bad mode or a trajectory that
    cannot be read."""
    __tracebackhide__ = True
    try:
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r}: use one of {', '.join(MODES)}")
        default = _matcher(args, "args")
        per_tool = {str(k): _matcher(v, f"args_by_tool[{k!r}]")
                    for k, v in (args_by_tool or {}).items()}
        exp = read_steps(expected, "the expected trajectory", strict=True)
        act = read_steps(actual, "the actual trajectory")
    except ConfigError as exc:
        raise exc.with_traceback(None) from None

    specs = {str(k): v for k, v in (args_by_tool or {}).items()}
    judged = _judge_args(exp, act, lambda n: specs.get(n, args) == "judged",
                         strict=mode == "strict")

    def same(e: ToolCall, a: ToolCall) -> bool:
        if e.name != a.name:
            return False
        if specs.get(e.name, args) == "judged":
            v = judged.get((id(e), id(a)))
            return _norm(a.args) == _norm(e.args) or (
                v is not None and v.outcome is Outcome.PASS)
        return bool(per_tool.get(e.name, default)(a.args, e.args))

    label = args if isinstance(args, str) else getattr(args, "__name__", "callable")
    if per_tool:
        label += ", per tool: " + ", ".join(
            f"{k}={v if isinstance(v, str) else getattr(v, '__name__', 'callable')}"
            for k, v in (args_by_tool or {}).items())
    if mode == "strict":
        pairs = [(i, i) for i in range(min(len(exp), len(act)))
                 if same(exp[i], act[i])]
    else:
        pairs = _pairing(exp, act, same)
    got_e = {e for e, _ in pairs}
    got_a = {a for _, a in pairs}
    missing = tuple(i for i in range(len(exp)) if i not in got_e)
    unexpected = tuple(i for i in range(len(act)) if i not in got_a)
    reason = _reason(mode, exp, act, missing, unexpected, per_tool, default)
    if reason is not None and judged:
        # The judge's word on the calls left unmatched: a failure the match
        # hangs on is a judge error, an undecided pair is said so.
        loose = {id(exp[i]) for i in missing} | {id(act[j]) for j in unexpected}
        hanging = [v for (e, a), v in judged.items()
                   if v.outcome is not Outcome.PASS and (e in loose or a in loose)]
        error = next((v for v in hanging if v.outcome is Outcome.JUDGE_ERROR), None)
        if error is not None:
            raise JudgeOutcomeError(
                f"{reason}; but the judge failed on whether the arguments mean the "
                f"same ({error.error}): the match cannot be decided", error
            ).with_traceback(None)
        if any(v.outcome is Outcome.INCONCLUSIVE for v in hanging):
            reason += " (the judge was inconclusive on whether the arguments " \
                "mean the same)"
    return TrajectoryMatch(reason is None, mode, label, tuple(exp), tuple(act),
                           tuple(sorted(pairs)), missing, unexpected, reason)


def _judge_args(exp: Sequence[ToolCall], act: Sequence[ToolCall],
                judged: Callable[[str], bool], *, strict: bool
                ) -> dict[tuple[int, int], Verdict]:
    """The judge's verdicts on every (expected, actual) call pair whose
    arguments are ``judged`` and not already equal, asked together."""
    need = [(e, a) for i, e in enumerate(exp) for j, a in enumerate(act)
            if (i == j or not strict) and e.name == a.name and judged(e.name)
            and _norm(a.args) != _norm(e.args)]
    if not need:
        return {}
    from pytest_llmjudge.assertion import current_judge

    items = [{"output": show_args(a.args), "expected": show_args(e.args),
              "rubric": JUDGED_ARGS.format(name=e.name)} for e, a in need]
    verdicts = current_judge().check_many(items)
    return {(id(e), id(a)): v for (e, a), v in zip(need, verdicts, strict=True)}


def assert_trajectory(actual: object, expected: object, *, mode: str = "strict",
                      args: ArgSpec = "exact",
                      args_by_tool: Mapping[str, ArgSpec] | None = None
                      ) -> TrajectoryMatch:
    """Assert that the agent's tool calls match the expected ones (no judge).

    Args:
        actual: What the agent did: OpenAI-style messages with ``tool_calls``,
            LangChain messages, or a list of ``{"name", "args"}`` steps.
        expected: The calls the test expects, in any of the same shapes.
        mode: ``strict`` (same calls, same order), ``unordered`` (same calls,
            any order), ``subset`` (no call beyond the expected ones) or
            ``superset`` (every expected call made, others allowed).
        args: How arguments are compared: ``exact``, ``ignore``, ``subset``,
            ``superset``, ``judged`` (by the judge) or a callable
            ``(actual_args, expected_args) -> bool``.
        args_by_tool: ``args`` per tool name, over the default.

    Returns:
        The ``TrajectoryMatch`` when it matches.

    Raises:
        TrajectoryMismatchError: an ``AssertionError`` naming the first
            mismatch and showing expected and actual steps side by side.
        ConfigError: a bad mode or argument matcher, or a trajectory that
            cannot be read.
    """
    __tracebackhide__ = True
    result = match_trajectory(actual, expected, mode=mode, args=args,
                              args_by_tool=args_by_tool)
    if not result.matched:
        raise TrajectoryMismatchError(result.explain(), result)
    return result


# ------------------------------------------------------------------ matching
def _matcher(spec: object, what: str) -> ArgMatcher:
    if callable(spec):
        return spec
    if spec == "exact":
        return lambda a, e: _norm(a) == _norm(e)
    if spec == "ignore":
        return lambda a, e: True
    if spec == "subset":
        return lambda a, e: _within(a, e)
    if spec == "superset":
        return lambda a, e: _within(e, a)
    if spec == "judged":  # decided by the judge (see _judge_args)
        return lambda a, e: _norm(a) == _norm(e)
    raise ConfigError(f"{what}={spec!r}: use one of {', '.join(ARG_MODES)}, or a "
                      "callable (actual_args, expected_args) -> bool")


def _norm(v: Any) -> Any:
    """Equal values compare equal whatever their container (tuple or list)."""
    if isinstance(v, Mapping):
        return {str(k): _norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return v


def _within(part: Any, whole: Any) -> bool:
    """Every key of ``part`` is in ``whole`` with an equal value (non-dicts:
    equal)."""
    if not isinstance(part, Mapping) or not isinstance(whole, Mapping):
        return bool(_norm(part) == _norm(whole))
    return all(k in whole and _norm(v) == _norm(whole[k]) for k, v in part.items())


def _pairing(exp: Sequence[ToolCall], act: Sequence[ToolCall],
             same: Callable[[ToolCall, ToolCall], bool]) -> list[tuple[int, int]]:
    """A largest one-to-one matching of expected with actual calls (augmenting
    paths, so a loose matcher cannot steal the only partner of another);
    ties go to the earliest calls."""
    ok = [[same(e, a) for a in act] for e in exp]
    owner: dict[int, int] = {}  # actual index -> expected index

    def grab(i: int, seen: set[int]) -> bool:
        for j in range(len(act)):
            if ok[i][j] and j not in seen:
                seen.add(j)
                if j not in owner or grab(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(exp)):
        grab(i, set())
    return sorted((i, j) for j, i in owner.items())


def _reason(mode: str, exp: Sequence[ToolCall], act: Sequence[ToolCall],
            missing: Sequence[int], unexpected: Sequence[int],
            per_tool: Mapping[str, ArgMatcher], default: ArgMatcher) -> str | None:
    """The first mismatch in words, or None when the mode is satisfied."""
    if mode == "strict":
        for i in range(max(len(exp), len(act))):
            if i >= len(act):
                return (f"step {i + 1}: expected {exp[i].call()}, but the agent made "
                        f"only {len(act)} call(s)")
            if i >= len(exp):
                return (f"step {i + 1}: unexpected extra call {act[i].call()} "
                        f"(expected {len(exp)} call(s))")
            if i in missing:
                return f"step {i + 1}: {_differ(exp[i], act[i])}"
        return None
    mind_missing = mode in ("unordered", "superset")
    mind_extra = mode in ("unordered", "subset")
    if mind_missing and missing:
        e = exp[missing[0]]
        near = next((act[j] for j in unexpected if act[j].name == e.name), None)
        tail = f"; closest: {_differ(e, near)}" if near is not None else ""
        return (f"expected step {missing[0] + 1} {e.call()} was not made{tail}")
    if mind_extra and unexpected:
        a = act[unexpected[0]]
        return f"actual step {unexpected[0] + 1} {a.call()} was not expected"
    return None


def _differ(e: ToolCall, a: ToolCall) -> str:
    """How one actual call differs from the expected one."""
    if e.name != a.name:
        return f"expected {e.call()}, got {a.call()}"
    if isinstance(e.args, Mapping) and isinstance(a.args, Mapping):
        keys = sorted(set(e.args) | set(a.args))
        diffs = [f"{k}: expected {_v(e.args, k)}, got {_v(a.args, k)}"
                 for k in keys if _norm(e.args.get(k, _NONE)) !=
                 _norm(a.args.get(k, _NONE))]
        if diffs:
            return f"{e.name} arguments differ ({'; '.join(diffs[:3])})"
    return f"{e.name} arguments differ: expected {show_args(e.args)}, got " \
        f"{show_args(a.args)}"


_NONE = object()


def _v(d: Mapping[str, Any], k: str) -> str:
    """One argument's value as JSON (``"1"`` and ``1`` differ), clipped."""
    if k not in d:
        return "(absent)"
    try:
        shown = json.dumps(d[k], ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        shown = str(d[k])
    return clip(shown, 40)


def _table(m: TrajectoryMatch) -> list[str]:
    """Expected and actual steps side by side. Strict: by position; other
    modes: matched pairs, then the expected calls not made, then the calls
    not expected."""
    rows: list[tuple[str, str, str, bool]] = []  # (n, expected, actual, breaks)
    if m.mode == "strict":
        ok = {e for e, _ in m.pairs}
        for i in range(max(len(m.expected), len(m.actual))):
            e = m.expected[i].call() if i < len(m.expected) else "-"
            a = m.actual[i].call() if i < len(m.actual) else "-"
            rows.append((str(i + 1), e, a, i not in ok))
    else:
        for i, j in m.pairs:
            rows.append((f"{i + 1}~{j + 1}", m.expected[i].call(),
                         m.actual[j].call(), False))
        breaks_missing = m.mode in ("unordered", "superset")
        breaks_extra = m.mode in ("unordered", "subset")
        for i in m.missing:
            rows.append((f"{i + 1}~", m.expected[i].call(), "- (not made)",
                         breaks_missing))
        for j in m.unexpected:
            rows.append((f"~{j + 1}", "- (not expected)", m.actual[j].call(),
                         breaks_extra))
    if not rows:
        return ["  (no tool calls on either side)"]
    left = [clip(r[1], CELL) for r in rows]
    width = max(len("expected"), *(len(x) for x in left))
    numw = max(len("#"), *(len(r[0]) for r in rows))
    out = [f"    {'#':<{numw}}  {'expected':<{width}}  actual"]
    for r, e in zip(rows, left, strict=True):
        mark = ">" if r[3] else " "
        out.append(f"  {mark} {r[0]:<{numw}}  {e:<{width}}  {clip(r[2], CELL)}")
    if m.mode != "strict":
        out.append("  (# is expected~actual step number)")
    return out
