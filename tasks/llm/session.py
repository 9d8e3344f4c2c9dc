"""One guarded door to Claude: every request is budgeted, retried when the API is busy, and recorded.

For each attempt: reserve the worst case in the ledger, send with the official ``anthropic`` SDK, then
settle the real cost from the response's ``usage``. Every attempt ends its reservation, whatever happens:

- an error answer (429, 529, 5xx, 4xx) costs nothing: released; 408, 409, 429, 5xx and 529 are retried;
- a request that never left (no connection could be made) costs nothing: released, and retried;
- a timeout or a connection lost mid-request may have been billed: settled at the worst case, retried;
- a 200 whose body is not a Message (invalid JSON, no ``usage``) was answered, so it was billed, at a
  cost nobody can read: settled at the worst case, and not retried (the call fails with the reason);
- an interruption (cancellation, Ctrl-C) mid-request: settled at the worst case, then it goes on.

Retries back off (honouring ``retry-after-ms`` and ``retry-after``, capped at 60 s) and each has its
own reservation. When attempts run out the call fails with an :class:`LLMFailure` whose message names
the purpose, what went wrong and how many attempts were made. The API key is read by the SDK from the
environment and never passes through this module.

Settings (environment; the constructor's arguments win over them):

- ``STRATLAB_LLM_TIMEOUT_S`` (default 180): seconds one request may take before it counts as timed out.
  A design turn writes up to 6000 tokens; at ~60 tokens/s that is 100 s, so keep it well above that.
- ``STRATLAB_LLM_MAX_ATTEMPTS`` (default 4): attempts per call, the first included (1 = no retry).
- ``STRATLAB_LLM_BACKOFF_S`` (default 0.5): the wait before the first retry when the server gives no
  ``retry-after``; it doubles with each retry (capped at 8 s), with +-25% jitter.

Each call is one span of a trace (``claude <purpose>``, under the task run that asked: see
``tasks/observe/traces.py``) with the call's tokens and dollars as attributes; its attempts are counted
there and each retry is an event, because the call, not the attempt, is what the ledger's record and
the results files name, and what the caller waited for.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from typing import Any

from pydantic import BaseModel

from tasks.llm.budget import BudgetExhausted, BudgetLedger
from tasks.llm.pricing import TokenUsage, cost_usd, model_price, worst_case_usd
from tasks.observe.traces import llm_span, record_attempt, record_call, record_retry

RETRYABLE = {408, 409, 429, 500, 502, 503, 504, 529}
STATUS_WORDS = {429: "rate limited", 529: "overloaded", 408: "timed out", 409: "conflict"}
TIMEOUT_ENV, ATTEMPTS_ENV, BACKOFF_ENV = (
    "STRATLAB_LLM_TIMEOUT_S",
    "STRATLAB_LLM_MAX_ATTEMPTS",
    "STRATLAB_LLM_BACKOFF_S",
)
DEFAULT_TIMEOUT_S, DEFAULT_MAX_ATTEMPTS, DEFAULT_BACKOFF_S = 180.0, 4, 0.5


class LLMFailure(RuntimeError):
    """A call to Claude could not give a usable answer; the message is the reason a person reads."""


class NotAMessage(ValueError):
    """A 200 answer that parsed, but is not a Message a tool loop can read (no usage, no content)."""


class CallRecord(BaseModel):
    """Tokens and dollars of one request, as the result files record them."""

    purpose: str
    model: str
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float
    reserved_usd: float
    attempts: int
    seconds: float


def resolve_who(who: str) -> str:
    """'auto' means Claude when an API key is set, else the offline path."""
    if who == "auto":
        return "claude" if os.environ.get("ANTHROPIC_API_KEY") else "local"
    return who


def request_worst_case(request: dict[str, Any], model: str) -> float:
    """What one Messages API request can cost at most: what the budget reserves before sending it."""
    return worst_case_usd(len(json.dumps(request, default=str)), request["max_tokens"], model_price(model))


def as_plain(blocks: list[Any]) -> list[dict]:
    """Response content blocks as plain dicts, to send back on the next turn."""
    return [b.model_dump(exclude_none=True) if hasattr(b, "model_dump") else dict(b) for b in blocks]


class ClaudeSession:
    """A cycle's use of Claude: one SDK client, the shared budget ledger, and the record of every call."""

    def __init__(
        self,
        model: str,
        ledger: BudgetLedger,
        cycle_id: str | None = None,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        client: Any = None,
        limit_usd: float | None = None,
        backoff_s: float | None = None,
    ):
        """``limit_usd`` caps this session's own spend on top of the daily ledger (a campaign's
        ``max_usd``, less what its earlier processes spent). ``max_attempts``, ``timeout_s`` and
        ``backoff_s`` default to their environment settings (see the module's docstring)."""
        import anthropic  # imported here: only cycles that use Claude pay for it

        model_price(model)  # an unknown model fails now, before any request
        self.model = model
        self.ledger = ledger
        self.cycle_id = cycle_id
        self.max_attempts = max_attempts or int(_setting(ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS, whole=True))
        self.timeout_s = timeout_s or _setting(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
        self.backoff_s = _setting(BACKOFF_ENV, DEFAULT_BACKOFF_S) if backoff_s is None else backoff_s
        # the SDK never retries on its own: each attempt needs its own reservation
        self.client = client or anthropic.Anthropic(max_retries=0, timeout=self.timeout_s)
        self.calls: list[CallRecord] = []
        self.limit_usd = limit_usd
        self.charged_usd = 0.0  # settled costs, timeouts at their worst case

    def create(self, purpose: str, **request: Any):
        """Send one Messages API request under the budget; return the SDK's Message."""
        import anthropic

        price = model_price(self.model)
        size = len(json.dumps(request, default=str))
        worst = request_worst_case(request, self.model)
        started = time.monotonic()
        with llm_span(purpose, self.model, size, request.get("max_tokens")) as span:
            for attempt in range(1, self.max_attempts + 1):
                self._check_limit(purpose, worst)
                # may raise BudgetExhausted: then nothing is sent
                reservation = self.ledger.reserve(worst, purpose, self.cycle_id, self.model)
                try:
                    record_attempt(span, attempt, round(worst, 6))
                    response = self.client.messages.create(model=self.model, **request)
                    usage = _usage_of(response)
                except anthropic.APIStatusError as exc:
                    self.ledger.release(reservation)  # an error answer is not billed
                    if exc.status_code not in RETRYABLE or attempt == self.max_attempts:
                        span.set_attribute("http.response.status_code", exc.status_code)
                        raise LLMFailure(_status_reason(purpose, exc, attempt)) from None
                    delay = _retry_delay(exc.response.headers, attempt, self.backoff_s)
                    record_retry(span, attempt, f"{exc.status_code} {_status_word(exc.status_code)}", delay)
                    time.sleep(delay)
                    continue
                except anthropic.APIConnectionError as exc:  # APITimeoutError included
                    charged = 0.0 if _never_sent(exc) else worst  # once sent, it may have been billed
                    if charged:
                        self.ledger.settle(reservation, charged, TokenUsage())
                        self.charged_usd += charged
                    else:
                        self.ledger.release(reservation)
                    if attempt == self.max_attempts:
                        raise LLMFailure(
                            f"{purpose}: no answer from the Anthropic API after {_attempts(attempt)}: "
                            f"the last {self._transport_problem(exc)}"
                        ) from None
                    delay = _retry_delay({}, attempt, self.backoff_s)
                    record_retry(span, attempt, type(exc).__name__, delay, charged_usd=round(charged, 6))
                    time.sleep(delay)
                    continue
                except (json.JSONDecodeError, anthropic.APIResponseValidationError, NotAMessage) as exc:
                    # a 200 whose body is not a Message: answered, so billed, at a cost nobody can read
                    self.ledger.settle(reservation, worst, TokenUsage())
                    self.charged_usd += worst
                    raise LLMFailure(
                        f"{purpose}: the Anthropic API answered with a body that is not a Message "
                        f"({_unreadable(exc)}); not retried, charged at its worst case"
                    ) from None
                except BaseException:  # cancelled, interrupted, or a bug of ours: it may have been billed
                    self.ledger.settle(reservation, worst, TokenUsage())
                    self.charged_usd += worst
                    raise
                cost = cost_usd(usage, price)
                self.ledger.settle(reservation, cost, usage)
                self.charged_usd += cost
                record = CallRecord(
                    purpose=purpose,
                    model=self.model,
                    stop_reason=response.stop_reason,
                    cost_usd=round(cost, 6),
                    reserved_usd=round(worst, 6),
                    attempts=attempt,
                    seconds=round(time.monotonic() - started, 3),
                    **usage.model_dump(),
                )
                self.calls.append(record)
                record_call(span, record)
                return response
        raise AssertionError("unreachable")

    def _transport_problem(self, exc: Exception) -> str:
        """What became of a request that got no answer, in words: timed out, lost, or never sent."""
        import anthropic

        if isinstance(exc, anthropic.APITimeoutError):
            return f"timed out after {self.timeout_s:g} s (set {TIMEOUT_ENV} to wait longer)"
        if _never_sent(exc):
            return f"could not connect to {self.client.base_url} (check ANTHROPIC_BASE_URL and the network)"
        return "lost its connection before the answer came (the connection was closed or reset)"

    def _check_limit(self, purpose: str, worst: float) -> None:
        if self.limit_usd is None:
            return
        left = self.limit_usd - self.charged_usd
        if worst > left:
            raise BudgetExhausted(
                f"budget_exhausted: {purpose} needs up to ${worst:.4f} but only ${max(left, 0):.4f} of this "
                f"run's ${self.limit_usd:.2f} limit is left"
            )

    def totals(self, purpose: str | None = None) -> dict[str, float | int]:
        """Summed tokens and dollars of the calls so far (of one purpose, if given)."""
        calls = [c for c in self.calls if purpose is None or c.purpose == purpose]
        keys = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
        totals: dict[str, float | int] = {k: sum(getattr(c, k) for c in calls) for k in keys}
        totals["cost_usd"] = round(sum(c.cost_usd for c in calls), 6)
        totals["calls"] = len(calls)
        return totals


def _usage_of(response: Any) -> TokenUsage:
    """The tokens a Message reports; NotAMessage if the answer is not one a tool loop can read."""
    usage = getattr(response, "usage", None)
    if usage is None or getattr(usage, "input_tokens", None) is None:
        raise NotAMessage("it has no usage")
    if not isinstance(getattr(response, "content", None), list):
        raise NotAMessage("it has no content")
    return TokenUsage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_write_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
        cache_read_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
    )


