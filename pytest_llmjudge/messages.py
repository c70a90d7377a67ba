"""Reading what apps produce: chat messages and agent steps, in any of the
shapes users already hold, into one plain form; and showing them readably.

Accepted per message: OpenAI-style dicts (``role``, ``content``,
``tool_calls`` with ``function.name`` / ``function.arguments``, ``tool``
messages with ``tool_call_id``), pydantic models (LangChain messages, OpenAI
SDK objects, DeepEval ``Turn``; read through ``model_dump()``), dataclasses
(``dataclasses.asdict()``), and objects with ``role`` / ``content``
attributes. Accepted per agent step: ``{"name", "args", "result"}`` (also
``tool``, ``arguments``, ``input``, ``input_parameters``, ``output``).
Nothing is ever read through ``repr()``. Pure functions: no judge here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmjudge.exceptions import ConfigError
from pytest_llmjudge.text import clip

#: Message ``type`` values of LangChain messages, mapped to OpenAI roles.
ROLE_OF_TYPE = {"human": "user", "ai": "assistant", "system": "system",
                "tool": "tool", "function": "tool", "developer": "developer",
                "AIMessageChunk": "assistant", "HumanMessageChunk": "user"}
ROLES = ("system", "developer", "user", "assistant", "tool")
_NAME_KEYS = ("name", "tool", "tool_name")
_ARG_KEYS = ("args", "arguments", "input", "input_parameters", "parameters")
_RESULT_KEYS = ("result", "output", "observation")


class ShapeError(ConfigError, TypeError):
    """A conversation or trajectory is not in a shape that can be read."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call: its name, its arguments (a dict when they are JSON),
    and the result the tool returned, when known."""

    name: str
    args: Any = field(default_factory=dict)
    id: str | None = None
    result: str | None = None

    def call(self) -> str:
        """``name({"arg": ...})``: the call as failure messages show it."""
        return f"{self.name}({show_args(self.args)})"


@dataclass(frozen=True)
class Message:
    """One message of a conversation, with its tool calls (results attached)."""

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    #: A tool message whose result is attached to its call (shown there).
    attached: bool = False


def show_args(args: Any) -> str:
    """Arguments as compact JSON (sorted keys), or as the text they were."""
    if isinstance(args, str):
        return args
    try:
        return json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(args)


def fields_of(value: object, what: str) -> dict[str, Any]:
    """A message or step's fields: a mapping as is, a pydantic model through
    ``model_dump()``, a dataclass through ``dataclasses.asdict()``, else the
    documented attributes (role, content, tool_calls, ...)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        out = dump()
        if isinstance(out, Mapping):
            return dict(out)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    known = ("role", "type", "content", "tool_calls", "tools_called",
             "tool_call_id", "name", *_ARG_KEYS, *_RESULT_KEYS)
    found = {k: getattr(value, k) for k in known if hasattr(value, k)}
    if "role" in found or "type" in found or "name" in found:
        return found
    raise ShapeError(
        f"{what} is a {type(value).__name__}: pass a dict (OpenAI-style message "
        "with role and content, or a step with name and args), a pydantic model, "
        "a dataclass, or an object with role and content attributes")


def unwrap(value: object, what: str) -> list[Any]:
    """The list of messages or steps in ``value`` (a list, a tuple, or a dict
    or object holding them under ``messages``)."""
    if value is None:
        raise ShapeError(f"{what} is None: pass a list of messages or steps")
    if isinstance(value, (str, bytes, bytearray)):
        raise ShapeError(
            f"{what} is a {type(value).__name__}: pass a list of messages (dicts "
            "with role and content) or of steps (dicts with name and args)")
    if isinstance(value, Mapping) and "messages" in value:
        value = value["messages"]
    elif not isinstance(value, (list, tuple)) and hasattr(value, "messages"):
        value = value.messages
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ShapeError(
            f"{what} is a {type(value).__name__}: pass a list of messages or steps "
            "(or a dict with a 'messages' list)")
    return list(value)


