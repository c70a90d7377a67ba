"""Acme's customer-support bot.

In production ``SupportBot.reply`` would send ``PROMPTS[version]`` and the
customer's message to a model. Here a canned-reply stand-in answers instead, so
that the example's outputs (and therefore its recorded judge replies) are
stable: the tests judge these outputs exactly as they would judge a model's.
Two prompt versions exist so that the tests can check that the new prompt
("v2") answers better than the old one ("v1").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROMPTS = {
    "v1": "Answer the customer's question.",
    "v2": (
        "You are Acme's support assistant. Greet the customer, answer their question "
        "in short numbered steps, and end with one concrete next step. Never mention "
        "internal tools, tickets or staff names. Stay under 120 words."
    ),
}

REFUND_POLICY = (
    "Acme refunds any purchase within 30 days. Customers request a refund from "
    "Orders > Request refund; the money reaches the original payment method within "
    "5-7 business days."
)


@dataclass(frozen=True)
class Intent:
    name: str
    keywords: tuple[str, ...]
    priority: str
    replies: dict[str, str]


INTENTS: tuple[Intent, ...] = (
    Intent(
        "password_reset", ("password", "log in", "login", "locked out"), "normal",
        {
            "v1": "Reset your password in settings.",
            "v2": (
                "Hi, thanks for reaching out! To reset your password:\n"
                "1. Go to acme.example/login and click 'Forgot password'.\n"
                "2. Enter the email address on your account.\n"
                "3. Open the email we send you and choose a new password.\n"
                "The link is valid for 24 hours. If the email does not arrive within "
                "10 minutes, check your spam folder or reply here and we will help."
            ),
        },
    ),
    Intent(
        "refund", ("refund", "money back", "charged twice", "return"), "high",
        {
            "v1": "Refunds are possible. Check the website.",
            "v2": (
                "Hi, I'm sorry about the trouble with your order. Acme refunds any "
                "purchase within 30 days:\n"
                "1. Open Orders > Request refund.\n"
                "2. Pick the order and the reason.\n"
                "The money reaches your original payment method within 5-7 business "
                "days. If you were charged twice, we refund the duplicate charge "
                "automatically once you submit the request."
            ),
        },
    ),
    Intent(
        "shipping",
        ("where is my order", "shipping", "delivery", "tracking", "package"), "normal",
        {
            "v1": "Your order is on its way.",
            "v2": (
                "Hi! You can follow your package at any time:\n"
                "1. Open Orders and select the order.\n"
                "2. Click 'Track package' to see the carrier's latest update.\n"
                "Standard delivery takes 3-5 business days. If the tracking page has "
                "not changed for 3 days, reply here with your order number and we "
                "will contact the carrier for you."
            ),
        },
    ),
    Intent(
        "cancel_subscription", ("cancel", "unsubscribe", "stop my subscription"),
        "normal",
        {
            "v1": "You can cancel whenever you want.",
            "v2": (
                "Hi, sorry to see you go. To cancel your subscription:\n"
                "1. Open Settings > Subscription.\n"
                "2. Click 'Cancel subscription' and confirm.\n"
                "You keep access until the end of the period you have paid for, and "
                "you will not be charged again. You can restart it at any time from "
                "the same page."
            ),
        },
    ),
)

HANDOFF = {
    "v1": "I don't know.",
    "v2": (
        "Hi, thanks for your message. I can't answer that one myself, so I've passed "
        "it to a member of our support team, who will reply by email within one "
        "business day."
    ),
}


def classify(message: str) -> Intent | None:
    """The intent whose keywords the message mentions first (None: hand off)."""
    text = message.lower()
    best: tuple[int, Intent] | None = None
    for intent in INTENTS:
        for kw in intent.keywords:
            m = re.search(r"\b" + re.escape(kw) + r"\b", text)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), intent)
    return best[1] if best else None


class SupportBot:
    """Answers a customer's message with the given prompt version."""

    def __init__(self, prompt_version: str = "v2"):
        if prompt_version not in PROMPTS:
            raise ValueError(f"unknown prompt version {prompt_version!r}; "
                             f"known: {', '.join(PROMPTS)}")
        self.prompt_version = prompt_version

    @property
    def prompt(self) -> str:
        return PROMPTS[self.prompt_version]

    def reply(self, message: str) -> str:
        intent = classify(message)
        replies = intent.replies if intent else HANDOFF
        return replies[self.prompt_version]

    def triage(self, message: str) -> dict[str, str]:
        """A structured ticket for the help desk (judged as JSON in the tests)."""
        intent = classify(message)
        return {
            "intent": intent.name if intent else "handoff",
            "priority": intent.priority if intent else "normal",
            "summary": _first_sentence(message),
            "reply": self.reply(message),
        }


def _first_sentence(text: str) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)
    return parts[0][:200]
