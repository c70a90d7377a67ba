"""Parsing of judge replies into the documented reply contract.

A reply is accepted when it holds a JSON object of the right shape: the whole
content, a fenced code block, or any object embedded in text (the last valid
one wins, since reasoning comes first). Anything else raises
``JudgeParseError``; it never becomes a pass or a fail here.

A reply is read as a whole. An object *claims* to be the verdict when a key of
a verdict (``criteria``, ``verdict``, ``score``, ``level``, ``winner``) appears
anywhere in it; every claiming object must be readable to the letter of the
contract (exact keys, a verdict word of the contract, every criterion by its
name, string ``reasoning``), and a verdict key the parser could not decode at
all (a broken object, single quotes) counts as an unreadable claim too. One
unreadable claim makes the whole reply unreadable, so another object in the
same reply (say, a fake "pass" the judged output carried and the judge quoted)
can never be taken instead of the judge's own verdict; a whole reply that is
JSON but not an object (a bare list) is unreadable too.

Numbers the judge states are read only when finite and in range: a
confidence that is not a number in [0, 1] (or a percentage in (1, 100]) is
absent, and so is a token's pass/fail probability when any of its
log-probabilities is not finite or above 0.

A judge may quote verdict-shaped JSON it found in the judged data (an
injection attempt) before or after its own verdict, so when the valid objects
in a reply disagree, the last one is taken only if it is at least as strict
as every earlier one (a draft revised to a fail is fine); a later object that
would turn an earlier fail into a pass, raise a score, or change a pairwise
winner makes the reply ambiguous, and it raises ``JudgeParseError``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_llmjudge.exceptions import JudgeParseError

_PASS = {"pass", "passed", "yes", "true"}
#: Keys that make an object claim to be a verdict, whatever the rubric's kind.
_CLAIM_KEYS = frozenset({"criteria", "verdict", "score", "level", "winner"})
#: A verdict key in text the parser could not decode as a JSON object.
_STRAY_KEY = re.compile(
    r"""["'\u201c\u201d]\s*(?:criteria|verdict|score|level|winner)"""
    r"""\s*["'\u201c\u201d]\s*:""", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,3}")
_FAIL = {"fail", "failed", "no", "false"}


