"""RabbitMQ: the topology, the outbox relay, and the idempotent consumer.

Topology, declared in full by every service at start-up so that no event is ever published to
an exchange whose consumer queues do not exist yet:

  piaojue.events  (topic, durable)      routing key = event type
  piaojue.dead    (direct, durable)     dead letters, routing key = the queue they came from
  <service>.<purpose>                   durable quorum queue per consumer, bound by event type
  <queue>.dead                          its dead-letter queue
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiormq
import asyncpg
import structlog
from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitMessage, RabbitQueue
from faststream.rabbit.schemas.queue import QueueType
from prometheus_client import Counter

from shared import tracing
from shared.contracts.envelope import Envelope, Payload, PoisonMessage, parse
from shared.db import UnitOfWork, notify_channel, unit_of_work
from shared.settings import Settings

log = structlog.get_logger()

EVENTS_EXCHANGE = RabbitExchange("piaojue.events", type=ExchangeType.TOPIC, durable=True)
DEAD_EXCHANGE = RabbitExchange("piaojue.dead", type=ExchangeType.DIRECT, durable=True)

# Every queue of the system and the event types bound to it. One place, so that every service
# declares all of them (and deploy/rabbitmq/definitions.json is generated from it).
QUEUES: dict[str, tuple[str, ...]] = {
    "ballot.slates": ("intake.slate.published",),
    "ballot.projects": ("supervision.project.created",),  # the subjects of satisfaction ratings
    "intake.results": ("ballot.result.certified",),
    # What became of a project, for a proposer's tracking-code lookup (intake shows, never decides).
    "intake.projects": ("supervision.project.created", "supervision.progress.reported", "supervision.inspection.recorded",
                        "supervision.project.completed"),
    # Merges, told to the proposers of the merged proposals (their tracking notices).
    "intake.notices": ("intake.proposal.merged",),
    "supervision.results": ("ballot.result.certified", "ballot.satisfaction.certified"),
    "scoring.supervision": (
        "supervision.project.created",
        "supervision.project.planned",
        "supervision.progress.reported",
        "supervision.inspection.recorded",
        "supervision.rectification.updated",
        "supervision.project.completed",
    ),
    "scoring.ratings": ("ballot.satisfaction.certified",),
    "ballot.credentials": ("identity.credential.revoked",),  # voting credentials no longer good
    "identity.sessions": ("ballot.session.created", "ballot.attendance.recorded"),  # check-in codes, who is present
    # The county assessment system's inbox (县考核): it reads scores from here.
    "county.assessments": ("scoring.assessment.updated",),
}

CONSUMED = Counter("piaojue_events_consumed_total", "Events taken from a queue", ["queue", "outcome"])
PUBLISHED = Counter("piaojue_events_published_total", "Outbox events confirmed by the broker", ["type"])

Handler = Callable[[UnitOfWork, Envelope, Any], Awaitable[None]]


@dataclass
class Consumer:
    """One queue of a service and the handler of each event type bound to it."""

    queue: str
    handlers: dict[str, Handler] = field(default_factory=dict)

    def on(self, payload_type: type[Payload]) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.handlers[payload_type.TYPE] = fn
            return fn

        return register


def queue_arguments(name: str, settings: Settings) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_EXCHANGE.name,
        "x-dead-letter-routing-key": name,
        # Transient failures are retried by redelivery; past the limit the message is dead-lettered.
        "x-delivery-limit": settings.delivery_limit,
        # Dead-letter at least once: a dead letter is never dropped on the way to its queue.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def rabbit_queue(name: str, settings: Settings) -> RabbitQueue:
    return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, arguments=queue_arguments(name, settings))


async def declare_topology(broker: RabbitBroker, settings: Settings) -> None:
    events = await broker.declare_exchange(EVENTS_EXCHANGE)
    dead = await broker.declare_exchange(DEAD_EXCHANGE)
    for name, keys in QUEUES.items():
        queue = await broker.declare_queue(rabbit_queue(name, settings))
        for key in keys:
            await queue.bind(events, routing_key=key)
        dlq = await broker.declare_queue(
            RabbitQueue(f"{name}.dead", queue_type=QueueType.QUORUM, durable=True)
        )
        await dlq.bind(dead, routing_key=name)


def new_broker(settings: Settings) -> RabbitBroker:
    from faststream.rabbit import Channel

    # Publisher confirms are on by default for the channel; prefetch bounds what a consumer holds.
    return RabbitBroker(settings.amqp_url, default_channel=Channel(prefetch_count=settings.prefetch), logger=None)


# ---------------------------------------------------------------- outbox relay


async def publish_envelope(broker: RabbitBroker, body: dict[str, Any]) -> None:
    """Publish one envelope: persistent, confirmed. Raises unless the broker confirms."""
    with tracing.publish_span(body) as trace_headers:  # W3C traceparent when tracing is on
        confirm = await broker.publish(
            json.dumps(body, ensure_ascii=False).encode(),
            exchange=EVENTS_EXCHANGE,
            routing_key=body["type"],
            persist=True,
            message_id=str(body["id"]),
            correlation_id=str(body["correlation_id"]),
            message_type=body["type"],
            content_type="application/json",
            headers={"x-version": body["version"], "x-jurisdiction": body["jurisdiction"], **trace_headers},
        )
    if not isinstance(confirm, aiormq.spec.Basic.Ack):
        raise RuntimeError(f"broker did not confirm {body['type']} {body['id']}: {confirm!r}")


async def relay_once(pool: asyncpg.Pool, broker: RabbitBroker, batch: int = 200) -> int:
    """Publish what the outbox holds, oldest first; mark it published only after the confirms.
    A crash in between republishes (consumers are idempotent); nothing is lost. Replicas skip
    each other's locked rows."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT seq, body FROM outbox WHERE published_at IS NULL"
            " ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
            batch,
        )
        for row in rows:
            await publish_envelope(broker, row["body"])
            PUBLISHED.labels(row["body"]["type"]).inc()
        if rows:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
            )
    return len(rows)


