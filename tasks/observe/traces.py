"""OpenTelemetry traces: Prefect's spans for flow and task runs, ours for what Prefect cannot see.

Set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (e.g. ``http://localhost:4318``, Jaeger's or a Collector's OTLP/HTTP
port; ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` for the full ``.../v1/traces`` URL) in the environment of
whatever runs flows: the worker (its flow-run processes inherit it) or a shell running ``stratlab
cycle``. Each flow module calls :func:`configure_tracing` when it is imported (a worker's flow-run
process imports its flow from the deployment's entrypoint, the CLI imports it to run it in process),
which installs that process's global tracer provider: OTLP/HTTP (protobuf), spans batched and sent at
exit, resource ``service.name`` "strategy-lab" (``OTEL_SERVICE_NAME`` wins; ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_HEADERS`` and ``OTEL_TRACES_SAMPLER`` work as the SDK defines them). Unset, nothing
is configured and the SDK is not even imported.

Prefect 3 already opens a span for every flow run and task run through the global tracer
(``prefect/telemetry/run_telemetry.py``), named after the run, with ``prefect.run.*`` attributes, a task
run's span a child of its flow run's. The ``anthropic`` SDK opens one for every HTTP request it sends
(``anthropic.messages.create``, with GenAI attributes: status, request id, tokens; no content unless
``ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content`` asks for it). We add only what neither sees:
the budgeted call to Claude, with its purpose, attempts, tokens and dollars. One research cycle is one
trace::

    <flow run name>                     flow run (Prefect), the trace's root
    ├── design-claude-<xxx>             task run (Prefect), one per phase: load-data, features,
    │   └── claude design               train, backtest, assess or assess-claude
    │       └── anthropic.messages.create   one call (ours, :func:`llm_span`), one span per HTTP
    ├── load-data-<xxx> ...                 request under it (the SDK's)
    └── assess-claude-<xxx>
        └── claude assess
            └── anthropic.messages.create

A sweep's chunks are its ``sweep-chunk-<xxx>`` task runs, with their size added to Prefect's span
(:func:`annotate`). The API key never passes through here, nor does a prompt: only its size.

Tasks of a sweep on Dask are Prefect task runs in the worker processes: each worker configures its own
provider when it imports ``flows.sweep`` to run a chunk, so it needs the same ``OTEL_*`` environment (a
``local:N`` cluster inherits it; the workers of a remote scheduler must be started with it). How their
spans join the flow run's trace is in ``tasks/observe/tracing_sdk.py``, which holds everything that
needs the SDK.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

SERVICE_NAME = "strategy-lab"
ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
LLM = "stratlab.llm."  # the attributes of our span of an LLM call (the SDK's spans have the gen_ai.* ones)

_lock = threading.Lock()
_provider: Any = None  # the SDK TracerProvider this module installed, once


def tracing_requested() -> bool:
    """Whether this process should export traces: an OTLP endpoint is set and the SDK is not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_ENVS)


def configure_tracing() -> bool:
    """Install the global tracer provider when an OTLP endpoint is set; True if traces are exported.

    Idempotent, and it leaves alone a provider that someone else configured in this process (for
    example ``opentelemetry-instrument``). Spans are sent in batches; the provider is shut down at
    interpreter exit, which sends what is left (a worker's flow-run process exits right after its flow).
    """
    global _provider
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    with _lock:
        if _provider is not None:
            return True
        from opentelemetry.sdk.trace import TracerProvider

        if isinstance(trace.get_tracer_provider(), TracerProvider):
            return True  # configured elsewhere: its exporters get Prefect's spans and ours
        from tasks.observe.tracing_sdk import install

        _provider = install(SERVICE_NAME)
        return True


def annotate(attributes: dict[str, Any]) -> None:
    """Add attributes to the current span (a Prefect task run's, inside a task); nothing without one."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)


@contextmanager
def llm_span(purpose: str, model: str, request_chars: int, max_tokens: int | None) -> Iterator[Span]:
    """The span of one call to Claude, a child of the current span (the task run that asked).

    It is opened before the first attempt and closed after the last, so its duration is what the caller
    waited, back-offs included; :func:`record_retry` adds an event per failed attempt and
    :func:`record_call` the tokens and dollars of the answer. An exception leaving the block marks the
    span failed with its message (our reasons: "design: Anthropic API overloaded (529) after 4
    attempts", "budget_exhausted: ..."). Only sizes of the request are recorded, never its text.
    """
    tracer = trace.get_tracer(SERVICE_NAME)
    attributes = {
        LLM + "purpose": purpose,
        LLM + "model": model,
        LLM + "request_chars": request_chars,
        LLM + "max_tokens": max_tokens or 0,
        LLM + "attempts": 0,  # how many were sent: 0 when the budget refused the first
    }
    with tracer.start_as_current_span(
        f"claude {purpose}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,  # a traceback adds nothing to the reason, and could quote a request
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:500] or type(exc).__name__))
            raise


def record_attempt(span: Span, attempt: int, reserved_usd: float) -> None:
    """An attempt is about to be sent, with the worst case the ledger reserved for it."""
    span.set_attributes({LLM + "attempts": attempt, LLM + "reserved_usd": reserved_usd})


def record_retry(span: Span, attempt: int, reason: str, delay_s: float, charged_usd: float = 0.0) -> None:
    """A failed attempt that will be retried: why, how long the back-off, and what it was charged."""
    span.add_event(
        "retry",
        {"attempt": attempt, "reason": reason, "delay_s": round(delay_s, 3), "charged_usd": charged_usd},
    )


def record_call(span: Span, record: Any) -> None:
    """The answer's tokens and dollars, exactly as the call's record (``CallRecord``) keeps them."""
    span.set_attributes(
        {
            LLM + "stop_reason": record.stop_reason or "",
            LLM + "input_tokens": record.input_tokens,
            LLM + "output_tokens": record.output_tokens,
            LLM + "cache_write_tokens": record.cache_write_tokens,
            LLM + "cache_read_tokens": record.cache_read_tokens,
            LLM + "cost_usd": record.cost_usd,
            LLM + "reserved_usd": record.reserved_usd,
            LLM + "attempts": record.attempts,
        }
    )
