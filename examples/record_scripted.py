"""Re-record every judge reply of the example suite with the scripted loopback judge.

    python examples/record_scripted.py            # from the repository root

It starts ``pytest_llmjudge.testing.ScriptedJudgeServer`` on 127.0.0.1 with a
``ScriptedJudge`` whose rules are written for the example rubrics (below),
deletes the old records, and runs

    pytest examples/ --llmjudge-record-mode=all --llmjudge-cache=off
        --llmjudge-model=openai/scripted-loopback-judge --llmjudge-api-base=<server>

in a subprocess. No key and no network are needed, and every record names the
judge that produced it (``scripted-loopback-judge``): these records show how
the plugin works, they say nothing about how a real model judges the app.

To record against a real model instead (costs a few cents):

    OPENAI_API_KEY=... pytest examples/ --llmjudge-record-mode=all \\
        --llmjudge-model=openai/gpt-4o-mini

Extra arguments are passed to pytest (e.g. ``-n 2`` or ``-k summarizer``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pytest_llmjudge.testing import (
    JudgeRequest,
    Reply,
    ScriptedJudge,
    ScriptedJudgeServer,
)

HERE = Path(__file__).resolve().parent
MODEL = "openai/scripted-loopback-judge"

STOP = frozenset(
    "a an and are as at be by can do does for from had has have how i in is it its "
    "me my of on or the this to was what where why with you your it's been not".split())
RUDE = ("obviously", "read the manual", "your fault", "stupid", "whatever", "rtfm")
INTERNAL = ("zendesk", "jira", "internal", "int-", "escalations board", "dave")
NEXT_STEP = re.compile(r"\b(click|open|go to|reply here|will reply|within|"
                       r"acme\.example)\b", re.I)
OPINION = re.compile(r"\b(great|excellent|unfortunately|should|i think|recommend|"
                     r"impressive)\b", re.I)
NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
QUOTED = re.compile(r"(?<!\w)'([^']+)'(?!\w)")

_current = threading.local()  # the request being answered (one per server thread)


def _req() -> JudgeRequest:
    req: JudgeRequest = _current.req
    return req


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower())
            if w not in STOP and len(w) > 2}


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _reply_text(output: str) -> str:
    """The reply in an output: the whole text, or the "reply" field of a JSON ticket."""
    try:
        doc = json.loads(output)
    except ValueError:
        return output
    return str(doc.get("reply", output)) if isinstance(doc, dict) else output


def answers_question(output: str) -> bool:
    question = _req().texts.get("input", "")
    reply = _reply_text(output).lower()
    handoff = "passed it to" in reply or "support team" in reply
    return not question or bool(_words(question) & _words(reply)) or handoff


def faithful(output: str) -> bool:
    source = _req().texts.get("context", "")
    numbers_ok = all(n in source for n in NUMBER.findall(output))
    names = {w for s in _sentences(output) for w in s.split()[1:] if w[:1].isupper()}
    return numbers_ok and all(n.strip(".,;:") in source for n in names)


def covers_main_point(output: str) -> bool:
    source = _req().texts.get("context", "")
    main = _words(_sentences(source)[0]) if source else set()
    return not main or len(main & _words(output)) >= 0.6 * len(main)


def agrees_with_expected(output: str) -> bool:
    """Ground truth: every number the expected answer states is in the output."""
    expected = _req().texts.get("expected", "")
    return all(n in output for n in NUMBER.findall(expected))


def resolves_level(output: str) -> int:
    """0..10: steps (7), plus timing and a next step (10); a topic only (4)."""
    steps = len(re.findall(r"^\d+\.", output, re.M))
    if not steps:
        return 4 if answers_question(output) else 0
    timing = bool(re.search(r"\d+(-\d+)? (business )?days", output))
    return 10 if timing and NEXT_STEP.search(output) else 7


# Conversations (test_chat_assistant.py): a judged turn is the assistant's words
# then "[calls tool(args) -> result]" lines; the messages before it come as
# input, numbered "[n] role: ...".
CALL_LINE = re.compile(r"^\[calls .*$", re.M)
MESSAGE_NO = re.compile(r"^\[\d+\] ", re.M)


def _own_words(output: str) -> str:
    """A turn's own words, without its tool calls."""
    return CALL_LINE.sub("", output).strip()


def _invented(output: str) -> list[str]:
    """Numbers a turn states that no tool result or earlier message gives
    (message numbers such as "[7]" do not count as given)."""
    given = MESSAGE_NO.sub("", _req().texts.get("input", ""))
    given += "\n" + "\n".join(CALL_LINE.findall(output))
    known = set(NUMBER.findall(given))
    return [n for n in NUMBER.findall(_own_words(output)) if n not in known]