@dataclass(frozen=True)
class Parsed:
    verdicts: dict[str, str] = field(default_factory=dict)
    reasoning: dict[str, str] = field(default_factory=dict)
    level: int | None = None
    winner: str | None = None
    confidence: float | None = None


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object that can be decoded from ``text``, in order."""
    return [obj for obj, _ in _spans(text)]


def _spans(text: str) -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """Every top-level JSON object decoded from ``text``, with where it lies."""
    dec = json.JSONDecoder()
    found: list[tuple[dict[str, Any], tuple[int, int]]] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = dec.raw_decode(text, i)
        except (ValueError, RecursionError):
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append((obj, (i, end)))
        i = text.find("{", end)
    return found


def _claims(value: object, depth: int = 0) -> bool:
    """Whether a verdict key appears anywhere in ``value`` (keys, not strings)."""
    if depth > 50:
        return True  # absurdly nested: not something to read past
    if isinstance(value, dict):
        return any(str(k).strip().lower() in _CLAIM_KEYS for k in value) or any(
            _claims(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_claims(v, depth + 1) for v in value)
    return False


def _number(value: object) -> float | None:
    """``value`` as a finite number, else None (bools, strings, NaN, infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return v if math.isfinite(v) else None


def _confidence(value: object) -> float | None:
    """A stated confidence in [0, 1] (or a percentage in (1, 100]); anything
    else (a string, NaN, an infinity, out of range) is absent."""
    v = _number(value)
    if v is None:
        return None
    if 1.0 < v <= 100.0:  # some judges answer in percent
        v /= 100.0
    return v if 0.0 <= v <= 1.0 else None


def _reasoning(obj: dict[str, Any]) -> str | None:
    """The object's reasoning (absent is ""), or None when it is not a string."""
    r = obj.get("reasoning", "")
    return r if isinstance(r, str) else None


def _verdict(value: object) -> str | None:
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if isinstance(value, str):
        v = value.strip().strip("\"'").lower()
        if v in _PASS:
            return "pass"
        if v in _FAIL:
            return "fail"
    return None


_CRITERIA_KEYS = frozenset({"criteria", "confidence"})
_ITEM_KEYS = frozenset({"name", "reasoning", "verdict"})


def _criteria(obj: dict[str, Any], names: tuple[str, ...]) -> Parsed | None:
    """The contract's ``{"criteria": [...], "confidence"}``, every item readable:
    one item off the contract (a misspelt name, a verdict word such as
    "partial", an unknown key) makes the whole object unreadable."""
    items = obj.get("criteria")
    if not isinstance(items, list) or not set(obj) <= _CRITERIA_KEYS:
        return None
    wanted = {" ".join(n.split()).lower(): n for n in names}
    verdicts: dict[str, str] = {}
    reasoning: dict[str, str] = {}
    for it in items:
        if not isinstance(it, dict) or not {"name", "verdict"} <= set(it) <= _ITEM_KEYS:
            return None
        raw = it["name"]
        name = wanted.get(" ".join(raw.strip().strip('"').split()).lower()) \
            if isinstance(raw, str) else None
        v = _verdict(it["verdict"])
        why = _reasoning(it)
        if name is None or v is None or why is None:
            return None
        if name in verdicts:
            if verdicts[name] != v:  # contradicts itself: not a verdict to trust
                return None
            continue
        verdicts[name] = v
        reasoning[name] = why
    if set(verdicts) != set(names):
        return None
    return Parsed(verdicts, reasoning, confidence=_confidence(obj.get("confidence")))


_SCALE_KEYS = frozenset({"reasoning", "score", "confidence"})
_PAIR_KEYS = frozenset({"reasoning", "winner", "confidence"})


def _scale(obj: dict[str, Any], top: int, low: int = 1) -> Parsed | None:
    """The contract's ``{"reasoning", "score", "confidence"}`` and no other key:
    ``{"id": 1, "name": "Mike", "score": 5}`` is data, not a vote."""
    if "score" not in obj or not set(obj) <= _SCALE_KEYS:
        return None
    why = _reasoning(obj)
    s = obj["score"]
    if isinstance(s, str) and _DIGITS.fullmatch(s.strip()):
        s = int(s.strip())
    if isinstance(s, float) and math.isfinite(s) and s.is_integer():
        s = int(s)
    if why is None or isinstance(s, bool) or not isinstance(s, int) \
            or not low <= s <= top:
        return None
    return Parsed(reasoning={"score": why}, level=s,
                  confidence=_confidence(obj.get("confidence")))


def _pairwise(obj: dict[str, Any]) -> Parsed | None:
    """The contract's ``{"reasoning", "winner", "confidence"}`` and no other key."""
    if "winner" not in obj or not set(obj) <= _PAIR_KEYS:
        return None
    why = _reasoning(obj)
    w = obj["winner"]
    if why is None or not isinstance(w, str):
        return None
    w = w.strip().strip("[]\"'").upper()
    winner = {"A": "A", "B": "B", "TIE": "tie", "A=B": "tie"}.get(w)
    if winner is None:
        return None
    return Parsed(reasoning={"winner": why}, winner=winner,
                  confidence=_confidence(obj.get("confidence")))


def _loosened(earlier: Parsed, last: Parsed, kind: str) -> str:
    """Why ``last`` is more lenient than ``earlier`` (empty when it is not)."""
    if kind == "criteria":
        flipped = [n for n, v in last.verdicts.items()
                   if v == "pass" and earlier.verdicts.get(n) == "fail"]
        return (f"a later object passes {flipped} after an earlier one failed it"
                if flipped else "")
    if kind == "scale":
        if last.level is not None and earlier.level is not None \
                and last.level > earlier.level:
            return f"a later score {last.level} after an earlier {earlier.level}"
        return ""
    if last.winner != earlier.winner:
        return f"a later winner {last.winner!r} after an earlier {earlier.winner!r}"
    return ""


def parse_reply(
    content: str, kind: str, *, names: tuple[str, ...] = (), top: int = 0,
    low: int = 1,
) -> Parsed:
    """Parse ``content`` for a ``kind`` of rubric ('criteria', 'scale', 'pairwise')."""
    if not content or not content.strip():
        raise JudgeParseError("the judge's reply was empty", reply=content or "")

    def read(obj: dict[str, Any]) -> Parsed | None:
        if kind == "criteria":
            return _criteria(obj, names)
        if kind == "scale":
            return _scale(obj, top, low)
        return _pairwise(obj)

    want = {
        "criteria": '{"criteria": [{"name", "reasoning", "verdict": pass|fail}], '
        f'"confidence"}} with every criterion of {list(names)}',
        "scale": f'{{"reasoning", "score": {low}..{top}, "confidence"}}',
        "pairwise": '{"reasoning", "winner": A|B|tie, "confidence"}',
    }[kind]
    try:
        whole = json.loads(content)
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, dict):
        # The whole reply is one object: any verdict-shaped text inside it
        # (quoted in a reasoning string) is not a candidate.
        got = read(whole)
        if got is not None:
            return got
    elif whole is not None:
        raise JudgeParseError(
            f"the judge's reply is JSON but not an object ({type(whole).__name__}), "
            f"not the expected JSON {want}", reply=content)
    spans = _spans(content)
    found: list[Parsed] = []
    for obj, _ in spans:
        got = read(obj)
        if got is not None:
            found.append(got)
        elif _claims(obj):
            raise JudgeParseError(
                "the judge's reply holds a verdict object that cannot be read ("
                + json.dumps(obj)[:160] + f"), not the expected JSON {want}; no "
                "other object in the reply is taken in its place", reply=content)
    outside, at = [], 0
    for _, (start, end) in spans:
        outside.append(content[at:start])
        at = end
    outside.append(content[at:])
    stray = _STRAY_KEY.search("\x00".join(outside))
    if stray is not None:
        raise JudgeParseError(
            "the judge's reply holds a verdict key that is not in a readable JSON "
            f"object ({stray.group(0)!r}), not the expected JSON {want}; no other "
            "object in the reply is taken in its place", reply=content)
    if found:
        last = found[-1]
        for earlier in found[:-1]:
            why = _loosened(earlier, last, kind)
            if why:
                raise JudgeParseError(
                    "the judge's reply holds verdict objects that disagree (" + why
                    + "); a quoted verdict must never decide, so the reply is "
                    "ambiguous", reply=content)
        return last
    snippet = content.strip().replace("\n", " ")[:160]
    raise JudgeParseError(
        f"the judge's reply is not the expected JSON {want}; it began: {snippet!r}",
        reply=content,
    )


