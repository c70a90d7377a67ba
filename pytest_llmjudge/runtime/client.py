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
import email.utils
import math
import os
import random
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pytest_llmjudge.exceptions import ConfigError, JudgeCallError
from pytest_llmjudge.text import scrub

_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 20.0
_RETRY_AFTER_CAP = 60.0


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


#: One importer at a time: threads of a test (or the judge loop and a
#: background warm-up) reaching the first import together must not see a
#: half-initialised module or swap ``load_dotenv`` back under each other.
_IMPORT_LOCK = threading.Lock()


def litellm() -> ModuleType:
    """Import litellm safely: local price map, no ``.env`` loading, quiet."""
    mod = sys.modules.get("litellm")
    if mod is not None and getattr(mod, "_llmjudge_ready", False):
        return mod
    with _IMPORT_LOCK:
        return _import_litellm()


def _import_litellm() -> ModuleType:
    ready = sys.modules.get("litellm")
    if ready is not None and getattr(ready, "_llmjudge_ready", False):
        return ready
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import dotenv  # litellm depends on python-dotenv

    saved = dotenv.load_dotenv
    # litellm calls load_dotenv() at import; the test process's environment
    # is the user's, not a file's.
    dotenv.load_dotenv = lambda *a, **k: False
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


class _Retryable(Exception):
    def __init__(self, cause: str, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.retry_after = retry_after


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _header(headers: Any, name: str) -> Any:
    """``headers[name]``, case-insensitively (a dict, httpx.Headers or the like)."""
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.title())
        if value is None and hasattr(headers, "items"):
            value = next((v for k, v in headers.items()
                          if isinstance(k, str) and k.lower() == name), None)
    except Exception:
        return None
    return value


