"""How a judge endpoint serves: one request at a time, or slowly.

Local servers (llama.cpp's with one slot, a CPU box) answer concurrent
requests strictly one after another and keep computing a request whose client
gave up. ``ServingWatch`` reads the send and reply times of every request (on
the judge loop) and says, once per endpoint:

- that the server is slow, as soon as one of its first replies takes longer
  than ``slow_after`` (a notice shown while the run goes on, and a summary
  note), with the settings to change;
- that it serves one request at a time, once concurrent requests came back
  strictly one after another several times and never together (a summary
  note); from then on the endpoint gets one request at a time (``gate``).

It judges from timings only and never changes a verdict.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

#: A one-slot server is noticed after this many overlapping pairs of requests
#: whose replies came back one after another (and none together).
SERIAL_EVIDENCE = 3
#: The first replies of an endpoint that are checked for slowness.
FIRST_REPLIES = 3
#: Seconds: a first reply slower than this (or than half the timeout) is slow.
SLOW_SECONDS = 20.0
_KEEP = 32


def slow_after(timeout: float) -> float:
    """The reply time that makes a judge slow: 20 s, or half the timeout."""
    return min(SLOW_SECONDS, timeout / 2.0)


@dataclass
class _Endpoint:
    label: str
    replies: list[tuple[float, float]] = field(default_factory=list)
    seen: int = 0  # attempts observed (replies and timeouts)
    fastest: float | None = None
    first_reply: float | None = None
    serial: int = 0
    together: int = 0
    one_slot: bool = False
    slow: bool = False
    gate: asyncio.Semaphore | None = None


class ServingWatch:
    """Per-endpoint timing evidence; ``note`` adds a line to the run's summary."""

    def __init__(self, note: Callable[[str], None]):
        self._note = note
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._notices: list[str] = []

    def _get(self, key: str, label: str) -> _Endpoint:
        ep = self._endpoints.get(key)
        if ep is None:
            ep = self._endpoints[key] = _Endpoint(label)
        return ep

    @asynccontextmanager
    async def gate(self, key: str) -> AsyncIterator[None]:
        """One request at a time to an endpoint found to serve one at a time
        (judge loop only); any number otherwise."""
        ep = self._endpoints.get(key)
        if ep is None or not ep.one_slot:
            yield
            return
        if ep.gate is None:
            ep.gate = asyncio.Semaphore(1)
        async with ep.gate:
            yield

    def observe(self, key: str, label: str, sent: float, ended: float,
                outcome: str, *, timeout: float, concurrency: int) -> None:
        """A request sent at ``sent`` ended at ``ended`` (``time.monotonic()``)
        with ``outcome`` "ok", "timeout" or "error"."""
        ep = self._get(key, label)
        took = ended - sent
        ep.seen += 1
        if outcome in ("ok", "timeout") and ep.seen <= FIRST_REPLIES and \
                not ep.slow and took >= slow_after(timeout):
            ep.slow = True
            self._slow(ep, took, outcome, timeout, concurrency)
        if outcome != "ok":
            return
        if ep.first_reply is None:
            ep.first_reply = ended
        elif sent >= ep.first_reply:
            # Requests sent before any reply came back also timed the client's
            # warm-up (its first connection): they are not evidence.
            ep.fastest = took if ep.fastest is None else min(ep.fastest, took)
            self._pair(ep, sent, ended)
        ep.replies = [*ep.replies[-(_KEEP - 1):], (sent, ended)]
        if not ep.one_slot and ep.serial >= SERIAL_EVIDENCE and not ep.together:
            ep.one_slot = True
            self._note(
                f"the judge {ep.label} serves one request at a time: replies to "
                f"concurrent requests came back strictly one after another "
                f"({ep.serial} times, never together), each waiting for the one "
                "before; sent one at a time for the rest of this run. Set "
                "--llmjudge-concurrency=1 (or give the server more parallel slots, "
                "e.g. llama.cpp's --parallel)")

    def _pair(self, ep: _Endpoint, sent: float, ended: float) -> None:
        """Compare a reply with the one that came back just before it while it
        was in flight: on a one-slot server it came a whole reply's time later
        (it waited), on a parallel one about together."""
        before = [r for s, r in ep.replies if sent < r <= ended]
        unit = ep.fastest or 0.0
        if not before or unit < 0.05:
            return  # no overlap, or replies too quick to tell waiting from noise
        last = max(before)
        if last - sent < 0.5 * unit:
            return  # barely overlapped: says nothing
        if ended - last >= 0.5 * unit:
            ep.serial += 1
        else:
            ep.together += 1

    def _slow(self, ep: _Endpoint, took: float, outcome: str, timeout: float,
              concurrency: int) -> None:
        what = (f"a request got no reply within --llmjudge-timeout={timeout:g} s"
                if outcome == "timeout" else f"a first reply took {took:.1f} s")
        text = (f"the judge {ep.label} is slow: {what}. Every judgment asks at least "
                "two presentations, so this run will take long; to change it: "
                f"--llmjudge-timeout (now {timeout:g} s), --llmjudge-max-tokens "
                "(shorter replies)" + (
                    f", --llmjudge-concurrency=1 (now {concurrency}) for a server "
                    "that serves one request at a time" if concurrency > 1 else ""))
        self._note(text)
        with self._lock:
            self._notices.append(text)

    def take_notices(self) -> list[str]:
        """Notices to show while the run goes on (each once; any thread)."""
        with self._lock:
            taken, self._notices = self._notices, []
        return taken
