"""What a team asks of the bot before a release, in the words it uses elsewhere.

A score with a pass mark (DeepEval's GEval threshold, promptfoo's llm-rubric
threshold), a ground-truth check (``expected=``: the correct answer, not just a
good example), a negative control (a known bad reply the judge must reject),
and instructions plus few-shot examples for the judge. Records in
llmjudge_records/test_release_gates.json keep it offline.
"""

from __future__ import annotations

from app.support_bot import SupportBot
from pytest_llmjudge import Criterion, Rubric, Scale, assert_judged, assert_rejected

# A 0-10 score: only some points are described; 7 or more passes.
RESOLVES = Scale(
    "How fully the reply resolves the customer's question",
    levels={
        0: "Does not address the question at all.",
        4: "Addresses the topic but leaves the customer without steps to follow.",
        7: "Gives the steps the customer needs.",
        10: "Gives the steps, the timing to expect and a concrete next step.",
    },
    pass_score=7,
)

# Ground truth: what the policy says. The reply must agree with it on the facts.
REFUND_FACTS = Rubric([Criterion("agrees_with_expected",
                                 "States the refund window and the time the money "
                                 "takes to arrive")])
TRUE_ANSWER = "Refunds within 30 days; money arrives in 5-7 business days."


def test_refund_reply_scores_at_least_7(bot: SupportBot) -> None:
    message = "How do I get a refund? I was charged twice."
    assert_judged(bot.reply(message), RESOLVES, input=message)


def test_refund_reply_agrees_with_the_policy(bot: SupportBot) -> None:
    message = "How long does a refund take?"
    assert_judged(bot.reply(message), REFUND_FACTS, input=message,
                  expected=TRUE_ANSWER)


def test_judge_rejects_a_wrong_refund_timeline() -> None:
    # A negative control: if the judge passes this, the check above is worthless.
    wrong = "Refunds are possible within 90 days and arrive in 24 hours."
    assert_rejected(wrong, REFUND_FACTS, input="How long does a refund take?",
                    expected=TRUE_ANSWER)


def test_old_prompt_scores_below_the_mark(old_bot: SupportBot) -> None:
    # The old prompt's one-liner must not reach the pass mark.
    message = "How do I get a refund? I was charged twice."
    assert_judged(old_bot.reply(message), RESOLVES, input=message, expect="fail")


EXAMPLES = [
    {"output": "Hi! 1. Open Orders. 2. Click 'Track package'.", "verdict": "pass",
     "reasoning": "numbered steps the customer can follow"},
    {"output": "Your order is on its way.", "verdict": "fail",
     "reasoning": "no step the customer can take"},
]


def test_tracking_reply_with_instructions_and_examples(bot: SupportBot) -> None:
    message = "Where is my order?"
    assert_judged(bot.reply(message),
                  "Tells the customer how to 'Track package' themselves",
                  input=message, instructions="Informal wording is fine.",
                  examples=EXAMPLES)
