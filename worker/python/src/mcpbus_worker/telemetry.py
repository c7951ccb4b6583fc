"""Trace context on the bus (PROTOCOL.md §11, ADR 0020).

Every call carries the W3C `traceparent` (and `tracestate`) of the gateway's span in its NATS
headers; the worker's replies carry its handler span's. OpenTelemetry is optional
(`pip install mcpbus-worker[otel]`):

- without it, a call's context is passed on unchanged in its replies, so the trace still
  joins up around this worker;
- with the OpenTelemetry API, the handler runs in a span whose parent is the gateway's, and
  the time the call waited in the queue is recorded as a span from the moment JetStream
  stored it; the spans go wherever the application's tracer provider sends them;
- with the SDK and the OTLP/HTTP exporter installed too, `Worker.run` sets up that provider
  from the standard `OTEL_*` variables when an OTLP endpoint is configured and the
  application has not set one up itself.

May read and write a call's trace headers and the global tracer provider; nothing else.
"""

from __future__ import annotations

import logging
import os
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from . import contract as c

log = logging.getLogger("mcpbus_worker")

try:  # the optional extra
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    HAVE_OTEL = True
except ImportError:  # pragma: no cover - exercised where the extra is absent
    HAVE_OTEL = False

#: The instrumentation scope of our spans.
SCOPE = "mcpbus_worker"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$")
#: `tracestate` is at most 32 members of at most 256 bytes.
_MAX_TRACESTATE = 32 * 257


def extract(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The valid trace headers of a message (an empty dict when it has none)."""
    if not headers:
        return {}
    tp = (headers.get(c.HEADER_TRACEPARENT) or "").strip()
    m = _TRACEPARENT.match(tp)
    if m is None or tp[:2] == "ff" or (tp[:2] == "00" and m.group(3)) \
            or set(m.group(1)) == {"0"} or set(m.group(2)) == {"0"}:
        return {}
    out = {c.HEADER_TRACEPARENT: tp}
    ts = (headers.get(c.HEADER_TRACESTATE) or "").strip()
    if ts and len(ts) <= _MAX_TRACESTATE and ts.isascii():
        out[c.HEADER_TRACESTATE] = ts
    return out


def trace_id(carrier: Mapping[str, str]) -> str | None:
    """The trace id of a carrier from `extract`."""
    tp = carrier.get(c.HEADER_TRACEPARENT)
    return tp[3:35] if tp else None


class CallTrace:
    """One call's trace: `headers()` is what its replies carry."""

    def __init__(self, incoming: dict[str, str]) -> None:
        self.incoming = incoming
        self.outgoing = dict(incoming)
        self.span: Any = None

    def headers(self) -> dict[str, str]:
        return dict(self.outgoing)

    @property
    def trace_id(self) -> str | None:
        return trace_id(self.outgoing)


def _enqueued_ns(msg: Any) -> int | None:
    """When JetStream stored the call (its metadata timestamp), in ns since the epoch."""
    stamp = getattr(getattr(msg, "metadata", None), "timestamp", None)
    if stamp is None:
        return None
    try:
        return int(stamp.timestamp() * 1e9)
    except Exception:
        return None


@contextmanager
def call_span(msg: Any, request: Mapping[str, Any], pool: str, instance: str) -> Iterator[CallTrace]:
    """The handler span of one call, as the Rust SDK names it: `execute_tool {tool}` for a
    tool, `{method}` otherwise; its parent the gateway's span from the call's headers."""
    trace = CallTrace(extract(getattr(msg, "headers", None)))
    if not HAVE_OTEL:
        yield trace
        return
    parent = TraceContextTextMapPropagator().extract(trace.incoming) if trace.incoming else otel_context.Context()
    tracer = otel_trace.get_tracer(SCOPE)
    method = request.get("method", "")
    params = request.get("params") or {}
    name = params.get("name") if isinstance(params, dict) else None
    tool = name if method == c.METHOD_TOOLS_CALL and isinstance(name, str) else None
    subject = getattr(msg, "subject", "") or ""
    enqueued = _enqueued_ns(msg)
    if trace.incoming and enqueued is not None:
        queue = tracer.start_span(
            "mcpbus.queue", context=parent, kind=otel_trace.SpanKind.CONSUMER, start_time=enqueued,
            attributes={
                "messaging.system": "nats", "messaging.operation.type": "receive",
                "messaging.destination.name": subject, "messaging.consumer.group.name": pool,
                "messaging.message.id": str(request.get("call_id", "")),
            },
        )
        queue.end(end_time=time.time_ns())
    attributes = {
        "mcp.method.name": method,
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": subject,
        "mcpbus.pool": pool,
        "mcpbus.instance": instance,
        "call_id": str(request.get("call_id", "")),
    }
    if tool is not None:
        attributes["gen_ai.operation.name"] = "execute_tool"
        attributes["gen_ai.tool.name"] = tool
    span_name = f"execute_tool {tool}" if tool is not None else method
    with tracer.start_as_current_span(
        span_name, context=parent, kind=otel_trace.SpanKind.CONSUMER, attributes=attributes,
    ) as span:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        # A no-op tracer (API without an SDK) makes no span: pass the call's context on.
        if carrier.get(c.HEADER_TRACEPARENT):
            trace.outgoing = extract(carrier)
        trace.span = span
        yield trace


def setup_from_env(service_name: str) -> Any:
    """Sets up OTLP/HTTP export from the `OTEL_*` variables, as the Rust binaries do: only
    when an OTLP endpoint is set, `OTEL_SDK_DISABLED` is not true, `OTEL_TRACES_EXPORTER` is
    not `none`, the SDK and exporter are installed, and the application has no tracer
    provider of its own. Returns the provider to shut down at exit, or None."""
    env = os.environ
    if not HAVE_OTEL:
        return None
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if "none" in [e.strip() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")]:
        return None
    if not (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return None
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol.strip() != "http/protobuf":
        raise RuntimeError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported by mcpbus_worker's set-up: it exports "
            "OTLP over HTTP (http/protobuf); set up your own tracer provider for another protocol"
        )
    if not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider):
        return None  # the application set one up
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTLP endpoint set but opentelemetry-sdk or its OTLP/HTTP exporter is not installed "
                    "(pip install mcpbus-worker[otel]); not exporting spans")
        return None
    attrs = {} if env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "") \
        else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    otel_trace.set_tracer_provider(provider)
    return provider
