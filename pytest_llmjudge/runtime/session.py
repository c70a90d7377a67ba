"""``JudgeSession``: the state of one pytest process's judging.

It owns the judge loop, the reply store (records + cache), the pooled
agreement statistics behind confidence, budgets, the verdict history that
catches flips across runs, and the verdict records that reports read. It is
kept in ``config.stash``; ``assert_judged`` finds it through a context
variable set around each test.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.constants import DEFAULT_CACHE_DIR, FORMAT_CHAIN, REASONING_KEPT
from pytest_llmjudge.exceptions import (
    BudgetExceededError,
    CacheWarning,
    LLMJudgeWarning,
    RecordWarning,
    SelfPreferenceWarning,
    warn_at_caller,
)
from pytest_llmjudge.runtime.context import current
from pytest_llmjudge.runtime.loop import JudgeLoop
from pytest_llmjudge.runtime.serving import ServingWatch
from pytest_llmjudge.settings import Settings
from pytest_llmjudge.storage.cache import ReplyCache
from pytest_llmjudge.storage.records import ReplyStore
from pytest_llmjudge.text import add_secret, clip_strings, scrub_json
from pytest_llmjudge.types import NodeInfo
from pytest_llmjudge.verdict import Outcome, Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.runtime.client import Reply



_FAMILIES = (
    ("openai", r"^(gpt|o\d|chatgpt|text-davinci)"), ("anthropic", r"^claude"),
    ("google", r"^(gemini|gemma|palm)"), ("meta", r"^(llama|meta-llama)"),
    ("mistral", r"^(mistral|mixtral|codestral|ministral)"), ("qwen", r"^qwen"),
    ("deepseek", r"^deepseek"), ("cohere", r"^command"), ("xai", r"^grok"),
)


def _format_key(model: str, api_base: str | None) -> str:
    """Where a judge's refused reply formats are kept (never the URL itself)."""
    endpoint = hashlib.sha256((api_base or "").rstrip("/").encode()).hexdigest()[:16]
    return f"format:{model}:{endpoint}"


def _bare(model: str) -> str:
    return model.strip().lower().rsplit("/", 1)[-1]


def model_family(model: str) -> str | None:
    name = _bare(model)
    for fam, pat in _FAMILIES:
        if re.match(pat, name):
            return fam
    return None


class _Replies:
    """Adapts the record/cache chain to the judge's (key, record key) pair."""

    def __init__(self, store: ReplyStore):
        self.store = store

    def get(self, keys: tuple[str, str], node: NodeInfo | None, presentation: int,
            model: str, kind: str) -> dict[str, Any] | None:
        return self.store.get(keys[0], keys[1], node, presentation, model, kind)

    def put(self, keys: tuple[str, str], reply: dict[str, Any], node: NodeInfo | None,
            presentation: int, model: str, kind: str) -> None:
        self.store.put(keys[0], keys[1], reply, node, presentation, model, kind)


