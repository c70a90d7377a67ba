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
import os
import random
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .exceptions import JudgeCallError

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


def litellm() -> ModuleType:
    """Import litellm safely: local price map, no ``.env`` loading, quiet."""
    mod = sys.modules.get("litellm")
    if mod is not None:
        return mod
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    try:
        import dotenv
    except ImportError:  # pragma: no cover - litellm depends on python-dotenv
        dotenv = None
    saved = getattr(dotenv, "load_dotenv", None)
    if dotenv is not None:
        # litellm calls load_dotenv() at import; the test process's environment
        # is the user's, not a file's.
        dotenv.load_dotenv = lambda *a, **k: False
    try:
        import litellm as mod
    finally:
        if dotenv is not None:
            dotenv.load_dotenv = saved
    mod.suppress_debug_info = True
    mod.telemetry = False
    mod.drop_params = True
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


def _retry_after(exc: BaseException) -> float | None:
    headers: Any = None
    for attr in ("litellm_response_headers", "headers"):
        headers = getattr(exc, attr, None)
        if headers:
            break
    if not headers:
        resp = getattr(exc, "response", None)
        headers = getattr(resp, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except Exception:
        return None
    try:
        return min(max(float(value), 0.0), _RETRY_AFTER_CAP)
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException) -> tuple[str, bool]:
    """(cause, retryable) for an exception raised by litellm."""
    name = type(exc).__name__
    code = _status(exc)
    if "Timeout" in name or isinstance(exc, asyncio.TimeoutError):
        return "timeout", True
    if "RateLimit" in name or code == 429:
        return "rate limit (429)", True
    if "APIConnectionError" in name and code in (None, 500) and (
        "connect" in str(exc).lower() or "refused" in str(exc).lower()
    ):
        return "connection refused or failed", True
    if "Authentication" in name or code in (401, 403):
        return f"authentication failed ({code or 401}): check the judge API key", False
    if "NotFound" in name or code == 404:
        return "model or endpoint not found (404): check --llmjudge-model and " \
               "--llmjudge-api-base", False
    if "ContextWindow" in name:
        return "the prompt is longer than the judge model's context window", False
    if "BadRequest" in name or code in (400, 422):
        return f"bad request ({code or 400})", False
    if code is not None and code >= 500 or "InternalServer" in name or \
            "ServiceUnavailable" in name or "APIConnectionError" in name:
        return f"server error ({code or 'no status'})", True
    return f"{name}", True


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
) -> Reply:
    """One judge call with our bounded retries; raises ``JudgeCallError``."""
    lm = litellm()
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "timeout": timeout,
        "num_retries": 0,
        "max_retries": 0,
    }
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    if response_format is not None:
        kwargs["response_format"] = response_format
    if seed is not None:
        kwargs["seed"] = seed
    if logprobs:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = 5
    last: _Retryable | None = None
    for attempt in range(retries + 1):
        try:
            return await asyncio.wait_for(_call(lm, kwargs, model), timeout + 5.0)
        except _Retryable as exc:
            last = exc
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, Exception) as exc:
            cause, retryable = classify(exc)
            detail = _short(exc)
            if response_format is not None and cause.startswith("bad request") and (
                "response_format" in detail or "json_schema" in detail
            ):
                cause = "response_format unsupported"
            if not retryable:
                raise JudgeCallError(f"judge call failed: {cause}: {detail}",
                                     cause=cause, retries=attempt) from None
            last = _Retryable(cause, detail, _retry_after(exc))
        if attempt < retries:
            await asyncio.sleep(_delay(attempt, last.retry_after))
    assert last is not None
    raise JudgeCallError(
        f"judge call failed after {retries + 1} attempt(s): {last.cause}: {last.detail}",
        cause=last.cause, retries=retries,
    )


def _delay(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after + random.uniform(0, 0.1)
    return min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.0)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


async def _call(lm: ModuleType, kwargs: dict[str, Any], model: str) -> Reply:
    resp = await lm.acompletion(**kwargs)
    choices = getattr(resp, "choices", None) or []
    if not choices:
        raise _Retryable("empty reply", "the judge returned no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None) or ""
    finish = getattr(choice, "finish_reason", None)
    if finish == "length":
        raise _Retryable("truncated reply",
                         "the judge stopped at its token limit (finish_reason=length)")
    usage = getattr(resp, "usage", None)
    pt = int(getattr(usage, "prompt_tokens", 0) or 0)
    ct = int(getattr(usage, "completion_tokens", 0) or 0)
    cost = None
    hidden = getattr(resp, "_hidden_params", None) or {}
    if isinstance(hidden, dict) and isinstance(hidden.get("response_cost"), (int, float)):
        cost = float(hidden["response_cost"])
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
