"""The outbox relay and the broker link against faults, on the real PostgreSQL and RabbitMQ: an
aggregate's events in order, a broker that never answers holding no transaction, a service that
starts without the broker, pruning by retention. Each test has a schema of its own (the shared
plumbing only), and a broker that misbehaves is a TCP proxy of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from uuid import uuid4

import aio_pika
import pytest
from fastapi import APIRouter
from structlog.testing import capture_logs

from shared.db import create_pool, migrate
from shared.messaging import EVENTS_EXCHANGE, BrokerLink, relay_once, run_relay
from shared.service import Service, create_app
from tests.support import TcpProxy, eventually


@pytest.fixture
async def schema(settings, tmp_path):
    """A schema with the shared plumbing (outbox, inbox, idempotency), dropped afterwards."""
    name = f"relay_{uuid4().hex[:8]}"
    migrate(settings, name, tmp_path)
    pool = await create_pool(settings, name)
    try:
        yield name, pool
    finally:
        await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
        await pool.close()


@pytest.fixture
def proxy(settings):
    amqp = urlsplit(settings.amqp_url)
    proxy = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672)
    try:
        yield proxy
    finally:
        proxy.close()


@contextlib.asynccontextmanager
async def link_to(settings):
    link = BrokerLink(settings)
    task = asyncio.create_task(link.run())
    try:
        await eventually(lambda: _true(link.connected), what="the broker connected")
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await link.stop()


async def write_events(pool, routing_key: str, aggregates: list[str], created_at: datetime | None = None) -> list[str]:
    """Outbox rows as ``UnitOfWork.emit`` writes them, one per aggregate given, in that order."""
    ids = []
    for aggregate in aggregates:
        event_id = uuid4()
        body = {"id": str(event_id), "type": routing_key, "version": 1, "jurisdiction": "taihu.ceshi",
                "correlation_id": str(uuid4()), "producer": "test", "data": {"aggregate": aggregate},
                "occurred_at": datetime.now(UTC).isoformat()}
        await pool.execute("INSERT INTO outbox (id, routing_key, body, aggregate, created_at) VALUES ($1, $2, $3, $4, $5)",
                           event_id, routing_key, body, aggregate, created_at or datetime.now(UTC))
        ids.append(str(event_id))
    return ids


@contextlib.asynccontextmanager
async def listening(settings, routing_key: str):
    """A queue of the test's own bound to the events exchange for ``routing_key``; yields the ids received, in order."""
    connection = await aio_pika.connect(settings.amqp_url)
    received: list[str] = []
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EVENTS_EXCHANGE.name, routing_key=routing_key)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(json.loads(message.body)["id"])
            await message.ack()

        await queue.consume(on_message)
        yield received
    finally:
        await connection.close()


async def test_an_aggregates_later_event_is_never_published_while_an_earlier_one_is_unpublished(settings, schema):
    name, pool = schema
    key = f"test.order.{uuid4().hex[:8]}"
    async with link_to(settings) as link, listening(settings, key) as received:
        await eventually(lambda: _true(link.connected), what="the broker connected")
        a1, a2, b1, a3 = await write_events(pool, key, ["A", "A", "B", "A"])
        # A1 is held by another replica's claim (or a publish that failed and was not released yet).
        await pool.execute("UPDATE outbox SET claimed_until = now() + interval '1 hour' WHERE id = $1", a1)
        while await relay_once(pool, link.broker, settings):
            pass
        await eventually(lambda: _true(received == [b1]), what="B's event published")
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 3  # A2, A3 wait for A1
        # The claim lapses (its replica died): A1, then A2, then A3, one per round.
        await pool.execute("UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE id = $1", a1)
        rounds = 0
        while await relay_once(pool, link.broker, settings):
            rounds += 1
        await eventually(lambda: _true(len(received) == 4), what="every event published")
        assert received == [b1, a1, a2, a3] and rounds == 3


