"""Does the judge read the output? Catching a judge that gives every output
the same answer (issue #16).

Order agreement rewards consistency, and a judge that answers "pass" (or
level 5, or "tie") to everything is perfectly consistent: agreement alone
would make it look nearly infallible. What a judge that does not read the
output cannot do is *vary* its answer with the output. So, per judge model
and kind of judgment, over this run and the history kept beside the cache,
we count the clearly different outputs it judged and the distinct answers it
gave them:

- two or more distinct answers: it discriminates; agreement is evidence as
  before ("varied");
- it passed a negative control (``expect="fail"``: an output known to be bad)
  and has given one answer only over ``CONTROL_OUTPUTS`` or more outputs, or
  (scales) one level over at least ``SAME_ANSWER_OUTPUTS`` clearly different
  outputs: it is flagged
  ("constant"). Its agreement is no evidence, so its per-vote accuracy is
  0.5: every verdict is inconclusive at confidence 0.5, and the summary says
  "the judge gave every output the same answer";
- one pass/fail answer (or one comparison answer) over at least
  ``SAME_ANSWER_OUTPUTS`` outputs and no negative control: "same". A sound
  judge on a suite whose outputs are all good answers this way too, so this
  alone cannot make verdicts inconclusive (a passing suite would fail); the
  summary says so and asks for a negative control, and agreement may not
  raise confidence above the prior's;
- otherwise "unproven": too few outputs to tell; agreement counts as before.

The rule cannot be met by consistency: only answers that change with the
output count. A judge that varies its answers without reading the output
(one keyed on a hash of the text, or a contrarian that answers the opposite)
is not caught here; only labels catch it (``--llmjudge-calibrate``).

"Clearly different" outputs: texts that still differ after case, digits,
punctuation and spacing are dropped (``"Sorry, order 3 is late"`` and
``"Sorry, order 4 is late"`` are one output: a good judge answers both alike).

Answers: per criterion pass/fail (criteria), the level (scales), which
position won, first or second shown, or tie (comparisons: a good judge's
winner moves between positions as the orders swap; one that always takes the
same position, or always says tie, does not).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_llmjudge.types import Kind
from pytest_llmjudge.verdict import Vote

#: Clearly different outputs with one answer that flag a judge.
SAME_ANSWER_OUTPUTS = 8
#: Output digests kept per judge and kind beside the cache (enough to decide).
KEEP_OUTPUTS = 64
#: The words of the summary's flag (issue #16).
SAME_ANSWER = "the judge gave every output the same answer"
#: Node ids of judgments whose answers count but whose outputs do not: the
#: canary's negative controls (``canary.NAME``; this layer may not import it),
#: which a sound judge fails alike, and the labelled examples of a
#: calibration run (``calibration.run.NAME``), which are judged all at once in
#: any order and which people's labels judge better than this rule can.
CONTROLS = ("llmjudge_canary::", "llmjudge-calibrate::")

_NOT_WORD = re.compile(r"[\W\d_]+", re.UNICODE)


def shape(text: str) -> str:
    """What is left of ``text`` when case, digits, punctuation and spacing go."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def output_digest(kind: Kind, output: str, other: str | None) -> str | None:
    """A short digest of the judged output's shape (None: nothing is left)."""
    parts = [shape(output)]
    if kind is Kind.PAIRWISE:
        parts = sorted([parts[0], shape(other or "")])
    if not any(parts):
        return None
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:12]


def answers(kind: Kind, votes: Sequence[Vote]) -> set[str]:
    """The distinct answers in ``votes`` (failed votes give none)."""
    out: set[str] = set()
    for v in votes:
        if v.error is not None:
            continue
        if kind is Kind.CRITERIA:
            out.update(v.verdicts.values())
        elif kind is Kind.SCALE and v.level is not None:
            out.add(f"level {v.level}")
        elif kind is Kind.PAIRWISE and v.winner is not None:
            if v.winner == "tie":
                out.add("tie")
            else:
                b_first = v.order.startswith("B")
                out.add("first shown" if (v.winner == "B") == b_first
                        else "second shown")
    return out


