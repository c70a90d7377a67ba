"""A multi-turn chat assistant with tools: judged conversations.

The chat (app/chat_assistant.py) is OpenAI-style messages: the customer's
messages, the assistant's tool calls with their results, and its replies. The
judge sees them as numbered messages, tool results under the calls that made
them. Every judge reply is recorded in llmjudge_records/test_chat_assistant.json.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from app.chat_assistant import CUSTOMER, LOGGED_BAD_CHAT, ChatAssistant, chat
from pytest_llmjudge import (
    Conversation,
    Criterion,
    Outcome,
    Rubric,
    assert_conversation,
    assert_judged,
    judge_conversation,
)

ROLE = "Kettle & Leaf's support assistant (an online tea shop)"

# What every assistant turn must do, whatever the customer asked.
GROUNDED_AND_POLITE = Rubric([
    Criterion("grounded", "Every fact the turn states (dates, numbers, ids, stock) "
              "comes from a tool result or from the conversation; it invents none "
              "and contradicts none"),
    Criterion("polite", "The turn is polite and professional: it does not blame, "
              "mock or belittle the customer"),
], name="grounded and polite turn")


@pytest.fixture(scope="module")
def conversation() -> list[dict[str, Any]]:
    """The chat through all four customer messages (17 messages)."""
    return chat()


def test_every_turn_is_grounded_and_polite(conversation: list[dict[str, Any]]) -> None:
    # Each assistant turn, judged with the 4 messages before it (and the system
    # prompt). A message that only calls a tool is a step, not a turn: the
    # four replies are judged.
    result = assert_conversation(conversation, GROUNDED_AND_POLITE, turns="each",
                                 window=4, role=ROLE)
    assert len(result.turns) == 4


def test_most_turns_are_short(conversation: list[dict[str, Any]]) -> None:
    # A soft style rule: the return instructions may run long, most turns must
    # not. min_share is a share of the assistant's replies (3 of these 4).
    assert_conversation(conversation, Rubric([Criterion(
        "short_reply", "The turn's own words (not its tool calls) number at most "
        "30: customers read the chat on a phone")]), turns="each", min_share=0.75,
        role=ROLE)


def test_last_turn_confirms_the_restock_email(conversation: list[dict[str, Any]]
                                              ) -> None:
    # "Yes please" only means something with the turns before it.
    assert_conversation(conversation, "Confirms that the customer will get an "
                        "'email' when the 'Darjeeling' is back", turns="last",
                        window=4, role=ROLE)


def test_whole_chat_resolves_every_request(conversation: list[dict[str, Any]]
                                           ) -> None:
    assert_conversation(
        conversation,
        Rubric([
            Criterion("every_request_answered", "Every request the customer makes "
                      "gets an answer from the assistant, and every tool call gets "
                      "its result"),
            Criterion("outcome_reached", "The chat ends with the expected outcome: "
                      "an arrival date ('14 March'), a return ('R-5531') and a "
                      "restock 'email'"),
        ]),
        turns="whole", role=ROLE,
        scenario="A customer's tea order is late, one tin in it arrived dented, "
                 "and they want a tea that is sold out",
        expected_outcome="The customer knows when the order arrives, has a return "
                         "label for the dented tin, and will be emailed when the "
                         "Darjeeling is back")


def test_reply_judged_with_the_history_as_input() -> None:
    # One reply judged on its own, the chat before it shown as input=: numbered
    # messages with the tool calls and results, not a JSON dump.
    assistant = ChatAssistant()
    for text in CUSTOMER[:-1]:
        assistant.send(text)
    reply = assistant.send("Yes please")
    history = assistant.messages[:-1]  # everything before the reply: the
    # customer's "Yes please", the notify_restock call and its result
    assert_judged(reply, "Confirms a restock 'email' for the 'Darjeeling' the "
                  "customer asked about earlier", input=Conversation(history))


def test_judge_rejects_the_invented_restock_date() -> None:
    # A negative control: last week's chat, whose last turn contradicted the
    # stock tool ("back in stock since 2 March"). The judge must fail it.
    assert_conversation(LOGGED_BAD_CHAT, GROUNDED_AND_POLITE, turns="last",
                        window=4, role=ROLE, expect="fail")


def test_only_the_bad_turn_fails() -> None:
    # judge_conversation returns the verdict without raising: check which turn
    # failed, and why.
    result = judge_conversation(LOGGED_BAD_CHAT, GROUNDED_AND_POLITE, role=ROLE)
    assert result.outcome is Outcome.FAIL, result.explain()
    assert [t.turn for t in result.failing] == [13]
    failed = {c.name for c in result.failing[0].verdict.criteria if c.passed is False}
    assert failed == {"grounded"}
    assert result.share == 2 / 3
    if os.environ.get("SHOW_JUDGED_FAILURE"):
        # What a failing conversation assertion prints (offline, from the same
        # records): SHOW_JUDGED_FAILURE=1 pytest examples/ -k bad_turn
        assert_conversation(LOGGED_BAD_CHAT, GROUNDED_AND_POLITE, role=ROLE)
