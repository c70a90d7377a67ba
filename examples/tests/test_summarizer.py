"""Judged tests of the summarizer: faithfulness, a scored scale, and a check that
the new summarizing style is no worse than the old one on every document."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.summarizer import DOCUMENTS, summarize
from pytest_llmjudge import Scale, assert_judged

RUBRICS = Path(__file__).resolve().parent.parent / "rubrics"

# Settings for every test in this module (a test's own marker would win).
pytestmark = pytest.mark.llmjudge(max_samples=4)

# A scored scale (levels 1..5 described in words); level 4 or more passes.
CONCISENESS = Scale(
    criterion="How concisely the summary conveys the source's main point",
    levels={
        1: "Does not state the source's main point.",
        2: "States the main point but is about as long as the source (more than 80% "
           "of its length).",
        3: "States the main point in 67-80% of the source's length.",
        4: "States the main point in at most two thirds of the source's length.",
        5: "States the main point and the key facts in at most a third of the "
           "source's length.",
    },
    pass_level=4,
    name="conciseness",
)


@pytest.mark.parametrize("doc", sorted(DOCUMENTS))
def test_summary_is_faithful(doc: str) -> None:
    # A rubric file path works as a rubric too; context= is what it must be
    # faithful to.
    source = DOCUMENTS[doc]
    assert_judged(summarize(source), RUBRICS / "faithful_summary.yaml",
                  context=source)


@pytest.mark.parametrize("doc", sorted(DOCUMENTS))
def test_summary_is_concise(doc: str) -> None:
    source = DOCUMENTS[doc]
    verdict = assert_judged(summarize(source), CONCISENESS, context=source)
    assert verdict.level is not None and verdict.level >= 4


def test_incident_summary_names_the_cause() -> None:
    source = DOCUMENTS["incident"]
    assert_judged(summarize(source), [
        "Says that checkout was down for 42 minutes",
        "Names the cause: the payment gateway's 'TLS certificate' had expired",
        "Says how a repeat will be prevented: 'monitored' certificate expiry",
    ], context=source)


@pytest.mark.parametrize("doc", sorted(DOCUMENTS))
def test_new_style_is_no_worse_than_the_old(doc: str) -> None:
    # Pairwise: judged in both orders, so a judge that favours whichever text it
    # reads first cannot decide this on its own.
    source = DOCUMENTS[doc]
    assert_judged(summarize(source, style="ranked"),
                  at_least_as_good_as=summarize(source, style="lead"),
                  input="Summarize this document for a busy reader.",
                  context=source)
