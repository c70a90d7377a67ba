"""The calibration report and the stored calibrations' status, as text lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_llmjudge.calibration.agreement import JUDGE_COLUMNS
from pytest_llmjudge.calibration.pairs import WINNERS, consistent, winner
from pytest_llmjudge.constants import OPTION_PREFIX, PROMPT_VERSION
from pytest_llmjudge.judging.trust import (
    NOT_CALIBRATED,
    JudgeId,
    config_key,
    distrust,
    entries,
    what_changed,
)
from pytest_llmjudge.text import clip

if TYPE_CHECKING:
    from pytest_llmjudge.calibration.agreement import (
        Agreement,
        CalibrationRun,
        Group,
        Judged,
    )
    from pytest_llmjudge.calibration.pairs import PairGroup
    from pytest_llmjudge.runtime.session import JudgeSession


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _kappa(x: float | None) -> str:
    return "n/a" if x is None else f"{round(x, 3) + 0.0:.3f}"  # never "-0.000"


def _lenient(a: Agreement) -> str:
    j, h = a.judge_pass_rate, a.human_pass_rate
    return "-" if j is None or h is None else f"{100 * (j - h):+.1f}"


def _clip(text: str, n: int) -> str:
    return clip(" ".join(str(text).split()), n)


def report_lines(run: CalibrationRun) -> list[str]:
    """The calibration report, as plain lines (the terminal section prints them)."""
    lines = [f"labels: {run.shown}, {len(run.items)} examples; judge: "
             f"{','.join(run.models)} (prompt template v{PROMPT_VERSION})"]
    if len(run.models) > 1:
        lines.append(f"jury of {len(run.models)}: the majority decides")
    if run.groups:
        lines.append("agreement with people, over the examples the judge decided "
                     "(lenient: judge pass rate minus people's, in points):")
        width = max(12, *(len(g.name) for g in run.groups))
        head = (f"  {'rubric':<{width}} {'n':>4} {'decided':>7} {'agree':>7} "
                f"{'kappa':>6} {'judge pass':>10} {'people pass':>11} {'lenient':>7}")
        if run.min_kappa is not None:
            head += "  trust"
        lines.append(head)
        rows: list[tuple[str, Agreement, Group | None]] = [
            (g.name, g.trust, g) for g in run.groups]
        if len(run.groups) > 1:
            rows.append(("overall", run.overall, None))
        for name, a, g in rows:
            line = (f"  {name:<{width}} {a.n:>4} {a.decided:>7} {_pct(a.agreement):>7} "
                    f"{_kappa(a.kappa):>6} {_pct(a.judge_pass_rate):>10} "
                    f"{_pct(a.human_pass_rate):>11} {_lenient(a):>7}")
            if run.min_kappa is not None and g is not None:
                line += "  " + _trust_cell(a, run.min_kappa)
            lines.append(line)
        for g in run.groups:
            lines += _group_lines(g)
        lines += _threshold_lines(run)
    for p in run.pairs:
        lines += _pair_lines(p)
    if run.stored and run.groups:
        lines.append(f"stored beside the cache for judge {','.join(run.models)}, "
                     f"template v{PROMPT_VERSION}: {OPTION_PREFIX}min-kappa uses it "
                     "until the model, api_base, template or rubric changes.")
    if run.stored and run.pairs:
        lines.append("comparisons stored beside the cache: compare() with these "
                     "rubrics and this judge states confidence calibrated on them "
                     f"({OPTION_PREFIX}min-kappa does not apply to comparisons).")
    bad = run.untrusted()
    if bad:
        lines.append(f"{OPTION_PREFIX}min-kappa={run.min_kappa:g}: the judge is NOT "
                     f"trusted for {', '.join(repr(g.name) for g in bad)}; judged "
                     "tests with that rubric error.")
    return lines


def _pair_lines(p: PairGroup) -> list[str]:
    """A comparison rubric's figures against people (pairs labelled A|B|tie)."""
    a = p.agreement
    out = [f"{p.title} ({a.n} labelled pairs; both presentation orders each)",
           f"  agreement {_pct(a.agreement)} ({a.agree} of {a.decided} decided), "
           f"kappa {_kappa(a.kappa)}",
           f"  position-consistency {_pct(a.position_consistency)} ({a.same} of "
           f"{a.orders} pairs chose the same winner in both orders)",
           f"  decisive share {_pct(a.decisive)} ({a.decided} of {a.n} pairs have a "
           "winner)"]
    cols = ("judge A", "judge B", "judge tie", "no winner")
    out.append("  " + " " * 12 + "".join(f"{c:>11}" for c in cols))
    for h in WINNERS:
        cells = "".join(f"{a.count(h, j):>11}" for j in (*WINNERS, None))
        out.append(f"  {'people ' + h:<12}{cells}")
    for j in p.items:
        got = winner(j.verdict)
        ex = j.example
        if got is not None and got != ex.winner:
            conf = j.verdict.confidence if j.verdict else 0.0
            out.append(f"  {ex.id} ({ex.where}): people {ex.winner}, judge {got} "
                       f"(confidence {conf:.2f})" +
                       (f"; people's note: {_clip(ex.note, 80)}" if ex.note else ""))
        elif got is None:
            same = consistent(j.verdict)
            why = j.error or (j.verdict.error if j.verdict else "") or (
                "the orders disagreed" if same is False else "no winner")
            out.append(f"  {ex.id} ({ex.where}): people {ex.winner}, judge: "
                       f"{_clip(why, 100)}")
    return out


