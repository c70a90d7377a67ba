"""What a failed judge call means: its cause in our own words, whether it is
worth retrying, and how long to wait first (``Retry-After`` honoured up to the
call's timeout). No litellm import: it reads the exceptions it is handed."""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Any

_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 20.0
_RETRY_AFTER_CAP = 60.0


class Retryable(Exception):
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


def retry_hint(exc: BaseException) -> tuple[float | None, str]:
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


def retry_after(exc: BaseException) -> float | None:
    """The wait a reply asked for, capped at ``_RETRY_AFTER_CAP``."""
    seconds, _ = retry_hint(exc)
    return None if seconds is None else min(seconds, _RETRY_AFTER_CAP)


def seconds_text(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 1e7 else f"{seconds:.3g} s"


def wait_limit(timeout: float) -> float:
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


def backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after + random.uniform(0, 0.1)
    return min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0**attempt) * random.uniform(0.5, 1.0)


def local_endpoint(api_base: str | None) -> bool:
    """A judge served from this machine or a private network (llama.cpp,
    vLLM, Ollama, LM Studio), where one request can hold the only slot."""
    if not api_base:
        return False
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(api_base).hostname or "").lower()
    if host in ("localhost", "host.docker.internal") or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


@dataclass
class TimeBudget:
    """How many timeouts a presentation's requests may have: after the first,
    one retry (sent after waiting a timeout); after the second, none. A
    judgment then takes about three timeouts at most, never ``retries + 1``
    timeouts plus the queue behind abandoned requests."""

    timeouts: int = 2
    spent: int = 0


def out_of_time(budget: TimeBudget, timeout: float, waited: float,
                 detail: str) -> str:
    return (f"judge call failed: timeout: {budget.spent} request(s) got no reply "
            f"within --llmjudge-timeout={timeout:g} s"
            + (f" (the retry was sent after waiting {waited:.1f} s for the server to "
               "finish the request given up on)" if waited else "")
            + f"; not retried again: the judgment's time budget ({budget.timeouts} "
            "timeouts per presentation) is spent, and a retry sent at once would "
            "wait behind the request given up on, which a server that serves one "
            "request at a time keeps computing. Raise --llmjudge-timeout or lower "
            f"--llmjudge-max-tokens: {detail}")
