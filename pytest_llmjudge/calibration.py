"""Calibration: how far the configured judge agrees with people, per rubric.

A team keeps labelled examples next to its tests: outputs a person has judged
pass or fail against a rubric (overall, or criterion by criterion).
``--llmjudge-calibrate=PATH`` judges them with the configured judge (or jury)
through the normal ``Judge`` machinery (cache, records, limits), all at once,
before any test runs, and reports per rubric and overall: percent agreement,
Cohen's kappa, the judge's pass rate beside the people's (leniency), the
confusion matrix, each disagreement with the judge's reasoning, and which
``min_confidence`` would have made the decisive verdicts agree with people at
90% and 95%.

Why kappa: agreement alone flatters a judge on a skewed set (a judge that
passes everything agrees 90% with labels that are 90% pass; its kappa is 0).

The result is stored beside the reply cache (``session.meta``, JSON), keyed by
the judge configuration: the models, ``PROMPT_VERSION`` and the rubric in
canonical form. ``--llmjudge-min-kappa=K`` then refuses (``UntrustedJudgeError``,
reported as a judge error) every judgment whose rubric's kappa is below K, or
whose rubric was calibrated but not with this judge configuration (another
model, template or rubric text). Rubrics nobody labelled are judged as usual,
with a note. Comparisons are not calibrated.

This module is imported by the plugin's hooks: its top level stays light.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .constants import OPTION_PREFIX, PROMPT_VERSION
from .exceptions import ConfigError

if TYPE_CHECKING:
    from .judge import Judge, Task
    from .rubric import AnyRubric
    from .session import JudgeSession
    from .verdict import Verdict

NAME = "llmjudge-calibrate"
#: Agreement targets the confidence-threshold table answers for.
TARGETS = (0.90, 0.95)
FIELDS = ("id", "output", "rubric", "input", "reference", "context", "label",
          "criteria", "note")
JUDGE_COLUMNS = ("pass", "fail", "inconclusive", "judge_error")
UNLABELLED_NOTE = ("no human labels for this rubric: --llmjudge-min-kappa cannot "
                   "vouch for the judge here")
_INDEX = "calibration:index"

examples_key = pytest.StashKey[list["Example"]]()
result_key = pytest.StashKey["CalibrationRun"]()


# ---------------------------------------------------------------- labels file
@dataclass(frozen=True)
class Example:
    """One labelled example: an output and what people decided about it."""

    id: str
    where: str  # file and line (JSON lines) or example number
    rubric: AnyRubric
    rubric_name: str
    output: Any
    input: Any = None
    reference: Any = None
    context: Any = None
    label: bool | None = None  # the people's overall verdict
    criteria: Mapping[str, bool] = field(default_factory=dict)
    note: str = ""


def _word(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("pass", "passed", "true", "yes"):
        return True
    if s in ("fail", "failed", "false", "no"):
        return False
    raise ConfigError(f"{where}: {value!r} is not a verdict: use pass or fail")


def _rubric(raw: object, base: Path, where: str,
            seen: dict[str, tuple[AnyRubric, str]]) -> tuple[AnyRubric, str]:
    """The example's rubric and how to name it; file paths are relative to the
    labels file."""
    from .exceptions import RubricError
    from .rubric import _names_rubric_file, as_rubric, load_rubric, rubric_from_dict

    memo = json.dumps(raw, sort_keys=True, default=str)
    if memo in seen:
        return seen[memo]
    try:
        if isinstance(raw, str) and _names_rubric_file(raw):
            p = Path(raw.strip())
            r = load_rubric(p if p.is_absolute() else base / p)
            name = f"{r.name} ({raw.strip()})" if getattr(r, "name", None) and \
                r.name != "score" else raw.strip()
        elif isinstance(raw, Mapping):
            r = rubric_from_dict(raw)
            name = r.name if r.name and r.name != "score" else r.summary()
        else:
            r = as_rubric(raw)
            name = r.summary()
    except RubricError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if len(name) > 60:
        name = name[:59] + "…"
    seen[memo] = (r, name)
    return r, name


def _example(obj: object, where: str, index: int, base: Path, default: object,
             seen: dict[str, tuple[AnyRubric, str]]) -> Example:
    from .rubric import Scale

    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: each example must be a mapping with output, "
                          "rubric and label (or criteria)")
    for key in obj:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: "
                              f"{', '.join(FIELDS)}")
    if obj.get("output") is None:
        raise ConfigError(f"{where}: the example has no 'output' (the judged text)")
    raw = obj.get("rubric", default)
    if raw is None:
        raise ConfigError(f"{where}: the example has no 'rubric' and the file gives "
                          "no default rubric")
    rubric, name = _rubric(raw, base, where, seen)
    label = _word(obj["label"], f"{where}: label") if obj.get("label") is not None \
        else None
    crit_raw = obj.get("criteria") or {}
    if not isinstance(crit_raw, Mapping):
        raise ConfigError(f"{where}: 'criteria' must map criterion names to pass/fail")
    criteria: dict[str, bool] = {}
    if crit_raw:
        if isinstance(rubric, Scale):
            raise ConfigError(f"{where}: per-criterion labels need a rubric with "
                              "criteria, not a Scale: give label: pass|fail")
        names = [c.name for c in rubric.criteria]
        for k, v in crit_raw.items():
            if k not in names:
                raise ConfigError(f"{where}: the rubric has no criterion {k!r}; its "
                                  f"criteria are {', '.join(names)}")
            criteria[str(k)] = _word(v, f"{where}: criteria.{k}")
    if label is None and not criteria:
        raise ConfigError(f"{where}: no human verdict: give label: pass|fail, or "
                          "criteria: {name: pass|fail}")
    return Example(id=str(obj.get("id") or f"#{index}"), where=where, rubric=rubric,
                   rubric_name=name, output=obj["output"], input=obj.get("input"),
                   reference=obj.get("reference"), context=obj.get("context"),
                   label=label, criteria=criteria, note=str(obj.get("note") or ""))


def load_labels(path: Path) -> list[Example]:
    """Read a labelled file (JSON lines, YAML or JSON); raise ``ConfigError``
    naming the line or example at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file {path}: {exc.strerror}"
                          ) from None
    suffix = path.suffix.lower()
    rows: list[tuple[str, object]] = []
    default: object = None
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path.name}:{n}", json.loads(line)))
            except ValueError as exc:
                raise ConfigError(f"{path.name}:{n}: not valid JSON ({exc})") from None
    elif suffix in (".yaml", ".yml", ".json"):
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:
            raise ConfigError(f"{path}: not valid {suffix[1:].upper()}: {exc}"
                              ) from None
        if isinstance(data, Mapping):
            extra = set(data) - {"rubric", "examples"}
            if extra:
                raise ConfigError(f"{path}: unknown top-level keys {sorted(extra)}; "
                                  "use rubric (the default) and examples")
            default, data = data.get("rubric"), data.get("examples")
        if not isinstance(data, list):
            raise ConfigError(f"{path}: expected a list of examples (or a mapping "
                              "with 'examples')")
        rows = [(f"{path.name} example {i}", obj) for i, obj in enumerate(data, 1)]
    else:
        raise ConfigError(f"{path}: a labels file is JSON lines (.jsonl), YAML or "
                          "JSON")
    seen: dict[str, tuple[AnyRubric, str]] = {}
    out = [_example(obj, where, i, path.parent, default, seen)
           for i, (where, obj) in enumerate(rows, 1)]
    if not out:
        raise ConfigError(f"{path} holds no labelled examples")
    ids = [e.id for e in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{path}: example ids must be unique; repeated: "
                          f"{', '.join(dup)}")
    return out


