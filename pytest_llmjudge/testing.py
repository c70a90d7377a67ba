"""A scripted, OpenAI-compatible judge on loopback, for tests and benchmarks.

``ScriptedJudgeServer`` is a real HTTP server (stdlib, threads) that speaks the
chat-completions protocol, so litellm reaches it for real. What it answers is
decided by a policy: ``ScriptedJudge`` reads the request back into a
``JudgeRequest`` (criteria in the order shown, texts, which response came
first) and can be told which criteria pass, how often to be wrong, to favour
whatever is shown first, to be slow, or to fail in scripted ways. Use it to
test your own rubrics offline, or to record replies for CI.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FENCE = re.compile(r"<(input|context|reference|output|response_a|response_b|"
                    r"expected|instructions|example)"
                    r"-([0-9a-f]+)>"
                    r"\n(.*?)\n</\1-\2>", re.DOTALL)
_CRIT = re.compile(r'^- "(.+?)": (.*)$', re.MULTILINE)
_LEVEL = re.compile(r"^(-?\d+): (.*)$", re.MULTILINE)
#: Key of a scale reply's score distribution (served as log-probabilities).
PROBS = "__score_probs__"
_RANGE = re.compile(r"whole number from (-?\d+) to (-?\d+)")
_LISTED = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
_ITEM = re.compile(r"^(?:claim|statement) (\d+)$")


@dataclass
class JudgeRequest:
    """A judge request as the scripted server understood it."""

    kind: str  # criteria | scale | pairwise | extract | unknown
    body: dict[str, Any]
    texts: dict[str, str] = field(default_factory=dict)
    criteria: list[tuple[str, str]] = field(default_factory=list)  # as shown
    options_flipped: bool = False  # "fail" offered before "pass"
    levels_descending: bool = False
    top: int = 0
    low: int = 1
    reask: bool = False
    #: Every fenced text in showing order (examples included), as (tag, text).
    fences: list[tuple[str, str]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.texts.get("output", "")

    @property
    def listed(self) -> dict[int, str]:
        """Claim-level checks: the numbered claims in the output, by number."""
        return {int(m.group(1)): m.group(2) for m in _LISTED.finditer(self.output)}

    @property
    def user(self) -> str:
        msgs = self.body.get("messages") or []
        users = [m.get("content", "") for m in msgs if m.get("role") == "user"]
        return str(users[0]) if users else ""

    @classmethod
    def parse(cls, body: dict[str, Any]) -> JudgeRequest:
        msgs = body.get("messages") or []
        users = [str(m.get("content", "")) for m in msgs if m.get("role") == "user"]
        user = users[0] if users else ""
        fences = [(m.group(1), m.group(3)) for m in _FENCE.finditer(user)]
        texts = dict(fences)
        req = cls("unknown", body, texts, reask=len(users) > 1, fences=fences)
        if '{"claims": [<claim>' in user:
            req.kind = "extract"
        elif "<response_a-" in user:
            req.kind = "pairwise"
        elif "Score levels:" in user:
            req.kind = "scale"
            tail = user.split("Score levels:", 1)[1]
            levels = [int(m.group(1)) for m in _LEVEL.finditer(tail)]
            span = _RANGE.search(tail)
            req.low = int(span.group(1)) if span else min(levels, default=1)
            req.top = int(span.group(2)) if span else max(levels, default=0)
            req.levels_descending = len(levels) > 1 and levels[0] > levels[-1]
        elif "Criteria (answer each one" in user:
            req.kind = "criteria"
            tail = user.split("Criteria (answer each one", 1)[1]
            req.criteria = [(m.group(1), m.group(2)) for m in _CRIT.finditer(tail)]
            req.options_flipped = '"fail" or "pass"' in tail.split("\n", 1)[0]
        return req


@dataclass
class Fault:
    """A scripted failure for one call.

    kind: "status" (HTTP ``status``, optional ``retry_after`` and ``headers``),
    "timeout" (sleep ``delay`` s before answering), "empty" (no choices), "truncated"
    (cut JSON, finish_reason=length), "garbage" (unparseable text), "badjson"
    (a body that is not JSON), "drop" (close the connection).
    """

    kind: str
    status: int = 500
    #: a number of seconds, or the header's text as is (an HTTP date, "NaN")
    retry_after: float | str | None = None
    delay: float = 0.0
    message: str = "scripted failure"
    #: more response headers (e.g. ``{"retry-after-ms": "1500"}``)
    headers: dict[str, str] | None = None


Reply = dict[str, Any] | str | Fault


class ScriptedJudge:
    """A policy for ``ScriptedJudgeServer``.

    Args:
        rules: criterion name (or a word of its description) -> callable(output)
            returning True for pass; criteria with no rule pass.
        prefer: score a response for comparisons (higher wins; equal is a tie).
        levels: callable(output) -> level for scale rubrics (default: the top).
        score_probs: callable(output) -> {score: probability} served as the
            score token's top log-probabilities (G-Eval weighting); the reply's
            score is the most likely one.
        accuracy: probability each answer is the true one (else flipped).
        position_bias: "first" answers whatever is shown first (the first
            option offered; response A) regardless of content.
        confidence: stated confidence in replies (None leaves it out).
        latency: seconds to wait before every answer.
        faults: faults to serve, one per call, before answering normally.
        seed: seed for the accuracy coin.
        verdict_logprob: probability of the chosen verdict token, served as
            its log-probability (None: no log-probabilities).
        raw_verdict_logprobs: (chosen, other) log-probabilities served as they
            are, absurd ones included (``1000.0``, ``float("nan")``), to test
            how a client reads them; overrides ``verdict_logprob``.
        extract: callable(text) -> claims, for claim extraction requests
            (default: the text's sentences).
        supported: callable(claim, context or input) -> True when it holds,
            for claim-level checks (criteria named "claim N"/"statement N");
            default: every claim holds.
    """

    def __init__(self, *, rules: dict[str, Callable[[str], bool]] | None = None,
                 prefer: Callable[[str], float] | None = None,
                 levels: Callable[[str], int] | None = None,
                 accuracy: float = 1.0, position_bias: str | None = None,
                 confidence: float | None = 0.95, latency: float = 0.0,
                 faults: list[Fault] | None = None, seed: int = 0,
                 verdict_logprob: float | None = None,
                 raw_verdict_logprobs: tuple[float, float] | None = None,
                 score_probs: Callable[[str], dict[int, float]] | None = None,
                 extract: Callable[[str], list[str]] | None = None,
                 supported: Callable[[str, str], bool] | None = None):
        self.rules = rules or {}
        self.extract = extract or _sentences
        self.supported = supported
        self.prefer = prefer or (lambda text: 0.0)
        self.levels = levels
        self.accuracy = accuracy
        self.position_bias = position_bias
        self.confidence = confidence
        self.latency = latency
        self.faults = list(faults or [])
        self.verdict_logprob = verdict_logprob
        self.raw_verdict_logprobs = raw_verdict_logprobs
        self.score_probs = score_probs
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _coin(self) -> bool:
        with self._lock:
            return self._rng.random() < self.accuracy

    def truth(self, name: str, description: str, output: str) -> bool:
        for key, rule in self.rules.items():
            if key == name or key.lower() in description.lower():
                return bool(rule(output))
        return True

    def holds(self, name: str, description: str, req: JudgeRequest) -> bool:
        """A criterion's true answer: a listed claim's by ``supported``, else
        ``truth`` (override either in a subclass)."""
        item = _ITEM.match(name)
        if item is not None and self.supported is not None:
            claim = req.listed.get(int(item.group(1)), "")
            against = req.texts.get("context") or req.texts.get("input") or ""
            return bool(self.supported(claim, against))
        return self.truth(name, description, req.output)

    def __call__(self, req: JudgeRequest) -> Reply:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return fault
        if self.latency:
            time.sleep(self.latency)
        conf = {} if self.confidence is None else {"confidence": self.confidence}
        if req.kind == "criteria":
            items = []
            for name, desc in req.criteria:
                if self.position_bias == "first":
                    ok = not req.options_flipped
                else:
                    ok = self.holds(name, desc, req)
                    if not self._coin():
                        ok = not ok
                items.append({"name": name, "reasoning": f"scripted: {name} "
                              f"{'met' if ok else 'not met'}",
                              "verdict": "pass" if ok else "fail"})
            return {"criteria": items, **conf}
        if req.kind == "extract":
            return {"claims": self.extract(req.output)}
        if req.kind == "scale":
            level = self.levels(req.output) if self.levels else req.top
            probs = None
            if self.score_probs is not None:
                probs = self.score_probs(req.output)
                level = max(probs, key=lambda k: probs[k])
            if self.position_bias == "first":
                level = req.top if req.levels_descending else req.low
            elif not self._coin():
                mid = (req.top + req.low) / 2
                level = req.low if level > mid else req.top
            extra = {} if probs is None else {PROBS: probs}  # not sent as JSON
            return {"reasoning": "scripted level", "score": level, **conf, **extra}
        if req.kind == "pairwise":
            if self.position_bias == "first":
                winner = "A"
            else:
                a = self.prefer(req.texts.get("response_a", ""))
                b = self.prefer(req.texts.get("response_b", ""))
                winner = "A" if a > b else "B" if b > a else "tie"
                if winner != "tie" and not self._coin():
                    winner = "B" if winner == "A" else "A"
            return {"reasoning": "scripted comparison", "winner": winner, **conf}
        return "I cannot tell what you are asking."


class ScriptedJudgeServer:
    """A loopback OpenAI-compatible server; ``base_url`` ends in ``/v1``.

    ``calls`` counts chat-completion requests; ``requests`` keeps them parsed,
    and ``arrivals[i]`` is when ``requests[i]`` arrived (``time.monotonic()``,
    taken once its body was read; in order).

    ``one_slot=True`` serves like llama.cpp's server with one slot: one request
    at a time (the others wait their turn), and a request whose client gave up
    is still computed to the end before the next one is served.
    """

    def __init__(self, policy: Callable[[JudgeRequest], Reply] | None = None,
                 host: str = "127.0.0.1", port: int = 0, *, one_slot: bool = False):
        self.policy: Callable[[JudgeRequest], Reply] = policy or ScriptedJudge()
        self.one_slot = one_slot
        self._slot = threading.Lock()
        self.requests: list[JudgeRequest] = []
        self.headers: list[dict[str, str]] = []
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes: without TCP_NODELAY,
                # Nagle plus the client's delayed ACK stall every reply ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "scripted-judge",
                                                              "object": "model"}]})

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "invalid JSON"}})
                    return
                req = JudgeRequest.parse(body)
                with server._lock:
                    server.arrivals.append(time.monotonic())
                    server.requests.append(req)
                    server.headers.append(
                        {k.lower(): v for k, v in self.headers.items()})
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    if server.one_slot:
                        with server._slot:
                            self._answer(req, body)
                    else:
                        self._answer(req, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, req: JudgeRequest, body: dict[str, Any]) -> None:
                reply = server.policy(req)
                model = str(body.get("model", "scripted-judge"))
                if isinstance(reply, Fault):
                    self._fault(reply, model)
                    return
                probs = None
                if isinstance(reply, dict) and PROBS in reply:
                    reply = dict(reply)
                    probs = reply.pop(PROBS)
                content = reply if isinstance(reply, str) else json.dumps(reply)
                self._send(200, _completion(model, content, "stop",
                                            _logprobs(content, server.policy, probs)
                                            if body.get("logprobs") else None))

            def _fault(self, f: Fault, model: str) -> None:
                if f.kind == "status":
                    extra = dict(f.headers or {})
                    if isinstance(f.retry_after, str):
                        extra["Retry-After"] = f.retry_after
                    elif f.retry_after is not None:
                        extra["Retry-After"] = f"{f.retry_after:g}"
                    self._send(f.status, {"error": {"message": f.message,
                                                    "type": "scripted"}}, extra)
                elif f.kind == "timeout":
                    time.sleep(f.delay)
                    self._send(200, _completion(model, "{}", "stop"))
                elif f.kind == "empty":
                    doc = _completion(model, "", "stop")
                    doc["choices"] = []
                    self._send(200, doc)
                elif f.kind == "truncated":
                    cut = '{"criteria": [{"name": "x", "re'
                    self._send(200, _completion(model, cut, "length"))
                elif f.kind == "garbage":
                    self._send(200, _completion(model, "Looks fine to me!", "stop"))
                elif f.kind == "badjson":
                    data = b"{not json"
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif f.kind == "drop":
                    self.close_connection = True
                    self.connection.close()

            def _send(self, status: int, doc: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(doc).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._httpd = Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an IPv4 server's address
        return f"http://{host}:{port}/v1"

    def start(self) -> ScriptedJudgeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedJudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _completion(model: str, content: str, finish: str,
                logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish,
                              "message": {"role": "assistant", "content": content}}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion",
        "created": int(time.time()),
        "model": model, "choices": [choice],
        "usage": {"prompt_tokens": 100, "completion_tokens": max(1, len(content) // 4),
                  "total_tokens": 100 + max(1, len(content) // 4)},
    }


def _logprobs(content: str, policy: object,
              probs: dict[int, float] | None = None) -> dict[str, Any] | None:
    """Token log-probs for the reply: verdict tokens carry pass/fail alternatives."""
    import math

    if probs:
        out = []
        tokens = re.findall(r'\w+|[^\w\s]|\s+', content)
        for i, t in enumerate(tokens):
            prev = "".join(tokens[max(0, i - 5):i])
            if t.lstrip("-").isdigit() and '"score":' in prev:
                tops = [{"token": str(k), "logprob": math.log(v)}
                        for k, v in sorted(probs.items(), key=lambda kv: -kv[1])
                        if v > 0][:20]
                out.append({"token": t, "logprob": tops[0]["logprob"],
                            "top_logprobs": tops})
            else:
                out.append({"token": t, "logprob": 0.0, "top_logprobs": []})
        return {"content": out}
    p = getattr(policy, "verdict_logprob", None)
    raw = getattr(policy, "raw_verdict_logprobs", None)
    if p is None and raw is None:
        return None

    if raw is not None:
        mine, theirs = float(raw[0]), float(raw[1])
    else:
        assert p is not None
        mine, theirs = math.log(p), math.log(max(1e-9, 1 - p))
    tokens = re.findall(r'\w+|[^\w\s]|\s+', content)
    out = []
    for i, t in enumerate(tokens):
        prev = "".join(tokens[max(0, i - 6):i])  # '"verdict": "' is 5 tokens
        if t in ("pass", "fail") and "verdict" in prev:
            other = "fail" if t == "pass" else "pass"
            tops = [{"token": t, "logprob": mine},
                    {"token": other, "logprob": theirs}]
            out.append({"token": t, "logprob": mine, "top_logprobs": tops})
        else:
            out.append({"token": t, "logprob": 0.0, "top_logprobs": []})
    return {"content": out}


def _sentences(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
