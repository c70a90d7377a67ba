"""Stored calibrations and the --llmjudge-min-kappa check (the hot path).

``judge.py`` imports ``vouch`` for every judgment under min-kappa, so this
module keeps the lookup memoised and its imports light.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.constants import OPTION_PREFIX, PROMPT_VERSION, REPLAYED_MODEL
from pytest_llmjudge.exceptions import UntrustedJudgeError
from pytest_llmjudge.judging.message import format_verdict
from pytest_llmjudge.rubric import Rubric
from pytest_llmjudge.text import clip, excerpt
from pytest_llmjudge.types import Kind, NodeInfo
from pytest_llmjudge.verdict import Outcome, Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.judging.task import Task
    from pytest_llmjudge.rubric import AnyRubric
    from pytest_llmjudge.runtime.session import JudgeSession
    from pytest_llmjudge.settings import Settings

INDEX = "calibration:index"
#: The note a refused, not calibrated judgment carries (the summary lists them).
NOT_CALIBRATED = "not calibrated for this judge: "

#: The share of labelled examples the judge must decide (pass or fail) for its
#: kappa to vouch for it: kappa over 2 decided examples of 10 says little.
MIN_DECIDED = 0.8


def distrust(kappa: float | None, decided: int, examples: int, min_kappa: float
             ) -> str | None:
    """Why a calibration does not vouch for the judge: "few" (too few examples
    decided), "undefined" (no kappa), "low" (below min_kappa); None: trusted."""
    if not examples or decided < MIN_DECIDED * examples - 1e-9:
        return "few"
    if kappa is None:
        return "undefined"
    return "low" if kappa < min_kappa - 1e-12 else None


def digest(obj: object) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class JudgeId:
    """Who judges: the models and the endpoint (the same model name on another
    api_base is another judge)."""

    models: tuple[str, ...]
    api_base: str | None = None

    @property
    def label(self) -> str:
        return ",".join(self.models)


def judge_id(settings: Settings) -> JudgeId:
    """The judge a run's settings name. With no model (replay only, record mode
    none) the committed records judge: calibrating and checking both use
    ``REPLAYED_MODEL``, so a replayed calibration is consulted."""
    if not settings.models:
        return JudgeId((REPLAYED_MODEL,))
    return JudgeId(tuple(settings.models),
                   (settings.api_base or "").rstrip("/") or None)


def config_key(who: JudgeId, canonical: Mapping[str, Any]) -> str:
    """The judge configuration a calibration holds for."""
    parts: dict[str, Any] = {"models": sorted(who.models),
                             "prompt_version": PROMPT_VERSION, "rubric": canonical}
    if who.api_base:  # absent for the provider's default endpoint
        parts["api_base"] = who.api_base
    return digest(parts)


def endpoint(who: JudgeId) -> str | None:
    return digest(who.api_base) if who.api_base else None  # never the URL itself


def rubric_ident(rubric: AnyRubric) -> str:
    """A rubric's lasting identity: its name when it has one (so an edited rubric
    is seen as changed), else its canonical form."""
    name = rubric_name(rubric, named_only=True)
    return f"name:{name}" if name else f"hash:{digest(rubric.canonical())}"


def rubric_name(rubric: AnyRubric, named_only: bool = False) -> str:
    """The rubric's name (a Scale's default "score" is none), else its summary."""
    name = rubric.name if isinstance(rubric, Rubric) or rubric.name != "score" \
        else None
    if named_only or name:
        return name or ""
    text = rubric.summary()
    return clip(text, 60)


_memo: weakref.WeakKeyDictionary[JudgeSession, dict[str, Status]] = \
    weakref.WeakKeyDictionary()


def forget(session: JudgeSession) -> None:
    """Drop the memoised lookups after new calibrations were stored."""
    _memo.pop(session, None)


def entries(session: JudgeSession) -> list[Mapping[str, Any]]:
    """Every labelled rubric's latest calibration entry."""
    index = session.meta.get(INDEX) or {}
    found = (session.meta.get(f"calibration-rubric:{i}") for i in index)
    return [e for e in found if e]


