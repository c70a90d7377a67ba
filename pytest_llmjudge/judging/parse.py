"""Tolerant parsing of judge replies into the documented reply contract.

A reply is accepted when it holds a JSON object of the right shape: the whole
content, a fenced code block, or any object embedded in text (the last valid
one wins, since reasoning comes first). Anything else raises
``JudgeParseError``; it never becomes a pass or a fail here.

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
from dataclasses import dataclass, field
from typing import Any

from pytest_llmjudge.exceptions import JudgeParseError

_PASS = {"pass", "passed", "yes", "true"}
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
    dec = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def _confidence(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    if math.isnan(v):
        return None
    if 1.0 < v <= 100.0:  # some judges answer in percent
        v /= 100.0
    return v if 0.0 <= v <= 1.0 else None


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


def _criteria(obj: dict[str, Any], names: tuple[str, ...]) -> Parsed | None:
    items = obj.get("criteria")
    if not isinstance(items, list):
        return None
    wanted = {n.strip().lower(): n for n in names}
    verdicts: dict[str, str] = {}
    reasoning: dict[str, str] = {}
    for it in items:
        if not isinstance(it, dict):
            continue
        name = wanted.get(str(it.get("name", "")).strip().strip('"').lower())
        v = _verdict(it.get("verdict"))
        if name is None or v is None:
            continue
        if name in verdicts:
            if verdicts[name] != v:  # contradicts itself: not a verdict to trust
                return None
            continue
        verdicts[name] = v
        reasoning[name] = str(it.get("reasoning", ""))
    if set(verdicts) != set(names):
        return None
    return Parsed(verdicts, reasoning, confidence=_confidence(obj.get("confidence")))


def _scale(obj: dict[str, Any], top: int) -> Parsed | None:
    s = obj.get("score")
    if isinstance(s, str) and s.strip().isdigit():
        s = int(s.strip())
    if isinstance(s, float) and s.is_integer():
        s = int(s)
    if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= top:
        return None
    return Parsed(
        reasoning={"score": str(obj.get("reasoning", ""))},
        level=s,
        confidence=_confidence(obj.get("confidence")),
    )


def _pairwise(obj: dict[str, Any]) -> Parsed | None:
    w = obj.get("winner")
    if not isinstance(w, str):
        return None
    w = w.strip().strip("[]\"'").upper()
    winner = {"A": "A", "B": "B", "TIE": "tie", "A=B": "tie"}.get(w)
    if winner is None:
        return None
    return Parsed(
        reasoning={"winner": str(obj.get("reasoning", ""))},
        winner=winner,
        confidence=_confidence(obj.get("confidence")),
    )


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
    content: str, kind: str, *, names: tuple[str, ...] = (), top: int = 0
) -> Parsed:
    """Parse ``content`` for a ``kind`` of rubric ('criteria', 'scale', 'pairwise')."""
    if not content or not content.strip():
        raise JudgeParseError("the judge's reply was empty", reply=content or "")

    def read(obj: dict[str, Any]) -> Parsed | None:
        if kind == "criteria":
            return _criteria(obj, names)
        if kind == "scale":
            return _scale(obj, top)
        return _pairwise(obj)

    try:
        whole = json.loads(content)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        # The whole reply is one object: any verdict-shaped text inside it
        # (quoted in a reasoning string) is not a candidate.
        got = read(whole)
        if got is not None:
            return got
    found = [got for got in map(read, _objects(content)) if got is not None]
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
    want = {
        "criteria": '{"criteria": [{"name", "reasoning", "verdict": pass|fail}], '
        f'"confidence"}} with every criterion of {list(names)}',
        "scale": f'{{"reasoning", "score": 1..{top}, "confidence"}}',
        "pairwise": '{"reasoning", "winner": A|B|tie, "confidence"}',
    }[kind]
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
    mass = {yes: 0.0, no: 0.0}
    tops = _get(tok, "top_logprobs") or []
    entries = list(tops) or [tok]
    for e in entries:
        t = str(_get(e, "token") or "").strip().strip('"').lower()
        lp = _get(e, "logprob")
        if t in mass and isinstance(lp, (int, float)):
            mass[t] += math.exp(float(lp))
    total = mass[yes] + mass[no]
    return mass[yes] / total if total > 0 else None
