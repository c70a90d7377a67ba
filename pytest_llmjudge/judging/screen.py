"""A screen for degenerate outputs that are known to fool LLM judges.

"One Token to Fool LLM-as-a-Judge" (Zhao et al., 2025) shows judges passing
outputs that are only punctuation, empty, or only a reasoning opener. Such
outputs never deserve a judge call: they fail here with a clear reason.
"""

from __future__ import annotations

import re
import unicodedata

# Normalised (lower case, letters, digits and single spaces) reasoning openers
# and "master keys" reported to fool judges, in several languages. An output
# made only of these (several in a row, with fillers between) is degenerate.
_OPENERS = {
    "thought process",
    "thought process step by step",
    "thinking",
    "thoughts",
    "my thoughts",
    "wait let me think",
    "lets see",
    "let me see",
    "step 1",
    "step one",
    "step by step",
    "step by step solution",
    "step by step reasoning",
    "solution",
    "the solution",
    "the solution is",
    "answer",
    "the answer",
    "the answer is",
    "final answer",
    "the final answer is",
    "my answer is",
    "reasoning",
    "analysis",
    "explanation",
    "okay",
    "ok",
    "hmm",
    "first",
    "well",
    "so",
    # Chinese, Japanese, Korean
    "解",
    "解答",
    "解析",
    "思考过程",
    "答案",
    "答",
    "让我们一步一步地思考",
    "かいせつ",
    "かいとう",
    "解説",
    "答え",
    "ステップバイステップで考えましょう",
    "解決策",
    "풀이",
    "정답",
    "해설",
    # Spanish, Portuguese, French, German, Italian, Russian
    "respuesta",
    "solución",
    "pensemos paso a paso",
    "resposta",
    "solução",
    "réponse",
    "réfléchissons étape par étape",
    "antwort",
    "lösung",
    "lass uns schritt für schritt denken",
    "risposta",
    "soluzione",
    "ответ",
    "решение",
}
# "Let's / let me ... <verb phrase> [step by step]"; "I will ..." only with a
# problem-solving phrase ("I'll think about it" can be a real answer).
_LEAD = ("lets", "let me", "lets try to", "let me try to")
_FIRST_PERSON = ("i will", "ill", "we will", "i need to", "we need to", "i am going to",
                 "im going to")
_SOLVE = ("solve this problem", "solve this", "solve the problem", "solve it",
          "work through this", "work through this problem", "work this out",
          "figure this out", "break this down", "break it down",
          "break down the problem",
          "analyze this", "analyse this", "analyze the problem", "reason through this",
          "think through this", "think this through")
_VERB = (*_SOLVE, "think", "think about this", "think about the problem")
_TAIL = ("", "step by step", "carefully", "one step at a time")
_OPENERS |= {" ".join(w for w in (lead, verb, tail) if w)
             for lead in _LEAD for verb in _VERB for tail in _TAIL}
_OPENERS |= {" ".join(w for w in (lead, verb, tail) if w)
             for lead in _FIRST_PERSON for verb in _SOLVE for tail in _TAIL}
_OPENERS |= {f"{lead} think step by step" for lead in _FIRST_PERSON}
# Words that carry nothing next to an opener ("Okay, so, let's think..."). On
# their own they are not screened unless they are openers too: "Sure." can be
# a real answer.
_FILLERS = {"okay", "ok", "sure", "hmm", "hm", "hmmm", "um", "umm", "uh", "wait",
            "well", "so", "first", "alright", "now", "oh", "ah"}
_PHRASES = frozenset(tuple(o.split()) for o in _OPENERS)
_LONGEST = max(map(len, _PHRASES))
_THINK_TAG = re.compile(r"<\s*/?\s*(?:think|thinking)\s*>", re.IGNORECASE)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("'", "").replace("\u2019", "")  # "let's", "let\u2019s"
    text = " ".join(re.findall(r"\w+", text))
    return re.sub(r"\blet us\b", "lets", text)


def _only_openers(words: list[str]) -> bool:
    """True when ``words`` are reasoning openers and fillers, with one opener."""
    i, seen = 0, False
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):  # longest first
            if tuple(words[i:i + n]) in _PHRASES:
                i += n
                seen = True
                break
        else:
            if words[i] not in _FILLERS:
                return False
            i += 1
    return seen


def degenerate_reason(text: str) -> str | None:
    """Why ``text`` is a degenerate output, or None when it is worth judging."""
    if not text.strip():
        return "the output is empty or only white space"
    stripped = "".join(ch for ch in text if not ch.isspace())
    if all(unicodedata.category(ch)[0] in "PSZC" for ch in stripped):
        return f"the output is only punctuation or symbols ({text.strip()[:20]!r})"
    # Think tags go, their content stays: "<think>Paris</think>" is an answer.
    bare = _THINK_TAG.sub(" ", text)
    words = _normalise(bare).split()
    if not words:
        return (f"the output is only an empty reasoning block ({text.strip()[:60]!r}) "
                "with no answer; such outputs are known to fool LLM judges")
    if _only_openers(words):
        return (
            f"the output is only a reasoning opener ({text.strip()[:60]!r}) with no "
            "answer; such outputs are known to fool LLM judges"
        )
    return None
