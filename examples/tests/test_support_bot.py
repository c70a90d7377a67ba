"""Judged tests of the support bot: what a team would keep in its test suite.

Every judge reply these tests need is recorded in
llmjudge_records/test_support_bot.json, so the suite runs offline (see
../README.md). Change an output or a rubric and the replay fails with a clear
"no recorded judge reply" error until you re-record.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.support_bot import REFUND_POLICY, SupportBot
from pytest_llmjudge import (
    Criterion,
    Judge,
    Outcome,
    Rubric,
    assert_judged,
    load_rubric,
)

RUBRICS = Path(__file__).resolve().parent.parent / "rubrics"
# One rubric file shared by several tests (and by test_prompt_upgrade.py).
SUPPORT_REPLY = load_rubric(RUBRICS / "support_reply.yaml")


def test_password_reset_reply(bot: SupportBot) -> None:
    # The simplest form: the rubric is one sentence.
    message = "I forgot my password and cannot log in"
    assert_judged(bot.reply(message),
                  "Says how long the reset link is valid (24 hours)",
                  input=message)


# A table of customer messages and what the reply to each must say.
CASES = [
    ("I forgot my password and cannot log in",
     "Tells the customer to use the 'Forgot password' link"),
    ("I was charged twice for order 1234, I want my money back",
     "Says the duplicate charge is refunded, within 5-7 business days"),
    ("Where is my order? It has been a week",
     "Explains how to follow the package with 'Track package'"),
    ("How do I cancel my subscription?",
     "Says where to cancel ('Settings > Subscription') and that access lasts "
     "until the end of the paid period"),
    ("Can you recommend a good pizza place?",
     "Says the question was passed to the 'support team' instead of making up "
     "an answer"),
]


@pytest.mark.parametrize(("message", "expectation"), CASES,
                         ids=["password", "refund", "shipping", "cancel", "off_topic"])
def test_reply_says_the_right_thing(bot: SupportBot, message: str,
                                    expectation: str) -> None:
    assert_judged(bot.reply(message), expectation, input=message)


@pytest.mark.parametrize("message", [m for m, _ in CASES],
                         ids=["password", "refund", "shipping", "cancel", "off_topic"])
def test_reply_meets_the_support_rubric(bot: SupportBot, message: str) -> None:
    # The shared YAML rubric: three required criteria, two optional ones.
    assert_judged(bot.reply(message), SUPPORT_REPLY, input=message)


REFUND_ANSWER = Rubric(
    [
        Criterion("states_window", "States that refunds are possible within 30 days"),
        Criterion("how_to_request",
                  "Explains where to request the refund: 'Orders > Request refund'"),
        Criterion("empathy", "Acknowledges the customer's trouble or apologises",
                  required=False),
        Criterion("timeline", "Says how long the refund takes to reach the customer",
                  required=False),
    ],
    name="refund answer",
)


# Per-test settings: here both optional criteria must pass (threshold 1.0), and
# the judge may take up to 4 presentations before calling the verdict.
@pytest.mark.llmjudge(threshold=1.0, max_samples=4)
def test_refund_answer_follows_the_policy(bot: SupportBot) -> None:
    message = "I was charged twice for order 1234, I want my money back"
    assert_judged(bot.reply(message), REFUND_ANSWER, input=message,
                  reference=REFUND_POLICY)


def test_triage_ticket(bot: SupportBot) -> None:
    # Structured output (a dict) is judged as JSON.
    message = "I was charged twice for order 1234. I want my money back today."
    ticket = bot.triage(message)
    assert ticket["intent"] == "refund"  # plain asserts for what code can check
    assert_judged(ticket, Rubric([
        Criterion("priority", "The ticket's priority is high: a customer charged "
                  "twice is losing money"),
        Criterion("intent", "The ticket's intent is 'refund'"),
        Criterion("reply_answers", "The reply field answers the customer's message"),
    ]), input=message)


RUDE_REPLY = (
    "Obviously you didn't read the manual. I've logged it in Zendesk as INT-4411 "
    "for Dave on the internal escalations board; wait for him."
)


def test_rubric_catches_a_rude_reply(judge: Judge) -> None:
    """A negative control: a rubric that passes everything would be worthless.

    The ``judge`` fixture returns verdicts without raising, so a test can check
    that a known-bad output fails and for which reasons.
    """
    message = "I forgot my password and cannot log in"
    verdict = judge.check(RUDE_REPLY, SUPPORT_REPLY, input=message)
    assert verdict.outcome is Outcome.FAIL, verdict.error or verdict.outcome
    failed = {c.name for c in verdict.criteria if c.passed is False}
    assert {"polite", "no_internal_details"} <= failed
    if os.environ.get("SHOW_JUDGED_FAILURE"):
        # To see what a failing judged assertion prints (offline, from the same
        # record): SHOW_JUDGED_FAILURE=1 pytest examples/ -k rude
        assert_judged(RUDE_REPLY, SUPPORT_REPLY, input=message)
