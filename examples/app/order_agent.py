"""Acme's order-status agent: a tool-using assistant.

In production a model would decide which tools to call. Here a deterministic
stand-in plays the model, so the trajectory (and the recorded judge replies)
stay the same from run to run. ``run`` returns OpenAI-style messages: the
user's question, the assistant's tool calls, the tool results and the answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

ORDERS = {"A-1001": {"status": "shipped", "carrier": "DHL", "eta_days": 2},
          "A-1002": {"status": "processing", "carrier": None, "eta_days": 5}}


def _call(i: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"call_{i}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def run(question: str) -> list[dict[str, Any]]:
    """Answer ``question`` with tool calls; the whole exchange as messages."""
    msgs: list[dict[str, Any]] = [{"role": "user", "content": question}]
    m = re.search(r"A-\d{4}", question)
    if not m:
        msgs.append({"role": "assistant", "content": "Which order number is it? "
                     "It looks like A-1234."})
        return msgs
    order = m.group(0)
    msgs.append({"role": "assistant", "content": None,
                 "tool_calls": [_call(1, "lookup_order", {"order_id": order})]})
    info = ORDERS.get(order, {"status": "unknown"})
    msgs.append({"role": "tool", "tool_call_id": "call_1", "content": json.dumps(info)})
    if info.get("status") == "shipped":
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            _call(2, "track_shipment", {"order_id": order,
                                        "carrier": info["carrier"]})]})
        msgs.append({"role": "tool", "tool_call_id": "call_2",
                     "content": json.dumps({"eta_days": info["eta_days"]})})
        answer = (f"Your order {order} has shipped with {info['carrier']} and should "
                  f"arrive in {info['eta_days']} days.")
    else:
        answer = (f"Your order {order} is {info.get('status')}; it should ship "
                  f"within {info.get('eta_days', '?')} days.")
    msgs.append({"role": "assistant", "content": answer})
    return msgs


#: A support chat as the app logs it (the last reply came from the old prompt).
CHAT = [
    {"role": "system", "content": "You are Acme's support assistant."},
    {"role": "user", "content": "Hi, my order A-1001 is late."},
    {"role": "assistant", "content": "Sorry about the wait! Order A-1001 shipped "
     "with DHL and should arrive in 2 days."},
    {"role": "user", "content": "Can I change the delivery address?"},
    {"role": "assistant", "content": "Sorry, the address cannot change once an "
     "order has shipped; DHL can hold it at a pickup point for you."},
]
