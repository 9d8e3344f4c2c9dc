"""A local OTLP/HTTP receiver: what a Collector or Jaeger (port 4318) does with our traces, minus storage.

It accepts ``POST /v1/traces`` (protobuf, gzip or not), decodes each ``ExportTraceServiceRequest`` with
the official ``opentelemetry-proto`` classes and keeps the spans, flattened, and every raw body as it
arrived (to search for what must never be sent). Other signals (``/v1/metrics``, ``/v1/logs``) are
answered 200 and counted. Not a fake of our own code: the exporter under test is the real SDK's.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def plain(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value it carries."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    name: str
    scope: str  # the instrumentation scope: "prefect" for Prefect's spans, "strategy-lab" for ours
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: str  # UNSET, OK or ERROR
    status_message: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0


class OTLPReceiver:
    """Start with ``with OTLPReceiver() as receiver:``; point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``.url``."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.bodies: list[bytes] = []  # every request body, decompressed, as it arrived
        self.other: dict[str, int] = {}  # path -> requests of other signals
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _keep(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {kv.key: plain(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            scope=scope_spans.scope.name,
                            attributes={kv.key: plain(kv.value) for kv in span.attributes},
                            resource=resource,
                            status=("UNSET", "OK", "ERROR")[span.status.code],
                            status_message=span.status.message,
                            events=[
                                (e.name, {kv.key: plain(kv.value) for kv in e.attributes})
                                for e in span.events
                            ],
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                with receiver._lock:
                    receiver.bodies.append(body)
                if self.path == "/v1/traces":
                    receiver._keep(body)
                    reply = ExportTraceServiceResponse().SerializeToString()
                else:
                    with receiver._lock:
                        receiver.other[self.path] = receiver.other.get(self.path, 0) + 1
                    reply = b""
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        return Handler
