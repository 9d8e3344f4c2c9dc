"""The OpenTelemetry SDK side of ``tasks/observe/traces.py``: imported only when traces are exported.

:func:`install` builds the tracer provider a process exports with, and two small repairs that make a
sweep on Dask one trace and keep its spans:

* Prefect parents a task run's span through the current OpenTelemetry context of the process that runs
  the flow. A task run on a Dask worker has no such context, and Prefect's fallback (the flow run's
  ``__OTEL_TRACEPARENT`` label, which does reach the worker) reads the label of the task's own run
  instead of its flow's, so each chunk would start a trace of its own. The provider hands Prefect a
  tracer (:class:`FlowRunParent`) that gives such a span, one with no parent at all inside a flow run,
  the flow run's span from that label. Spans that have a parent are left as Prefect made them.
* A span whose parent came from another process (a chunk's task run on a Dask worker) closes a unit of
  work handed to this process, and a worker may be killed without running exit handlers when its
  cluster closes: :class:`FlushHandedOver` sends the batch as soon as such a span ends.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Tracer

PREFECT_SCOPE = "prefect"  # the instrumentation scope of Prefect's run spans (run_telemetry.py)


class FlowRunParent(Tracer):
    """Prefect's tracer, with one change: a span that would have no parent while a flow run is the
    context (a task run on a Dask worker) gets the flow run's span, from its ``__OTEL_TRACEPARENT``
    label. A span with a parent, and a top-level flow run's own span (no flow run is the context yet
    when Prefect opens it), are untouched."""

    def __init__(self, tracer: Tracer):
        self._tracer = tracer

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> Span:
        if context is None and not trace.get_current_span().get_span_context().is_valid:
            context = flow_run_span_context()
        return self._tracer.start_span(name, context, *args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any):
        return self._tracer.start_as_current_span(*args, **kwargs)


def flow_run_span_context() -> Any:
    """The context of the current flow run's span, from its run label; None outside a flow run."""
    from prefect.context import FlowRunContext
    from prefect.telemetry.run_telemetry import LABELS_TRACEPARENT_KEY, TRACEPARENT_KEY

    run_context = FlowRunContext.get()
    flow_run = run_context.flow_run if run_context else None
    traceparent = flow_run.labels.get(LABELS_TRACEPARENT_KEY) if flow_run and flow_run.labels else None
    return propagate.extract({TRACEPARENT_KEY: traceparent}) if traceparent else None


class StrategyLabProvider(TracerProvider):
    """The SDK's provider; Prefect's tracer comes wrapped in :class:`FlowRunParent`."""

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Tracer:
        tracer = super().get_tracer(instrumenting_module_name, *args, **kwargs)
        return FlowRunParent(tracer) if instrumenting_module_name == PREFECT_SCOPE else tracer


class FlushHandedOver(SpanProcessor):
    """Exports the batch when a span whose parent lives in another process ends (after the batch
    processor has queued it): a chunk on a Dask worker reaches the collector before the worker may be
    killed. One export per chunk, which takes seconds; spans with local parents wait for their batch."""

    def __init__(self, batch: BatchSpanProcessor, timeout_ms: int = 10_000):
        self.batch, self.timeout_ms = batch, timeout_ms

    def on_end(self, span: ReadableSpan) -> None:
        if span.parent is not None and span.parent.is_remote:
            self.batch.force_flush(self.timeout_ms)


def install(default_service_name: str) -> TracerProvider:
    """Build the provider (OTLP/HTTP protobuf exporter configured by the ``OTEL_EXPORTER_OTLP_*``
    variables, batched) and make it this process's global one. It shuts down at interpreter exit,
    which sends what is left."""
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": default_service_name}
    provider = StrategyLabProvider(resource=Resource.create(attributes), shutdown_on_exit=True)
    batch = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(batch)
    provider.add_span_processor(FlushHandedOver(batch))
    trace.set_tracer_provider(provider)
    return provider
