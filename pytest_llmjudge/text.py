"""Text helpers every layer shares: one way to cut a long text for display, and
one way to keep secrets out of anything the plugin writes or shows."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pytest_llmjudge.constants import EXCERPT_CHARS


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The judged output as failure messages and reports show it (stripped)."""
    t = text.strip()
    return t if len(t) <= limit else t[:limit] + "…"


def clip_strings(value: Any, limit: int) -> Any:
    """``value`` (JSON-able) with every string longer than ``limit`` clipped."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        return {k: clip_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [clip_strings(v, limit) for v in value]
    return value


#: Environment variables whose values are secrets (checked on the upper-cased
#: name): LLMJUDGE_API_KEY, OPENAI_API_KEY, ANTHROPIC_API_KEY, any *_API_KEY,
#: *_KEY, *_TOKEN, *_SECRET*, *PASSWORD*.
SECRET_VAR = re.compile(r"(?:_API_KEY|_TOKEN|_KEY)$|SECRET|PASSWORD|^API_KEY$|^TOKEN$")
#: Shorter values are not treated as secrets (they would match ordinary text).
SECRET_MIN = 8
#: Secret-shaped text, whatever variable (if any) it came from.
#: (needle, pattern, replacement): the pattern runs only where the needle (lower
#: case) is in the text, so that a long text costs one ``lower()``.
_SECRET_TEXT = [
    ("bearer", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE),
     "Bearer ***"),
    ("sk-", re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "***"),
    ("aiza", re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "***"),
    ("key=", re.compile(r"([?&](?:api[_-]?)?key=)[^&\s'\"]+", re.IGNORECASE), r"\1***"),
    ("key", re.compile(r"((?:x-)?api[_-]?key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]{8,}",
                       re.IGNORECASE), r"\1***"),
]
#: Keys registered by the process (the judge's ``--llmjudge-api-key``, say).
_KNOWN: set[str] = set()


def add_secret(value: str | None) -> None:
    """Scrub ``value`` too from now on (a key that is not in the environment)."""
    if value and len(value.strip()) >= 4:
        _KNOWN.add(value.strip())


def env_secrets() -> set[str]:
    """Values of secret-named environment variables, and keys added.

    Read at each use: a key set by a fixture or a ``conftest.py`` after
    start-up is covered too.
    """
    out = set(_KNOWN)
    for k, v in os.environ.items():
        if SECRET_VAR.search(k.upper()) and len(v.strip()) >= SECRET_MIN:
            out.add(v.strip())
            out.add(" ".join(v.split()))  # as quoted in a one-line reason
    return out


def _hex(n: int, width: int) -> str:
    """``n`` in hex as a pattern that takes either case of its letters."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d
                   for d in f"{n:0{width}x}")


def _char(c: str) -> str:
    """``c`` as written literally (either case), or as a JSON/Python escape."""
    lit = {re.escape(c), re.escape(c.lower()), re.escape(c.upper())}
    forms = [*sorted(lit), r"\\u" + _hex(ord(c), 4)]
    if ord(c) < 0x100:
        forms.append(r"\\x" + _hex(ord(c), 2))
    if c in "\"\\/":
        forms.append(re.escape("\\" + c))
    return "(?:" + "|".join(forms) + ")"


@lru_cache(maxsize=64)
def _pattern(values: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern for all ``values``, each character literal or escaped, so that
    a key spelt ``\\u0073k-...`` in a JSON text is found too."""
    if not values:
        return None
    alts = ["".join(_char(c) for c in v) for v in sorted(values, key=len, reverse=True)]
    return re.compile("|".join(alts))


def _scrubber(secret: str | None) -> Callable[[str], str]:
    values = env_secrets()
    if secret and len(secret.strip()) >= 4:
        values.add(secret.strip())
    pattern = _pattern(frozenset(values))

    def run(text: str) -> str:
        if pattern is not None:
            text = pattern.sub("***", text)
        low = text.lower()
        for needle, shape, repl in _SECRET_TEXT:
            if needle in low:
                text = shape.sub(repl, text)
        return text

    return run


def scrub(text: str, secret: str | None = None) -> str:
    """``text`` without the judge key, any secret-named environment variable's
    value (literal or JSON-escaped), or anything shaped like a key or a bearer
    token: each becomes ``***``.

    The one scrubber: everything the plugin stores or shows passes through it.
    """
    return _scrubber(secret)(text)


def scrub_json(value: Any, secret: str | None = None) -> Any:
    """``value`` (JSON-able: dicts, lists, strings, numbers) with every string,
    keys included, scrubbed."""
    run = _scrubber(secret)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return run(v)
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)
