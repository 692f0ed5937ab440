"""The reliability rules, on the real RabbitMQ and PostgreSQL: outbox, idempotent consumer,
dead letters, bounded retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import aio_pika
import pytest
from faststream.rabbit import RabbitQueue
from faststream.rabbit.schemas.queue import QueueType
from structlog.testing import capture_logs

from services.supervision import SERVICE as SUPERVISION
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.db import create_pool, unit_of_work
from shared.messaging import (
    CONSUMED,
    BrokerLink,
    Consumer,
    declare_topology,
    new_broker,
    publish_envelope,
    queue_arguments,
    run_relay,
    subscribe,
)
from tests.support import certified_result, depth, eventually, running


def slate_event() -> SlatePublished:
    return SlatePublished(slate_id=uuid4(), title="候选清单", year=2024, seats=1,
                          candidates=[SlateCandidate(candidate_id=uuid4(), title="甲"),
                                      SlateCandidate(candidate_id=uuid4(), title="乙")])


async def test_rolled_back_event_is_never_published_and_committed_one_is_published_after_relay_downtime(settings, amqp):
    pool = await create_pool(settings, "intake")
    broker = new_broker(settings)
    await broker.connect()
    await declare_topology(broker, settings)
    queue = await amqp.declare_queue("ballot.slates", passive=True)
    await queue.purge()
    try:
        rolled_back, committed = slate_event(), slate_event()
        with pytest.raises(RuntimeError):
            async with unit_of_work(pool, "intake") as uow:
                await uow.emit(rolled_back, "taihu.fuyu")
                raise RuntimeError("the request fails after the event was written")
        async with unit_of_work(pool, "intake") as uow:
            envelope = await uow.emit(committed, "taihu.fuyu")

        # The relay is down: the committed event waits in the outbox, nothing is on the queue.
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL AND id = $1", envelope.id) == 1
        assert await depth(amqp, "ballot.slates") == 0

        link = BrokerLink(settings)
        await link.run()
        relay = asyncio.create_task(run_relay(pool, link, "intake", settings))
        try:
            await eventually(lambda: pool.fetchval("SELECT bool_and(published_at IS NOT NULL) FROM outbox"),
                             what="the relay to drain the outbox")
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await link.stop()
        message = await queue.get(no_ack=True)
        assert message.message_id == str(envelope.id)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert json.loads(message.body)["data"]["slate_id"] == str(committed.slate_id)
        assert await depth(amqp, "ballot.slates") == 0  # the rolled-back one never went out
    finally:
        await broker.stop()
        await pool.close()


async def _projects(pool, vote_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM projects WHERE vote_id = $1", vote_id)


async def test_same_event_delivered_twice_changes_nothing_the_second_time(settings):
    envelope = certified_result()
    body = envelope.model_dump(mode="json")
    async with running(SUPERVISION, settings) as app:
        before = CONSUMED.labels("supervision.results", "duplicate")._value.get()
        await publish_envelope(app.state.broker, body)
        await publish_envelope(app.state.broker, body)
        await eventually(lambda: _async(CONSUMED.labels("supervision.results", "duplicate")._value.get() > before),
                         what="the duplicate to be acknowledged")
        pool = app.state.pool
        vote_id = envelope.data["vote_id"]
        assert await _projects(pool, vote_id) == 7
        created = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE routing_key = 'supervision.project.created' AND body->'data'->>'vote_id' = $1",
            str(vote_id),
        )
        assert created == 7


async def test_a_result_resent_under_a_new_event_id_creates_no_second_project(settings):
    first = certified_result()
    again = first.model_copy(update={"id": uuid4()})
    async with running(SUPERVISION, settings) as app:
        for envelope in (first, again):
            await publish_envelope(app.state.broker, envelope.model_dump(mode="json"))
        pool = app.state.pool
        await eventually(lambda: pool.fetchval("SELECT count(*) = 2 FROM inbox WHERE event_id = ANY($1::uuid[])",
                                               [first.id, again.id]), what="both deliveries handled")
        assert await _projects(pool, first.data["vote_id"]) == 7


async def _async(value):
    return value


MALFORMED = {
    "bad JSON": (b"{not json", "bad envelope"),
    "unknown type": (json.dumps({**certified_result().model_dump(mode="json"), "type": "ballot.result.shredded"}).encode(),
                     "unknown event type/version"),
    "unknown version": (json.dumps({**certified_result().model_dump(mode="json"), "version": 99}).encode(),
                        "unknown event type/version"),
    "bad payload": (json.dumps({**certified_result().model_dump(mode="json"), "data": {"vote_id": "x"}}).encode(),
                    "bad payload"),
}


async def test_malformed_messages_are_dead_lettered_with_the_reason_and_the_next_good_one_is_handled(settings, amqp):
    dead = await amqp.declare_queue("supervision.results.dead", passive=True)
    await dead.purge()
    good = certified_result()
    async with running(SUPERVISION, settings) as app:
        with capture_logs() as logs:
            for body, _ in MALFORMED.values():
                await amqp.default_exchange.publish(aio_pika.Message(body, message_id=str(uuid4())),
                                                    routing_key="supervision.results")
            await publish_envelope(app.state.broker, good.model_dump(mode="json"))
            await eventually(lambda: _projects(app.state.pool, good.data["vote_id"]), what="the good message handled")
            await eventually(lambda: _depth_is(amqp, "supervision.results.dead", len(MALFORMED)), what="dead letters")
        reasons = [e["reason"] for e in logs if e["event"] == "event dead-lettered"]
        for name, (_, reason) in MALFORMED.items():
            assert any(r.startswith(reason) for r in reasons), f"{name}: no log saying {reason!r} in {reasons}"
        assert await _projects(app.state.pool, good.data["vote_id"]) == 7


async def _depth_is(amqp, queue: str, n: int) -> bool:
    return await depth(amqp, queue) == n


async def test_a_handler_that_keeps_failing_is_retried_a_bounded_number_of_times_then_dead_lettered(settings, amqp):
    """Transient failures are redelivered; past the queue's delivery limit the message is dead-lettered."""
    name = f"test.flaky.{uuid4().hex[:6]}"
    limited = settings.model_copy(update={"delivery_limit": 2})
    broker = new_broker(limited)
    await broker.connect()
    await declare_topology(broker, settings)
    await broker.declare_queue(RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True,
                                                   arguments=queue_arguments(name, limited)))
    dead = await broker.declare_queue(RabbitQueue(f"{name}.dead", queue_type=QueueType.QUORUM, durable=True))
    await dead.bind("piaojue.dead", routing_key=name)
    attempts = []
    flaky = Consumer(name)

    @flaky.on(SlatePublished)
    async def always_fails(uow, envelope, payload):
        attempts.append(envelope.id)
        raise ConnectionError("the database went away")

    pool = await create_pool(settings, "ballot")
    subscribe(broker, flaky, pool, "ballot", limited)
    await broker.start()
    try:
        event = slate_event()
        from shared.contracts.envelope import Envelope

        envelope = Envelope(type=event.TYPE, version=event.VERSION, jurisdiction="taihu.fuyu", correlation_id=uuid4(),
                            producer="intake", data=event.model_dump(mode="json"))
        await amqp.default_exchange.publish(aio_pika.Message(envelope.model_dump_json().encode()), routing_key=name)
        await eventually(lambda: _depth_is(amqp, f"{name}.dead", 1), timeout=30, what="the message to be dead-lettered")
        assert 2 <= len(attempts) <= 3  # the first delivery plus the bounded redeliveries
        assert await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", envelope.id) == 0
    finally:
        await broker.stop()
        await amqp.queue_delete(name)
        await amqp.queue_delete(f"{name}.dead")
        await pool.close()


async def test_an_event_older_than_the_inbox_keeps_ids_is_dead_lettered_with_the_reason_not_applied(settings, amqp):
    """Its id may have left the inbox (pruned after PIAOJUE_INBOX_RETENTION_DAYS): applying it could apply it twice."""
    dead = await amqp.declare_queue("supervision.results.dead", passive=True)
    await dead.purge()
    old = certified_result().model_copy(update={"occurred_at": datetime.now(UTC) - timedelta(days=settings.inbox_retention_days)})
    async with running(SUPERVISION, settings) as app:
        with capture_logs() as logs:
            await publish_envelope(app.state.broker, old.model_dump(mode="json"))
            await eventually(lambda: _depth_is(amqp, "supervision.results.dead", 1), what="the old event dead-lettered")
        assert any(e["event"] == "event dead-lettered" and e["reason"].startswith("older than the inbox keeps event ids")
                   for e in logs)
        assert await _projects(app.state.pool, old.data["vote_id"]) == 0
