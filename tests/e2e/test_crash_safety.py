"""kill -9 of the supervision process while a certified result is being handled, then a restart:
still exactly one project per chosen candidate, none lost, none doubled."""

from __future__ import annotations

import aio_pika
import asyncpg

from tests.support import certified_result, depth, equals, eventually


async def test_kill_9_of_supervision_mid_handling_then_restart_creates_each_project_exactly_once(settings, cluster):
    envelope = certified_result(jurisdiction="taihu.xiaochi")
    vote_id = envelope.data["vote_id"]
    db = await asyncpg.connect(settings.database_url)
    watch = await asyncpg.connect(settings.database_url)  # pg_stat_activity is frozen within a transaction: poll outside it
    amqp = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await amqp.channel()
        # Hold the handler inside its transaction: block inserts into the projects table.
        blocker = db.transaction()
        await blocker.start()
        await db.execute("LOCK TABLE supervision.projects IN SHARE MODE")
        await channel.default_exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id),
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="supervision.results",
        )
        # In flight: delivered, its transaction open and waiting, not acknowledged.
        await eventually(lambda: watch.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'piaojue-supervision'"
            " AND wait_event_type = 'Lock'"), what="the handler to be mid-transaction")
        cluster.kill9("supervision")
        await blocker.rollback()

        count = "SELECT count(*) FROM supervision.projects WHERE vote_id = $1"
        assert await db.fetchval(count, vote_id) == 0  # the killed transaction left nothing behind
        await eventually(lambda: equals(depth(channel, "supervision.results"), 1), what="the broker to requeue it")

        cluster.start("supervision")
        await eventually(lambda: equals(db.fetchval(count, vote_id), 7), what="projects after restart")
        await eventually(lambda: equals(depth(channel, "supervision.results"), 0), what="the message acknowledged")
        assert await db.fetchval("SELECT count(*) FROM supervision.inbox WHERE event_id = $1", envelope.id) == 1
        assert await db.fetchval(
            "SELECT count(*) FROM supervision.outbox WHERE routing_key = 'supervision.project.created'"
            " AND body->'data'->>'vote_id' = $1", str(vote_id)) == 7
        assert await db.fetchval(count, vote_id) == 7
    finally:
        await amqp.close()
        await db.close()
        await watch.close()

