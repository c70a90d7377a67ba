"""Provider faults: bounded retries, then a judge error naming the cause; never a
verdict decided by one failing presentation."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from pytest_llmjudge.runtime.faults import backoff as _delay, classify
from pytest_llmjudge.testing import (
    Fault,
    JudgeRequest,
    ScriptedJudge,
    ScriptedJudgeServer,
)


class FaultsByOutput:
    """Serves each test's faults (keyed by a word in its output) in arrival order,
    then answers by the rules; keeps every request's time and what was served."""

    def __init__(self, faults: dict[str, list[Fault]]):
        self.faults = {k: list(v) for k, v in faults.items()}
        self.inner = ScriptedJudge(rules={"paris": lambda o: "paris" in o.lower()})
        self.log: list[tuple[str, float, str]] = []  # (key, time, served)
        self._lock = threading.Lock()

    def __call__(self, req: JudgeRequest) -> object:
        key = next((k for k in self.faults if k in req.output), "")
        with self._lock:
            fault = self.faults[key].pop(0) if self.faults.get(key) else None
            self.log.append((key, time.monotonic(), fault.kind if fault else "ok"))
        return fault if fault is not None else self.inner(req)

    def served(self, key: str) -> list[str]:
        return [s for k, _, s in self.log if k == key]


#: test name -> (output key, faults, expected outcome, words the message must hold)
CASES = {
    # One transient fault, one retry allowed: the verdict still comes out right.
    "timeout_once": ([Fault("timeout", delay=3.0)], "pass", ""),
    "status500_once": ([Fault("status", 500)], "fail", ""),
    "refused_drop_once": ([Fault("drop")], "pass", ""),
    "truncated_once": ([Fault("truncated")], "pass", ""),
    "empty_once": ([Fault("empty")], "fail", ""),
    "badjson_once": ([Fault("badjson")], "pass", ""),
    # Every attempt fails: judge error naming the cause (2 presentations x 2 tries).
    "timeout_always": ([Fault("timeout", delay=3.0)] * 4, "error", "timeout"),
    "status500_always": ([Fault("status", 500)] * 4, "error", "server error (500)"),
    # A cut reply is not retried as is: it is re-asked once for brevity (#15).
    "truncated_always": ([Fault("truncated")] * 4, "error",
                         "truncated reply: the judge stopped at its token limit: "
                         "reply cut at 672 tokens twice"),
    "empty_always": ([Fault("empty")] * 4, "error", "empty reply"),
    "badjson_always": ([Fault("badjson")] * 4, "error",
                       "invalid JSON body in the judge API's reply"),
    "status429_always": ([Fault("status", 429, retry_after=0.2)] * 4, "error",
                         "rate limit (429)"),
}


def _output(name: str, outcome: str) -> str:
    # Outputs that name Paris pass; the others fail.
    return f"{name}: " + ("Paris is the capital." if outcome != "fail" else "Lyon.")


def _tests(port: int) -> str:
    body = ["from pytest_llmjudge import assert_judged, JudgedAssertionError",
            "import pytest", "R = 'Names Paris as the capital of France'", ""]
    for name, (_, outcome, _) in CASES.items():
        body.append(f"def test_{name}():")
        call = f"assert_judged({_output(name, outcome)!r}, R)"
        if outcome == "fail":
            body += ["    with pytest.raises(JudgedAssertionError):", f"        {call}"]
        else:
            body.append(f"    {call}")
        body.append("")
    body += [
        "@pytest.mark.llmjudge(retries=0)",
        "def test_one_presentation_fails():",
        "    assert_judged('single_500: Paris is the capital.', R)", "",
        "def test_rate_limited_once():",
        "    assert_judged('ratelimit_once: Paris is the capital.', R)", "",
        f"@pytest.mark.llmjudge(api_base='http://127.0.0.1:{port}/v1')",
        "def test_connection_refused():",
        "    assert_judged('refused: Paris is the capital.', R)", "",
    ]
    return "\n".join(body)


def _section(text: str, test: str) -> str:
    m = re.search(rf"_{{3,}} (?:ERROR at call of )?{test} _{{3,}}\n(.*?)"
                  rf"(?=\n_{{3,}} |\n-{{5,}} |\n={{5,}} )", text, re.DOTALL)
    assert m, f"no failure section for {test}"
    return m.group(1)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