def _trust_cell(a: Agreement, min_kappa: float) -> str:
    why = distrust(a.kappa, a.decided, a.n, min_kappa)
    return {None: f"ok (kappa >= {min_kappa:g})",
            "low": f"NOT TRUSTED (kappa < {min_kappa:g})",
            "undefined": "NOT TRUSTED (kappa n/a)",
            "few": f"NOT TRUSTED (too few decided: {a.decided} of {a.n})"}[why]


def _group_lines(g: Group) -> list[str]:
    a = g.trust
    out = [f"{g.name}: confusion (rows: people, columns: judge)"]
    cols = ("judge pass", "judge fail", "inconclusive", "judge error")
    out.append("  " + " " * 12 + "".join(f"{c:>14}" for c in cols))
    for human in (True, False):
        cells = "".join(f"{a.count(human, j):>14}" for j in JUDGE_COLUMNS)
        out.append(f"  {'people ' + ('pass' if human else 'fail'):<12}{cells}")
    if g.criteria and (len(g.criteria) > 1 or g.overall.n):
        out.append("  per criterion: " + "; ".join(
            f"{n} {c.agree}/{c.decided} agree, kappa {_kappa(c.kappa)}"
            for n, c in g.criteria.items()))
    if g.members:
        out.append(f"  jury: unanimous on {g.unanimous}/{len(g.items)} examples, "
                   f"mean share with the majority {_pct(g.jury_share)}")
        for m, ma in g.members.items():
            out.append(f"    {m}: agreement {_pct(ma.agreement)}, kappa "
                       f"{_kappa(ma.kappa)}, pass rate {_pct(ma.judge_pass_rate)}")
    dis = [j for j in g.items if _disagrees(j)]
    if dis:
        out.append("  disagreements:")
        for j in dis:
            out += _disagreement_lines(j)
    undecided = [j for j in g.items if j.judge not in ("pass", "fail")]
    if undecided:
        out.append("  not decided: " + "; ".join(
            f"{j.example.id} ({j.example.where}): {_why_undecided(j)}"
            for j in undecided))
    return out


def _why_undecided(j: Judged) -> str:
    if j.judge == "inconclusive" and j.verdict is not None:
        return f"inconclusive, confidence {j.verdict.confidence:.2f}"
    why = j.error or (j.verdict.error if j.verdict else "") or ""
    return f"judge error: {_clip(why, 100)}"


def _disagrees(j: Judged) -> bool:
    if j.judge not in ("pass", "fail"):
        return False
    if j.human is not None and (j.judge == "pass") != j.human:
        return True
    return any(j.criterion(n) in ("pass", "fail") and (j.criterion(n) == "pass") != v
               for n, v in j.example.criteria.items())


