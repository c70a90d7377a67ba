"""``Judge``: the façade users hold. It validates a call into a ``Task``
(``task``), has the ``Sampler`` gather each judge model's votes (``sample``),
turns them into a ``Verdict`` (``combine``), then learns from the fresh
first pairs and hands the verdict to the session for history and reports.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_llmjudge.constants import REPLAYED_MODEL
from pytest_llmjudge.exceptions import JudgeNotConfiguredError
from pytest_llmjudge.judging import discrimination, rank
from pytest_llmjudge.judging import task as tasks
from pytest_llmjudge.judging.calibrated import AGREEMENT_ONLY, Calibration
from pytest_llmjudge.judging.combine import combine, screened
from pytest_llmjudge.judging.decide import accuracy_from_agreement
from pytest_llmjudge.judging.expectations import Expectation, settle_expectations
from pytest_llmjudge.judging.rank import Ranking
from pytest_llmjudge.judging.sample import ModelResult, Sampler
from pytest_llmjudge.judging.screen import degenerate_reason
from pytest_llmjudge.judging.task import Task
from pytest_llmjudge.judging.trust import vouch
from pytest_llmjudge.runtime.context import current
from pytest_llmjudge.settings import Settings
from pytest_llmjudge.types import Kind, NodeInfo, PairMode
from pytest_llmjudge.verdict import Verdict

if TYPE_CHECKING:
    from pytest_llmjudge.runtime.session import JudgeSession

NO_MODEL = (
    "no judge model is configured. Set one with --llmjudge-model=NAME, "
    "llmjudge_model = NAME under [tool.pytest.ini_options], the LLMJUDGE_MODEL "
    "environment variable, @pytest.mark.llmjudge(model=NAME) or model=NAME in the "
    "call (any litellm model name, e.g. openai/gpt-4o-mini)"
)

Item = Mapping[str, Any] | tuple[Any, ...]

#: The summary's note when some confidence rests on agreement alone (#16).
UNCALIBRATED = (
    "confidence is uncalibrated (agreement only): it rests on how often the "
    "presentation orders agree, which errors a judge makes in every order do not "
    "lower; label examples and run --llmjudge-calibrate=LABELS to calibrate it "
    "against people")


class Judge:
    """A configured judge. ``check`` never raises on a failing verdict."""

    def __init__(self, session: JudgeSession, settings: Settings,
                 node: NodeInfo | None = None):
        self.session = session
        self.settings = settings
        self.node = node
        self._pending: list[Expectation] = []  # expect() outside a pytest test

    # ---------------------------------------------------------------- building
    def task(self, output: object, rubric: object = None, **kwargs: Any) -> Task:
        """Validate a judged call (raises at the caller's line). A comparison when
        ``better_than=``/``at_least_as_good_as=`` is given."""
        __tracebackhide__ = True
        return self._prepared(tasks.from_call(self.settings, output, rubric, **kwargs))

    def pair_task(self, a: object, b: object, rubric: object = None, *,
                  mode: PairMode, **kwargs: Any) -> Task:
        """Validate a comparison of ``a`` with ``b``."""
        __tracebackhide__ = True
        return self._prepared(tasks.pair(self.settings, a, b, rubric, mode=mode,
                                         **kwargs))

    def _prepared(self, task: Task) -> Task:
        """On the caller's thread: read this test's records file now (a damaged
        one is warned about where pytest shows warnings), and say whether the
        judge wrote the output itself."""
        self.session.replies.store.preload(self.node)
        return task.noted(self.session.self_preference(task.settings,
                                                       task.generated_by))

    # ---------------------------------------------------------------- public API
    def check(self, output: object, rubric: object, **kwargs: Any) -> Verdict:
        """Judge ``output`` against ``rubric``; returns the ``Verdict`` (never raises
        on fail). Keyword arguments as for ``assert_judged``."""
        __tracebackhide__ = True
        task = self.task(output, rubric, **kwargs)
        return self.session.loop.run(self.run(task))

    async def acheck(self, output: object, rubric: object, **kwargs: Any) -> Verdict:
        """Async ``check``; shares the process-wide judge loop and limits."""
        __tracebackhide__ = True
        task = self.task(output, rubric, **kwargs)
        return await self.session.loop.run_async(self.run(task))

    def compare(self, a: object, b: object, rubric: object = None, **kwargs: Any
                ) -> Verdict:
        """Judge which of ``a`` and ``b`` is better; ``verdict.winner`` is "A", "B"
        or "tie" (None when the orders disagree: inconclusive)."""
        __tracebackhide__ = True
        task = self.pair_task(a, b, rubric, mode=PairMode.COMPARE, **kwargs)
        return self.session.loop.run(self.run(task))

    async def acompare(self, a: object, b: object, rubric: object = None,
                       **kwargs: Any) -> Verdict:
        """Async ``compare``."""
        __tracebackhide__ = True
        task = self.pair_task(a, b, rubric, mode=PairMode.COMPARE, **kwargs)
        return await self.session.loop.run_async(self.run(task))

    def rank(self, candidates: Sequence[object], rubric: object = None,
             **kwargs: Any) -> Ranking:
        """Rank candidates by comparing every pair in both orders (concurrently);
        ``ranking.winner`` is the index of the one that beat every other one
        (None for a tie, a cycle or an undecided pair: see ``status``)."""
        __tracebackhide__ = True
        batch = rank.pair_tasks(self, candidates, rubric, kwargs)
        pairs = self.session.loop.run(rank.gather_pairs(self, batch))
        return rank.decide(len(candidates), pairs)

    def select_best(self, candidates: Sequence[object], rubric: object = None,
                    **kwargs: Any) -> object | None:
        """The candidate that beat every other one, or None when the judge
        found no single best (a tie, inconclusive, a judge error: see
        ``rank``)."""
        __tracebackhide__ = True
        r = self.rank(candidates, rubric, **kwargs)
        return candidates[r.winner] if r.winner is not None else None

    def expect(self, output: object, rubric: object = None, **kwargs: Any) -> None:
        """A soft check: record a judged expectation without stopping the test.

        Judging starts at once, alongside the rest of the test. When the test
        body ends, all its expectations are settled together and the test fails
        once, listing every expectation that was not met. Arguments as for
        ``assert_judged``; a wrong argument raises here, at the caller's line.
        """
        __tracebackhide__ = True
        task = self._prepared(tasks.from_call(self.settings, output, rubric,
                                              what="expect", **kwargs))
        caller = sys._getframe(1)
        where = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
        pending = self._expectations()
        pending.append(Expectation(len(pending) + 1, where, task,
                                   self.session.loop.submit(self.run(task))))

    def verify_expectations(self) -> None:
        """Wait for this judge's pending ``expect()`` calls and fail once for all
        unmet ones. In a test the plugin calls it after the body; outside pytest,
        call it yourself."""
        __tracebackhide__ = True
        settle_expectations(self._expectations())

    def _expectations(self) -> list[Expectation]:
        ctx = current()
        if ctx is not None and self.node is not None and ctx.node == self.node:
            return ctx.expectations
        return self._pending

    def check_many(self, items: Iterable[Item]) -> list[Verdict]:
        """Judge many expectations concurrently; items are ``(output, rubric)`` or
        dicts of ``check`` arguments. Returns verdicts in order."""
        __tracebackhide__ = True
        batch = self._item_tasks(items)
        return self.session.loop.run(self._gather(batch))

    async def acheck_many(self, items: Iterable[Item]) -> list[Verdict]:
        """Async ``check_many``."""
        __tracebackhide__ = True
        batch = self._item_tasks(items)
        return await self.session.loop.run_async(self._gather(batch))

    def _item_tasks(self, items: Iterable[Item]) -> list[Task]:
        __tracebackhide__ = True
        out = []  # a loop, not a comprehension: its frame would show (3.11)
        for n, item in enumerate(items):
            out.append(self._prepared(tasks.from_item(self.settings, n, item)))
        return out

    async def _gather(self, batch: list[Task]) -> list[Verdict]:
        return list(await asyncio.gather(*(self.run(t) for t in batch)))

    # ---------------------------------------------------------------- judging
    def accuracy(self, model: str, kind: Kind | str) -> float:
        """This judge model's per-vote accuracy, from its pooled agreement, as
        far as its answers show it reads the output (``discrimination``): 0.5
        for a judge flagged as giving every output the same answer, at most the
        prior's for one that answered many clearly different outputs alike
        (a judge with few outputs so far keeps what its agreement shows: the
        agreement statistics of a sound judge on a passing suite still count)."""
        kind = Kind(kind)
        a = self.agreement_accuracy(model, kind)
        if self.node is not None and self.node.nodeid.startswith(
                discrimination.CONTROLS[1]):
            return a  # labelled examples: people judge the judge there
        state = self.variation(model, kind).state
        if state == "constant":
            return 0.5
        if state == "same":
            return min(a, accuracy_from_agreement(0.0, 0.0))
        return a

    def agreement_accuracy(self, model: str, kind: Kind) -> float:
        """The per-vote accuracy the pooled agreement alone implies."""
        return accuracy_from_agreement(*self.session.agreement(model, kind.value,
                                                               self.node))

    def variation(self, model: str, kind: Kind) -> discrimination.Variation:
        """The answers this judge model gave clearly different outputs, over
        the saved history and this run."""
        key = discrimination.tally_key(model, kind.value)
        return discrimination.variation(self.session.saved_tally(key),
                                        self.session.run_tally(key), kind=kind.value)

    async def run(self, task: Task, *, part: bool = False) -> Verdict:
        """Decide one task (on the judge loop); ``part``: reported as part of
        a larger check, not as an expectation of its own."""
        node = self.node.nodeid if self.node else None
        ident = task.identity(node)
        # Comparisons are not screened: a degenerate side simply loses.
        screen = task.settings.screen and task.kind is not Kind.PAIRWISE
        reason = degenerate_reason(task.output) if screen else None
        if reason is not None:
            return self.session.finish(screened(task, reason, ident), self.node,
                                       screened=True, part=part)
        if not task.settings.models and self.session.settings.record_mode != "none":
            raise JudgeNotConfiguredError(NO_MODEL)
        if task.settings.min_kappa is not None:
            vouch(self.session, self.node, task, ident)  # raises when untrusted
        # Replay-only runs (record mode none) need no model: a fresh clone
        # without keys replays the committed records as recorded.
        models = task.settings.models or (REPLAYED_MODEL,)
        calibration = Calibration(self.session)
        sampler = Sampler(self.session, self.node, self.accuracy, calibration)
        results = await asyncio.gather(*(sampler.run(task, m) for m in models))
        flagged = [m for m in models
                   if self.variation(m, task.kind).state == "constant"]
        self._learn(task, results)
        verdict = combine(task, results, ident,
                          lambda m: self.accuracy(m, task.kind))
        update: dict[str, Any] = {}
        if flagged:
            update["warnings"] = [*verdict.warnings, *(self.variation(
                m, task.kind).note(m, task.kind.value) for m in flagged)]
        decided = results[0].decision if len(results) == 1 else None
        update["confidence_basis"] = calibration.basis(task, decided)
        labelled = node is not None and node.startswith(discrimination.CONTROLS[1])
        if update["confidence_basis"] == AGREEMENT_ONLY and not labelled and \
                verdict.outcome.value != "judge_error" and \
                UNCALIBRATED not in self.session.notes:
            self.session.notes.append(UNCALIBRATED)
        verdict = verdict.model_copy(update=update)
        return self.session.finish(verdict, self.node, part=part)

    def _learn(self, task: Task, results: list[ModelResult]) -> None:
        """Pool the first pair's agreement only when both of its replies are
        new: a cached pair was counted by the run that asked it (raising
        max_samples later must not count it again)."""
        for r in results:
            if r.decision is not None and {0, 1} <= {v.presentation for v in r.fresh}:
                self.session.learn(r.model, task.kind.value, r.decision.agree,
                                   r.decision.pairs)
            # Every judgment shows what the judge answers, cached ones too: an
            # output is counted once however often it is judged.
            key = discrimination.tally_key(r.model, task.kind.value)
            passed = task.expect == "fail" and r.decision is not None and \
                r.decision.outcome == "pass"
            new = discrimination.deltas(task.kind, task.output, task.other, r.votes,
                                        self.node.nodeid if self.node else "")
            self.session.add_tally(key, discrimination.bounded(
                self.session.saved_tally(key), self.session.run_tally(key), new))
            if passed:  # it passed a known-bad output: for every kind it judges
                for k in Kind:
                    self.session.add_tally(
                        discrimination.tally_key(r.model, k.value),
                        {discrimination.CONTROL_PASSED: 1.0})
            var = self.variation(r.model, task.kind)
            if var.state in ("constant", "same"):
                note = var.note(r.model, task.kind.value)
                if note not in self.session.notes:
                    self.session.notes.append(note)