def labels_path(config: pytest.Config, raw: str) -> Path:
    """PATH as given (absolute, or from the invocation folder), else from the
    rootdir (for the ini option)."""
    p = Path(raw).expanduser()
    if p.is_absolute():
        return p
    for base in (config.invocation_params.dir, config.rootpath):
        if (base / p).exists():
            return base / p
    return config.invocation_params.dir / p


# ---------------------------------------------------------------- statistics
@dataclass
class Agreement:
    """People (pass/fail) against the judge (pass, fail, inconclusive, judge_error)."""

    matrix: dict[tuple[bool, str], int] = field(default_factory=dict)

    def add(self, human: bool, judge: str) -> None:
        self.matrix[(human, judge)] = self.matrix.get((human, judge), 0) + 1

    def count(self, human: bool | None = None, judge: str | None = None) -> int:
        return sum(n for (h, j), n in self.matrix.items()
                   if (human is None or h == human) and (judge is None or j == judge))

    @property
    def n(self) -> int:
        return self.count()

    @property
    def decided(self) -> int:
        return self.count(judge="pass") + self.count(judge="fail")

    @property
    def agree(self) -> int:
        return self.count(True, "pass") + self.count(False, "fail")

    @property
    def agreement(self) -> float | None:
        return self.agree / self.decided if self.decided else None

    @property
    def judge_pass_rate(self) -> float | None:
        return self.count(judge="pass") / self.decided if self.decided else None

    @property
    def human_pass_rate(self) -> float | None:
        """The people's pass rate on the examples the judge decided (so that it
        compares with the judge's)."""
        if not self.decided:
            return None
        return (self.count(True, "pass") + self.count(True, "fail")) / self.decided

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa over decided examples; None when undefined (judge and
        people each gave one verdict only)."""
        po, pj, ph = self.agreement, self.judge_pass_rate, self.human_pass_rate
        if po is None or pj is None or ph is None:
            return None
        pe = pj * ph + (1 - pj) * (1 - ph)
        if pe >= 1 - 1e-12:
            return None
        return (po - pe) / (1 - pe)

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.n, "decided": self.decided, "agree": self.agree,
                "agreement": self.agreement, "kappa": self.kappa,
                "judge_pass_rate": self.judge_pass_rate,
                "human_pass_rate": self.human_pass_rate,
                "confusion": {f"{'pass' if h else 'fail'}/{j}": n
                              for (h, j), n in sorted(self.matrix.items())}}


@dataclass
class Judged:
    """One example after judging."""

    example: Example
    task: Task | None
    verdict: Verdict | None
    error: str | None = None

    @property
    def judge(self) -> str:
        return "judge_error" if self.verdict is None else self.verdict.outcome.value

    @property
    def human(self) -> bool | None:
        """The people's overall verdict, given or implied by labelled criteria."""
        ex = self.example
        if ex.label is not None:
            return ex.label
        from .rubric import Rubric

        r = ex.rubric
        names = {c.name for c in r.criteria} if isinstance(r, Rubric) else None
        if not isinstance(r, Rubric) or set(ex.criteria) != names:
            return None
        from ._aggregate import _rule

        threshold = self.task.threshold if self.task else 0.5
        return _rule(r, threshold)(dict(ex.criteria))

    @property
    def lean(self) -> bool | None:
        """Which way the judge leant, also when its confidence fell short."""
        v = self.verdict
        if v is None or v.outcome.value == "judge_error":
            return None
        if v.outcome.value in ("pass", "fail"):
            return v.outcome.value == "pass"
        return _lean(self.example.rubric, v, self.task.threshold if self.task else 0.5)

    def criterion(self, name: str) -> str:
        if self.verdict is None or self.verdict.outcome.value == "judge_error":
            return "judge_error"
        for c in self.verdict.criteria:
            if c.name == name:
                return {True: "pass", False: "fail", None: "inconclusive"}[c.passed]
        return "judge_error"


