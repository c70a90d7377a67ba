"""The only module that imports litellm, and only when a judge is called.

litellm takes seconds to import, fetches a price map from the network unless
``LITELLM_LOCAL_MODEL_COST_MAP`` is set, and loads a ``.env`` file into the
process on import; none of that may happen to a test run that judges nothing,
and the last must never happen at all. Retries are ours (bounded, with
backoff, jitter and ``Retry-After``); litellm's and the OpenAI SDK's own
retries are switched off so that a call count means what it says.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pytest_llmjudge.callables import PREFIX, lookup
from pytest_llmjudge.constants import LITELLM_ENV
from pytest_llmjudge.exceptions import ConfigError, JudgeCallError
from pytest_llmjudge.runtime.faults import (
    FORMAT_REFUSED,
    Retryable,
    TimeBudget,
    backoff,
    classify,
    format_refused,
    local_endpoint,
    out_of_time,
    retry_hint,
    seconds_text,
    wait_limit,
)
from pytest_llmjudge.text import scrub


@dataclass(frozen=True)
class Reply:
    """What a judge call returned, in JSON-able parts (this is what is cached)."""

    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    logprobs: Any
    model: str

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "logprobs": self.logprobs,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Reply:
        return cls(
            content=str(d.get("content") or ""),
            finish_reason=d.get("finish_reason"),
            prompt_tokens=int(d.get("prompt_tokens") or 0),
            completion_tokens=int(d.get("completion_tokens") or 0),
            cost=d.get("cost"),
            logprobs=d.get("logprobs"),
            model=str(d.get("model") or ""),
        )


#: One importer at a time: threads of a test (or the judge loop and the
#: background import of ``warmup.py``) reaching the first import together must
#: not see a half-initialised module or swap ``load_dotenv`` under each other.
_IMPORT_LOCK = threading.Lock()
#: litellm's own import-time warning filters (litellm/__init__.py): pydantic
#: notices given when litellm's models are built, at its import and lazily at
#: its first call. A filter lives only as long as the warnings context it was
#: added in (pytest keeps one per test), and the import may have been made in
#: another thread or test: they are added again where the judge first calls,
#: and in each test while a background import runs (``warmup.py``).
LITELLM_FILTERS = (".*conflict with protected namespace.*",
                   ".*Accessing the.*attribute on the instance is deprecated.*",
                   ".*`ReadOnly` qualifier.*")
_first_use = [True]


def add_litellm_filters() -> None:
    for message in LITELLM_FILTERS:
        warnings.filterwarnings("ignore", message=message)


def prepare_environment() -> None:
    """The import-time environment litellm needs (see ``LITELLM_ENV``)."""
    for name, value in LITELLM_ENV:
        os.environ.setdefault(name, value)


def litellm() -> ModuleType:
    """Import litellm safely: local price map, no ``.env`` loading, quiet."""
    mod = sys.modules.get("litellm")
    if mod is not None and not _first_use[0]:
        return mod
    with _IMPORT_LOCK:
        mod = _import_litellm()
        # As litellm's own import does, in the caller's warnings context.
        add_litellm_filters()
        _build_models(mod)
        _first_use[0] = False
    return mod


def warm(model: str | None) -> None:
    """Import litellm and what its first call loads lazily (``warmup.py``).

    Runs in a background thread while the main thread collects or runs other
    tests: nothing here touches the warnings filters (they are process-wide
    and pytest swaps them per test phase) and nothing sends a request.
    """
    with _IMPORT_LOCK:
        mod = _import_litellm()
        try:  # litellm's filters were added by its import
            _build_models(mod)
        except Warning:  # a filter turned it into an error: built on first use
            pass
    provider = ""
    if model:
        try:
            provider = str(mod.get_llm_provider(model)[1])
        except Exception:  # the first judged call says what is wrong
            return
        _KNOWN_MODELS.add(model)
    if not model or provider in ("openai", "azure", "openai_like"):
        _warm_openai()
    for name in _FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # another litellm version: only the warm-up is shorter
            pass


#: Modules litellm 1.106 imports during its first call (1.5 s together with
#: the OpenAI SDK's resources on an idle core); missing ones are skipped.
_FIRST_CALL_MODULES = ("litellm.proxy._types", "litellm._service_logger", "jiter",
                       "litellm.llms.litellm_proxy.chat.transformation")


def _warm_openai() -> None:
    """Build (and close) an OpenAI SDK client: its first use imports every
    resource module. It is pointed at a closed loopback port and sends nothing."""
    try:
        import openai

        sdk = openai.OpenAI(api_key="llmjudge-warm-up", base_url="http://127.0.0.1:9/v1")
        sdk.chat.completions  # noqa: B018  (the lazy import is the point)
        sdk.close()
    except Exception:
        pass


def _build_models(mod: ModuleType) -> None:
    if not getattr(mod, "_llmjudge_built", False):
        mod.ModelResponse()
        setattr(mod, "_llmjudge_built", True)  # noqa: B010


def _import_litellm() -> ModuleType:
    ready = sys.modules.get("litellm")
    if ready is not None and getattr(ready, "_llmjudge_ready", False):
        return ready
    prepare_environment()
    import dotenv  # litellm depends on python-dotenv

    saved = dotenv.load_dotenv
    importer = threading.get_ident()

    def load_dotenv(*args: Any, **kwargs: Any) -> bool:
        # litellm calls load_dotenv() at import; the test process's environment
        # is the user's, not a file's. Other threads (the app under test, during
        # a background import) get the real function.
        if threading.get_ident() == importer:
            return False
        return bool(saved(*args, **kwargs))

    dotenv.load_dotenv = load_dotenv
    try:
        import litellm as imported
    finally:
        dotenv.load_dotenv = saved
    mod: ModuleType = imported
    # Quiet litellm's own banners. drop_params (parameters a provider does not
    # take, e.g. logprobs on Anthropic) is passed per call instead: a global
    # would change the app's litellm too, and is missing when the app imported
    # litellm first.
    for name, value in (("suppress_debug_info", True), ("telemetry", False),
                        ("_llmjudge_ready", True)):
        setattr(mod, name, value)
    return mod


_KNOWN_MODELS: set[str] = set()


def check_model(model: str) -> None:
    """Refuse a model name litellm cannot route, before any call is made.

    A misspelt model is the user's mistake, not the judge's failure: it raises
    ``ConfigError`` at the judged assertion instead of becoming a judge error.
    """
    if model in _KNOWN_MODELS:
        return
    if model.startswith(PREFIX):
        if lookup(model) is None:  # a name copied from a report, not a function
            raise ConfigError(
                f"judge model {model!r} names a Python callable that is not "
                "registered in this process: pass the function itself as model=")
        return
    try:
        litellm().get_llm_provider(model)
    except Exception:
        raise ConfigError(
            f"judge model {model!r} is not a model litellm knows how to call: use a "
            "provider prefix, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-"
            "latest or openai/NAME with --llmjudge-api-base for an OpenAI-compatible "
            "server (see https://docs.litellm.ai/docs/providers)") from None
    _KNOWN_MODELS.add(model)


async def complete(
    *,
    model: str,
    api_base: str | None,
    api_key: str | None,
    messages: list[dict[str, str]],
    response_format: dict[str, Any] | None,
    temperature: float,
    seed: int | None,
    timeout: float,
    retries: int,
    logprobs: bool,
    max_tokens: int | None = None,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
    budget: TimeBudget | None = None,
    observe: Callable[[float, float, str], None] | None = None,
) -> Reply:
    """One judge call with our bounded retries; raises ``JudgeCallError``.

    ``before_attempt``, if given, is awaited before every request is sent (the
    first and each retry after its backoff): the judge loop's rpm pacing
    (``_Slot.pace``), so that no attempt skips ``--llmjudge-rpm``; it is also
    where each HTTP request is counted as a judge call.

    A refused ``response_format`` (400, 422 or 500 whose body names
    response_format, json_schema or a grammar) is a capability answer, not a
    fault: it is raised at once with cause ``FORMAT_REFUSED``, never retried.

    After a timeout the server may still be computing the request we gave up
    on (a one-slot local server does), and a retry sent at once would wait
    behind it and time out again: the retry first waits as long as the call
    did (``timeout``), and ``budget`` (shared by a presentation's requests,
    re-asks included) bounds the timeouts, so that a judgment takes about
    ``TimeBudget.timeouts + 1`` timeouts at most; past it the call fails and
    says so. ``observe(sent, ended, outcome)`` is told of every request ("ok",
    "timeout" or "error").
    """
    fn = lookup(model)
    if fn is not None:  # a Python callable as the judge: no litellm at all
        return await _call_callable(fn, model, messages, timeout, before_attempt)
    lm = litellm()
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "timeout": timeout,
        "num_retries": 0,
        "max_retries": 0,
        "drop_params": True,
    }
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    if response_format is not None:
        kwargs["response_format"] = response_format
    if seed is not None:
        kwargs["seed"] = seed
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if logprobs:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = 5
    last: Retryable | None = None
    waited = 0.0  # seconds waited, after timeouts, for abandoned requests
    for attempt in range(retries + 1):
        if before_attempt is not None:
            await before_attempt()
        sent = time.monotonic()
        try:
            reply = await asyncio.wait_for(_call(lm, kwargs, model), timeout + 5.0)
            if observe is not None:
                observe(sent, time.monotonic(), "ok")
            return reply
        except Retryable as exc:
            last = exc
            if observe is not None:
                observe(sent, time.monotonic(), "error")
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, Exception) as exc:
            cause, retryable = classify(exc)
            if observe is not None:
                observe(sent, time.monotonic(), "timeout" if cause == "timeout"
                        else "error")
            detail = _short(exc, api_key)
            if response_format is not None and format_refused(exc, detail):
                cause, retryable = FORMAT_REFUSED, False
            if not retryable:
                raise JudgeCallError(f"judge call failed: {cause}: {detail}",
                                     cause=cause, retries=attempt) from None
            wait, quoted = retry_hint(exc)
            if wait is not None and wait > wait_limit(timeout):
                # Waiting would outlast the call's own timeout: fail now and
                # say why, rather than sleep through the run or retry early.
                raise JudgeCallError(
                    f"judge call failed: {cause}: the judge asked to wait "
                    f"{seconds_text(wait)} ({redact(quoted, api_key)}), longer "
                    f"than the call's timeout allows ({wait_limit(timeout):g} s); not "
                    f"retried: {detail}", cause=cause, retries=attempt) from None
            last = Retryable(cause, detail, wait)
        if attempt < retries:
            pause = backoff(attempt, last.retry_after)
            if last.cause == "timeout":
                # A server of our own (loopback, LAN) may still be computing
                # the request given up on; a provider's cloud is not queued so.
                if local_endpoint(api_base):
                    pause = max(pause, timeout)
                if budget is not None:
                    budget.spent += 1
                    if budget.spent >= budget.timeouts:
                        raise JudgeCallError(out_of_time(
                            budget, timeout, waited, redact(last.detail, api_key)),
                            cause="timeout", retries=attempt) from None
                waited += pause
            await asyncio.sleep(pause)
    assert last is not None
    # Causes are our own words; a detail may quote the provider.
    after = (f" (each retry after a timeout first waited {timeout:g} s for the "
             "server to finish the request given up on)" if waited else "")
    raise JudgeCallError(
        f"judge call failed after {retries + 1} attempt(s): {last.cause}: "
        f"{redact(last.detail, api_key)}{after}",
        cause=last.cause, retries=retries,
    )


async def _call_callable(fn: Callable[..., Any], model: str,
                         messages: list[dict[str, str]], timeout: float,
                         before_attempt: Callable[[], Awaitable[None]] | None
                         ) -> Reply:
    """One call of a callable judge (one judge call; never retried: the same
    code given the same messages is not expected to answer otherwise)."""
    if before_attempt is not None:
        await before_attempt()
    shown = [dict(m) for m in messages]  # the callable cannot edit our prompt
    try:
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
                vars(type(fn)).get("__call__")):
            got = await asyncio.wait_for(fn(shown), timeout)
        else:
            got = await asyncio.wait_for(asyncio.to_thread(fn, shown), timeout)
            if inspect.isawaitable(got):
                got = await asyncio.wait_for(got, timeout)
    except asyncio.CancelledError:
        raise
    except (asyncio.TimeoutError, TimeoutError):
        raise JudgeCallError(
            f"judge call failed: timeout: the callable judge {model} did not answer "
            f"within {timeout:g} s", cause="timeout", retries=0) from None
    except Exception as exc:
        raise JudgeCallError(
            f"judge call failed: the callable judge raised {type(exc).__name__}: "
            f"{redact(str(exc))[:500]}", cause="callable judge raised",
            retries=0) from None
    if isinstance(got, dict):
        got = json.dumps(got)
    if not isinstance(got, str):
        raise JudgeCallError(
            f"judge call failed: the callable judge returned {type(got).__name__}, "
            "not the reply text (a str of JSON in the reply contract)",
            cause="callable judge reply", retries=0)
    return Reply(content=got, finish_reason="stop", prompt_tokens=0,
                 completion_tokens=0, cost=None, logprobs=None, model=model)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` without the judge key or any other secret (see ``text.scrub``)."""
    return scrub(text, secret)