async def test_a_broker_that_accepts_and_never_answers_holds_no_transaction_and_the_relay_backs_off_then_delivers(
        settings, schema, proxy):
    name, pool = schema
    quick = settings.model_copy(update={"amqp_url": proxy.url(settings.amqp_url), "publish_timeout_seconds": 0.5,
                                        "relay_backoff_max_seconds": 2.0, "relay_poll_seconds": 0.1})
    key = f"test.hang.{uuid4().hex[:8]}"
    async with link_to(quick) as link, listening(settings, key) as received:
        await eventually(lambda: _true(link.connected), what="the broker connected through the proxy")
        proxy.hang()  # connections stay open; nothing is forwarded either way, so no confirm ever comes
        ids = await write_events(pool, key, ["A", "B", "C"])
        idle_in_transaction, long_transactions = [], []

        async def retried_twice() -> bool:
            # Sampled while publishes hang: no session idle in a transaction, none open as long as a publish waits.
            idle_in_transaction.append(await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'"))
            long_transactions.append(await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND xact_start < clock_timestamp() - make_interval(secs => $1)", quick.publish_timeout_seconds))
            return await pool.fetchval("SELECT min(attempts) >= 3 FROM outbox WHERE id = ANY($1::uuid[])", ids)

        with capture_logs() as logs:
            relay = asyncio.create_task(run_relay(pool, link, name, quick))
            try:
                await eventually(retried_twice, timeout=30, what="the relay to try three times")
                delays = [e["retry_in"] for e in logs if e["event"] == "outbox relay failed; backing off"]
                assert len(delays) >= 2 and delays[1] > delays[0]  # backing off, not hammering
                assert max(idle_in_transaction) == 0 and max(long_transactions) == 0
                assert not received
                proxy.restore()
                await eventually(lambda: _true(set(ids) <= set(received)), timeout=30, what="delivery once the broker answers")
                await eventually(lambda: pool.fetchval("SELECT bool_and(published_at IS NOT NULL) FROM outbox"),
                                 what="the rows marked published")
            finally:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay


async def test_a_service_starts_and_is_ready_while_the_broker_never_answers_then_connects_when_it_does(settings, schema, proxy):
    name, pool = schema
    service = Service(name, "测试", APIRouter(), migrations=None)
    quick = settings.model_copy(update={"amqp_url": proxy.url(settings.amqp_url), "broker_step_timeout_seconds": 0.5,
                                        "broker_backoff_max_seconds": 1.0})
    proxy.hang()  # the broker's port accepts, and the handshake never completes
    app = create_app(service, quick)
    with capture_logs() as logs:
        async with asyncio.timeout(10), app.router.lifespan_context(app):  # start-up does not wait for the broker
            from httpx import ASGITransport, AsyncClient

            async with AsyncClient(transport=ASGITransport(app), base_url="http://test") as client:
                ready = await client.get("/health/ready")
                assert ready.status_code == 200
                assert ready.json() == {"status": "ok", "checks": {"database": True}, "reported": {"broker": False}}
                await eventually(lambda: _true(any(e["event"] == "broker not reachable; retrying" and "Timeout" in e["error"]
                                                   for e in logs)), what="a connection attempt to give up on its own")
                proxy.restore()
                await eventually(lambda: _true(app.state.link.connected), timeout=30, what="the broker connected")
                assert (await client.get("/health/ready")).json()["reported"] == {"broker": True}
                assert "piaojue_broker_connected 1.0" in (await client.get("/metrics")).text


async def test_published_outbox_rows_inbox_ids_and_idempotency_answers_are_pruned_after_their_retention_by_each_service(
        settings, schema):
    name, pool = schema
    long_ago, recently = datetime.now(UTC) - timedelta(days=60), datetime.now(UTC) - timedelta(hours=1)
    old_published = await write_events(pool, "test.prune", ["A"], long_ago)
    old_unpublished = await write_events(pool, "test.prune", ["B"], long_ago)
    new_published = await write_events(pool, "test.prune", ["C"], recently)
    await pool.execute("UPDATE outbox SET published_at = created_at WHERE id = ANY($1::uuid[])", [*old_published, *new_published])
    await pool.execute("UPDATE outbox SET claimed_until = now() + interval '1 hour' WHERE id = $1", old_unpublished[0])  # stays unpublished
    old_event, new_event = uuid4(), uuid4()
    await pool.execute("INSERT INTO inbox (event_id, type, received_at) VALUES ($1, 't', $2), ($3, 't', $4)",
                       old_event, long_ago, new_event, recently)
    await pool.execute("INSERT INTO idempotency (principal, key, fingerprint, status, body, created_at)"
                       " VALUES ('p', 'old-key-0123456789', 'f', 201, 'null', $1), ('p', 'new-key-0123456789', 'f', 201, 'null', $2)",
                       long_ago, recently)
    # The defaults: published outbox rows 7 days, inbox 45 (longer than dead letters may be replayed), answers 7.
    service = Service(name, "测试", APIRouter(), migrations=None)
    app = create_app(service, settings.model_copy(update={"prune_interval_seconds": 0.2}))
    async with app.router.lifespan_context(app):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM inbox WHERE event_id = $1", old_event),
                         what="the service's housekeeping to prune")
        await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE id = $1", old_published[0]),
                         what="the old published row pruned")
    kept = {str(r[0]) for r in await pool.fetch("SELECT id FROM outbox")}
    assert kept == {*new_published, *old_unpublished}  # an unpublished event is never pruned, however old
    assert {r[0] for r in await pool.fetch("SELECT event_id FROM inbox")} == {new_event}
    assert {r[0] for r in await pool.fetch("SELECT key FROM idempotency")} == {"new-key-0123456789"}


async def _true(value) -> bool:
    return bool(value)