def _seconds(value: Any, scale: float = 1.0) -> float | None:
    try:
        seconds = float(str(value).strip()) * scale
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def _http_date(value: Any) -> float | None:
    """Seconds from now until an HTTP date (``Retry-After: <date>``)."""
    try:
        when = email.utils.parsedate_to_datetime(str(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        from datetime import timezone
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() - time.time()


def _retry_hint(exc: BaseException) -> tuple[float | None, str]:
    """(the wait a reply asked for, uncapped and never negative; the header as
    quoted): ``retry-after-ms``, else ``Retry-After`` given as seconds or as an
    HTTP date. A value that is no number and no date (``NaN``, ``inf``,
    ``soon``) is no hint: (None, "")."""
    headers: Any = None
    for attr in ("litellm_response_headers", "headers"):
        headers = getattr(exc, attr, None)
        if headers:
            break
    if not headers:
        resp = getattr(exc, "response", None)
        headers = getattr(resp, "headers", None)
    if not headers:
        return None, ""
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        seconds = _seconds(ms, 0.001)
        if seconds is not None:
            return max(seconds, 0.0), f"retry-after-ms: {str(ms).strip()[:80]}"
    value = _header(headers, "retry-after")
    if value is None:
        return None, ""
    seconds = _seconds(value)
    if seconds is None:
        seconds = _http_date(value)
    if seconds is None:
        return None, ""
    return max(seconds, 0.0), f"Retry-After: {str(value).strip()[:80]}"


def _retry_after(exc: BaseException) -> float | None:
    """The wait a reply asked for, capped at ``_RETRY_AFTER_CAP``."""
    seconds, _ = _retry_hint(exc)
    return None if seconds is None else min(seconds, _RETRY_AFTER_CAP)


def _secs(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 1e7 else f"{seconds:.3g} s"


def _wait_limit(timeout: float) -> float:
    """The longest ``Retry-After`` a call honours: its own timeout, at most
    ``_RETRY_AFTER_CAP``."""
    return max(0.0, min(timeout, _RETRY_AFTER_CAP))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (litellm wraps several deep)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 12 and all(cur is not e for e in out):
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


#: How litellm and the provider SDKs say no key was given (nothing was sent):
#: "Missing credentials. Please pass an `api_key` ..." (openai, raised as a
#: 500), "Missing Anthropic API Key", "Missing Gemini API key" (a connection
#: error), "The api_key client option must be set ...".
_NO_KEY = re.compile(
    r"missing credentials|missing (?:[\w-]+ ){0,3}api[ _-]?key"
    r"|api_key client option must be set|no (?:api )?key is set", re.IGNORECASE)
_KEY_VAR = re.compile(r"\b([A-Z][A-Z0-9]*_API_KEY)\b")


def _no_key(chain: list[BaseException]) -> str | None:
    """The cause for a call refused for want of an API key, else None."""
    for e in chain:
        text = str(e)
        if _NO_KEY.search(text):
            var = next((v for v in _KEY_VAR.findall(text)
                        if not v.startswith("LLMJUDGE")), "OPENAI_API_KEY")
            return (f"no API key for the judge: set the provider's key variable "
                    f"(e.g. {var}) or LLMJUDGE_API_KEY")
    return None


def classify(exc: BaseException) -> tuple[str, bool]:
    """(cause, retryable) for an exception raised by litellm.

    litellm reports a refused connection and an unreadable body as a 500
    ``InternalServerError``; the exceptions it wraps say what really happened.
    A missing API key is reported as a 500 or a connection error too: it is
    the user's to fix, so it is never retried.
    """
    name = type(exc).__name__
    code = _status(exc)
    chain = _chain(exc)
    names = [type(e).__name__ for e in chain]
    no_key = _no_key(chain)
    if no_key is not None:
        return no_key, False
    if "Timeout" in name or isinstance(exc, asyncio.TimeoutError) or any(
        "Timeout" in n for n in names[1:]
    ):
        return "timeout", True
    if "RateLimit" in name or code == 429:
        return "rate limit (429)", True
    if "Authentication" in name or code in (401, 403):
        return f"authentication failed ({code or 401}): check the judge API key", False
    if "NotFound" in name or code == 404:
        return "model or endpoint not found (404): check --llmjudge-model and " \
               "--llmjudge-api-base", False
    if "ContextWindow" in name:
        return ("the prompt is longer than the judge model's context window: judge a "
                "shorter excerpt (lower --llmjudge-max-output-chars) or use a judge "
                "model with a longer context"), False
    if "BadRequest" in name or code in (400, 422):
        return f"bad request ({code or 400})", False
    if code in (None, 500):
        if any(n in ("ConnectionRefusedError", "ClientConnectorError", "ConnectError")
               for n in names):
            return ("connection refused or host unreachable: nothing answers at the "
                    "judge API base (check --llmjudge-api-base)"), True
        if "JSONDecodeError" in names:
            return "invalid JSON body in the judge API's reply", True
        if any("Connection" in n or "Disconnected" in n or n in (
                "ReadError", "RemoteProtocolError") for n in names):
            return "connection failed (closed or reset by the server)", True
    if (code is not None and code >= 500) or "InternalServer" in name or \
            "ServiceUnavailable" in name or "APIConnectionError" in name:
        return f"server error ({code or 'no status'})", True
    return f"{name}", True


#: The cause of a call whose ``response_format`` the endpoint refused.
FORMAT_REFUSED = "response_format unsupported"
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|grammar",
                           re.IGNORECASE)


def format_refused(exc: BaseException, detail: str) -> bool:
    """Whether the endpoint said no to the requested reply format: llama.cpp's
    server answers 500 "response_format.type should be 'text' or
    'json_object'", vLLM and others 400 or 422 naming the field."""
    code = _status(exc)
    if code not in (None, 400, 422, 500):
        return False
    texts = [detail, *(str(e) for e in _chain(exc))]
    return any(_FORMAT_WORDS.search(t) for t in texts) and (
        code is not None or "BadRequest" in type(exc).__name__)


_KNOWN_MODELS: set[str] = set()


def check_model(model: str) -> None:
    """Refuse a model name litellm cannot route, before any call is made.

    A misspelt model is the user's mistake, not the judge's failure: it raises
    ``ConfigError`` at the judged assertion instead of becoming a judge error.
    """
    if model in _KNOWN_MODELS:
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
) -> Reply:
    """One judge call with our bounded retries; raises ``JudgeCallError``.

    ``before_attempt``, if given, is awaited before every request is sent (the
    first and each retry after its backoff): the judge loop's rpm pacing
    (``_Slot.pace``), so that no attempt skips ``--llmjudge-rpm``; it is also
    where each HTTP request is counted as a judge call.

    A refused ``response_format`` (400, 422 or 500 whose body names
    response_format, json_schema or a grammar) is a capability answer, not a
    fault: it is raised at once with cause ``FORMAT_REFUSED``, never retried.
    """
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
    last: _Retryable | None = None
    for attempt in range(retries + 1):
        if before_attempt is not None:
            await before_attempt()
        try:
            return await asyncio.wait_for(_call(lm, kwargs, model), timeout + 5.0)
        except _Retryable as exc:
            last = exc
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, Exception) as exc:
            cause, retryable = classify(exc)
            detail = _short(exc, api_key)
            if response_format is not None and format_refused(exc, detail):
                cause, retryable = FORMAT_REFUSED, False
            if not retryable:
                raise JudgeCallError(f"judge call failed: {cause}: {detail}",
                                     cause=cause, retries=attempt) from None
            wait, quoted = _retry_hint(exc)
            if wait is not None and wait > _wait_limit(timeout):
                # Waiting would outlast the call's own timeout: fail now and
                # say why, rather than sleep through the run or retry early.
                raise JudgeCallError(
                    f"judge call failed: {cause}: the judge asked to wait "
                    f"{_secs(wait)} ({redact(quoted, api_key)}), longer than the "
                    f"call's timeout allows ({_wait_limit(timeout):g} s); not "
                    f"retried: {detail}", cause=cause, retries=attempt) from None
            last = _Retryable(cause, detail, wait)
        if attempt < retries:
            await asyncio.sleep(_delay(attempt, last.retry_after))
    assert last is not None
    # Causes are our own words; a detail may quote the provider.
    raise JudgeCallError(
        f"judge call failed after {retries + 1} attempt(s): {last.cause}: "
        f"{redact(last.detail, api_key)}",
        cause=last.cause, retries=retries,
    )


def _delay(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after + random.uniform(0, 0.1)
    return min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0**attempt) * random.uniform(0.5, 1.0)


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
        raise _Retryable("empty reply", "the judge returned no choices")
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