@pytest.mark.subprocess("a 1 s judge timeout: in-process, the scripted server's "
                        "threads share the run's GIL, and a loaded machine turned "
                        "a good answer into a second timeout")
def test_provider_faults(pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
                         judge_args: list[str]) -> None:
    faults = {name: f for name, (f, _, _) in CASES.items()}
    faults["single_500"] = [Fault("status", 500)]
    faults["ratelimit_once"] = [Fault("status", 429, retry_after=1.0)]
    policy = FaultsByOutput(faults)
    judge_server.policy = policy
    pytester.makepyfile(_tests(_closed_port()))
    result = pytester.runpytest_subprocess(*judge_args, "-p", "no:randomly",
                                           "--llmjudge-retries=1",
                                           "--llmjudge-timeout=1")
    errors = [n for n, (_, o, _) in CASES.items() if o == "error"]
    result.assert_outcomes(passed=len(CASES) - len(errors) + 1,
                           errors=len(errors) + 2)
    out = result.stdout.str()

    for name, (fs, outcome, words) in CASES.items():
        served = policy.served(name)
        if outcome == "error":
            # Exactly two attempts per presentation: our retries, nobody else's.
            assert served == [fs[0].kind] * 4, (name, served)
            sec = _section(out, f"test_{name}")
            assert "judged: JUDGE ERROR" in sec
            want = ("judge error: " + words if name == "truncated_always" else
                    "judge error: judge call failed after 2 attempt(s): " + words)
            assert want in sec, (name, sec)
            assert f"JUDGE ERROR test_provider_faults.py::test_{name} - " in out
        else:
            # One fault, one retry, two good answers: three requests, right verdict.
            assert sorted(served) == sorted([fs[0].kind, "ok", "ok"]), (name, served)

    # retries=0: one presentation fails, the other answers; no verdict from one.
    assert sorted(policy.served("single_500")) == ["ok", "status"]
    sec = _section(out, "test_one_presentation_fails")
    assert "judged: JUDGE ERROR" in sec
    assert "judge call failed after 1 attempt(s): server error (500)" in sec

    # 429 with Retry-After: 1 -> the retry came at least a second later.
    log = [(t, s) for k, t, s in policy.log if k == "ratelimit_once"]
    assert [s for _, s in log].count("status") == 1
    assert len(log) == 3
    t429 = next(t for t, s in log if s == "status")
    retry = max(t for t, _ in log)
    assert retry - t429 >= 1.0

    # Nothing listening at the api base.
    sec = _section(out, "test_connection_refused")
    assert "judge call failed after 2 attempt(s): connection refused or host " \
           "unreachable" in sec
    # Judge errors are errors, not failures.
    result.stdout.fnmatch_lines(["*JUDGE ERROR*", "*8 errors*"])
    assert "failed" not in out.splitlines()[-1]