def _unreadable(exc: Exception) -> str:
    """Why a 200's body could not be read, in a few words."""
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, NotAMessage):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:200]


def _never_sent(exc: BaseException) -> bool:
    """The connection could not even be made, so the request never reached the API. Read from the
    exception's chain by class name: the SDK's HTTP library is ``httpx`` or ``httpx2`` by version."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("ConnectError", "ConnectTimeout"):
            return True
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _attempts(n: int) -> str:
    return f"{n} attempt" + ("s" if n != 1 else "")


def _setting(name: str, default: float, whole: bool = False) -> float:
    """A positive number from the environment (unset or empty: the default); ValueError naming the fix."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        kind = "a whole number above 0" if whole else "a number of seconds above 0"
        raise ValueError(
            f"{name}={raw!r} must be {kind}, e.g. {default:g}; unset it for the default"
        ) from None
    return value


def _status_reason(purpose: str, exc: Any, attempt: int) -> str:
    status = exc.status_code
    word = _status_word(status)
    hint = " (check ANTHROPIC_API_KEY)" if status in (401, 403) else ""
    tries = f" after {attempt} attempts" if attempt > 1 else ""
    message = ""
    body = getattr(exc, "body", None)
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        message = str(detail.get("message", ""))[:200]
    return f"{purpose}: Anthropic API {word} ({status}){tries}{hint}" + (f": {message}" if message else "")


def _status_word(status: int) -> str:
    return STATUS_WORDS.get(status, "server error" if status >= 500 else "rejected the request")


def _retry_delay(headers: Any, attempt: int, backoff_s: float = DEFAULT_BACKOFF_S) -> float:
    """The server's retry-after if it gives one (capped at 60 s), else exponential backoff with jitter."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers else None
        if value is not None:
            try:
                return min(max(float(value) * scale, 0.0), 60.0)
            except ValueError:
                pass
    return min(backoff_s * 2 ** (attempt - 1), 8.0) * (0.75 + 0.5 * random.random())