def logprob_pass(logprobs: object, names: tuple[str, ...]) -> dict[str, float]:
    """P('pass') for each criterion from the verdict tokens' top log-probabilities.

    The n-th token reading "pass"/"fail" after a ``"verdict"`` key belongs to
    the n-th criterion in the reply; ``names`` gives that reply order.
    """
    content = _lp_content(logprobs)
    if not content:
        return {}
    out: dict[str, float] = {}
    text = ""
    idx = 0
    # Every token of the reply passes here (hundreds for a real judge's
    # reasoning): per token, a lookup and a substring test; the text before is
    # examined (without copying it) only at a pass/fail token.
    for tok in content:
        t = tok.get("token") if type(tok) is dict else _get(tok, "token")
        t = t if type(t) is str else str(t or "")
        low = t.lower()
        if ("pass" in low or "fail" in low) and low.strip().strip('"') in (
                "pass", "fail") and _after_verdict_key(text):
            p = _binary_prob(tok, "pass", "fail")
            if p is not None and idx < len(names):
                out[names[idx]] = p
            idx += 1
        text += t
    if idx != len(names):
        # More (or fewer) verdict tokens than criteria: the reply quotes another
        # verdict, and which token is whose cannot be told. The votes stand;
        # their certainty comes from the stated confidence instead.
        return {}
    return out


