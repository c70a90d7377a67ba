"""A screen for degenerate outputs that are known to fool LLM judges.

"One Token to Fool LLM-as-a-Judge" (Zhao et al., 2025) shows judges passing
outputs that are only punctuation, empty, or only a reasoning opener. Such
outputs never deserve a judge call: they fail here with a clear reason.
"""

from __future__ import annotations

import re
import unicodedata

# Normalised (lower case, letters, digits and single spaces) reasoning openers
# and "master keys" reported to fool judges, in several languages.
_OPENERS = {
    "thought process",
    "lets solve this problem step by step",
    "lets think step by step",
    "let me think step by step",
    "lets think about this step by step",
    "wait let me think",
    "let me think",
    "let me think about this",
    "lets see",
    "step 1",
    "solution",
    "answer",
    "the answer is",
    "reasoning",
    "okay",
    "ok",
    "hmm",
    "first",
    "well",
    "so",
    "解",
    "解答",
    "思考过程",
    "答案",
    "ステップバイステップで考えましょう",
    "解決策",
    "pensemos paso a paso",
    "réfléchissons étape par étape",
    "lass uns schritt für schritt denken",
}


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("’", "")
    return " ".join(re.findall(r"\w+", text))


def degenerate_reason(text: str) -> str | None:
    """Why ``text`` is a degenerate output, or None when it is worth judging."""
    if not text.strip():
        return "the output is empty or only white space"
    stripped = "".join(ch for ch in text if not ch.isspace())
    if all(unicodedata.category(ch)[0] in "PSZC" for ch in stripped):
        return f"the output is only punctuation or symbols ({text.strip()[:20]!r})"
    norm = _normalise(text)
    if norm in _OPENERS:
        return (
            f"the output is only a reasoning opener ({text.strip()[:60]!r}) with no "
            "answer; such outputs are known to fool LLM judges"
        )
    return None
