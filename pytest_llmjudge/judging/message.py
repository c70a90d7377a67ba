"""How a verdict reads in a terminal: the headline and the reasons under it.

Shared by ``assert_judged``, soft checks, the canary and the min-kappa gate."""

from __future__ import annotations

import textwrap

from pytest_llmjudge.constants import REASONING_SHOWN
from pytest_llmjudge.text import clip, scrub
from pytest_llmjudge.verdict import Outcome, Verdict


def headline(v: Verdict) -> str:
    word = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE",
            "judge_error": "JUDGE ERROR"}[v.outcome.value]
    if v.kind == "pairwise":
        what = f"winner {v.winner or 'undecided'}"
    elif v.kind == "scale":
        what = f"score {v.level:.1f}" if v.level is not None else "no score"
        if v.score_range and v.pass_score is not None:
            what += (f" on {v.score_range[0]}..{v.score_range[1]}, pass mark "
                     f"{_n(v.pass_score)}")
    elif v.criteria:
        ok = sum(1 for c in v.criteria if c.passed)
        what = f"{ok}/{len(v.criteria)} criteria passed"
    else:
        what = "no verdict" if v.outcome is Outcome.JUDGE_ERROR else "no judge call"
    if v.kind == "criteria" and v.pass_mark is not None and v.score is not None:
        what += f", score {v.score:.2f} against pass mark {v.pass_mark:.2f}"
    extra = ", flaky" if v.flaky else ""
    line = f"judged: {word} {what} (confidence {v.confidence:.2f}{extra})"
    if v.expect == "fail":
        line += (" - negative control: rejected as expected" if v.met else
                 " - NEGATIVE CONTROL: the judge accepted an output it must reject"
                 if v.outcome is Outcome.PASS else " - negative control")
    return line


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def format_verdict(v: Verdict) -> str:
    """A verdict for a plain terminal: summary line first, then why; long judge
    text cut to ``REASONING_SHOWN`` characters, secrets scrubbed."""
    return scrub(_format(v))


def _format(v: Verdict) -> str:
    lines = [headline(v), f"  rubric: {v.rubric}"]
    if v.kind == "scale" and v.level is not None and v.score is not None \
            and v.pass_mark is not None:
        lines.append(f"  score: {v.level:.2f} ({v.score_basis or 'arg-max'}), "
                     f"normalised {v.score:.2f} against pass mark {v.pass_mark:.2f}")
    if v.outcome is not Outcome.JUDGE_ERROR and v.votes:
        lines.append(f"  confidence basis: {v.confidence_basis}")
    if v.error:
        lines.append(f"  judge error: {clip(v.error, REASONING_SHOWN)}")
    for c in v.criteria:
        mark = {True: "pass", False: "FAIL", None: "????"}[c.passed]
        req = "" if c.required else " (optional)"
        lines.append(f"  [{mark}] {c.name}{req}: votes {c.pass_votes} pass / "
                     f"{c.fail_votes} fail, confidence {c.confidence:.2f}")
        if c.reasoning and c.passed is not True:
            lines += textwrap.wrap(clip(c.reasoning, REASONING_SHOWN), 88,
                                   initial_indent="         judge: ",
                                   subsequent_indent="                ")
    if v.kind == "pairwise" and v.votes:
        winners = ", ".join(f"{x.order}: {x.winner}" for x in v.votes if x.winner)
        lines.append(f"  votes: {winners}")
    if v.jury is not None:
        members = ", ".join(
            f"{m.model}={m.winner or m.outcome.value} ({m.confidence:.2f})"
            for m in v.jury.members)
        failed = f"; failed: {', '.join(v.jury.failed)}" if v.jury.failed else ""
        lines.append(f"  jury: {members}; agreement {v.jury.agreement:.0%}{failed}")
    if v.flaky_reason:
        lines.append(f"  flaky: {clip(v.flaky_reason, REASONING_SHOWN)}")
    for w in v.warnings:
        lines.append(f"  note: {clip(w, REASONING_SHOWN)}")
    src = "cache/records" if v.cached else f"{v.calls} call(s)"
    lines.append(f"  judge: {v.model or '-'}; {v.samples} presentation(s), {src}")
    if v.excerpt:
        body = v.excerpt.replace("\n", " ")
        lines += textwrap.wrap(body, 88, initial_indent="  output: ",
                               subsequent_indent="          ")
    return "\n".join(lines)
