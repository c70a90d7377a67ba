"""Python callables as judges: ``model=my_judge`` instead of a litellm name.

A callable receives the chat messages (a list of ``{"role", "content"}``
dicts) and returns the reply-contract text, sync or async. It is named
``callable:<module>.<qualname>@<digest>`` everywhere a model name goes (cache
and record keys, verdicts, reports): the digest covers its code, defaults and
closure values, so two lambdas on one line, or one factory's judges built with
different settings, never share cached replies; the same function in the next
run gets the same name, so its replies are reused.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

PREFIX = "callable:"

_registry: dict[str, Callable[..., Any]] = {}
_lock = threading.Lock()


def _describe(fn: Callable[..., Any]) -> str:
    call = vars(type(fn)).get("__call__")  # a callable object's method
    code = getattr(fn, "__code__", None) or getattr(call, "__code__", None)
    parts: list[str] = []
    if code is not None:
        parts += [code.co_code.hex(), repr(code.co_consts)[:2000],
                  repr(code.co_names)]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            parts.append(repr(cell.cell_contents)[:2000])
        except ValueError:  # an empty cell
            parts.append("<empty>")
    parts.append(repr(getattr(fn, "__defaults__", None))[:2000])
    if code is None:  # a callable object: its class and state
        parts.append(type(fn).__qualname__)
        parts.append(repr(sorted(getattr(fn, "__dict__", {}).items()))[:4000])
    return "\n".join(parts)


def name_of(fn: Callable[..., Any]) -> str:
    """Register ``fn`` and return the model name it is known by."""
    given = getattr(fn, "llmjudge_name", None)
    if isinstance(given, str) and given.strip():
        name = PREFIX + given.strip()
    else:
        module = getattr(fn, "__module__", None) or type(fn).__module__
        qual = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        digest = hashlib.sha256(_describe(fn).encode("utf-8", "replace")
                                ).hexdigest()[:10]
        name = f"{PREFIX}{module}.{qual}@{digest}"
    with _lock:
        _registry[name] = fn
    return name


def lookup(model: str) -> Callable[..., Any] | None:
    """The callable a ``callable:`` model name stands for (None: not one)."""
    if not model.startswith(PREFIX):
        return None
    with _lock:
        return _registry.get(model)


def named(value: object) -> object:
    """``value`` with any callable (alone or in a list) replaced by its name."""
    if isinstance(value, (list, tuple)):
        return type(value)(named(v) for v in value)
    if callable(value) and not isinstance(value, (str, type)):
        return name_of(value)
    return value