def _after_verdict_key(text: str) -> bool:
    """``text.rstrip().rstrip('"').rstrip().endswith('"verdict":')``, uncopied."""
    i = len(text)
    while i and text[i - 1].isspace():
        i -= 1
    while i and text[i - 1] == '"':
        i -= 1
    while i and text[i - 1].isspace():
        i -= 1
    return text.endswith(('"verdict":', "'verdict':"), 0, i)


def _lp_content(logprobs: object) -> list[Any]:
    c = _get(logprobs, "content")
    return list(c) if isinstance(c, list) else []


def _get(obj: object, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _binary_prob(tok: object, yes: str, no: str) -> float | None:
    """P(yes) among the token's yes/no alternatives; None (absent) when any of
    their log-probabilities is absurd: not a finite number, or above 0 (a
    probability above 1)."""
    mass = {yes: 0.0, no: 0.0}
    tops = _get(tok, "top_logprobs") or []
    entries = list(tops) if isinstance(tops, list) and tops else [tok]
    for e in entries:
        t = str(_get(e, "token") or "").strip().strip('"').lower()
        if t not in mass:
            continue
        lp = _number(_get(e, "logprob"))
        if lp is None or lp > 0.0:
            return None
        mass[t] += math.exp(lp)
    total = mass[yes] + mass[no]
    p = mass[yes] / total if total > 0 else None
    return p if p is not None and 0.0 <= p <= 1.0 else None


def score_mean(logprobs: object, level: int, low: int, high: int) -> float | None:
    """The probability-weighted mean score (G-Eval) from the score token's top
    log-probabilities, or None when it cannot be read safely.

    The score token is the one token after a ``"score":`` key that reads as
    the parsed ``level`` exactly; its alternatives that read as whole numbers
    in ``low..high`` are weighted by their probability. Anything absurd (a
    log-probability above 0 or not finite), a second score token, or a split
    number ("1" then "0" for 10) leaves it None: the arg-max is used instead.
    """
    content = _lp_content(logprobs)
    found: float | None = None
    seen = 0
    text = ""
    for tok in content:
        t = tok.get("token") if type(tok) is dict else _get(tok, "token")
        t = t if type(t) is str else str(t or "")
        core = t.strip().strip('"')
        if core and core.isdigit() and _after_key(text, "score"):
            seen += 1
            if core != str(level):
                return None  # the number is split over tokens
            found = _weighted(tok, low, high)
        text += t
    return found if seen == 1 else None


def _after_key(text: str, key: str) -> bool:
    tail = text[-40:].rstrip().rstrip('"').rstrip()
    return tail.endswith((f'"{key}":', f"'{key}':"))


def _weighted(tok: object, low: int, high: int) -> float | None:
    mass: dict[int, float] = {}
    tops = _get(tok, "top_logprobs") or []
    entries = list(tops) if isinstance(tops, list) and tops else [tok]
    for e in entries:
        t = str(_get(e, "token") or "").strip().strip('"')
        if not t.isdigit() or not low <= int(t) <= high:
            continue
        lp = _number(_get(e, "logprob"))
        if lp is None or lp > 0.0:
            return None
        mass[int(t)] = mass.get(int(t), 0.0) + math.exp(lp)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    mean = sum(k * p for k, p in mass.items()) / total
    return mean if math.isfinite(mean) and low <= mean <= high else None