async def run_relay(pool: asyncpg.Pool, broker: RabbitBroker, schema: str, settings: Settings) -> None:
    """Relay forever: woken by NOTIFY from committing transactions, polling as a fallback."""
    wake = asyncio.Event()
    listener = await asyncpg.connect(settings.database_url)
    await listener.add_listener(notify_channel(schema), lambda *_: wake.set())
    try:
        while True:
            wake.clear()
            try:
                if await relay_once(pool, broker) > 0:
                    continue
            except Exception:
                log.exception("outbox relay failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), settings.relay_poll_seconds)
    finally:
        await listener.close()


# ---------------------------------------------------------------- idempotent consumer


async def _raw(message: Any) -> bytes:
    # We parse the body ourselves so that bad JSON is a dead letter, not a crash in the decoder.
    return message.body


def subscribe(broker: RabbitBroker, consumer: Consumer, pool: asyncpg.Pool, service: str, settings: Settings) -> None:
    queue = consumer.queue

    @broker.subscriber(RabbitQueue(queue, declare=False), ack_policy=AckPolicy.MANUAL, decoder=_raw, no_reply=True)
    async def handle(body: bytes, message: RabbitMessage) -> None:
        await handle_delivery(body, message, consumer, pool, service, broker, settings.delivery_limit)


async def handle_delivery(body: bytes, message: RabbitMessage, consumer: Consumer, pool: asyncpg.Pool, service: str,
                          broker: RabbitBroker, delivery_limit: int) -> None:
    queue = consumer.queue
    with structlog.contextvars.bound_contextvars(queue=queue, message_id=message.message_id):
        try:
            envelope, payload = parse(body)
            handler = consumer.handlers.get(envelope.type)
            if handler is None:
                raise PoisonMessage(f"no handler for {envelope.type} on {queue}")
        except PoisonMessage as exc:
            await _dead_letter(broker, message, queue, str(exc))
            return
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.id), event_type=envelope.type, correlation_id=str(envelope.correlation_id)
        ):
            try:
                with tracing.consume_span(envelope, message.headers, queue):  # noqa: SIM117 (a sync and an async manager)
                    async with unit_of_work(pool, service, envelope.correlation_id, envelope.id) as uow:
                        first = await uow.conn.fetchval(
                            "INSERT INTO inbox (event_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                            envelope.id, envelope.type,
                        )
                        if first:
                            await handler(uow, envelope, payload)
            except PoisonMessage as exc:  # the handler found the content unusable
                await _dead_letter(broker, message, queue, str(exc))
                return
            except Exception as exc:
                deliveries = int((message.headers or {}).get("x-delivery-count", 0))
                if deliveries >= delivery_limit:  # the last delivery the queue allows: dead-letter it with the error
                    log.exception("event handling failed on its last delivery")
                    await _dead_letter(broker, message, queue, f"failed {deliveries + 1} times, last: {type(exc).__name__}: {exc}")
                    return
                log.exception("event handling failed; redelivering", deliveries=deliveries)
                CONSUMED.labels(queue, "retried").inc()
                # Back off before handing it back; the queue's delivery limit bounds the retries.
                await asyncio.sleep(min(0.2 * 2**deliveries, 5.0))
                await message.nack(requeue=True)
                return
            await message.ack()  # only after commit
            outcome = "handled" if first else "duplicate"
            CONSUMED.labels(queue, outcome).inc()
            log.info("event " + outcome)


