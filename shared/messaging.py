"""RabbitMQ: the topology, the outbox relay, and the idempotent consumer.

Topology, declared in full by every service when it connects (before its relay publishes) so that no event is ever published to
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
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiormq
import asyncpg
import structlog
from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitMessage, RabbitQueue
from faststream.rabbit.schemas.queue import QueueType
from prometheus_client import Counter, Gauge

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
    # timeout bounds each connection attempt (TCP and the AMQP handshake: a broker that accepts and
    # never answers too); once connected, a lost connection is retried every reconnect_interval.
    return RabbitBroker(settings.amqp_url, default_channel=Channel(prefetch_count=settings.prefetch), logger=None,
                        timeout=settings.broker_step_timeout_seconds, reconnect_interval=settings.broker_reconnect_seconds)


# ---------------------------------------------------------------- the broker connection


BROKER_CONNECTED = Gauge("piaojue_broker_connected",
                         "1 while this process is connected to the broker with its consumers subscribed, else 0")


class Backoff:
    """Exponential back-off with a cap and a little jitter: 0.2 s, 0.4 s, 0.8 s … ``cap``."""

    def __init__(self, cap: float, first: float = 0.2) -> None:
        self.cap, self.first, self.failures = cap, first, 0

    def next(self) -> float:
        delay = min(self.first * 2 ** self.failures, self.cap)
        self.failures += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.failures = 0


class BrokerLink:
    """The process's broker connection, made and kept in the background: the service serves HTTP
    without it (events wait in the outbox), its consumers start once it is up, and aio-pika's robust
    connection reconnects them after a cut. Each step of the first connection (connect, declare the
    topology, subscribe) is bounded by ``broker_step_timeout_seconds`` and retried with back-off, so
    start-up never hangs on the broker."""

    def __init__(self, settings: Settings, consumers: list[Consumer] = (), pool: asyncpg.Pool | None = None,
                 service: str = "") -> None:
        self.settings = settings
        self.broker = new_broker(settings)
        for consumer in consumers:
            subscribe(self.broker, consumer, pool, service, settings)
        self.up = asyncio.Event()  # set once the first connection is made and the consumers subscribed
        self._connection: Any = None

    @property
    def connected(self) -> bool:
        """Connected right now (the robust connection clears this while it reconnects)."""
        connection = self._connection
        return self.up.is_set() and connection is not None and connection.connected.is_set() and not connection.is_closed

    async def run(self) -> None:
        """Connect, declare, subscribe; retry until it works. Returns once connected: from then on the
        robust connection restores the channel, the topology and the consumers by itself."""
        step, backoff = self.settings.broker_step_timeout_seconds, Backoff(self.settings.broker_backoff_max_seconds)
        while True:
            try:
                self._connection = await asyncio.wait_for(self.broker.connect(), step + 1)
                await asyncio.wait_for(declare_topology(self.broker, self.settings), step)
                await asyncio.wait_for(self.broker.start(), step)
            except Exception as exc:  # noqa: BLE001 (whatever it was, the answer is to try again later)
                delay = backoff.next()
                log.warning("broker not reachable; retrying", error=f"{type(exc).__name__}: {exc}"[:300], retry_in=round(delay, 2))
                await self._reset(step)
                await asyncio.sleep(delay)
                continue
            self.up.set()
            log.info("broker connected; consumers subscribed")
            return

    async def _reset(self, step: float) -> None:
        self._connection = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.broker.stop(), step)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the connection (now, or after a reconnect)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.connected:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.1, left))
        return True

    async def stop(self) -> None:
        self.up.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.broker.stop(), self.settings.broker_step_timeout_seconds)
        self._connection = None


# ---------------------------------------------------------------- outbox relay


async def publish_envelope(broker: RabbitBroker, body: dict[str, Any], timeout: float | None = None) -> None:
    """Publish one envelope: persistent, confirmed. Raises unless the broker confirms (within ``timeout`` s)."""
    publishing = broker.publish(
        json.dumps(body, ensure_ascii=False).encode(),
        exchange=EVENTS_EXCHANGE,
        routing_key=body["type"],
        persist=True,
        message_id=str(body["id"]),
        correlation_id=str(body["correlation_id"]),
        message_type=body["type"],
        content_type="application/json",
        headers={"x-version": body["version"], "x-jurisdiction": body["jurisdiction"]},
        timeout=timeout,
    )
    confirm = await (asyncio.wait_for(publishing, timeout) if timeout else publishing)
    if not isinstance(confirm, aiormq.spec.Basic.Ack):
        raise RuntimeError(f"broker did not confirm {body['type']} {body['id']}: {confirm!r}")


# Claimed: unpublished, no live lease, and no earlier unpublished event of the same aggregate (so an
# aggregate's events go out in order, one per batch; other replicas skip rows being claimed).
CLAIM = """
UPDATE outbox SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
WHERE seq IN (
    SELECT o.seq FROM outbox o
    WHERE o.published_at IS NULL AND (o.claimed_until IS NULL OR o.claimed_until < now())
      AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.published_at IS NULL AND e.aggregate = o.aggregate AND e.seq < o.seq)
    ORDER BY o.seq LIMIT $1
    FOR UPDATE SKIP LOCKED)
