"""Backup and restore, as README "Backup and restore" says: pg_dump of the five schemas, restored
into a fresh PostgreSQL cluster (the test's own), a service run on it: the audit chains verify
against the anchors made at the backup, and no event is published twice: what the outbox had
published before the backup stays published, what it had not is published once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from uuid import UUID, uuid4

import aio_pika
import asyncpg
import httpx
import pytest

from services.intake.app import SERVICE as INTAKE
from shared import audit, tokens
from shared.auth import Role, mint
from shared.contracts.intake import ProposalMerged
from shared.db import create_pool, unit_of_work
from shared.messaging import EVENTS_EXCHANGE
from shared.service import create_app
from shared.settings import SERVICES
from tests.support import PrivatePostgres, _pg_bin, connected, eventually

TOWN = "taihu.beifen"
KEY = tokens.generate("EdDSA")


async def _merged_events(pool, item: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT id, published_at FROM outbox WHERE routing_key = 'intake.proposal.merged'"
                            " AND body->'data'->>'item_id' = $1 ORDER BY seq", item)


@pytest.fixture
async def spy(settings):
    """A queue of the test's own bound to intake.proposal.merged: every publication of it, counted."""
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EVENTS_EXCHANGE.name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"test.spy.{uuid4().hex[:6]}", exclusive=True)
    await queue.bind(exchange, routing_key="intake.proposal.merged")
    try:
        yield queue
    finally:
        await connection.close()


async def test_a_restored_backup_runs_verifies_its_audit_chains_and_publishes_no_event_twice(settings, spy, tmp_path):
    # ---- the deployment before the backup: a merge published and handled, then one committed and not yet published
    source = create_app(INTAKE, settings)
    headers = {"authorization": f"Bearer {mint('office', Role.OFFICE, TOWN)}"}
    async with source.router.lifespan_context(source), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=source), base_url="http://intake", headers=headers) as client:
        await connected(source)
        ids = []
        for title in ("北坂村路灯", "北坂村路灯安装", "北坂村装路灯"):
            response = await client.post("/proposals", json={"year": 2024, "title": title, "channel": "grid", "location": "北坂村"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        item, first, second = ids
        assert (await client.post(f"/proposals/{item}/merge", json={"proposal_ids": [first]})).status_code == 200
        pool = source.state.pool
        await eventually(lambda: pool.fetchval("SELECT bool_and(published_at IS NOT NULL) FROM outbox WHERE body->'data'->>'item_id' = $1",
                                               item), what="the first merge published")
        [published] = await _merged_events(pool, item)
        await eventually(lambda: pool.fetchval("SELECT true FROM inbox WHERE event_id = $1", published["id"]), what="it handled")
    # The second merge commits while no relay runs (the service is down): its event waits in the outbox.
    pool = await create_pool(settings, "intake")
    try:
        async with unit_of_work(pool, "intake") as uow:
            await uow.conn.execute("UPDATE proposals SET merged_into = $1 WHERE id = $2", UUID(item), UUID(second))
            await uow.audit(TOWN, "office", "merge", "proposal", item, after={"merged": [second]})
            waiting = await uow.emit(ProposalMerged(item_id=UUID(item), title="北坂村路灯", year=2024, merged=[UUID(second)],
                                                    supporters=3, by_channel={"grid": 3}, by_location={"北坂村": 3}), TOWN)
    finally:
        await pool.close()
    before = []
    while (message := await spy.get(fail=False, no_ack=True)) is not None:
        before.append(message.message_id)
    assert str(published["id"]) in before and str(waiting.id) not in before  # published before the backup; waiting

    # ---- the backup (README): anchor the audit chains, dump the five schemas
    anchors = tmp_path / "anchors.jsonl"
    conn = await asyncpg.connect(settings.database_url)
    try:
        audit.append_anchors(anchors, [await audit.anchor(conn, audit.signing_key(json.dumps(KEY)), s) for s in SERVICES])
    finally:
        await conn.close()
    dump = tmp_path / "piaojue.dump"
    schemas = [a for s in SERVICES for a in ("--schema", s)]
    await asyncio.to_thread(subprocess.run, [_pg_bin("pg_dump"), "--format=custom", "--file", str(dump), *schemas, settings.database_url],
                            check=True, capture_output=True, timeout=120)

    # ---- the restore into a fresh cluster, and a service on it
    with PrivatePostgres("piaojue-restore-") as fresh:
        await asyncio.to_thread(subprocess.run, [_pg_bin("pg_restore"), "--dbname", fresh.url, "--no-owner", str(dump)],
                                check=True, capture_output=True, timeout=120)
        restored_settings = settings.model_copy(update={"database_url": fresh.url})
        restored = create_app(INTAKE, restored_settings)
        async with restored.router.lifespan_context(restored):
            await connected(restored)
            pool = restored.state.pool
            await eventually(lambda: pool.fetchval("SELECT true FROM inbox WHERE event_id = $1", waiting.id),
                             what="the event that waited in the outbox, published and handled after the restore")
            await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"),
                             what="the restored outbox drained")
            after = {r["id"]: r["published_at"] for r in await _merged_events(pool, item)}
            notices = await pool.fetchval("SELECT count(*) FROM proposer_notices WHERE proposal_id = $1", UUID(second))
        assert after[published["id"]] == published["published_at"]  # published before the backup: left as it was
        seen = []
        while (message := await spy.get(fail=False, no_ack=True)) is not None:
            seen.append(message.message_id)
        ours = [m for m in seen if m in (str(published["id"]), str(waiting.id))]  # (another test's leftovers aside)
        assert ours == [str(waiting.id)]  # once; the one published before the backup not again
        assert notices == 1

        verified = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "piaojue.cli", "audit", "verify", "--anchors", str(anchors)],
            env={**os.environ, "PIAOJUE_DATABASE_URL": fresh.url, "PIAOJUE_AUDIT_PUBLIC_KEYS": json.dumps(tokens.public_jwk(KEY))},
            capture_output=True, text=True, timeout=60)
        print(verified.stdout)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.count(" ok: ") == len(SERVICES) and "1 anchor(s) match" in verified.stdout