def text_of(content: Any) -> str:
    """Message content as text: a string as is; content blocks joined (text
    blocks by their text, others as ``[type]``); anything else as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                else:
                    parts.append(f"[{block.get('type', 'block')}]")
            else:
                parts.append(text_of(fields_of(block, "a content block")))
        return "\n".join(parts)
    return show_args(content)


def read_args(raw: Any, what: str, *, strict: bool) -> Any:
    """Arguments as a dict where they are JSON; a JSON string is parsed. A
    string that is not JSON is kept as text (an agent's bad call), or refused
    when ``strict`` (the test's own expected steps)."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            if strict:
                raise ShapeError(f"{what}: the arguments {clip(raw, 80)!r} are not "
                                 "JSON: give a dict or a JSON object string") from None
            return raw
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items()}
    return raw


def read_call(raw: object, what: str, *, strict: bool = False) -> ToolCall:
    """One tool call or step in any accepted shape."""
    f = fields_of(raw, what)
    if isinstance(f.get("function"), (Mapping,)) or hasattr(f.get("function"),
                                                             "model_dump"):
        fn = fields_of(f["function"], f"{what}'s function")
        name, args = fn.get("name"), fn.get("arguments", fn.get("args"))
    else:
        name = next((f[k] for k in _NAME_KEYS if f.get(k) is not None), None)
        args = next((f[k] for k in _ARG_KEYS if k in f and f[k] is not None), None)
    if not isinstance(name, str) or not name.strip():
        raise ShapeError(f"{what} has no tool name: give 'name' (or OpenAI's "
                         "function.name), e.g. {'name': 'search', 'args': {...}}")
    result = next((f[k] for k in _RESULT_KEYS if f.get(k) is not None), None)
    ident = f.get("id")
    return ToolCall(name.strip(), read_args(args, what, strict=strict),
                    str(ident) if ident else None,
                    None if result is None else text_of(result))


def is_message(f: Mapping[str, Any]) -> bool:
    """A message (has a role, or a LangChain message type), not a step."""
    return isinstance(f.get("role"), str) or f.get("type") in ROLE_OF_TYPE


def read_message(raw: object, what: str, *, strict: bool = False) -> Message:
    f = fields_of(raw, what)
    role = f.get("role")
    if not isinstance(role, str):
        role = ROLE_OF_TYPE.get(str(f.get("type")))
    if not isinstance(role, str) or not role.strip():
        raise ShapeError(f"{what} has no role: give 'role' (one of "
                         f"{', '.join(ROLES)}), e.g. {{'role': 'user', "
                         "'content': '...'}")
    role = ROLE_OF_TYPE.get(role, role).strip().lower()
    raws = [*(f.get("tool_calls") or ()), *(f.get("tools_called") or ())]
    calls = tuple(read_call(c, f"{what}, tool call {i + 1}", strict=strict)
                  for i, c in enumerate(raws))
    ident = f.get("tool_call_id")
    name = f.get("name")
    return Message(role, text_of(f.get("content")), calls,
                   str(ident) if ident else None,
                   name if isinstance(name, str) and name else None)


def read_conversation(value: object, what: str = "the conversation", *,
                      strict: bool = False) -> list[Message]:
    """Messages in order, each tool message's result attached to its call."""
    items = unwrap(value, what)
    msgs = []
    for i, raw in enumerate(items):
        at = f"{what}, message {i + 1}"
        f = fields_of(raw, at)
        if not is_message(f) and any(f.get(k) for k in (*_NAME_KEYS, "function")):
            # An agent step ({"name", "args", "result"}): an assistant turn
            # that makes one call, so that steps can be judged one by one.
            msgs.append(Message("assistant", "", (read_call(f, at, strict=strict),)))
            continue
        msgs.append(read_message(f, at, strict=strict))
    return attach_results(msgs)


def attach_results(msgs: list[Message]) -> list[Message]:
    """Tool results (``tool`` messages) attached to the calls they answer: by
    ``tool_call_id``, else to the earliest call still without a result."""
    out = list(msgs)
    open_calls: list[tuple[int, int]] = []  # (message index, call index)
    for i, m in enumerate(out):
        if m.tool_calls:
            open_calls += [(i, k) for k in range(len(m.tool_calls))]
        if m.role != "tool" or not open_calls:
            continue
        pick = next((p for p in open_calls
                     if m.tool_call_id and out[p[0]].tool_calls[p[1]].id ==
                     m.tool_call_id), None)
        if pick is None:
            pick = open_calls[0]
        open_calls.remove(pick)
        owner = out[pick[0]]
        calls = list(owner.tool_calls)
        if calls[pick[1]].result is None:
            calls[pick[1]] = dataclasses.replace(calls[pick[1]], result=m.content)
        out[pick[0]] = dataclasses.replace(owner, tool_calls=tuple(calls))
        out[i] = dataclasses.replace(m, attached=True)
    return out


def read_steps(value: object, what: str = "the trajectory", *,
               strict: bool = False) -> list[ToolCall]:
    """The tool calls of a trajectory, in order: from messages (every
    assistant message's ``tool_calls``, results attached) or from a list of
    steps; the two may be mixed."""
    items = unwrap(value, what)
    out: list[ToolCall] = []
    msgs: list[Message] = []
    for i, raw in enumerate(items):
        at = f"{what}, item {i + 1}"
        f = fields_of(raw, at)
        if is_message(f):
            msgs.append(read_message(f, at, strict=strict))
            continue
        if msgs:
            out += _calls(attach_results(msgs))
            msgs = []
        out.append(read_call(f, at, strict=strict))
    return out + _calls(attach_results(msgs))


def _calls(msgs: list[Message]) -> list[ToolCall]:
    return [c for m in msgs for c in m.tool_calls]


# ------------------------------------------------------------------ showing
def show_call(c: ToolCall, indent: str = "   ") -> str:
    """A tool call for the judge: tool, arguments and result on their lines."""
    lines = [f"{indent}tool: {c.name}", f"{indent}arguments: {show_args(c.args)}"]
    if c.result is not None:
        lines.append(f"{indent}result: {c.result}")
    return "\n".join(lines)


def show_message(n: int, m: Message) -> str:
    """``[n] role: content``, with the tool calls it made (and their results)."""
    who = m.role if m.name is None or m.role == "tool" else f"{m.role} ({m.name})"
    if m.role == "tool":
        who = f"tool result ({m.name})" if m.name else "tool result"
    head = f"[{n}] {who}: {m.content}".rstrip()
    calls = [f"    calls {c.call()}" + ("" if c.result is None else
                                        f"\n      -> {c.result}")
             for c in m.tool_calls]
    return "\n".join([head, *calls])


def show_turn(m: Message) -> str:
    """An assistant turn as the judged output: its text, then its tool calls
    (with what each returned)."""
    calls = [f"[calls {c.call()}" + ("" if c.result is None else
                                      f" -> {c.result}") + "]"
             for c in m.tool_calls]
    return "\n".join(x for x in [m.content, *calls] if x)


def show_conversation(msgs: Sequence[Message],
                      numbers: Sequence[int] | None = None) -> str:
    """Numbered messages (``numbers``: their places in the whole conversation,
    default 1, 2, ...); tool results shown under the calls they answer, so
    ``tool`` messages already attached are not repeated."""
    nums = list(numbers) if numbers is not None else range(1, len(msgs) + 1)
    return "\n".join(show_message(n, m) for n, m in zip(nums, msgs, strict=True)
                     if not m.attached)


def show_steps(steps: Sequence[ToolCall]) -> str:
    """Numbered steps: tool, arguments, result."""
    return "\n".join(f"Step {n}:\n{show_call(c)}" for n, c in enumerate(steps, 1))