@dataclass(frozen=True)
class Status:
    """What the stored calibrations say about one judge configuration and rubric."""

    state: str  # calibrated | stale | unlabelled
    name: str = ""
    record: Mapping[str, Any] | None = None
    why: str = ""  # stale: what changed
    labels: str = ""
    near: str = ""  # unlabelled: the closest labelled rubric's name

    @property
    def note(self) -> str:
        """For the summary: a rubric this judge has no calibration for."""
        if self.state == "calibrated":
            return ""
        if self.state == "stale":
            return f"{NOT_CALIBRATED}{self.name!r} ({self.why})"
        near = f"; changed from {self.near!r}?" if self.near else ""
        return f"{NOT_CALIBRATED}{self.name!r} (nobody labelled it{near})"

    def refusal(self, who: JudgeId, min_kappa: float) -> str | None:
        judge, flag = who.label, f"{OPTION_PREFIX}min-kappa={min_kappa:g}"
        again = f"re-run {OPTION_PREFIX}calibrate={self.labels}" if self.labels \
            else f"run {OPTION_PREFIX}calibrate=LABELS"
        if self.state == "unlabelled":
            near = f" (changed from {self.near!r}?)" if self.near else ""
            return (f"the judge {judge} is not calibrated for rubric {self.name!r}: "
                    f"no stored calibration against human labels for this judge, "
                    f"prompt template v{PROMPT_VERSION} and rubric{near}. Label "
                    f"outputs for it in a labels file and run with "
                    f"{OPTION_PREFIX}calibrate=LABELS (in the same run as the tests "
                    f"if you like) ({flag})")
        if self.state == "stale":
            return (f"the judge {judge} is not trusted for rubric {self.name!r}: it is "
                    f"not calibrated for this judge configuration ({self.why}); "
                    f"{again} with this judge, in the same run as the tests if you "
                    f"like ({flag})")
        rec = self.record or {}
        k, decided, n = rec.get("kappa"), int(rec.get("decided") or 0), \
            int(rec.get("examples") or 0)
        why = distrust(k, decided, n, min_kappa)
        if why is None:
            return None
        where = f"{rec.get('labels')}, {rec.get('when')}"
        if why == "few":
            return (f"the judge {judge} is not trusted for rubric {self.name!r}: too "
                    f"few examples decided ({decided} of {n}) when it was calibrated "
                    f"against human labels ({where}); at least {MIN_DECIDED:.0%} must "
                    "be pass or fail, the rest were inconclusive or judge errors. Fix "
                    f"the errors or lower min_confidence, then {again} ({flag})")
        what = (f"Cohen's kappa {k:.2f}" if k is not None else
                "Cohen's kappa is undefined (the labels or the judge's verdicts are "
                "all pass or all fail)")
        agree = rec.get("agreement")
        seen = f"agreement {agree:.0%} on {decided} of {n} labelled examples" \
            if agree is not None else f"{n} labelled examples"
        return (f"the judge {judge} is not trusted for rubric {self.name!r}: {what} "
                f"against human labels ({seen}; {where}) is below {flag}. "
                f"Sharpen the rubric or use a stronger judge or a jury, then {again}")


def status(session: JudgeSession, who: JudgeId, rubric: AnyRubric) -> Status:
    """Look the judge configuration up in the stored calibrations (memoised)."""
    canonical = rubric.canonical()
    key = config_key(who, canonical)
    memo = _memo.setdefault(session, {})
    if key in memo:
        return memo[key]
    rec = session.meta.get(f"calibration:{key}")
    entry = session.meta.get(f"calibration-rubric:{rubric_ident(rubric)}")
    if rec is not None:
        st = Status("calibrated", str(rec.get("rubric", "")), rec,
                    labels=str(rec.get("labels") or ""))
    elif entry is not None:
        st = Status("stale", str(entry.get("name", "")),
                    why=what_changed(entry, who, digest(canonical)),
                    labels=str(entry.get("labels") or ""))
    else:
        name = rubric_name(rubric)
        names = [str(e.get("name", "")) for e in entries(session)]
        near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        st = Status("unlabelled", name, near=near[0] if near else "")
    memo[key] = st
    return st


def what_changed(entry: Mapping[str, Any], who: JudgeId,
                 rubric_hash: str | None) -> str:
    """Why a labelled rubric's stored calibration does not hold for this judge."""
    parts = []
    if rubric_hash is not None and entry.get("hash") != rubric_hash:
        parts.append("the rubric changed since")
    if list(entry.get("models") or []) != sorted(who.models):
        parts.append(f"it was calibrated with {','.join(entry.get('models') or [])}")
    elif entry.get("endpoint") != endpoint(who):
        parts.append("it was calibrated against another api_base")
    if str(entry.get("prompt_version")) != PROMPT_VERSION:
        parts.append(f"with prompt template v{entry.get('prompt_version')}, now "
                     f"v{PROMPT_VERSION}")
    return "; ".join(parts) or "no stored result"


def vouch(session: JudgeSession, node: NodeInfo | None, task: Task, ident: str
          ) -> None:
    """``--llmjudge-min-kappa``: raise ``UntrustedJudgeError`` (after recording a
    judge_error verdict) unless a stored calibration of this judge configuration
    vouches for the judge on this rubric."""
    __tracebackhide__ = True
    s = task.settings
    if s.min_kappa is None or task.kind is Kind.PAIRWISE:
        return
    who = judge_id(s)
    st = status(session, who, task.guided_rubric())
    refusal = st.refusal(who, s.min_kappa)
    if refusal is None:
        return
    note = st.note
    verdict = Verdict(outcome=Outcome.JUDGE_ERROR, passed=False,
                      kind=task.kind.value,
                      rubric=task.rubric.summary(), confidence=0.0,
                      model=who.label, excerpt=excerpt(task.output),
                      error=refusal,
                      warnings=[*task.warnings, *([note] if note else [])],
                      key=ident, cached=True)
    verdict = session.finish(verdict, node)
    # The refusal first (pytest's one-line summary shows it), then the verdict
    # (without the refusal again, nor the note that repeats it).
    rest = [ln for ln in format_verdict(verdict).splitlines()[1:]
            if not ln.startswith("  judge error:") and ln != f"  note: {note}"]
    raise UntrustedJudgeError("\n".join([refusal, *rest]), verdict)