def every_request_answered(output: str) -> bool:
    """A whole conversation: each user message gets an assistant reply with
    words before the next one, and each tool call shows its result."""
    waiting = False
    for head in re.findall(r"^\[\d+\] (.*)$", output, re.M):
        role, _, text = head.partition(":")
        if role == "user":
            if waiting:
                return False
            waiting = True
        elif role.startswith("assistant") and text.strip():
            waiting = False
    calls = len(re.findall(r"^\s+calls ", output, re.M))
    return not waiting and calls == len(re.findall(r"^\s+-> ", output, re.M))


# Claim-level checks (test_retrieval_answerer.py). Extraction splits the text
# into its sentences (and clauses joined by ";"). Faithfulness and context
# recall: a claim is supported when one passage states it, i.e. that passage
# holds all of its numbers and at least 80% of its content words, or when it
# states no fact (a question, a greeting, an offer to help). Answer relevance:
# a statement is relevant when it shares a content word with the question, or
# with the relevant statement just before it (it goes on with the same point).
CLAIM_ITEM = re.compile(r"^(?:claim|statement) (\d+)$")
DOCUMENT = re.compile(r"^\[document \d+\]$", re.M)
NO_FACT = re.compile(r"\?$|^(hi|hello|thanks|thank you)\b|happy to help|let me know",
                     re.I)


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s", "e"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[:-len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    """Content words, crudely stemmed ("refunds" and "refund" match)."""
    text = text.lower().replace("e-bike", "ebike")
    return {_stem(w) for w in re.findall(r"[a-z]+", text)
            if w not in STOP and len(w) > 2}


def claims_of(text: str) -> list[str]:
    return [c for s in _sentences(text) for c in re.split(r";\s+", s) if c]


def _unstated(claim: str, context: str) -> list[str]:
    """What the best passage lacks of the claim (words and numbers); [] when
    one passage states it."""
    if NO_FACT.search(claim.strip()):
        return []
    words, numbers = _terms(claim), set(NUMBER.findall(claim))
    best: list[str] | None = None
    for doc in DOCUMENT.split(context):
        lacking = sorted(words - _terms(doc)) + sorted(numbers - set(
            NUMBER.findall(doc)))
        if not numbers - set(NUMBER.findall(doc)) and \
                len(words & _terms(doc)) >= 0.8 * len(words):
            return []
        if best is None or len(lacking) < len(best):
            best = lacking
    return best or ["(no passage)"]


def _on_topic(statement: str, question: str) -> bool:
    """Relevant: shares a word with the question, or with the relevant
    statement just before it in the list the judge was shown."""
    asked, before = _terms(question), set[str]()
    for _, text in sorted(_req().listed.items()):
        words = _terms(text)
        relevant = bool(words & (asked | before))
        if text == statement:
            return relevant
        before = words if relevant else set()
    return bool(_terms(statement) & asked)


def claim_holds(claim: str, against: str) -> bool:
    """``supported`` for ``ScriptedJudge``: against the context when there is
    one (faithfulness, context recall), else the question (relevance)."""
    if "context" in _req().texts:
        return not _unstated(claim, against)
    return _on_topic(claim, against)


def claim_reason(number: int) -> str:
    """Why claim/statement ``number`` of the request failed."""
    req = _req()
    claim = req.listed.get(number, "")
    if "context" in req.texts:
        return ("no passage states this claim; the closest one lacks: "
                + ", ".join(_unstated(claim, req.texts["context"])))
    return ("off the question's topic: the statement shares no word with the "
            "question or with the relevant statement before it")


def priority(output: str) -> bool:
    try:
        return json.loads(output).get("priority") == "high"
    except (ValueError, AttributeError):
        return False


def mentions(description: str, output: str) -> bool:
    """Default rule: every 'quoted phrase' and number in the criterion appears."""
    low = output.lower()
    return all(q.lower() in low for q in QUOTED.findall(description)) and all(
        n in output for n in NUMBER.findall(description))


RULES = {
    "answers_question": answers_question,
    "reply_answers": answers_question,
    "polite": lambda out: not any(r in out.lower() for r in RUDE),
    "no_internal_details": lambda out: not any(i in out.lower() for i in INTERNAL),
    "next_step": lambda out: bool(NEXT_STEP.search(out)),
    "concise": lambda out: len(out.split()) < 120,
    "faithful": faithful,
    "covers_main_point": covers_main_point,
    "no_opinions": lambda out: not OPINION.search(out),
    "empathy": lambda out: bool(re.search(r"\b(sorry|apologi[sz]e|understand)\b",
                                          out, re.I)),
    "timeline": lambda out: bool(re.search(r"\d+(-\d+)? (business )?days", out)),
    "priority": priority,
    "agrees_with_expected": agrees_with_expected,
    "grounded": lambda out: not _invented(out),
    "short_reply": lambda out: len(_own_words(out).split()) <= 30,
    "every_request_answered": every_request_answered,
}


def scale_level(output: str) -> int:
    """The level for whichever scale the request scores."""
    if "resolves the customer's question" in _req().user:
        return resolves_level(output)
    return conciseness_level(output)


def conciseness_level(output: str) -> int:
    source = _req().texts.get("context", "")
    if not covers_main_point(output):
        return 1
    ratio = len(output.split()) / max(1, len(source.split()))
    return 5 if ratio <= 1 / 3 else 4 if ratio <= 2 / 3 else 3 if ratio <= 0.8 else 2


def preference(text: str) -> float:
    """Which of two responses is better (higher wins; equal is a tie)."""
    source = _req().texts.get("context")
    if source:  # summaries: main point, outcome and detail, less length
        sents = _sentences(source)
        weights = {s: 3.0 if i == 0 else 2.0 if i == len(sents) - 1 else 1.0
                   for i, s in enumerate(sents)}
        covered = sum(w for s, w in weights.items() if s in text)
        return covered - 0.02 * len(text.split())
    # support replies: steps, a greeting, a next step, concrete facts; never rude
    score = len(re.findall(r"^\d+\.", text, re.M)) + bool(re.match(r"Hi\b", text))
    score += bool(NEXT_STEP.search(text)) + bool(NUMBER.search(text))
    score += answers_question(text)
    return score - 5.0 * any(r in text.lower() for r in RUDE)


def _found(words: tuple[str, ...], output: str) -> str:
    return ", ".join(repr(w) for w in words if w in output.lower())


# Why a criterion failed, for the failure message (the scripted judge's "reasoning").
WHY_NOT = {
    "answers_question": lambda out: "the reply does not mention what the customer "
    "asked about and does not hand the question on",
    "polite": lambda out: f"the reply talks down to the customer ({_found(RUDE, out)})",
    "no_internal_details": lambda out: "the reply exposes internal details "
    f"({_found(INTERNAL, out)})",
    "next_step": lambda out: "the reply gives no concrete next step",
    "concise": lambda out: f"the reply is {len(out.split())} words long",
    "grounded": lambda out: "the turn states "
    f"{', '.join(_invented(out))}, which no tool result or earlier message gives",
    "short_reply": lambda out: f"the turn is {len(_own_words(out).split())} words long",
    "every_request_answered": lambda out: "a customer request is left without a "
    "reply, or a tool call without its result",
}


class ExampleJudge(ScriptedJudge):
    """``ScriptedJudge`` whose rules may read the whole request (input, context)."""

    def __call__(self, req: JudgeRequest) -> Reply:
        _current.req = req
        reply = super().__call__(req)
        if isinstance(reply, dict):
            for item in reply.get("criteria", []):
                why = WHY_NOT.get(item["name"])
                claim = CLAIM_ITEM.match(item["name"])
                if item["verdict"] == "fail" and claim is not None:
                    item["reasoning"] = claim_reason(int(claim.group(1)))
                elif item["verdict"] == "fail" and why is not None:
                    item["reasoning"] = why(req.output)
        return reply

    def truth(self, name: str, description: str, output: str) -> bool:
        # (claim-level checks never get here: ``supported`` decides them)
        rule = RULES.get(name)
        return bool(rule(output)) if rule else mentions(description, output)


def main(argv: list[str]) -> int:
    records = sorted((HERE / "tests").glob("**/llmjudge_records/*.json"))
    for path in records:  # "all" re-records; stale entries must not linger
        path.unlink()
    policy = ExampleJudge(prefer=preference, levels=scale_level,
                          extract=claims_of, supported=claim_holds,
                          confidence=0.95)
    with ScriptedJudgeServer(policy) as server, \
            tempfile.TemporaryDirectory(prefix="llmjudge-record-") as tmp:
        env = {**os.environ, "LLMJUDGE_API_KEY": "scripted-judge-needs-no-key"}
        cmd = [sys.executable, "-m", "pytest", str(HERE),
               "--llmjudge-record-mode=all", "--llmjudge-cache=off",
               # a fresh cache folder: no judge statistics learned elsewhere
               f"--llmjudge-cache-dir={tmp}",
               f"--llmjudge-model={MODEL}", f"--llmjudge-api-base={server.base_url}",
               "-p", "no:cacheprovider", *argv]
        print("+", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, env=env)
        print(f"scripted judge answered {server.calls} calls; records in "
              f"{HERE / 'tests' / 'llmjudge_records'}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