def _lean(rubric: AnyRubric, v: Verdict, threshold: float) -> bool | None:
    from ._aggregate import _rule
    from .rubric import Rubric

    if not isinstance(rubric, Rubric):
        return v.criteria[0].passed if v.criteria else None
    decided = {c.name: c.passed for c in v.criteria}
    if set(decided) != {c.name for c in rubric.criteria}:
        return None
    rule = _rule(rubric, threshold)
    ends = {rule({n: (fill if d is None else d) for n, d in decided.items()})
            for fill in (True, False)}
    return ends.pop() if len(ends) == 1 else None


def _member_outcomes(j: Judged) -> dict[str, str]:
    """Each jury member's own decision, re-derived from its votes (the sign of the
    evidence does not depend on the accuracy estimate)."""
    from . import _aggregate as agg
    from .rubric import Rubric

    v, task = j.verdict, j.task
    if v is None or task is None:
        return {}
    models = list(dict.fromkeys(x.model for x in v.votes))
    out: dict[str, str] = {}
    for m in models:
        votes = [x for x in v.votes if x.model == m and x.error is None]
        if not votes:
            out[m] = "judge_error"
        elif isinstance(task.rubric, Rubric):
            d = agg.decide_criteria(task.rubric, votes, 0.9, task.threshold)
            out[m] = d.outcome
        else:
            out[m] = agg.decide_scale(task.rubric, votes, 0.9).outcome
    return out


