"""One event loop per process, in a daemon thread, drives every judge call.

Why a thread: a plain ``assert_judged`` in a sync test must not pay loop
start-up per call, and ``assert_judged`` inside an ``async def`` test (where a
loop is already running) cannot call ``asyncio.run``. Sharing one loop also
lets litellm keep its HTTP clients bound to a single loop, and makes the
concurrency and rate limits truly process-wide.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from pytest_llmjudge.exceptions import ConfigError, UntrustedJudgeError
from pytest_llmjudge.runtime import client

T = TypeVar("T")


class JudgeLoop:
    """A background event loop with process-wide limits on judge calls."""

    def __init__(self, concurrency: int, rpm: float | None = None):
        self.concurrency = concurrency
        self.rpm = rpm
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sem: asyncio.Semaphore | None = None
        self._next_slot: dict[str, float] = {}
        self.in_flight = 0
        self.peak_in_flight = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                t = threading.Thread(target=run, name="llmjudge-loop", daemon=True)
                t.start()
                ready.wait()
                self._loop, self._thread = loop, t
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        if _foreign_library() is not None:
            coro = _as_asyncio(coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the judge loop and wait (from any thread, any loop)."""
        __tracebackhide__ = True
        fut = self.submit(coro)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()
            raise
        except (ConfigError, UntrustedJudgeError) as exc:  # show the user's line only
            raise exc.with_traceback(None) from exc.__cause__

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the judge loop from another running loop."""
        __tracebackhide__ = True
        try:
            return await self._run_async(coro)
        except (ConfigError, UntrustedJudgeError) as exc:  # show the user's line only
            raise exc.with_traceback(None) from exc.__cause__

    async def _run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            return await coro
        if running is None:
            token = _trio_token()
            if token is not None:
                return await _await_in_trio(self.submit(coro), token)
            coro.close()
            raise ConfigError(
                "pytest-llmjudge's async API (acheck, acompare, acheck_many) needs "
                "an asyncio or trio event loop; under any other, call judge.check "
                "from a worker thread (it blocks the thread it runs in)")
        return await asyncio.wrap_future(self.submit(coro))

    async def slot(self, model: str, paced: bool = True) -> _Slot:
        """Wait for a place under the concurrency limit (and, if ``paced``, for
        the model's next rpm turn).

        ``paced=False`` with ``complete(before_attempt=slot.pace)`` is the exact
        way: each request, retries and a second request under the same slot
        included, then waits for its turn right before it is sent (after the
        litellm import, which can take longer than a turn on the first call).
        With ``paced=True`` the turn waited for here is the first request's.
        """
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        await self._sem.acquire()
        if paced:
            try:
                await self.pace(model)
            except BaseException:
                self._sem.release()
                raise
        return _Slot(self, model, turns=1 if paced else 0)

    async def pace(self, model: str) -> None:
        """Wait for the model's next turn under ``--llmjudge-rpm`` (no-op without it).

        Turns are handed out ``60 / rpm`` seconds apart per model, process-wide.
        A call cancelled while waiting gives its turn back when no later turn
        was handed out meanwhile (a turn in the middle stays a gap: handing it
        to a newcomer would space two requests closer than the limit allows).
        """
        if not self.rpm:
            return
        now = time.monotonic()
        at = max(now, self._next_slot.get(model, now))
        step = 60.0 / self.rpm
        self._next_slot[model] = at + step
        if at > now:
            try:
                await asyncio.sleep(at - now)
            except BaseException:
                if self._next_slot.get(model) == at + step:
                    self._next_slot[model] = at
                raise

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        async def _drain() -> None:
            calls = _litellm_calls()
            tasks = [t for t in asyncio.all_tasks()
                     if t is not asyncio.current_task() and t not in calls]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close_litellm_clients()
            # A call that ended meanwhile may have started litellm's logging
            # worker on this loop: ended here, it is not left pending on a
            # closed loop (its coroutine's GC would be reported as an error
            # in whichever test runs then).
            late = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(_drain(), loop).result(timeout=5)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()


class _Slot:
    def __init__(self, owner: JudgeLoop, model: str = "", turns: int = 0):
        self.owner = owner
        self.model = model
        self._turns = turns  # turns already waited for by slot()

    async def pace(self) -> None:
        """``before_attempt`` for ``complete()``: wait for the model's next rpm
        turn, unless ``slot()`` already waited for this one."""
        if self._turns:
            self._turns -= 1
            return
        await self.owner.pace(self.model)

    async def __aenter__(self) -> _Slot:
        o = self.owner
        o.in_flight += 1
        o.peak_in_flight = max(o.peak_in_flight, o.in_flight)
        return self

    async def __aexit__(self, *exc: object) -> None:
        o = self.owner
        o.in_flight -= 1
        assert o._sem is not None
        o._sem.release()


def _sniffio_cvar() -> Any:
    import sys

    return getattr(sys.modules.get("sniffio"), "current_async_library_cvar", None)


def _foreign_library() -> str | None:
    """The async library a caller's context names through sniffio (trio sets it).

    The judge loop's tasks run in a copy of the caller's context; left as
    "trio", it sends httpx (under litellm) down anyio's trio backend on an
    asyncio loop ("must be called from async context").
    """
    cvar = _sniffio_cvar()
    return cvar.get(None) if cvar is not None else None


async def _as_asyncio(coro: Coroutine[Any, Any, T]) -> T:
    _sniffio_cvar().set(None)  # this task's own copy of the context
    return await coro


def _trio_token() -> Any:
    """The running trio loop's token (a trio test under anyio), else None."""
    import sys

    trio = sys.modules.get("trio")
    if trio is None:
        return None
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


async def _await_in_trio(fut: Future[T], token: Any) -> T:
    """Wait for a judge-loop future from trio without blocking trio's loop.

    A trio cancellation (``move_on_after``, a failing task group) cancels the
    judgment on the judge loop, as ``asyncio.wrap_future`` does under asyncio.
    """
    import trio

    done = trio.Event()

    def wake(_: Future[T]) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:  # the trio loop is gone: nobody waits
            pass

    fut.add_done_callback(wake)
    try:
        await done.wait()
    except BaseException:
        fut.cancel()
        raise
    return fut.result()


def _litellm_calls() -> set[asyncio.Task[Any]]:
    return set(client.CALLS)


async def _close_litellm_clients() -> None:
    import sys

    if "litellm" not in sys.modules:
        return
    # Calls whose judgment was cancelled finish first: cancelling one inside
    # litellm can leave a coroutine never awaited (see _client._finish_if_cancelled).
    await client.settle_calls(3.0)
    await client.close_clients()