RETURNING seq, body
"""


class RelayFailed(Exception):
    """Some claimed events were not confirmed; they are released for the next round."""


async def relay_once(pool: asyncpg.Pool, broker: RabbitBroker, settings: Settings) -> int:
    """One round: claim a batch (one short statement), publish it outside any transaction, each
    within ``publish_timeout_seconds``, then mark what was confirmed (another short statement) and
    release the rest. A crash in between republishes after the lease (consumers are idempotent);
    nothing is lost. Returns how many were published; raises RelayFailed if any was not."""
    rows = await pool.fetch(CLAIM, settings.relay_batch, settings.relay_lease_seconds)
    if not rows:
        return 0
    rows = sorted(rows, key=lambda r: r["seq"])
    outcomes = await asyncio.gather(
        *(publish_envelope(broker, r["body"], settings.publish_timeout_seconds) for r in rows), return_exceptions=True)
    done = [r["seq"] for r, o in zip(rows, outcomes, strict=True) if o is None]
    failed = [r["seq"] for r, o in zip(rows, outcomes, strict=True) if o is not None]
    if done:
        await pool.execute("UPDATE outbox SET published_at = now(), claimed_until = NULL WHERE seq = ANY($1::bigint[])", done)
        for r, o in zip(rows, outcomes, strict=True):
            if o is None:
                PUBLISHED.labels(r["body"]["type"]).inc()
    if failed:
        await pool.execute("UPDATE outbox SET claimed_until = NULL WHERE seq = ANY($1::bigint[]) AND published_at IS NULL", failed)
        first = next(o for o in outcomes if o is not None)
        raise RelayFailed(f"{len(failed)} of {len(rows)} not confirmed: {type(first).__name__}: {first}"[:300])
    return len(done)


async def run_relay(pool: asyncpg.Pool, link: BrokerLink, schema: str, settings: Settings) -> None:
    """Relay forever: woken by NOTIFY from committing transactions, polling as a fallback; while the
    broker or the database fails, exponential back-off up to ``relay_backoff_max_seconds``."""
    wake, backoff, listener = asyncio.Event(), Backoff(settings.relay_backoff_max_seconds), None
    try:
        while True:
            wake.clear()
            try:
                if listener is None or listener.is_closed():
                    listener = await _listen(settings, schema, wake.set)
                if not link.connected:  # quietly: the link logs the outage; events wait in the outbox
                    await link.wait_connected(settings.relay_backoff_max_seconds)
                    continue
                if await relay_once(pool, link.broker, settings) > 0:
                    backoff.reset()
                    continue
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 (the broker or the database; retried with back-off)
                delay = backoff.next()
                log.warning("outbox relay failed; backing off", error=f"{type(exc).__name__}: {exc}"[:300],
                            retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), settings.relay_poll_seconds)
    finally:
        if listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)


async def _listen(settings: Settings, schema: str, wake: Callable[[], None]) -> asyncpg.Connection:
    listener = await asyncpg.connect(settings.database_url, timeout=settings.db_connect_timeout_seconds)
    await listener.add_listener(notify_channel(schema), lambda *_: wake())
    return listener


# ---------------------------------------------------------------- idempotent consumer


async def _raw(message: Any) -> bytes:
    # We parse the body ourselves so that bad JSON is a dead letter, not a crash in the decoder.
    return message.body


def subscribe(broker: RabbitBroker, consumer: Consumer, pool: asyncpg.Pool, service: str, settings: Settings) -> None:
    queue = consumer.queue

    @broker.subscriber(RabbitQueue(queue, declare=False), ack_policy=AckPolicy.MANUAL, decoder=_raw, no_reply=True)
    async def handle(body: bytes, message: RabbitMessage) -> None:
        await handle_delivery(body, message, consumer, pool, service, dedup_window(settings))


def dedup_window(settings: Settings) -> timedelta:
    """How old an event may be and still be recognised as a copy of one already applied: the inbox
    keeps ids ``inbox_retention_days`` after the first copy arrived, which was after the event
    occurred (an hour less, for the producer's clock)."""
    return timedelta(days=settings.inbox_retention_days) - timedelta(hours=1)


async def handle_delivery(body: bytes, message: RabbitMessage, consumer: Consumer, pool: asyncpg.Pool, service: str,
                          max_age: timedelta | None = None) -> None:
    queue = consumer.queue
    with structlog.contextvars.bound_contextvars(queue=queue, message_id=message.message_id):
        try:
            envelope, payload = parse(body)
            handler = consumer.handlers.get(envelope.type)
            if handler is None:
                raise PoisonMessage(f"no handler for {envelope.type} on {queue}")
            if max_age is not None and envelope.occurred_at < datetime.now(UTC) - max_age:
                # Its id may have been pruned from the inbox: applying it could apply it twice.
                raise PoisonMessage(f"older than the inbox keeps event ids ({max_age.days} days): {envelope.occurred_at:%Y-%m-%d}")
        except PoisonMessage as exc:
            await _dead_letter(message, queue, str(exc))
            return
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.id), event_type=envelope.type, correlation_id=str(envelope.correlation_id)
        ):
            try:
                async with unit_of_work(pool, service, envelope.correlation_id, envelope.id) as uow:
                    first = await uow.conn.fetchval(
                        "INSERT INTO inbox (event_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                        envelope.id, envelope.type,
                    )
                    if first:
                        await handler(uow, envelope, payload)
            except PoisonMessage as exc:  # the handler found the content unusable
                await _dead_letter(message, queue, str(exc))
                return
            except Exception:
                deliveries = int((message.headers or {}).get("x-delivery-count", 0))
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


async def _dead_letter(message: RabbitMessage, queue: str, reason: str) -> None:
    log.error("event dead-lettered", reason=reason)
    CONSUMED.labels(queue, "dead_lettered").inc()
    await message.reject(requeue=False)


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