REASON, DEAD_AT, DEAD_FROM = "x-piaojue-reason", "x-piaojue-dead-at", "x-piaojue-queue"


async def _dead_letter(broker: RabbitBroker, message: RabbitMessage, queue: str, reason: str) -> None:
    """Move the message to ``<queue>.dead`` with the reason in its headers (``piaojue status``,
    ``piaojue dead-letters`` show it): published there, confirmed, then acknowledged here. A crash in
    between leaves a copy in both places; a replay of both applies once (the inbox). If the dead
    letter cannot be published, the queue's own dead-lettering (reject) still moves it, without the reason."""
    from datetime import UTC, datetime

    log.error("event dead-lettered", reason=reason)
    CONSUMED.labels(queue, "dead_lettered").inc()
    raw = message.raw_message
    headers = {k: v for k, v in (raw.headers or {}).items() if not k.startswith("x-death") and k != "x-delivery-count"}
    try:
        confirm = await broker.publish(
            raw.body, exchange=DEAD_EXCHANGE, routing_key=queue, persist=True, message_id=raw.message_id,
            correlation_id=raw.correlation_id, message_type=raw.type, content_type=raw.content_type,
            headers={**headers, REASON: reason[:1000], DEAD_FROM: queue, DEAD_AT: datetime.now(UTC).isoformat(timespec="seconds")},
        )
        if not isinstance(confirm, aiormq.spec.Basic.Ack):
            raise RuntimeError(f"dead letter not confirmed: {confirm!r}")
    except Exception:
        log.exception("could not publish the dead letter with its reason; rejecting it to the queue's dead-letter exchange")
        await message.reject(requeue=False)
        return
    await message.ack()


def definitions(settings: Settings, vhost: str = "/") -> dict[str, Any]:
    """The topology as RabbitMQ definitions (deploy/rabbitmq/definitions.json is this output)."""
    exchanges = [
        {"name": x.name, "vhost": vhost, "type": x.type.value, "durable": True, "auto_delete": False, "internal": False,
         "arguments": {}}
        for x in (EVENTS_EXCHANGE, DEAD_EXCHANGE)
    ]
    queues, bindings = [], []
    for name, keys in QUEUES.items():
        queues.append({"name": name, "vhost": vhost, "durable": True, "auto_delete": False,
                       "arguments": queue_arguments(name, settings)})
        queues.append({"name": f"{name}.dead", "vhost": vhost, "durable": True, "auto_delete": False,
                       "arguments": {"x-queue-type": "quorum"}})
        bindings += [{"source": EVENTS_EXCHANGE.name, "vhost": vhost, "destination": name, "destination_type": "queue",
                      "routing_key": key, "arguments": {}} for key in keys]
        bindings.append({"source": DEAD_EXCHANGE.name, "vhost": vhost, "destination": f"{name}.dead",
                         "destination_type": "queue", "routing_key": name, "arguments": {}})
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}
