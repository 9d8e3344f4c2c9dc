"""A local HTTP server that speaks enough of the Anthropic Messages API for the real SDK.

It is the one fake the project allows: the network edge we cannot reach. Tests queue replies
(tool_use, text, refusal, error statuses) and network faults (``slow``: an answer later than the
client waits; ``reset``: the socket closed mid-request; ``malformed``: a 200 whose body is not a
Message); the server records every request it receives and when it came, and reports
``usage`` the way the API does, prompt caching included: the prefix up to a ``cache_control``
breakpoint is written to its cache on first sight and read from it afterwards. Tokens are counted as
one per four characters of JSON, an approximation of a real tokenizer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tokens(data: Any) -> int:
    return (len(json.dumps(data, separators=(",", ":"))) + 3) // 4


@dataclass
class Reply:
    status: int = 200
    content: list[dict] = field(default_factory=list)
    stop_reason: str | None = "end_turn"
    headers: dict[str, str] = field(default_factory=dict)
    error: dict | None = None
    delay_s: float = 0.0  # wait this long before answering
    reset: bool = False  # close the socket with a TCP reset instead of answering
    body: bytes | None = None  # send these bytes as the body instead of a Message or an error


def tool_use(name: str, tool_input: dict | None = None, *more: tuple[str, dict]) -> Reply:
    """The model calls one tool (or several: more=(name, input) pairs)."""
    calls = [(name, tool_input or {}), *more]
    return Reply(
        content=[
            {"type": "tool_use", "id": f"toolu_{n}_{i}", "name": n, "input": inp}
            for i, (n, inp) in enumerate(calls)
        ],
        stop_reason="tool_use",
    )


def text(message: str, stop_reason: str = "end_turn") -> Reply:
    return Reply(content=[{"type": "text", "text": message}], stop_reason=stop_reason)


def error(status: int, kind: str, message: str, **headers: str) -> Reply:
    return Reply(status=status, error={"type": kind, "message": message}, headers=headers)


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    """``reply`` (a short text answer by default), sent only after ``seconds``: set the client's
    timeout below that to see a timeout."""
    return dataclasses.replace(reply or text("late, but here"), delay_s=seconds)


def reset() -> Reply:
    """Read the request, then close the socket with a TCP reset (RST): no status line, no body."""
    return Reply(reset=True)


def malformed(body: bytes = b'{"id": "msg_cut", "type": "message", "content": [') -> Reply:
    """A 200 with a JSON content type whose body is not a Message (by default, JSON cut short)."""
    return Reply(body=body)


class FakeAnthropic:
    """Start with ``with FakeAnthropic() as fake:``; queue replies with ``fake.queue(...)``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.keys: list[str] = []  # the API key each request carried
        self.usages: list[dict] = []
        self.times: list[float] = []  # time.monotonic() when each request arrived
        self._script: deque[Reply | Callable[[dict], Reply]] = deque()
        self._cache: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = threading.Event()  # ends the wait of slow replies when the server stops
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, *replies: Reply | Callable[[dict], Reply]) -> None:
        self._script.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._script)

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # --- what the API would report -------------------------------------------------------------

    def _usage(self, body: dict, content: list[dict]) -> dict:
        tools, system, messages = body.get("tools", []), body.get("system", []), body["messages"]
        if isinstance(system, str):
            system = [{"type": "text", "text": system}]
        cached_upto = max((i for i, b in enumerate(system) if "cache_control" in b), default=None)
        usage = {
            "input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": tokens(content) + 5,
        }
        if cached_upto is None:
            usage["input_tokens"] = tokens([tools, system, messages])
            return usage
        prefix = [tools, system[: cached_upto + 1]]
        key = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
        if key in self._cache:
            usage["cache_read_input_tokens"] = tokens(prefix)
        else:
            self._cache.add(key)
            usage["cache_creation_input_tokens"] = tokens(prefix)
        usage["input_tokens"] = tokens([system[cached_upto + 1 :], messages])
        return usage

    def _respond(self, body: dict) -> Reply:
        with self._lock:
            if not self._script:
                return error(500, "api_error", "fake server: no reply queued for this request")
            step = self._script.popleft()
        return step(body) if callable(step) else step

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                headers = {k.lower(): v for k, v in self.headers.items()}
                key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
                with fake._lock:
                    fake.requests.append(body)
                    fake.keys.append(key)
                    fake.times.append(time.monotonic())
                reply = fake._respond(body) if key else error(401, "authentication_error", "no API key")
                if reply.reset:
                    # SO_LINGER 0: close() sends RST at once, as a crashed proxy or load balancer does
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if fake._closing.wait(reply.delay_s):
                    return
                if reply.body is not None:
                    self._send(reply.status, reply.body, reply.headers)
                    return
                if reply.status != 200:
                    payload = {"type": "error", "error": reply.error}
                else:
                    usage = fake._usage(body, reply.content)
                    fake.usages.append(usage)
                    payload = {
                        "id": f"msg_{next(fake._ids)}",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": reply.content,
                        "stop_reason": reply.stop_reason,
                        "stop_sequence": None,
                        "usage": usage,
                    }
                self._send(reply.status, json.dumps(payload).encode(), reply.headers)

            def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("request-id", f"req_{len(fake.requests)}")
                    for name, value in headers.items():
                        self.send_header(name.replace("_", "-"), value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    self.close_connection = True

        return Handler