@dataclass
class Group:
    """The examples of one rubric."""

    name: str
    rubric: AnyRubric
    items: list[Judged]
    overall: Agreement
    criteria: dict[str, Agreement]
    members: dict[str, Agreement]
    unanimous: int = 0
    jury_share: float | None = None  # mean share of members with the majority

    @property
    def trust(self) -> Agreement:
        """What min_kappa is checked against: the overall verdicts, or the pooled
        criterion verdicts when no overall verdict was labelled or implied."""
        if self.overall.n or not self.criteria:
            return self.overall
        pooled = Agreement()
        for a in self.criteria.values():
            for k, n in a.matrix.items():
                pooled.matrix[k] = pooled.matrix.get(k, 0) + n
        return pooled


def _group(name: str, items: list[Judged]) -> Group:
    g = Group(name, items[0].example.rubric, items, Agreement(), {}, {})
    shares: list[float] = []
    for j in items:
        human = j.human
        if human is not None:
            g.overall.add(human, j.judge)
        for cname, value in j.example.criteria.items():
            g.criteria.setdefault(cname, Agreement()).add(value, j.criterion(cname))
        members = _member_outcomes(j) if j.task and len(j.task.settings.models) > 1 \
            else {}
        if members:
            outs = list(members.values())
            best = max(outs.count(o) for o in set(outs))
            shares.append(best / len(outs))
            g.unanimous += best == len(outs)
            if human is not None:
                for m, o in members.items():
                    g.members.setdefault(m, Agreement()).add(human, o)
    if shares:
        g.jury_share = sum(shares) / len(shares)
    order = [c.name for c in getattr(g.rubric, "criteria", ())]
    g.criteria = dict(sorted(g.criteria.items(), key=lambda kv: order.index(kv[0])))
    return g


def _floor3(x: float) -> float:
    return math.floor(x * 1000 + 1e-9) / 1000


@dataclass(frozen=True)
class Threshold:
    """Decisive verdicts at one min_confidence, against people."""

    min_confidence: float
    decisive: int
    agree: int
    inconclusive: int

    @property
    def agreement(self) -> float | None:
        return self.agree / self.decisive if self.decisive else None


