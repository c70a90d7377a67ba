"""A tool-using agent and a support chat: trajectories and conversations.

The trajectory checks need no judge (deterministic matchers, as agentevals'
trajectory match modes); the judged ones replay from
llmjudge_records/test_order_agent.json like every judged test here.
"""

from __future__ import annotations

from app.order_agent import CHAT, run
from pytest_llmjudge import Trajectory, assert_conversation, assert_judged
from pytest_llmjudge.trajectory import assert_trajectory


def test_shipped_order_calls_lookup_then_tracking() -> None:
    steps = run("Where is my order A-1001?")
    assert_trajectory(steps, [
        {"name": "lookup_order", "args": {"order_id": "A-1001"}},
        {"name": "track_shipment", "args": {"order_id": "A-1001"}},
    ], args="superset")                 # only the expected keys must match


def test_unshipped_order_makes_no_tracking_call() -> None:
    steps = run("Status of A-1002 please")
    assert_trajectory(steps, [{"name": "lookup_order", "args": {"order_id": "A-1002"}},
                              {"name": "track_shipment"}], mode="subset",
                      args="ignore")    # no call beyond these two


def test_answer_uses_the_tool_results() -> None:
    question = "Where is my order A-1001?"
    assert_judged(Trajectory(run(question)),
                  "The final answer states the carrier 'DHL' and the '2 days' "
                  "from the tool results", input=question)


def test_every_assistant_turn_apologises_and_helps() -> None:
    assert_conversation(CHAT, "Says 'sorry' to the customer", turns="each",
                        role="Acme's support assistant")
