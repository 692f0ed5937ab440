"""OpenTelemetry traces across HTTP → outbox → broker → consumer, one trace per correlation id.

Off by default. On when an OTLP endpoint is configured (``PIAOJUE_OTLP_ENDPOINT``, or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and the optional packages
are installed (``pip install 'piaojue[otel]'``); spans go out over OTLP/HTTP in batches.

The correlation id (a UUID, 128 bits) *is* the trace id, so every span of one request and of
the events it causes, in every service, is in one trace without storing anything more:

- the HTTP request's span (SERVER) starts the trace: its id is the request's ``X-Correlation-Id``
  (or a new one, which the request's unit of work then uses as its correlation id);
- writing an event to the outbox is a span whose span id is derived from the event id, so
- the relay's publish span (PRODUCER), in another task and maybe another replica, names that
  span as its parent from the envelope alone, and sends W3C ``traceparent`` in the AMQP headers;
- the consumer's span (CONSUMER) continues from ``traceparent`` (or, without it, from the outbox
  span), and the events its handler emits carry the same correlation id: the same trace.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping
from typing import Any
from uuid import UUID

import structlog

log = structlog.get_logger()

_tracer: Any = None  # an opentelemetry Tracer once configured; None: tracing is off
_provider: Any = None
_trace_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("piaojue_trace_id", default=None)
_span_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("piaojue_span_id", default=None)
_MASK64 = (1 << 64) - 1


def endpoint(settings: Any) -> str:
    return (getattr(settings, "otlp_endpoint", "") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "")


def enabled() -> bool:
    return _tracer is not None


def configure(settings: Any, service: str, exporter: Any = None) -> bool:
    """Turn tracing on for this process (once): with ``exporter`` (tests: an in-memory one), or over
    OTLP when an endpoint is configured. Returns whether tracing is on."""
    global _tracer, _provider
    if _tracer is not None:
        return True
    if exporter is None and (not endpoint(settings) or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"):
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    except ImportError:
        log.warning("an OTLP endpoint is set but OpenTelemetry is not installed: pip install 'piaojue[otel]'; no traces")
        return False

    class Ids(RandomIdGenerator):
        """Random ids, except where a span must have a known id: the trace's (the correlation id)
        and an outbox span's (from the event id)."""

        def generate_trace_id(self) -> int:
            return _trace_id.get() or super().generate_trace_id()

        def generate_span_id(self) -> int:
            return _span_id.get() or super().generate_span_id()

    provider = TracerProvider(resource=Resource.create({"service.name": f"piaojue-{service}"}), id_generator=Ids())
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        given = getattr(settings, "otlp_endpoint", "")
        url = (given.rstrip("/") + ("" if given.rstrip("/").endswith("/v1/traces") else "/v1/traces")) if given else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url) if url else OTLPSpanExporter()))
    _provider, _tracer = provider, provider.get_tracer("piaojue")
    log.info("tracing on", endpoint=endpoint(settings) or "in-process exporter")
    return True


def shutdown() -> None:
    """Flush and turn tracing off (a process's end; tests)."""
    global _tracer, _provider
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.shutdown()
    _tracer = _provider = None


def trace_id_of(correlation_id: UUID | str) -> int:
    return UUID(str(correlation_id)).int or 1


def outbox_span_id(event_id: UUID | str) -> int:
    return (UUID(str(event_id)).int & _MASK64) or 1


@contextlib.contextmanager
def _ids(trace_id: int | None = None, span_id: int | None = None) -> Iterator[None]:
    t, s = _trace_id.set(trace_id), _span_id.set(span_id)
    try:
        yield
    finally:
        _trace_id.reset(t)
        _span_id.reset(s)


def current_correlation() -> UUID | None:
    """The correlation id of the trace being recorded here, if any (a unit of work uses it)."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return UUID(int=context.trace_id) if context.is_valid else None


def _remote_parent(correlation_id: Any, event_id: Any) -> Any:
    from opentelemetry import trace

    parent = trace.SpanContext(trace_id=trace_id_of(correlation_id), span_id=outbox_span_id(event_id), is_remote=True,
                               trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


@contextlib.contextmanager
def request_span(method: str, path: str, correlation_id: UUID) -> Iterator[Any]:
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    with _ids(trace_id_of(correlation_id)), _tracer.start_as_current_span(
            f"{method} {path}", context=otel_context.Context(), kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "piaojue.correlation_id": str(correlation_id)}) as span:
        yield span


def outbox_span(envelope: Any) -> contextlib.AbstractContextManager[Any]:
    """Writing an event to the outbox: a child of the current span, its span id from the event id."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _outbox_span(envelope)


@contextlib.contextmanager
def _outbox_span(envelope: Any) -> Iterator[Any]:
    from opentelemetry import trace

    current = trace.get_current_span().get_span_context()
    same_trace = current.is_valid and current.trace_id == trace_id_of(envelope.correlation_id)
    context = None if same_trace else _remote_root()
    with _ids(trace_id_of(envelope.correlation_id), outbox_span_id(envelope.id)), _tracer.start_as_current_span(
            f"outbox {envelope.type}", context=context, kind=trace.SpanKind.INTERNAL,
            attributes={"messaging.message.id": str(envelope.id), "piaojue.event_type": envelope.type,
                        "piaojue.correlation_id": str(envelope.correlation_id)}) as span:
        yield span


def _remote_root() -> Any:
    from opentelemetry import context as otel_context

    return otel_context.Context()  # no parent: a span of its own trace (the correlation id's)


@contextlib.contextmanager
def publish_span(body: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """The relay publishing an outbox row: yields the AMQP headers that carry the trace on."""
    if _tracer is None:
        yield {}
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    with _tracer.start_as_current_span(
            f"publish {body['type']}", context=_remote_parent(body["correlation_id"], body["id"]), kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "piaojue.events",
                        "messaging.rabbitmq.destination.routing_key": body["type"], "messaging.message.id": str(body["id"])}):
        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers)
        yield headers


def consume_span(envelope: Any, headers: Mapping[str, Any] | None, queue: str) -> contextlib.AbstractContextManager[Any]:
    if _tracer is None:
        return contextlib.nullcontext()
    return _consume_span(envelope, headers, queue)


@contextlib.contextmanager
def _consume_span(envelope: Any, headers: Mapping[str, Any] | None, queue: str) -> Iterator[Any]:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (headers or {}).items() if k == "traceparent"}
    context = TraceContextTextMapPropagator().extract(carrier) if carrier else None
    parent = trace.get_current_span(context).get_span_context() if context is not None else None
    if parent is None or not parent.is_valid or parent.trace_id != trace_id_of(envelope.correlation_id):
        context = _remote_parent(envelope.correlation_id, envelope.id)  # no traceparent: from the outbox span
    with _tracer.start_as_current_span(
            f"consume {envelope.type}", context=context, kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": queue,
                        "messaging.message.id": str(envelope.id), "piaojue.event_type": envelope.type}) as span:
        yield span


class TracingMiddleware:
    """A SERVER span per HTTP request, in the trace of its correlation id (``X-Correlation-Id``, or
    a new one the request's unit of work then uses). A no-op while tracing is off."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if _tracer is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from uuid import uuid4

        given = next((v for k, v in scope["headers"] if k == b"x-correlation-id"), b"").decode("latin-1")
        try:
            correlation = UUID(given) if given else uuid4()
        except ValueError:
            correlation = uuid4()  # the route refuses the header itself (422)
        scope.setdefault("state", {})["correlation_id"] = correlation
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with request_span(scope["method"], scope["path"], correlation) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR))