def thresholds(items: Sequence[Judged], configured: float,
               targets: Sequence[float] = TARGETS
               ) -> tuple[Threshold, dict[float, Threshold | None], float | None]:
    """(this run at ``configured``, the lowest min_confidence reaching each
    target (None: unreachable), the best agreement any threshold gives)."""
    base = [j for j in items if j.human is not None and j.verdict is not None
            and j.judge != "judge_error"]
    pts = [(j.verdict.confidence, j.lean == j.human) for j in base  # type: ignore[union-attr]
           if j.lean is not None]

    def at(t: float) -> Threshold:
        got = [ok for c, ok in pts if c >= t]
        return Threshold(t, len(got), sum(got), len(base) - len(got))

    cands = sorted({0.5, *(max(0.5, _floor3(c)) for c, _ in pts)})
    rows = [at(t) for t in cands]
    best = max((r.agreement for r in rows if r.agreement is not None), default=None)
    found: dict[float, Threshold | None] = {}
    for target in targets:
        found[target] = next((r for r in rows if r.agreement is not None
                              and r.agreement >= target - 1e-12), None)
    return at(configured), found, best


@dataclass
class CalibrationRun:
    """Everything the calibration report shows."""

    shown: str  # the labels file as the user named it
    models: tuple[str, ...]
    groups: list[Group]
    overall: Agreement
    items: list[Judged]
    configured: Threshold
    targets: dict[float, Threshold | None]
    best: float | None
    min_kappa: float | None
    stored: bool = False

    def untrusted(self) -> list[Group]:
        if self.min_kappa is None:
            return []
        return [g for g in self.groups if not _trusted(g.trust.kappa, self.min_kappa)]


def _trusted(kappa: float | None, min_kappa: float) -> bool:
    return kappa is not None and kappa >= min_kappa - 1e-12


# ---------------------------------------------------------------- storage
def _hash(obj: object) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def config_key(models: Sequence[str], canonical: Mapping[str, Any]) -> str:
    """The judge configuration a calibration holds for."""
    return _hash({"models": sorted(models), "prompt_version": PROMPT_VERSION,
                  "rubric": canonical})


def rubric_ident(rubric: AnyRubric) -> str:
    """A rubric's lasting identity: its name when it has one (so an edited rubric
    is seen as changed), else its canonical form."""
    from .rubric import Rubric

    name = rubric.name if isinstance(rubric, Rubric) else (
        rubric.name if rubric.name != "score" else None)
    return f"name:{name}" if name else f"hash:{_hash(rubric.canonical())}"


_memo: weakref.WeakKeyDictionary[JudgeSession, dict[str, Status]] = \
    weakref.WeakKeyDictionary()


