"""A retrieval-augmented answerer: claim-level judged tests.

The help-centre answerer (app/retrieval_answerer.py) retrieves passages and
answers from them. The judge splits each answer into claims (one extraction
call) and decides every claim on its own: is it stated by the retrieved
passages (faithfulness), does it help answer the question (relevance), do the
passages hold the facts of the answer we expect (context recall)? Every judge
reply, extractions included, is recorded in
llmjudge_records/test_retrieval_answerer.json.
"""

from __future__ import annotations

import os

import pytest

from app.retrieval_answerer import GAP_FILLERS, SAFETY_TIP, RetrievalAnswerer
from pytest_llmjudge import (
    Outcome,
    assert_context_recall,
    assert_faithful,
    assert_relevant,
    judge_context_recall,
    judge_faithfulness,
)

QUESTIONS = {
    "unlock": "How do I unlock a bike?",
    "monthly_pass": "How much does a ride cost with the monthly pass?",
    "refund_time": "How long does a refund take?",
    "parking": "What happens if I park outside a station?",
    "cash_refund": "Can I get my refund in cash?",
}
EBIKE = "How far can I go on an e-bike, and how old do I have to be?"

# What the answers should say, written by the support team (ground truth for
# context recall: are these facts in what the retriever found?).
EXPECTED = {
    "monthly_pass": "The monthly pass costs 15 euros. It includes the first 45 "
                    "minutes of every classic-bike ride. Minutes beyond 45 cost "
                    "0.20 euros per minute.",
    "refund_time": "Refunds reach your card within 5 business days. Refunds are "
                   "requested under Account > Ride history, within 14 days of "
                   "the ride.",
}
EBIKE_FACTS = ("E-bikes have a battery range of about 60 km. Riders must be 16 "
               "or older to ride an e-bike.")


@pytest.fixture(scope="module")
def answerer() -> RetrievalAnswerer:
    """The answerer as deployed: the v2 prompt, top 2 passages."""
    return RetrievalAnswerer("v2", k=2)


def test_retriever_ranks_the_matching_article_first(answerer: RetrievalAnswerer
                                                    ) -> None:
    # Plain asserts, no judge: the retriever is ordinary code.
    best = {name: answerer.answer(q).sources[0] for name, q in QUESTIONS.items()}
    assert best == {"unlock": "unlocking", "monthly_pass": "prices",
                    "refund_time": "refunds", "parking": "ending",
                    "cash_refund": "refunds"}
    assert answerer.answer("Do I need a helmet?").passages == []


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_answer_is_faithful_to_the_passages(answerer: RetrievalAnswerer,
                                            name: str) -> None:
    # Every claim of the answer must be stated by the passages it was given.
    question = QUESTIONS[name]
    answer = answerer.answer(question)
    assert_faithful(answer.text, context=answer.passages, input=question)


def test_ebike_answer_may_add_the_house_safety_line(answerer: RetrievalAnswerer
                                                    ) -> None:
    # The prompt adds a helmet line that no passage states: one claim in four.
    # min_share=0.75 accepts that, and the test checks it is the only one.
    answer = answerer.answer(EBIKE)
    result = assert_faithful(answer.text, context=answer.passages, input=EBIKE,
                             min_share=0.75)
    assert [c.claim for c in result.unsupported] == [SAFETY_TIP]


@pytest.mark.parametrize("name", ["refund_time", "unlock"])
def test_answer_is_relevant(answerer: RetrievalAnswerer, name: str) -> None:
    # Every statement of the answer must help answer the question.
    question = QUESTIONS[name]
    assert_relevant(answerer.answer(question).text, input=question)


def test_parking_answer_is_mostly_relevant(answerer: RetrievalAnswerer) -> None:
    # The model copies the best passage whole, so a side sentence comes along
    # ("The ride keeps running until the lock is closed."): two statements in
    # three must answer the question.
    question = QUESTIONS["parking"]
    result = assert_relevant(answerer.answer(question).text, input=question,
                             min_share=0.6)
    assert len(result.claims) == 3
    assert len(result.unsupported) == 1


def test_judge_rejects_an_answer_to_another_question(answerer: RetrievalAnswerer
                                                     ) -> None:
    # A negative control for relevance: the parking answer, given to the
    # unlocking question, is faithful to its passages but answers nothing asked.
    parking = answerer.answer(QUESTIONS["parking"]).text
    assert_relevant(parking, input=QUESTIONS["unlock"], expect="fail")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_retrieved_passages_hold_the_expected_facts(answerer: RetrievalAnswerer,
                                                    name: str) -> None:
    # Context recall checks the retriever, not the model: the facts of the
    # expected answer must be in the passages found for the question.
    question = QUESTIONS[name]
    assert_context_recall(EXPECTED[name], context=answerer.answer(question).passages,
                          input=question)


def test_ebike_age_rule_needs_three_passages() -> None:
    # A known gap of keyword retrieval: "how old" does not match "16 or older",
    # so the top 2 passages miss the age rule. judge_context_recall never
    # raises: the test pins which fact is missing, and that k=3 finds it.
    top2 = RetrievalAnswerer("v2", k=2).answer(EBIKE).passages
    result = judge_context_recall(EBIKE_FACTS, context=top2, input=EBIKE)
    assert result.outcome is Outcome.FAIL, result.explain()
    assert result.share == 0.5
    assert [c.claim for c in result.unsupported] == [
        "Riders must be 16 or older to ride an e-bike."]
    top3 = RetrievalAnswerer("v2", k=3).answer(EBIKE).passages
    assert_context_recall(EBIKE_FACTS, context=top3, input=EBIKE)


def test_old_prompt_invents_a_cash_refund() -> None:
    # The v1 prompt ("always give a complete answer") fills the gap: the
    # passages say nothing about cash, the answer says kiosks pay it out.
    # judge_faithfulness returns the ClaimsVerdict without raising.
    question = QUESTIONS["cash_refund"]
    answer = RetrievalAnswerer("v1").answer(question)
    result = judge_faithfulness(answer.text, context=answer.passages, input=question)
    assert result.outcome is Outcome.FAIL, result.explain()
    assert [c.claim for c in result.unsupported] == [GAP_FILLERS["cash"]]
    assert result.share == 4 / 5
    if os.environ.get("SHOW_JUDGED_FAILURE"):
        # What a failing faithfulness assertion prints (offline, from the same
        # records): SHOW_JUDGED_FAILURE=1 pytest examples/ -k cash_refund
        assert_faithful(answer.text, context=answer.passages, input=question)


def test_judge_rejects_the_hallucinated_answer() -> None:
    # A negative control: if the judge passed this answer, the faithfulness
    # tests above would be worthless.
    question = QUESTIONS["cash_refund"]
    answer = RetrievalAnswerer("v1").answer(question)
    assert_faithful(answer.text, context=answer.passages, input=question,
                    expect="fail")
