"""Text helpers every layer shares: one way to cut a long text for display."""

from __future__ import annotations

from pytest_llmjudge.constants import EXCERPT_CHARS


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The judged output as failure messages and reports show it (stripped)."""
    t = text.strip()
    return t if len(t) <= limit else t[:limit] + "…"