class JudgeSession:
    """Run state for one process (the controller or one xdist worker)."""

    def __init__(self, settings: Settings, rootdir: Path, *, run_id: str = "",
                 started: float | None = None):
        self.settings = settings
        add_secret(settings.api_key)  # scrubbed wherever it might be written
        self.rootdir = rootdir
        self.run_id = run_id or f"{time.time():.6f}"
        cache_dir = Path(settings.cache_dir) if settings.cache_dir else Path(
            DEFAULT_CACHE_DIR)
        self.cache_dir = cache_dir if cache_dir.is_absolute() else rootdir / cache_dir
        self.notes: list[str] = []  # run-level notes for the summary
        # Storage problems found inside a test (where the session is built) are
        # warned about once, at the end of the session: under
        # ``filterwarnings = error`` a warning raised in each test would fail
        # every judged test for one damaged cache.
        self.problems: list[tuple[type[LLMJudgeWarning], str]] = []
        self.cache = ReplyCache(self.cache_dir, settings.cache,
                                warn=self._problem(CacheWarning))
        self.meta = ReplyCache(self.cache_dir / "meta", "on",
                               warn=self._problem(CacheWarning), keep=True)
        self.cache.open()
        self.meta.open()
        self.replies = _Replies(ReplyStore(self.cache, settings.record_mode,
                                           settings.record_dir, rootdir, started,
                                           stats=self.stats,
                                           note=self._problem(RecordWarning)))
        self._loop: JudgeLoop | None = None
        self.records: list[dict[str, Any]] = []
        self.counters: dict[str, float] = {
            "calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
            "cost": 0.0, "screened": 0}
        self.cost_known = False
        self._stats: dict[str, tuple[float, float]] = {}
        self._learned: dict[str, list[float]] = {}
        # Tallies of JSON counters (a judge's answers over outputs): what
        # earlier runs saved, read once, and what this run adds, saved at close.
        self._saved_tallies: dict[str, dict[str, float]] = {}
        self._tallies: dict[str, dict[str, float]] = {}
        self._formats: dict[str, set[str]] = {}
        #: How each judge endpoint serves (one at a time? slowly?), from timings.
        self.watch = ServingWatch(self._add_note)
        #: Requests in flight by cache key (judge loop only): a duplicate waits.
        self.in_flight: dict[str, asyncio.Future[Reply | None]] = {}
        self._seq: dict[str, int] = {}
        # Verdict history to write at close, in one transaction: a write per
        # verdict was most of a cached or replayed judgment's cost.
        self._history: dict[str, dict[str, Any]] = {}

    def _problem(self, kind: type[LLMJudgeWarning]) -> Callable[[str], None]:
        def tell(message: str) -> None:
            if message not in self.notes:
                self.notes.append(message)
                self.problems.append((kind, message))
        return tell

    def _add_note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def take_problems(self) -> list[tuple[type[LLMJudgeWarning], str]]:
        """The storage problems not yet warned about (each once)."""
        taken, self.problems = self.problems, []
        return taken

    # ------------------------------------------------------------ judge loop
    @property
    def loop(self) -> JudgeLoop:
        if self._loop is None:
            self._loop = JudgeLoop(self.settings.concurrency, self.settings.rpm)
        return self._loop

    @property
    def peak_in_flight(self) -> int:
        return self._loop.peak_in_flight if self._loop else 0

    # ------------------------------------------------------------ confidence
    def agreement(self, model: str, kind: str, node: NodeInfo | None = None
                  ) -> tuple[float, float]:
        """(agreeing pairs, pairs) of this judge's first presentation pairs, the
        evidence its per-vote accuracy is estimated from.

        Frozen for the run: read once from beside the cache (what earlier runs
        learned), or from the records file when replies are replayed, so the
        same replies give the same verdicts whatever the order of completion,
        the number of xdist workers, or the machine (a fresh clone replays what
        was recorded). What this run learns is saved at close, for the next run.
        """
        recorded = self.replies.store.stats(node, model, kind)
        return recorded if recorded is not None else self.stats(model, kind)

    def stats(self, model: str, kind: str) -> tuple[float, float]:
        """(agreeing pairs, pairs) learned before this run started."""
        k = f"agreement:{model}:{kind}"
        if k not in self._stats:
            saved = self.meta.get(k) or {}
            try:
                pair = (float(saved.get("agree", 0.0)), float(saved.get("pairs", 0.0)))
            except (TypeError, ValueError):  # a damaged row: start from the prior
                pair = (0.0, 0.0)
            self._stats[k] = pair if min(pair) >= 0 and pair[0] <= pair[1] \
                else (0.0, 0.0)
        return self._stats[k]

    def learn(self, model: str, kind: str, agree: int, pairs: int) -> None:
        """Pool a fresh judgment's first-pair agreement (saved at close)."""
        if pairs:
            key = f"agreement:{model}:{kind}"
            self.add_learned({key: [float(agree), float(pairs)]})

    def take_learned(self) -> dict[str, list[float]]:
        """Hand over (and forget) what this process learned: an xdist worker
        sends it to the controller, which saves everyone's at the end."""
        learned, self._learned = self._learned, {}
        return learned

    def add_learned(self, learned: dict[str, list[float]]) -> None:
        """Pool (agreeing pairs, pairs) per judge key, e.g. from xdist workers."""
        for k, (agree, pairs) in learned.items():
            got = self._learned.setdefault(k, [0.0, 0.0])
            got[0] += agree
            got[1] += pairs

    def flush_learned(self) -> None:
        pending, self._learned = self._learned, {}
        for k, (agree, pairs) in pending.items():
            self.meta.add(k, {"agree": agree, "pairs": pairs})

    def saved_tally(self, key: str) -> dict[str, float]:
        """A tally as earlier runs left it beside the cache (read once: frozen
        for the run); a damaged row counts as empty."""
        if key not in self._saved_tallies:
            saved = self.meta.get(key) or {}
            self._saved_tallies[key] = {
                str(k): float(v) for k, v in saved.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return self._saved_tallies[key]

    def run_tally(self, key: str) -> dict[str, float]:
        """What this process added to a tally in this run."""
        return self._tallies.get(key, {})

    def add_tally(self, key: str, deltas: dict[str, float]) -> None:
        """Add counters to a tally (saved at close; xdist workers each add
        theirs atomically)."""
        if deltas:
            got = self._tallies.setdefault(key, {})
            for k, v in deltas.items():
                got[k] = got.get(k, 0.0) + v

    def flush_tallies(self) -> None:
        pending, self._tallies = self._tallies, {}
        for k, d in pending.items():
            self.meta.add(k, d)

    # ------------------------------------------------------------ calls, budgets
    def spend_call(self, model: str) -> None:
        """Count a judge call about to be made; refuse it when over budget."""
        s = self.settings
        if s.max_calls is not None or s.max_cost is not None:
            spent = self.meta.add(f"budget:{self.run_id}", {"calls": 1})
            if s.max_calls is not None and spent["calls"] > s.max_calls:
                raise BudgetExceededError(
                    f"the judge-call budget of {s.max_calls} (--llmjudge-max-calls) is "
                    "spent: no more judge calls in this run")
            if s.max_cost is not None and spent.get("cost", 0.0) >= s.max_cost:
                raise BudgetExceededError(
                    f"the judge cost budget of ${s.max_cost} (--llmjudge-max-cost) is "
                    "spent: no more judge calls in this run")
        self.counters["calls"] += 1

    def spend(self, reply: Reply) -> None:
        self.counters["prompt_tokens"] += reply.prompt_tokens
        self.counters["completion_tokens"] += reply.completion_tokens
        if reply.cost is not None:
            self.cost_known = True
            self.counters["cost"] += reply.cost
            if self.settings.max_cost is not None:
                self.meta.add(f"budget:{self.run_id}", {"cost": reply.cost})
        elif self.settings.max_cost is not None:
            # Said in the summary, not warned: this runs on the judge loop's
            # thread, where a warning (an error under filterwarnings) would
            # break the judgment instead of reporting the gap.
            note = (f"--llmjudge-max-cost={self.settings.max_cost} is not enforced for "
                    f"{reply.model or 'this judge'}: litellm knows no price for it; "
                    "use --llmjudge-max-calls to bound the run")
            if note not in self.notes:
                self.notes.append(note)

    def reply_format(self, model: str, api_base: str | None, setting: str) -> str:
        """The reply format to ask this judge for: the setting, stepped down past
        every format this model and endpoint refused (in this run or, as kept
        beside the cache, an earlier one)."""
        key = _format_key(model, api_base)
        if key not in self._formats:
            saved = self.meta.get(key) or {}
            refused = saved.get("refused")
            self._formats[key] = {str(r) for r in refused} \
                if isinstance(refused, list) else set()
        chain = FORMAT_CHAIN[FORMAT_CHAIN.index(setting):] \
            if setting in FORMAT_CHAIN else (setting,)
        return next((f for f in chain if f not in self._formats[key]), chain[-1])

    def refuse_format(self, model: str, api_base: str | None, name: str) -> None:
        """The endpoint refused ``name`` as ``response_format``: step down, say so
        in the summary, and remember it beside the cache for later runs."""
        key = _format_key(model, api_base)
        refused = self._formats.setdefault(key, set())
        if name in refused:
            return
        refused.add(name)
        self.meta.set(key, {"refused": sorted(refused)})
        now = self.reply_format(model, api_base, name)
        where = f" at {api_base}" if api_base else ""
        self.notes.append(f"judge {model}{where} refused response_format {name}: "
                          f"asked with {now} instead (remembered beside the cache)")

    def self_preference(self, settings: Settings, generated_by: str | None
                        ) -> tuple[str, ...]:
        if not generated_by:
            return ()
        notes = []
        for m in settings.models:
            if _bare(m) == _bare(generated_by):
                notes.append(f"the judge {m} is the model that generated the output; "
                             "LLM judges favour their own outputs: use another judge")
            elif (fam := model_family(m)) and fam == model_family(generated_by):
                notes.append(f"the judge {m} is of the same family ({fam}) as "
                             f"{generated_by}, which generated the output; LLM judges "
                             "favour their own family's outputs")
        for n in notes:
            warn_at_caller(SelfPreferenceWarning(n))
        return tuple(notes)

    # ------------------------------------------------------------ verdicts
    def finish(self, verdict: Verdict, node: NodeInfo | None, *,
               screened: bool = False, part: bool = False) -> Verdict:
        """Flag flips against the last run, count, and keep the record.

        ``part``: one judgment of a larger check (a batch of claims) that is
        reported as a whole, in the check's own verdict: nothing is kept."""
        if part:
            return verdict
        decisive = (Outcome.PASS, Outcome.FAIL)
        if verdict.outcome in decisive and verdict.key:
            prev = self.remember(verdict.key, {"outcome": verdict.outcome.value,
                                               "confidence": verdict.confidence})
            prev = prev if isinstance(prev, dict) else {}
            was = prev.get("outcome")
            if was in ("pass", "fail") and was != verdict.outcome.value:
                conf = prev.get("confidence")
                shown = f" (confidence {conf:.2f})" if isinstance(
                    conf, (int, float)) else ""  # a damaged row: the outcome only
                reason = (f"changed since the last run: was {was}{shown}, now "
                          f"{verdict.outcome.value}")
                joined = f"{verdict.flaky_reason}; {reason}" if verdict.flaky_reason \
                    else reason
                verdict = verdict.model_copy(update={"flaky": True,
                                                     "flaky_reason": joined})
        self.counters["cache_hits"] += verdict.cache_hits
        if screened:
            self.counters["screened"] += 1
        self.record(verdict, node)
        return verdict

    def record(self, verdict: Verdict, node: NodeInfo | None) -> dict[str, Any]:
        # Where every report, summary and JUnit property comes from: secrets
        # scrubbed, and a judge's long text bounded, once, here.
        rec: dict[str, Any] = clip_strings(
            scrub_json(verdict.model_dump(mode="json")), REASONING_KEPT)
        rec["nodeid"] = node.nodeid if node else ""
        # The order of verdicts within a test lines them up with a baseline's.
        rec["seq"] = self._seq[rec["nodeid"]] = self._seq.get(rec["nodeid"], -1) + 1
        self.records.append(rec)
        ctx = current()
        if ctx is not None and node is not None and ctx.node == node:
            ctx.records.append(rec)
        return rec

    def remember(self, key: str, entry: dict[str, Any]) -> Any:
        """What an earlier run (or this one) saved under ``key``; ``entry``
        replaces it (written with the verdict history)."""
        hk = f"history:{key}"
        prev = self._history.get(hk) or self.meta.get(hk)
        if current() is None:  # outside a test: no close() may follow
            self.meta.set(hk, entry)
        else:
            self._history[hk] = entry
            if len(self._history) >= 256:
                self.flush_history()
        return prev

    def flush_history(self) -> None:
        if self._history:
            pending, self._history = self._history, {}
            self.meta.set_many(pending)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self.flush_history()
        self.flush_learned()
        self.flush_tallies()
        self.replies.store.close()
        self.cache.close()
        self.meta.close()