def _short(exc: BaseException, secret: str | None = None) -> str:
    """A one-line reason; never echoes a key (providers quote it back)."""
    text = redact(" ".join(str(exc).split()), secret)
    return text[:300] or type(exc).__name__


#: litellm calls under way (their own tasks; see ``_finish_if_cancelled``).
CALLS: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    CALLS.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a dropped call's error is not reported


async def _finish_if_cancelled(coro: Any) -> Any:
    """Await a litellm call; if we are cancelled, let the call finish on its own.

    litellm builds each request in a worker thread and then awaits the coroutine
    that thread returns; a cancel that lands while the thread works leaves that
    coroutine never awaited, and its RuntimeWarning (an error under
    ``filterwarnings = error``) then fails whichever test is running when it is
    garbage-collected. The call is bounded by its timeout.
    """
    task = asyncio.ensure_future(coro)
    CALLS.add(task)
    task.add_done_callback(_done)
    return await asyncio.shield(task)


async def settle_calls(timeout: float) -> None:
    """Wait (bounded) for litellm calls still under way, then cancel the rest."""
    if CALLS:
        _, pending = await asyncio.wait(set(CALLS), timeout=timeout)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _call(lm: ModuleType, kwargs: dict[str, Any], model: str) -> Reply:
    resp = await _finish_if_cancelled(lm.acompletion(**kwargs))
    choices = getattr(resp, "choices", None) or []
    if not choices:
        raise Retryable("empty reply", "the judge returned no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None) or ""
    # A reply cut at the token limit (finish_reason "length") is returned as
    # it is: asking the same prompt again would only cut it again; the judge
    # re-asks for brevity (judging/sample.py).
    finish = getattr(choice, "finish_reason", None)
    usage = getattr(resp, "usage", None)
    pt = int(getattr(usage, "prompt_tokens", 0) or 0)
    ct = int(getattr(usage, "completion_tokens", 0) or 0)
    hidden = getattr(resp, "_hidden_params", None) or {}
    raw_cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    cost = float(raw_cost) if isinstance(raw_cost, (int, float)) else None
    lp = getattr(choice, "logprobs", None)
    lp_json: Any = None
    if lp is not None:
        try:
            lp_json = lp.model_dump() if hasattr(lp, "model_dump") else dict(lp)
        except Exception:
            lp_json = None
    return Reply(content, finish, pt, ct, cost, lp_json,
                 str(getattr(resp, "model", None) or model))


async def close_clients() -> None:
    """Close litellm's cached async HTTP clients (avoids unclosed-session noise)."""
    lm = sys.modules.get("litellm")
    if lm is None:
        return
    closer = getattr(lm, "close_litellm_async_clients", None)
    if closer is not None:
        try:
            await closer()
        except Exception:
            pass
