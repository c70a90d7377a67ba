"""Fixtures shared by the example tests: the bot under both prompt versions."""

from __future__ import annotations

import pytest

from app.support_bot import SupportBot


@pytest.fixture
def bot() -> SupportBot:
    """The bot with the current prompt."""
    return SupportBot("v2")


@pytest.fixture
def old_bot() -> SupportBot:
    """The bot with the previous prompt, kept to check that v2 is an improvement."""
    return SupportBot("v1")