def _disagreement_lines(j: Judged) -> list[str]:
    v = j.verdict
    assert v is not None  # only decided examples disagree
    ex = j.example
    people = {True: "PASS", False: "FAIL", None: "-"}[j.human]
    out = [f"    {ex.id} ({ex.where}): people {people}, judge "
           f"{v.outcome.value.upper()} (confidence {v.confidence:.2f})"]
    out.append(f"      output: {_clip(v.excerpt or str(ex.output), 100)}")
    if ex.note:
        out.append(f"      people's note: {_clip(ex.note, 100)}")
    word = {True: "pass", False: "fail", None: "undecided"}
    # The judge's reasons where it differs from a labelled criterion; else, for
    # a fail, the criteria that failed; for a pass, every criterion.
    shown = [(c, f"judge {word[c.passed]}, people {word[ex.criteria[c.name]]}")
             for c in v.criteria if c.name in ex.criteria and c.passed is not None
             and c.passed != ex.criteria[c.name]]
    if not shown:
        shown = [(c, f"judge {word[c.passed]}") for c in v.criteria
                 if v.outcome.value != "fail" or c.passed is not True]
    for c, mark in shown:
        why = _clip(c.reasoning or "(no reasoning)", 160)
        out.append(f"      {c.name} ({mark}): {why}")
    return out


def _threshold_lines(run: CalibrationRun) -> list[str]:
    c = run.configured
    out = ["confidence threshold: decisive verdicts against people, by min_confidence"]
    out.append(f"  min_confidence {c.min_confidence:.3f} (this run): {c.decisive} "
               f"decisive, {_pct(c.agreement)} agree, {c.inconclusive} inconclusive")
    for target, t in run.targets.items():
        if t is None:
            out.append(f"  for {target:.0%} agreement: not reachable (best "
                       f"{_pct(run.best)} at any min_confidence)")
        else:
            out.append(f"  for {target:.0%} agreement: min_confidence "
                       f"{t.min_confidence:.3f} -> {t.decisive} decisive "
                       f"({_pct(t.agreement)} agree), {t.inconclusive} inconclusive")
    out.append("  (from this run's verdicts; a lower min_confidence also stops "
               "sampling sooner)")
    return out


def status_lines(js: JudgeSession, who: JudgeId, min_kappa: float | None,
                 folder: str, notes: list[str]) -> list[str]:
    """For a run without --llmjudge-calibrate: what the stored calibrations say
    about the configured judge (a new model or template shows as not calibrated).
    ``notes`` (of refused judgments) say which labelled rubrics' files changed
    since; those used here are taken out of the list."""
    out: list[str] = []
    for entry in sorted(entries(js), key=lambda e: str(e.get("name", "")).casefold()):
        name = str(entry.get("name", ""))
        mine = f"{NOT_CALIBRATED}{name!r} ("
        seen = [n for n in notes if n.startswith(mine)]
        for n in seen:
            notes.remove(n)
        rec = js.meta.get(f"calibration:{config_key(who, entry.get('canonical', {}))}")
        if rec is None or seen:
            why = seen[0][len(mine):-1] if seen else what_changed(entry, who, None)
            out.append(f"  {name}: NOT CALIBRATED for this judge ({why}); re-run "
                       f"{OPTION_PREFIX}calibrate={entry.get('labels')}")
            continue
        k = rec.get("kappa")
        trust = ""
        if min_kappa is not None:
            doubt = distrust(k, int(rec.get("decided") or 0),
                             int(rec.get("examples") or 0), min_kappa)
            trust = ", trusted" if doubt is None else ", NOT TRUSTED" + (
                " (too few decided)" if doubt == "few" else "")
        out.append(f"  {name}: kappa {_kappa(k)}, agreement "
                   f"{_pct(rec.get('agreement'))} on {rec.get('decided')} of "
                   f"{rec.get('examples')} labelled examples ({rec.get('labels')}, "
                   f"{rec.get('when')}){trust}")
    if out:
        out.insert(0, f"judge {who.label} (prompt template v{PROMPT_VERSION}) against "
                   f"human labels (stored in {folder}):")
    return out


def not_calibrated_lines(notes: Sequence[str], who: JudgeId, folder: str
                         ) -> list[str]:
    """The rubrics of this run's refused, not calibrated judgments (``notes``:
    their ``Status.note``)."""
    if not notes:
        return []
    out = [f"NOT CALIBRATED: judge {who.label} (prompt template v{PROMPT_VERSION}) "
           f"has no calibration in {folder} for {len(notes)} rubric(s) used here; "
           f"{OPTION_PREFIX}min-kappa made their judged tests error:"]
    out += [f"  {n.removeprefix(NOT_CALIBRATED)}" for n in notes]
    out.append(f"  label outputs for them and run with {OPTION_PREFIX}calibrate=LABELS "
               "(in the same run as the tests if you like)")
    return out
