"""Is the new prompt (v2) better than the old one (v1)? Judged side by side.

Run this whenever the prompt changes: each new reply must beat the old reply to
the same message, judged in both orders to cancel position bias.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.support_bot import SupportBot
from pytest_llmjudge import Judge, assert_judged, load_rubric

MESSAGES = [
    "I forgot my password and cannot log in",
    "I was charged twice for order 1234, I want my money back",
    "Where is my order? It has been a week",
    "How do I cancel my subscription?",
]


@pytest.mark.parametrize("message", MESSAGES,
                         ids=["password", "refund", "shipping", "cancel"])
def test_new_prompt_beats_old_prompt(bot: SupportBot, old_bot: SupportBot,
                                     message: str) -> None:
    # With no rubric the comparison asks which answer is more correct, complete
    # and helpful.
    assert_judged(bot.reply(message), better_than=old_bot.reply(message),
                  input=message)


def test_new_prompt_wins_on_the_support_criteria(judge: Judge, bot: SupportBot,
                                                 old_bot: SupportBot) -> None:
    # judge.compare returns the verdict without raising: winner "A" (the first
    # text), "B" or "tie". The comparison here uses the shared rubric's criteria.
    message = "How do I cancel my subscription?"
    rubric = load_rubric(Path(__file__).resolve().parent.parent / "rubrics"
                         / "support_reply.yaml")
    verdict = judge.compare(bot.reply(message), old_bot.reply(message), rubric,
                            input=message)
    assert verdict.winner == "A", verdict.error or verdict.winner