def tally_key(model: str, kind: str) -> str:
    return f"answers:{model}:{kind}"


def deltas(kind: Kind, output: str, other: str | None, votes: Sequence[Vote],
           nodeid: str = "") -> dict[str, float]:
    """What one judgment adds to its judge's tally: its output and answers
    (a canary case's or labelled example's answers only)."""
    said = answers(kind, votes)
    digest = output_digest(kind, output, other)
    if not said or digest is None:
        return {}
    out = {f"a:{a}": 1.0 for a in said}
    if not nodeid.startswith(CONTROLS):
        out[f"o:{digest}"] = 1.0
    return out


#: Tally key: the judge passed an output that a test said it must reject.
CONTROL_PASSED = "c:passed"
#: Clearly different outputs with one answer that flag a judge which also
#: passed a negative control (fewer: a sound judge's occasional slip).
CONTROL_OUTPUTS = 3


@dataclass(frozen=True)
class Variation:
    """A judge's answers so far, over clearly different outputs."""

    outputs: int
    answers: tuple[str, ...]
    kind: str = ""
    controls_passed: int = 0

    @property
    def state(self) -> str:
        """"varied", "constant" (flagged), "same" (noted) or "unproven"."""
        if len(self.answers) >= 2:
            return "varied"
        if self.controls_passed and self.outputs >= CONTROL_OUTPUTS:
            return "constant"
        if self.outputs >= SAME_ANSWER_OUTPUTS:
            return "constant" if self.kind == Kind.SCALE.value else "same"
        return "unproven"

    def note(self, model: str, kind: str) -> str:
        said = self.answers[0] if self.answers else "?"
        if self.state == "same":
            return (f"{SAME_ANSWER} ({model}, {kind}: {said!r} for "
                    f"{SAME_ANSWER_OUTPUTS} or more clearly different outputs): a "
                    "sound judge on a suite of good outputs answers so too, but so "
                    "does one that does not read them; add a negative control "
                    "(assert_rejected on a known-bad output) so that such a judge "
                    "is caught, or calibrate it (--llmjudge-calibrate)")
        if self.controls_passed:
            return (f"{SAME_ANSWER} ({model}, {kind}: {said!r}, a negative control "
                    "included): its agreement between orders is no evidence, so "
                    "its verdicts are inconclusive; calibrate it against people's "
                    "labels (--llmjudge-calibrate) or use a stronger judge")
        # No count: under xdist each worker's note must read the same.
        return (f"{SAME_ANSWER} ({model}, {kind}: {said!r} for "
                f"{SAME_ANSWER_OUTPUTS} or more clearly different outputs): its "
                "agreement between "
                "orders is no evidence, so its verdicts are inconclusive; show it "
                "outputs that should fail (--llmjudge-canary) or calibrate it "
                "against people's labels (--llmjudge-calibrate)")


def variation(*tallies: Mapping[str, float], kind: str = "") -> Variation:
    """The variation the tallies (saved history, this run) show together."""
    outs: set[str] = set()
    said: set[str] = set()
    passed = 0
    for t in tallies:
        outs.update(k for k in t if k.startswith("o:"))
        said.update(k[2:] for k in t if k.startswith("a:"))
        passed += int(t.get(CONTROL_PASSED, 0) > 0)
    return Variation(len(outs), tuple(sorted(said)), kind, passed)


def bounded(saved: Mapping[str, float], run: Mapping[str, float],
            new: dict[str, float]) -> dict[str, float]:
    """``new`` without a new output once ``KEEP_OUTPUTS`` are kept (answers
    always count)."""
    known = {k for k in (*saved, *run) if k.startswith("o:")}
    if len(known) < KEEP_OUTPUTS:
        return new
    return {k: v for k, v in new.items() if not k.startswith("o:") or k in known}