def store(session: JudgeSession, run: CalibrationRun) -> None:
    """Keep each rubric's result beside the cache, keyed by the judge configuration."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    for g in run.groups:
        t = g.trust
        canonical = g.rubric.canonical()
        key = config_key(run.models, canonical)
        session.meta.set(f"calibration:{key}", {
            "kappa": t.kappa, "agreement": t.agreement, "examples": t.n,
            "decided": t.decided, "judge_pass_rate": t.judge_pass_rate,
            "human_pass_rate": t.human_pass_rate, "models": sorted(run.models),
            "prompt_version": PROMPT_VERSION, "rubric": g.name, "labels": run.shown,
            "when": when})
        ident = rubric_ident(g.rubric)
        session.meta.set(f"calibration-rubric:{ident}", {
            "name": g.name, "canonical": canonical, "hash": _hash(canonical),
            "models": sorted(run.models), "prompt_version": PROMPT_VERSION,
            "labels": run.shown, "when": when})
        session.meta.add(_INDEX, {ident: 1.0})
    _memo.pop(session, None)
    run.stored = True


@dataclass(frozen=True)
class Status:
    """What the stored calibrations say about one judge configuration and rubric."""

    state: str  # calibrated | stale | unlabelled
    name: str = ""
    record: Mapping[str, Any] | None = None
    why: str = ""  # stale: what changed
    labels: str = ""

    def refusal(self, models: Sequence[str], min_kappa: float) -> str | None:
        judge = ",".join(models)
        again = f"re-run {OPTION_PREFIX}calibrate={self.labels}" if self.labels \
            else f"run {OPTION_PREFIX}calibrate=LABELS"
        if self.state == "stale":
            return (f"the judge {judge} is not trusted for rubric {self.name!r}: it is "
                    f"not calibrated for this judge configuration ({self.why}); "
                    f"{again} with this judge ({OPTION_PREFIX}min-kappa={min_kappa:g})")
        if self.state != "calibrated" or self.record is None:
            return None
        k = self.record.get("kappa")
        if _trusted(k, min_kappa):
            return None
        rec = self.record
        what = (f"Cohen's kappa {k:.2f}" if k is not None else
                "Cohen's kappa is undefined (the labels or the judge's verdicts are "
                "all pass or all fail)")
        agree = rec.get("agreement")
        seen = (f"agreement {agree:.0%} on {rec.get('decided', 0)} of "
                f"{rec.get('examples', 0)} labelled examples" if agree is not None
                else f"{rec.get('examples', 0)} labelled examples")
        return (f"the judge {judge} is not trusted for rubric {self.name!r}: {what} "
                f"against human labels ({seen}; {rec.get('labels')}, "
                f"{rec.get('when')}) is below {OPTION_PREFIX}min-kappa={min_kappa:g}. "
                f"Sharpen the rubric or use a stronger judge or a jury, then {again}")


def status(session: JudgeSession, models: Sequence[str], rubric: AnyRubric
           ) -> Status:
    """Look the judge configuration up in the stored calibrations (memoised)."""
    canonical = rubric.canonical()
    key = config_key(models, canonical)
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
                    why=_what_changed(entry, models, _hash(canonical)),
                    labels=str(entry.get("labels") or ""))
    else:
        st = Status("unlabelled")
    memo[key] = st
    return st


def _what_changed(entry: Mapping[str, Any], models: Sequence[str],
                  rubric_hash: str | None) -> str:
    parts = []
    if rubric_hash is not None and entry.get("hash") != rubric_hash:
        parts.append("the rubric changed since")
    if list(entry.get("models") or []) != sorted(models):
        parts.append(f"it was calibrated with {','.join(entry.get('models') or [])}")
    if str(entry.get("prompt_version")) != PROMPT_VERSION:
        parts.append(f"with prompt template v{entry.get('prompt_version')}, now "
                     f"v{PROMPT_VERSION}")
    return "; ".join(parts) or "no stored result"


def vouch(judge: Judge, task: Task, ident: str) -> Task:
    """``--llmjudge-min-kappa``: raise ``UntrustedJudgeError`` (after recording a
    judge_error verdict) when calibration does not vouch for the judge on this
    rubric; a rubric nobody labelled gets a note instead."""
    __tracebackhide__ = True
    s = task.settings
    if s.min_kappa is None or task.kind == "pairwise" or not s.models:
        return task
    st = status(judge.session, s.models, task.rubric)
    refusal = st.refusal(s.models, s.min_kappa)
    if refusal is None:
        if st.state == "unlabelled":
            return replace(task, warnings=(*task.warnings, UNLABELLED_NOTE))
        return task
    from .assertion import format_verdict
    from .exceptions import UntrustedJudgeError
    from .judge import _excerpt
    from .verdict import Outcome, Verdict

    verdict = Verdict(outcome=Outcome.JUDGE_ERROR, passed=False,
                      kind=task.kind,  # type: ignore[arg-type]
                      rubric=task.rubric.summary(), confidence=0.0,
                      model=",".join(s.models), excerpt=_excerpt(task.output),
                      error=refusal, warnings=list(task.warnings), key=ident,
                      cached=True)
    verdict = judge.session.finish(verdict, judge.node)
    # The refusal first (pytest's one-line summary shows it), then the verdict.
    rest = [ln for ln in format_verdict(verdict).splitlines()[1:]
            if not ln.startswith("  judge error:")]
    raise UntrustedJudgeError("\n".join([refusal, *rest]), verdict)


# ---------------------------------------------------------------- the run
def configure(config: pytest.Config, raw: str) -> None:
    """Read the labels file at start-up, so that a mistake in it is a usage error."""
    path = labels_path(config, raw)
    try:
        config.stash[examples_key] = load_labels(path)
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-llmjudge: {OPTION_PREFIX}calibrate: {exc}"
                                ) from None


def _shown(config: pytest.Config, raw: str) -> str:
    path = labels_path(config, raw)
    for base in (config.invocation_params.dir, config.rootpath):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def run(session: pytest.Session) -> CalibrationRun | None:
    """Judge every labelled example concurrently, compute and store the result."""
    import asyncio

    from ._context import NodeInfo
    from .judge import REPLAYED_MODEL, Judge
    from .plugin import holder_key, settings_key

    config = session.config
    examples = config.stash.get(examples_key, None)
    settings = config.stash[settings_key]
    if not examples or not settings.calibrate:
        return None
    if session.testsfailed and not config.option.continue_on_collection_errors:
        return None  # collection failed: pytest stops before any test
    raw = settings.calibrate
    path = labels_path(config, raw)
    shown = _shown(config, raw)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"llmjudge: calibrating the judge against {len(examples)} "
                      f"labelled examples in {shown}")
    js = config.stash[holder_key].get()
    # Calibration is never refused by the trust check it feeds.
    cal = replace(settings, min_kappa=None)
    pairs: list[tuple[Example, Judge, Task]] = []
    for ex in examples:
        judge = Judge(js, cal, NodeInfo(f"{NAME}::{shown}::{ex.id}", str(path)))
        try:
            task = judge.task(ex.output, ex.rubric, input=ex.input,
                              reference=ex.reference, context=ex.context)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-llmjudge: {OPTION_PREFIX}calibrate: "
                                    f"{ex.where}: {exc}") from None
        pairs.append((ex, judge, task))

    async def judge_all() -> list[Any]:
        return list(await asyncio.gather(*(j.run(t) for _, j, t in pairs),
                                         return_exceptions=True))

    results = js.loop.run(judge_all())
    items: list[Judged] = []
    for (ex, _, task), res in zip(pairs, results, strict=True):
        if isinstance(res, ConfigError):
            raise pytest.UsageError(f"pytest-llmjudge: {OPTION_PREFIX}calibrate: "
                                    f"{res}") from None
        if isinstance(res, BaseException):
            items.append(Judged(ex, task, None, f"{type(res).__name__}: {res}"))
        else:
            items.append(Judged(ex, task, res))
    models = settings.models or (REPLAYED_MODEL,)
    result = summarise(shown, models, items, settings.min_confidence,
                       settings.min_kappa)
    store(js, result)
    config.stash[result_key] = result
    return result


def summarise(shown: str, models: tuple[str, ...], items: list[Judged],
              min_confidence: float, min_kappa: float | None) -> CalibrationRun:
    by_rubric: dict[str, list[Judged]] = {}
    for j in items:
        by_rubric.setdefault(json.dumps(j.example.rubric.canonical(), sort_keys=True),
                             []).append(j)
    groups = [_group(js[0].example.rubric_name, js) for js in by_rubric.values()]
    overall = Agreement()
    for g in groups:
        for k, n in g.trust.matrix.items():
            overall.matrix[k] = overall.matrix.get(k, 0) + n
    configured, found, best = thresholds(items, min_confidence)
    return CalibrationRun(shown, models, groups, overall, items, configured, found,
                          best, min_kappa)


# ---------------------------------------------------------------- reporting
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _kappa(x: float | None) -> str:
    return "n/a" if x is None else f"{round(x, 3) + 0.0:.3f}"  # never "-0.000"


def _lenient(a: Agreement) -> str:
    j, h = a.judge_pass_rate, a.human_pass_rate
    return "-" if j is None or h is None else f"{100 * (j - h):+.1f}"


def _clip(text: str, n: int) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[:n - 1] + "…"


def report_lines(run: CalibrationRun) -> list[str]:
    """The calibration report, as plain lines (the terminal section prints them)."""
    lines = [f"labels: {run.shown}, {len(run.items)} examples; judge: "
             f"{','.join(run.models)} (prompt template v{PROMPT_VERSION})"]
    if len(run.models) > 1:
        lines.append(f"jury of {len(run.models)}: the majority decides")
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
            ok = _trusted(a.kappa, run.min_kappa)
            line += (f"  ok (kappa >= {run.min_kappa:g})" if ok else
                     f"  NOT TRUSTED (kappa < {run.min_kappa:g})")
        lines.append(line)
    for g in run.groups:
        lines += _group_lines(g)
    lines += _threshold_lines(run)
    if run.stored:
        lines.append(f"stored beside the cache for judge {','.join(run.models)}, "
                     f"template v{PROMPT_VERSION}: {OPTION_PREFIX}min-kappa uses it "
                     "until the model, the template or the rubric changes.")
    bad = run.untrusted()
    if bad:
        lines.append(f"{OPTION_PREFIX}min-kappa={run.min_kappa:g}: the judge is NOT "
                     f"trusted for {', '.join(repr(g.name) for g in bad)}; judged "
                     "tests with that rubric error.")
    return lines


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


def status_lines(js: JudgeSession, models: Sequence[str], min_kappa: float | None
                 ) -> list[str]:
    """For a run without --llmjudge-calibrate: what the stored calibrations say
    about the configured judge (a new model or template shows as not calibrated)."""
    index = js.meta.get(_INDEX) or {}
    entries = [e for e in (js.meta.get(f"calibration-rubric:{i}") for i in index) if e]
    out: list[str] = []
    for entry in sorted(entries, key=lambda e: str(e.get("name", "")).casefold()):
        name = str(entry.get("name", ""))
        key = config_key(models, entry.get("canonical", {}))
        rec = js.meta.get(f"calibration:{key}")
        if rec is None:
            out.append(f"  {name}: NOT CALIBRATED for this judge "
                       f"({_what_changed(entry, models, None)}); re-run "
                       f"{OPTION_PREFIX}calibrate={entry.get('labels')}")
            continue
        k = rec.get("kappa")
        trust = ""
        if min_kappa is not None:
            trust = ", trusted" if _trusted(k, min_kappa) else ", NOT TRUSTED"
        out.append(f"  {name}: kappa {_kappa(k)}, agreement "
                   f"{_pct(rec.get('agreement'))} on {rec.get('decided')} of "
                   f"{rec.get('examples')} labelled examples ({rec.get('labels')}, "
                   f"{rec.get('when')}){trust}")
    if out:
        out.insert(0, f"judge {','.join(models)} (prompt template v{PROMPT_VERSION}) "
                   "against human labels:")
    return out


def terminal_section(tr: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The calibration report, or the stored calibrations' status (controller)."""
    from .plugin import holder_key, settings_key, state_key

    if hasattr(config, "workerinput"):
        return
    settings = config.stash[settings_key]
    result = config.stash.get(result_key, None)
    if result is not None:
        lines = report_lines(result)
    else:
        state = config.stash.get(state_key, None)
        judged = bool(state and state.records)
        if not (judged or settings.min_kappa is not None) or not settings.models:
            return
        lines = status_lines(config.stash[holder_key].get(), settings.models,
                             settings.min_kappa)
        unlabelled = sum(UNLABELLED_NOTE in (r.get("warnings") or [])
                         for r in (state.records if state else []))
        if unlabelled:
            lines.append(f"  {unlabelled} judged expectation(s) used rubrics nobody "
                         "labelled: the judge's agreement with people there is unknown")
        if not lines:
            return
    tr.write_sep("=", "llmjudge calibration")
    for line in lines:
        bad = "NOT TRUSTED" in line or "NOT CALIBRATED" in line
        tr.write_line(line, red=bad)


def exit_status(session: pytest.Session) -> None:
    """A calibration below --llmjudge-min-kappa fails the run, even if no test
    used that rubric."""
    result = session.config.stash.get(result_key, None)
    if result is not None and result.untrusted() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
