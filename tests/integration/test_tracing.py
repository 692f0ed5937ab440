"""OpenTelemetry: one request's spans, across the outbox, the broker and the consumer, are one trace,
the trace of its correlation id (the intake service in-process, spans kept in memory)."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # the test extra installs it
from opentelemetry.trace import SpanKind

from services.intake.app import SERVICE
from shared import tracing
from shared.auth import Role, mint
from shared.service import create_app
from tests.support import connected, eventually

TOWN = "taihu.zhuizong"


@pytest.fixture
async def traced(settings):
    exporter = InMemorySpanExporter()
    tracing.shutdown()
    assert tracing.configure(settings, "intake", exporter=exporter)
    app = create_app(SERVICE, settings)
    try:
        async with app.router.lifespan_context(app):
            await connected(app)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake",
                                       headers={"authorization": f"Bearer {mint('office', Role.OFFICE, TOWN)}"})
            async with client:
                yield app, client, exporter
    finally:
        tracing.shutdown()


async def _merge(client: httpx.AsyncClient, headers: dict[str, str]) -> dict:
    ids = []
    for title in ("村道硬化", "村道硬化工程"):
        response = await client.post("/proposals", json={"year": 2024, "title": title, "channel": "grid", "location": "追踪村"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    response = await client.post(f"/proposals/{ids[0]}/merge", json={"proposal_ids": ids[1:]}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_one_requests_spans_share_a_trace_across_the_outbox_and_the_broker_hop(traced):
    app, client, exporter = traced
    correlation = uuid4()
    await _merge(client, {"x-correlation-id": str(correlation)})

    def trace() -> list:
        return [s for s in exporter.get_finished_spans() if s.context.trace_id == correlation.int]

    async def consumed():
        return [s for s in trace() if s.kind == SpanKind.CONSUMER]

    await eventually(consumed, what="the consumer's span of intake.proposal.merged")
    spans = {s.kind: s for s in trace()}
    server, outbox = spans[SpanKind.SERVER], spans[SpanKind.INTERNAL]
    publish, consume = spans[SpanKind.PRODUCER], spans[SpanKind.CONSUMER]
    assert server.name == "POST /proposals/{proposal_id}/merge" and server.attributes["http.response.status_code"] == 200
    assert outbox.name == publish.name.replace("publish", "outbox") == "outbox intake.proposal.merged"
    assert consume.name == "consume intake.proposal.merged" and consume.attributes["messaging.destination.name"] == "intake.notices"
    # HTTP → outbox → (another task: the relay) publish → (the broker) consumer, each the parent of the next.
    assert outbox.parent.span_id == server.context.span_id
    assert publish.parent.span_id == outbox.context.span_id
    assert consume.parent.span_id == publish.context.span_id
    event_id = UUID(outbox.attributes["messaging.message.id"])
    assert (await app.state.pool.fetchval("SELECT body->>'correlation_id' FROM outbox WHERE id = $1", event_id)) == str(correlation)


async def test_a_request_without_a_correlation_id_gets_one_that_is_its_trace_and_its_events_correlation(traced):
    app, client, exporter = traced
    await _merge(client, {})
    [server] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER and s.name.endswith("/merge")]
    [outbox] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.INTERNAL and s.context.trace_id == server.context.trace_id]
    stored = await app.state.pool.fetchval("SELECT body->>'correlation_id' FROM outbox WHERE id = $1",
                                           UUID(outbox.attributes["messaging.message.id"]))
    assert UUID(stored).int == server.context.trace_id


def test_tracing_is_off_by_default_and_spans_go_over_otlp_http_to_the_configured_endpoint(settings, monkeypatch):
    """PIAOJUE_OTLP_ENDPOINT: a collector of the test's own (an HTTP server that keeps what it is sent)."""
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    tracing.shutdown()
    assert not tracing.configure(settings, "intake") and not tracing.enabled()  # no endpoint: off
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, self.headers["content-type"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tracing.shutdown()
    try:
        on = settings.model_copy(update={"otlp_endpoint": f"http://127.0.0.1:{server.server_port}"})
        assert tracing.configure(on, "intake")
        correlation = uuid4()
        with tracing.request_span("GET", "/proposals", correlation):
            pass
        tracing.shutdown()  # flushes the batch
        [(path, content_type, body)] = received
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        assert correlation.bytes in body  # the trace id, as the correlation id's 16 bytes
    finally:
        tracing.shutdown()
        server.shutdown()
