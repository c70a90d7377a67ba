"""A screen for degenerate outputs that are known to fool LLM judges.

"One Token to Fool LLM-as-a-Judge" (Zhao et al., 2025) shows judges passing
outputs that are only punctuation, empty, or only a reasoning opener. Such
outputs never deserve a judge call: they fail here with a clear reason.

The rule: screen only what is known to be degenerate, never a short answer.
An output is degenerate when it is empty, only punctuation or symbols, only an
empty reasoning or code block, or made of nothing but *openers* (phrases that
announce reasoning or an answer still to come: "Thought process:", "Answer:",
"Let's work step by step:", "Step 1:", "Solution", "解", "Pensemos paso a
paso") with optional *fillers* between them. Fillers are words that can be a
whole answer on their own ("OK", "Okay", "Sure.", "First", "Well", "So",
"Hmm", "好的", "首先"), so they are never screened alone: "Sure." answers "Can
you help?", and "First" answers "Who finished first?". Next to an opener they
add nothing ("Sure! Let's think step by step." is screened). Anything else in
the output (a name, a number, "Yes", "No", "Paris", "Answer: 42") makes it
worth judging. A few bare label words are openers because they are documented
master keys ("Solution", "Answer", "解", "答案"), so a one-word output that is
exactly such a label is screened; turn the screen off (``screen=False``) for
a test whose real answer is one.
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
    "thought",
    "thoughts and reasoning",
    "ans",
    "the ans",
    "my reasoning",
    "chain of thought",
    "lets work step by step",
    "lets work through this step by step",
    "lets work it out step by step",
    "lets go step by step",
    "lets take it step by step",
    "lets take this step by step",
    "lets do this step by step",
    "lets reason step by step",
    "lets reason through this",
    "lets reason about this",
    "first step",
    "step i",
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
    "让我们一步一步思考",
    "让我们一步步思考",
    "让我们一步一步来",
    "我们一步一步来",
    "一步一步地思考",
    "一步一步思考",
    "思考",
    "思路",
    "解题思路",
    "解题过程",
    "解答过程",
    "分析",
    "第一步",
    "步骤1",
    "步骤 1",
    "考えてみましょう",
    "ステップ1",
    "ステップ 1",
    "解法",
    "考え方",
    "단계별로 생각해 봅시다",
    "단계별로 생각해봅시다",
    "풀이 과정",
    "1단계",
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
    # more openers in those languages
    "denken wir schritt für schritt",
    "denken wir schritt für schritt nach",
    "lass uns nachdenken",
    "lass mich nachdenken",
    "schritt für schritt",
    "schritt 1",
    "lösungsweg",
    "gedankengang",
    "réfléchissons",
    "pensons étape par étape",
    "résolvons ce problème étape par étape",
    "étape par étape",
    "étape 1",
    "laissez moi réfléchir",
    "raisonnement",
    "pensemos",
    "paso a paso",
    "paso 1",
    "vamos a pensar paso a paso",
    "razonemos paso a paso",
    "resolvamos esto paso a paso",
    "resolvamos este problema paso a paso",
    "déjame pensar",
    "razonamiento",
    "vamos pensar passo a passo",
    "passo a passo",
    "passo 1",
    "deixe me pensar",
    "raciocínio",
    "pensiamo passo dopo passo",
    "ragioniamo passo dopo passo",
    "passo dopo passo",
    "ragionamento",
    "давайте подумаем шаг за шагом",
    "давайте подумаем",
    "шаг за шагом",
    "шаг 1",
    "рассуждение",
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
# their own they are never screened: "Sure.", "OK" and "First" can be real
# answers.
_FILLERS = {"okay", "ok", "sure", "hmm", "hm", "hmmm", "um", "umm", "uh", "wait",
            "well", "so", "first", "firstly", "alright", "now", "oh", "ah", "right",
            "here", "here is", "heres", "great", "certainly", "of course",
            "好的", "嗯", "首先", "那么", "好", "ええと", "まず", "음", "먼저",
            "bien", "alors", "vale", "bueno", "primero", "also", "gut", "zuerst",
            "ok so", "итак", "хорошо", "сначала"}
# Fillers never make an output degenerate on their own.
_FILLER_PHRASES = frozenset(tuple(f.split()) for f in _FILLERS)
_PHRASES = frozenset(tuple(o.split()) for o in _OPENERS)
_LONGEST = max(map(len, _PHRASES | _FILLER_PHRASES))
_THINK_TAG = re.compile(r"<\s*/?\s*(?:think|thinking)\s*>", re.IGNORECASE)
# A code fence with at most an info string and nothing in it.
_EMPTY_FENCE = re.compile(r"(`{3,}|~{3,})[ \t]*[\w+.#-]*[ \t]*\n?\s*\1")


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
            phrase = tuple(words[i:i + n])
            if phrase in _PHRASES:
                i += n
                seen = True
                break
            if phrase in _FILLER_PHRASES:
                i += n
                break
        else:
            return False
    return seen


def degenerate_reason(text: str) -> str | None:
    """Why ``text`` is a degenerate output, or None when it is worth judging."""
    if not text.strip():
        return "the output is empty or only white space"
    stripped = "".join(ch for ch in text if not ch.isspace())
    if all(unicodedata.category(ch)[0] in "PSZC" for ch in stripped):
        return f"the output is only punctuation or symbols ({text.strip()[:20]!r})"
    # Think tags go, their content stays: "<think>Paris</think>" is an answer.
    # An empty code fence (with or without a language) goes too.
    bare = _EMPTY_FENCE.sub(" ", _THINK_TAG.sub(" ", text))
    words = _normalise(bare).split()
    if not words:
        return (f"the output is only an empty reasoning or code block "
                f"({text.strip()[:60]!r}) with no answer; such outputs are known to "
                "fool LLM judges")
    if _only_openers(words):
        return (
            f"the output is only a reasoning opener ({text.strip()[:60]!r}) with no "
            "answer; such outputs are known to fool LLM judges"
        )
    return None
