"""One guarded door to Claude: every request is budgeted, retried when the API is busy, and recorded.

For each attempt: reserve the worst case in the ledger, send with the official ``anthropic`` SDK, then
settle the real cost from the response's ``usage``. An error answer (429, 529, 5xx) costs nothing and
its reservation is released; a timeout may have been billed, so it stays charged at the worst case.
Retries back off (honouring ``retry-after``) and each has its own reservation. The API key is read by
the SDK from the environment and never passes through this module.

Each call is one span of a trace (``claude <purpose>``, under the task run that asked: see
``tasks/observe/traces.py``) with the call's tokens and dollars as attributes; its attempts are counted
there and each retry is an event, because the call, not the attempt, is what the ledger's record and
the results files name, and what the caller waited for.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from pydantic import BaseModel

from tasks.llm.budget import BudgetExhausted, BudgetLedger
from tasks.llm.pricing import TokenUsage, cost_usd, model_price, worst_case_usd
from tasks.observe.traces import llm_span, record_attempt, record_call, record_retry

RETRYABLE = {408, 409, 429, 500, 502, 503, 504, 529}
STATUS_WORDS = {429: "rate limited", 529: "overloaded", 408: "timed out", 409: "conflict"}


class LLMFailure(RuntimeError):
    """A call to Claude could not give a usable answer; the message is the reason a person reads."""


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
        max_attempts: int = 4,
        timeout_s: float = 180.0,
        client: Any = None,
        limit_usd: float | None = None,
    ):
        """``limit_usd`` caps this session's own spend on top of the daily ledger (a campaign's
        ``max_usd``, less what its earlier processes spent)."""
        import anthropic  # imported here: only cycles that use Claude pay for it

        model_price(model)  # an unknown model fails now, before any request
        self.model = model
        self.ledger = ledger
        self.cycle_id = cycle_id
        self.max_attempts = max_attempts
        self.client = client or anthropic.Anthropic(max_retries=0, timeout=timeout_s)
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
                record_attempt(span, attempt, round(worst, 6))
                try:
                    response = self.client.messages.create(model=self.model, **request)
                except anthropic.APIStatusError as exc:
                    self.ledger.release(reservation)
                    if exc.status_code not in RETRYABLE or attempt == self.max_attempts:
                        span.set_attribute("http.response.status_code", exc.status_code)
                        raise LLMFailure(_status_reason(purpose, exc, attempt)) from None
                    delay = _retry_delay(exc.response.headers, attempt)
                    record_retry(span, attempt, f"{exc.status_code} {_status_word(exc.status_code)}", delay)
                    time.sleep(delay)
                    continue
                except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
                    # it may have been billed: keep it charged
                    self.ledger.settle(reservation, worst, TokenUsage())
                    self.charged_usd += worst
                    if attempt == self.max_attempts:
                        raise LLMFailure(
                            f"{purpose}: no answer from the Anthropic API after {attempt} attempts "
                            f"({type(exc).__name__})"
                        ) from None
                    delay = _retry_delay({}, attempt)
                    record_retry(span, attempt, type(exc).__name__, delay, charged_usd=round(worst, 6))
                    time.sleep(delay)
                    continue
                usage = _usage(response.usage)
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


def _usage(usage: Any) -> TokenUsage:
    return TokenUsage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_write_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
        cache_read_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
    )


def _status_reason(purpose: str, exc: Any, attempt: int) -> str:
    status = exc.status_code
    word = _status_word(status)
    hint = " (check ANTHROPIC_API_KEY)" if status in (401, 403) else ""
    tries = f" after {attempt} attempts" if attempt > 1 else ""
    message = ""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = str(body.get("error", {}).get("message", ""))[:200]
    return f"{purpose}: Anthropic API {word} ({status}){tries}{hint}" + (f": {message}" if message else "")


def _status_word(status: int) -> str:
    return STATUS_WORDS.get(status, "server error" if status >= 500 else "rejected the request")


def _retry_delay(headers: Any, attempt: int) -> float:
    """The server's retry-after if it gives one (capped at 60 s), else exponential backoff with jitter."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers else None
        if value is not None:
            try:
                return min(max(float(value) * scale, 0.0), 60.0)
            except ValueError:
                pass
    return min(0.5 * 2 ** (attempt - 1), 8.0) * (0.75 + 0.5 * random.random())
