"""What an operator looks at: outbox lag (PostgreSQL), queue depths, consumers and dead letters
(RabbitMQ, over AMQP: the management plugin is not needed). Used by ``piaojue status``,
``piaojue dead-letters`` and each service's ``/metrics``."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import asyncpg
from prometheus_client import Gauge

from shared.messaging import DEAD_AT, DEAD_FROM, QUEUES, REASON

REPLAYED = "x-piaojue-replayed"


@dataclass
class OutboxLag:
    service: str
    unpublished: int
    oldest_seconds: float | None  # age of the oldest unpublished event


async def outbox_lag(conn: asyncpg.Connection, schema: str) -> OutboxLag:
    row = await conn.fetchrow(
        f'SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age FROM "{schema}".outbox WHERE published_at IS NULL')
    return OutboxLag(schema, row["n"], float(row["age"]) if row["age"] is not None else None)


@dataclass
class DeadLetter:
    id: str | None
    type: str | None
    correlation_id: str | None
    reason: str
    dead_at: str | None
    replayed: int
    body: str

    @classmethod
    def of(cls, message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        reason, at = headers.get(REASON), headers.get(DEAD_AT)
        if reason is None:  # dead-lettered by the broker (a reject, the delivery limit): its x-death entry
            deaths = headers.get("x-death") or [{}]
            reason = f"{deaths[0].get('reason', 'unknown')} (by the broker; no reason recorded)"
            at = at or (deaths[0].get("time").isoformat() if isinstance(deaths[0].get("time"), datetime) else None)
        return cls(message.message_id, message.type, message.correlation_id, _text(reason), _text(at) if at else None,
                   int(headers.get(REPLAYED, 0)), message.body[:2000].decode("utf-8", "replace"))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class QueueState:
    queue: str
    ready: int | None  # None: the queue does not exist
    consumers: int | None
    dead: int | None
    last_dead: DeadLetter | None = None


async def _declared(connection: aio_pika.abc.AbstractConnection, name: str) -> tuple[int, int] | None:
    """Messages ready and consumers of a queue, by passive declare (None: no such queue)."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return result.message_count, result.consumer_count
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def read_dead(connection: aio_pika.abc.AbstractConnection, queue: str, limit: int = 1000) -> list[DeadLetter]:
    """The dead letters of ``queue`` (oldest first, at most ``limit``), left where they are: each is
    taken unacknowledged and all are returned to the queue when the channel closes."""
    channel = await connection.channel()
    try:
        dead = await channel.declare_queue(f"{queue}.dead", passive=True)
        found = []
        while len(found) < limit:
            message = await dead.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            found.append(DeadLetter.of(message))
        return found
    except aiormq.exceptions.ChannelNotFoundEntity:
        return []
    finally:
        with contextlib.suppress(Exception):
            await channel.close()  # the unacknowledged dead letters go back to their queue


async def queue_states(connection: aio_pika.abc.AbstractConnection, queues: list[str] | None = None,
                       last_reason: bool = True) -> list[QueueState]:
    states = []
    for name in queues or list(QUEUES):
        main, dead = await _declared(connection, name), await _declared(connection, f"{name}.dead")
        state = QueueState(name, main and main[0], main and main[1], dead and dead[0])
        if last_reason and state.dead:
            letters = await read_dead(connection, name)
            state.last_dead = letters[-1] if letters else None
        states.append(state)
    return states


async def replay(connection: aio_pika.abc.AbstractConnection, queue: str, ids: set[str] | None = None) -> list[DeadLetter]:
    """Publish ``queue``'s dead letters (those with ``ids``, or all) back to ``queue`` alone (the
    default exchange: no other consumer sees it again), each confirmed before its dead letter is
    acknowledged. The consumer's inbox makes a second copy of an event a no-op, so a replay that is
    interrupted and run again applies nothing twice."""
    taking = await connection.channel()
    publishing = await connection.channel(publisher_confirms=True)
    replayed = []
    try:
        dead = await taking.declare_queue(f"{queue}.dead", passive=True)
        await publishing.declare_queue(queue, passive=True)
        while True:
            message = await dead.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            if ids is not None and message.message_id not in ids:
                continue  # left unacknowledged: back in the dead-letter queue when the channel closes
            letter = DeadLetter.of(message)
            headers = {k: v for k, v in (message.headers or {}).items()
                       if k not in (REASON, DEAD_AT, DEAD_FROM, "x-delivery-count") and not k.startswith("x-death")
                       and not k.startswith("x-first-death") and not k.startswith("x-last-death")}
            headers[REPLAYED] = letter.replayed + 1
            await publishing.default_exchange.publish(
                aio_pika.Message(message.body, headers=headers, message_id=message.message_id, correlation_id=message.correlation_id,
                                 type=message.type, content_type=message.content_type,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue, mandatory=True)
            await message.ack()
            replayed.append(letter)
    finally:
        for channel in (taking, publishing):
            with contextlib.suppress(Exception):
                await channel.close()
    return replayed


# ---------------------------------------------------------------- metrics, read when /metrics is scraped

OUTBOX_UNPUBLISHED = Gauge("piaojue_outbox_unpublished", "Events committed and not yet confirmed by the broker", ["service"])
OUTBOX_OLDEST = Gauge("piaojue_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished event (0: none)", ["service"])
QUEUE_READY = Gauge("piaojue_queue_messages", "Messages ready in a consumer queue", ["queue"])
QUEUE_CONSUMERS = Gauge("piaojue_queue_consumers", "Consumers connected to a queue", ["queue"])
DEAD_LETTERS = Gauge("piaojue_dead_letters", "Messages waiting in a queue's dead-letter queue (<queue>.dead)", ["queue"])


async def refresh_metrics(app: Any) -> None:
    """This service's outbox lag, and its own queues' depth, consumers and dead letters (every
    replica reports the same queue figures: a dashboard takes their max)."""
    service = app.state.service
    async with app.state.pool.acquire() as conn:
        lag = await outbox_lag(conn, service)
    OUTBOX_UNPUBLISHED.labels(service).set(lag.unpublished)
    OUTBOX_OLDEST.labels(service).set(lag.oldest_seconds or 0)
    connection = getattr(app.state.broker, "_connection", None)  # FastStream's aio-pika connection
    if connection is None or connection.is_closed:
        return
    for queue in (q for q in QUEUES if q.split(".")[0] == service):
        main, dead = await _declared(connection, queue), await _declared(connection, f"{queue}.dead")
        if main is not None:
            QUEUE_READY.labels(queue).set(main[0])
            QUEUE_CONSUMERS.labels(queue).set(main[1])
        if dead is not None:
            DEAD_LETTERS.labels(queue).set(dead[0])


def as_json(value: Any) -> str:
    def default(o: Any) -> Any:
        return asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)

    return json.dumps(value, default=default, ensure_ascii=False, indent=2)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