def test_backoff_is_bounded_and_jittered() -> None:
    delays = [_delay(0, None) for _ in range(200)]
    assert all(0.25 <= d <= 0.5 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jitter
    assert all(10.0 <= _delay(10, None) <= 20.0 for _ in range(50))  # capped
    assert all(2.0 <= _delay(0, 2.0) <= 2.1 for _ in range(50))  # Retry-After


def test_classify_reads_the_wrapped_cause() -> None:
    class InternalServerError(Exception):
        status_code = 500

    def wrapped(inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as e:
                raise InternalServerError("Connection error.") from e
        except InternalServerError as outer:
            return outer

    assert classify(wrapped(ConnectionRefusedError()))[0].startswith(
        "connection refused")
    import json

    try:
        json.loads("{x")
    except ValueError as e:
        bad = e
    assert classify(wrapped(bad))[0] == "invalid JSON body in the judge API's reply"
    assert classify(InternalServerError("boom")) == ("server error (500)", True)


NO_KEY_TESTS = '''
from pytest_llmjudge import assert_judged

def test_no_key():
    assert_judged("Paris is the capital of France.", "Names Paris")
'''


def test_missing_api_key_is_not_retried(
        pytester: pytest.Pytester, judge_server: ScriptedJudgeServer,
        judge_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No key anywhere: litellm raises a 500 'Missing credentials' before sending
    anything. That is the user's to fix: one attempt, a cause that says what to set."""
    import os

    for var in list(os.environ):
        if var.endswith("_API_KEY") or var.startswith("OPENAI_"):
            monkeypatch.delenv(var)
    pytester.makepyfile(test_nokey=NO_KEY_TESTS)
    result = pytester.runpytest(*judge_args, "--llmjudge-retries=3")
    result.assert_outcomes(errors=1)
    sec = _section(result.stdout.str(), "test_no_key")
    assert "judged: JUDGE ERROR" in sec
    # "judge call failed:" without "after N attempt(s)": the first failure ended it.
    assert ("judge error: judge call failed: no API key for the judge: set the "
            "provider's key variable (e.g. OPENAI_API_KEY) or LLMJUDGE_API_KEY") in sec
    assert "attempt(s)" not in sec
    assert judge_server.calls == 0  # nothing was sent


def test_classify_missing_credentials() -> None:
    class AuthenticationError(Exception):
        status_code = 401

    class APIConnectionError(Exception):
        status_code = 500

    anthropic = AuthenticationError(
        "litellm.AuthenticationError: Missing Anthropic API Key - A call is being made "
        "to anthropic but no key is set either in the environment variables or via "
        "params. Please set `ANTHROPIC_API_KEY` in your environment vars")
    assert classify(anthropic) == (
        "no API key for the judge: set the provider's key variable (e.g. "
        "ANTHROPIC_API_KEY) or LLMJUDGE_API_KEY", False)
    try:
        try:
            raise ValueError("Missing Gemini API key. Set the GEMINI_API_KEY or "
                             "GOOGLE_API_KEY environment variable.")
        except ValueError as e:
            raise APIConnectionError("litellm.APIConnectionError: boom") from e
    except APIConnectionError as outer:
        gemini = outer
    cause, retryable = classify(gemini)
    assert not retryable and "(e.g. GEMINI_API_KEY)" in cause
    # A key that was sent and refused is still an authentication failure.
    assert classify(AuthenticationError("Incorrect API key provided: ***")) == (
        "authentication failed (401): check the judge API key", False)


class _Exc(Exception):
    def __init__(self, headers: object = None, response: object = None):
        super().__init__("rate limited")
        self.headers = headers
        self.response = response


def test_retry_after_seconds_date_and_ms() -> None:
    import email.utils
    import time as _time
    from types import SimpleNamespace

    import httpx

    from pytest_llmjudge.runtime.faults import retry_after as _retry_after

    def date(offset: float) -> str:
        return email.utils.formatdate(_time.time() + offset, usegmt=True)

    assert _retry_after(_Exc({"retry-after": "7"})) == 7.0
    assert _retry_after(_Exc({"Retry-After": "2.5"})) == 2.5
    # An HTTP date: the seconds until then (whole seconds, so within ~1 s).
    wait = _retry_after(_Exc({"retry-after": date(30)}))
    assert wait is not None and 28.5 <= wait <= 30.5
    assert _retry_after(_Exc({"Retry-After": date(-120)})) == 0.0  # already past
    assert _retry_after(_Exc({"retry-after": date(3600)})) == 60.0  # capped
    # retry-after-ms is more precise and wins; any spelling of the name.
    assert _retry_after(_Exc({"retry-after-ms": "1500", "retry-after": "10"})) == 1.5
    assert _retry_after(_Exc({"Retry-After-Ms": "250"})) == 0.25
    assert _retry_after(_Exc(httpx.Headers({"RETRY-AFTER-MS": "40"}))) == 0.04
    assert _retry_after(_Exc(response=SimpleNamespace(
        headers=httpx.Headers({"Retry-After": date(10)})))) > 8.0
    # A bad ms value falls back to Retry-After; nonsense is no hint at all.
    assert _retry_after(_Exc({"retry-after-ms": "soon", "retry-after": "3"})) == 3.0
    for bad in ("soon", "nan", "inf", ""):
        assert _retry_after(_Exc({"retry-after": bad})) is None, bad
    assert _retry_after(_Exc({})) is None
