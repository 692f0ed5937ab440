"""What an operator sees and does, on the real broker (this run's vhost) and database:
``piaojue status`` and ``piaojue dead-letters list|replay``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from uuid import uuid4

import aio_pika
import httpx
from faststream.rabbit import RabbitQueue
from faststream.rabbit.schemas.queue import QueueType

from services.supervision import SERVICE as SUPERVISION
from shared.contracts.envelope import Envelope, PoisonMessage
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.db import create_pool
from shared.messaging import DEAD_EXCHANGE, Consumer, new_broker, queue_arguments, subscribe
from shared.settings import SERVICES
from tests.support import depth, eventually, free_port, run_cli, running


@dataclass
class Ran:
    returncode: int
    stdout: str


async def piaojue(*args: str) -> Ran:
    return Ran(*await run_cli(*args))


def _json(text: str, opener: str):
    """The JSON document a command printed (this process's log lines may be printed around it)."""
    return json.JSONDecoder().raw_decode(text[text.index(opener + "\n"):])[0]


async def test_status_shows_outbox_lag_queue_depths_consumers_and_the_last_dead_letter_with_its_reason(settings, amqp):
    stale = uuid4()
    pool = await create_pool(settings, "scoring")
    try:
        async with running(SUPERVISION, settings) as app:  # declares the topology and consumes supervision.results
            dead = await amqp.declare_queue("supervision.results.dead", passive=True)
            await dead.purge()
            # An event scoring committed 90 s ago and has not published (no scoring process runs here).
            await pool.execute("INSERT INTO outbox (id, routing_key, body, created_at) VALUES ($1, 'tests.nothing', '{}',"
                               " now() - interval '90 seconds')", stale)
            await amqp.default_exchange.publish(aio_pika.Message(b"{not json", message_id="broken-1"),
                                                routing_key="supervision.results")
            await eventually(lambda: _is(depth(amqp, "supervision.results.dead"), 1), what="the dead letter")
            shown = await piaojue("status", "--json")
            text = await piaojue("status")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://supervision") as client:
                metrics = (await client.get("/metrics")).text
        print(text.stdout)
        assert shown.returncode == 0, shown.stdout
        status = _json(shown.stdout, "{")
        scoring = next(o for o in status["outbox"] if o["service"] == "scoring")
        assert scoring["unpublished"] >= 1 and scoring["oldest_seconds"] >= 90
        results = next(q for q in status["queues"] if q["queue"] == "supervision.results")
        assert results["consumers"] == 1 and results["ready"] == 0 and results["dead"] == 1
        assert results["last_dead"]["id"] == "broken-1" and "bad envelope" in results["last_dead"]["reason"]
        assert "supervision.results" in text.stdout
        assert re.search(r"^scoring\s+\d+\s+\d+m \d\ds$", text.stdout, re.M)  # the lag, as people read it
        assert await depth(amqp, "supervision.results.dead") == 1  # looking left it where it was
        # The same figures in the service's metrics, read when scraped.
        assert 'piaojue_dead_letters{queue="supervision.results"} 1.0' in metrics
        assert 'piaojue_queue_consumers{queue="supervision.results"} 1.0' in metrics
        assert re.search(r'^piaojue_outbox_unpublished\{service="supervision"\} \d+\.0$', metrics, re.M)
        assert 'piaojue_events_consumed_total{outcome="dead_lettered",queue="supervision.results"}' in metrics
    finally:
        await pool.execute("DELETE FROM outbox WHERE id = $1", stale)
        await pool.close()
        await (await amqp.declare_queue("supervision.results.dead", passive=True)).purge()


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected


def slate_envelope() -> Envelope:
    slate = SlatePublished(slate_id=uuid4(), title="候选清单", year=2024, seats=1,
                           candidates=[SlateCandidate(candidate_id=uuid4(), title="甲"), SlateCandidate(candidate_id=uuid4(), title="乙")])
    return Envelope(type=slate.TYPE, version=slate.VERSION, jurisdiction="taihu.fuyu", correlation_id=uuid4(), producer="intake",
                    data=slate.model_dump(mode="json"))


async def test_dead_letters_are_listed_with_their_reason_and_replayed_after_a_fix_applying_each_once(settings, amqp):
    name = f"test.replay.{uuid4().hex[:6]}"
    broker = new_broker(settings)
    await broker.connect()
    await broker.declare_exchange(DEAD_EXCHANGE)
    await broker.declare_queue(RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, arguments=queue_arguments(name, settings)))
    dead = await broker.declare_queue(RabbitQueue(f"{name}.dead", queue_type=QueueType.QUORUM, durable=True))
    await dead.bind("piaojue.dead", routing_key=name)
    fixed, applied = False, []
    consumer = Consumer(name)

    @consumer.on(SlatePublished)
    async def handler(uow, envelope, payload):
        if not fixed:
            raise PoisonMessage("this version cannot place a slate of one seat yet")
        applied.append(str(envelope.id))

    pool = await create_pool(settings, "ballot")
    subscribe(broker, consumer, pool, "ballot", settings)
    await broker.start()
    try:
        first, second = slate_envelope(), slate_envelope()
        for envelope in (first, second):
            await amqp.default_exchange.publish(
                aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id), type=envelope.type), routing_key=name)
        await eventually(lambda: _is(depth(amqp, f"{name}.dead"), 2), what="both dead-lettered")

        listed = await piaojue("dead-letters", "list", name, "--json")
        letters = _json(listed.stdout, "[")
        assert sorted(d["id"] for d in letters) == sorted([str(first.id), str(second.id)])
        assert all("cannot place a slate" in d["reason"] and d["type"] == "intake.slate.published" for d in letters)
        print((await piaojue("dead-letters", "list", name)).stdout)

        fixed = True  # the fix is deployed
        one = await piaojue("dead-letters", "replay", name, "--id", str(first.id))
        print(one.stdout)
        assert one.returncode == 0, one.stdout
        await eventually(lambda: _is(_value(applied), [str(first.id)]), what="the first replayed and applied")
        await eventually(lambda: _is(depth(amqp, f"{name}.dead"), 1), what="the other one back in the dead letters")

        # A copy of the first left behind (a replay interrupted between publishing and acknowledging).
        await amqp.default_exchange.publish(
            aio_pika.Message(first.model_dump_json().encode(), message_id=str(first.id), type=first.type), routing_key=f"{name}.dead")
        rest = await piaojue("dead-letters", "replay", name)
        assert rest.returncode == 0 and "2 dead letter(s) re-published" in rest.stdout, rest.stdout
        await eventually(lambda: _is(depth(amqp, f"{name}.dead"), 0), what="the dead letters replayed")
        await eventually(lambda: pool.fetchval("SELECT count(*) = 2 FROM inbox WHERE event_id = ANY($1::uuid[])", [first.id, second.id]),
                         what="both in the inbox")
        await eventually(lambda: _is(_value(sorted(applied)), sorted([str(first.id), str(second.id)])), what="the second applied")
        await eventually(lambda: _is(depth(amqp, name), 0), what="the copy consumed")
        assert sorted(applied) == sorted([str(first.id), str(second.id)])  # the copy of the first changed nothing
    finally:
        await broker.stop()
        await amqp.queue_delete(name)
        await amqp.queue_delete(f"{name}.dead")
        await pool.close()


async def _value(v):
    return v


async def test_status_during_a_broker_outage_shows_the_outboxes_and_says_the_broker_is_unreachable(settings):
    from piaojue.operate import _status

    down = settings.model_copy(update={"amqp_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/"})  # nothing listens there
    status = await _status(down)
    assert status["broker"].startswith("unreachable") and status["database"] is None
    assert [o.service for o in status["outbox"]] == list(SERVICES) and status["queues"] == []
