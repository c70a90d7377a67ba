"""Kettle & Leaf's chat assistant: a multi-turn support chat with tools.

Kettle & Leaf is a (fictional) online tea shop. In production every turn would
send the conversation so far (system prompt, the customer's messages, earlier
tool calls and their results) to a model that may call the tools below. Here a
deterministic stand-in plays the model, so that the conversation, and
therefore the recorded judge replies, stay the same from run to run.

The conversation is kept as OpenAI-style message dicts: ``system``, ``user``,
``assistant`` (``tool_calls`` with JSON ``arguments``, ``content`` None when
the turn only calls a tool) and ``tool`` results answering a ``tool_call_id``.
"""

from __future__ import annotations

import json
import re
from typing import Any

SYSTEM_PROMPT = (
    "You are the support assistant of Kettle & Leaf, an online tea shop. Be "
    "friendly and brief. Use the tools for orders, returns and stock, and state "
    "only what they return. Never mention internal systems."
)

# The shop's back office, as the tools see it.
ORDERS = {"K-2041": {"status": "shipped", "carrier": "Royal Mail",
                     "eta": "2025-03-14", "items": ["Assam Breakfast tin",
                                                    "Sencha tin"]}}
PRODUCTS = {"darjeeling": {"sku": "DJ-100", "name": "First Flush Darjeeling",
                           "in_stock": False, "restock_date": "2025-03-20"},
            "sencha": {"sku": "SN-200", "name": "Sencha", "in_stock": True}}
MONTHS = ("January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December")


def lookup_order(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, **ORDERS.get(order_id, {"status": "unknown"})}


def start_return(order_id: str, item: str, reason: str) -> dict[str, Any]:
    return {"return_id": "R-5531", "order_id": order_id, "item": item,
            "label_url": "https://kettleleaf.example/returns/R-5531",
            "drop_off_within_days": 14, "refund_days": "3-5"}


def check_stock(product: str) -> dict[str, Any]:
    info = PRODUCTS.get(product.lower().split()[-1], {})
    return {k: v for k, v in info.items() if k != "name"} or {"found": False}


def notify_restock(sku: str) -> dict[str, Any]:
    return {"sku": sku, "subscribed": True, "channel": "email"}


TOOLS = {f.__name__: f for f in (lookup_order, start_return, check_stock,
                                 notify_restock)}


def _day(iso: str) -> str:
    """2025-03-14 -> 14 March."""
    _, month, day = iso.split("-")
    return f"{int(day)} {MONTHS[int(month) - 1]}"


class ChatAssistant:
    """One chat with one customer. ``send`` takes the customer's message,
    appends it with the assistant's tool calls, their results and the reply to
    ``messages``, and returns the reply."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT}]
        self._order: str | None = None      # the order this chat is about
        self._offered: str | None = None    # a SKU offered a restock email
        self._calls = 0

    def send(self, text: str) -> str:
        self.messages.append({"role": "user", "content": text})
        reply = self._respond(text)
        self.messages.append({"role": "assistant", "content": reply})
        return reply

    def _tool(self, name: str, **args: Any) -> dict[str, Any]:
        """Call a tool as the model would: a tool-call turn, then its result."""
        self._calls += 1
        call_id = f"call_{self._calls}"
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}}]})
        result: dict[str, Any] = TOOLS[name](**args)
        self.messages.append({"role": "tool", "tool_call_id": call_id,
                              "content": json.dumps(result)})
        return result

    def _respond(self, text: str) -> str:
        low = text.lower()
        found = re.search(r"K-\d{4}", text)
        if found:
            self._order = found.group(0)
        if self._offered and re.match(r"(yes|yeah|sure|please)\b", low):
            sku, self._offered = self._offered, None
            self._tool("notify_restock", sku=sku)
            name = next(p["name"] for p in PRODUCTS.values() if p["sku"] == sku)
            return (f"Done: we will email you as soon as {name} is back. Anything "
                    "else I can help with?")
        if re.search(r"dented|broken|damaged|return", low) and self._order:
            item = next((i for i in ORDERS[self._order]["items"]
                         if i.split()[0].lower() in low), "tin")
            ret = self._tool("start_return", order_id=self._order, item=item,
                             reason="arrived damaged")
            return (f"I'm sorry the tin arrived dented. I've opened return "
                    f"{ret['return_id']}: print the label at kettleleaf.example/"
                    f"returns/{ret['return_id']} and drop the parcel at any post "
                    f"office within {ret['drop_off_within_days']} days. Your refund "
                    f"reaches your card {ret['refund_days']} days after it arrives.")
        product = next((p for key, p in PRODUCTS.items() if key in low), None)
        if product is not None:
            stock = self._tool("check_stock", product=product["name"])
            if stock.get("in_stock"):
                return f"Yes, {product['name']} is in stock and ships today."
            self._offered = stock["sku"]
            return (f"Not yet, sorry: {product['name']} is due back on "
                    f"{_day(stock['restock_date'])}. Shall I email you when it is "
                    "back in stock?")
        if self._order:
            order = self._tool("lookup_order", order_id=self._order)
            if order["status"] == "shipped":
                return (f"Sorry for the wait! Order {self._order} shipped with "
                        f"{order['carrier']} and should arrive on "
                        f"{_day(order['eta'])}. You can follow it at "
                        f"kettleleaf.example/track/{self._order}.")
            return (f"Order {self._order} is {order['status']}; I will keep an eye "
                    "on it.")
        return "Happy to help! Which order is it about? The number looks like K-1234."


#: What the customer writes, turn by turn, in the chat the tests judge.
CUSTOMER = [
    "Hi, my order K-2041 still hasn't arrived. Where is it?",
    "Also, one of the tins in it arrived dented, the Sencha. Can I return it?",
    "Thanks. Is the Darjeeling back in stock yet?",
    "Yes please",
]


def chat(customer: list[str] = CUSTOMER) -> list[dict[str, Any]]:
    """A fresh chat through every customer message: all its messages."""
    assistant = ChatAssistant()
    for text in customer:
        assistant.send(text)
    return assistant.messages


#: A chat logged last week, before the assistant was told to state only what
#: its tools return: asked about the Darjeeling, it called ``check_stock`` and
#: then contradicted the result (the customer left the chat after that).
LOGGED_BAD_CHAT = [
    *chat(CUSTOMER[:3])[:-1],
    {"role": "assistant", "content": "Good news: First Flush Darjeeling is back "
     "in stock since 2 March. Order today and it ships tomorrow!"},
]
