"""Scoring as the county's source, on the real RabbitMQ and PostgreSQL: events of one project
arriving in reverse order are parked, not dead-lettered, and applied when the project arrives; a
county webhook receiver (a separate process) down for an hour loses nothing, is retried with
back-off on a clock the test controls, raises one alert, and refuses replayed or re-signed messages."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg
import httpx
from faststream.rabbit import RabbitExchange

from services.scoring import SERVICE as SCORING
from services.scoring import sender, store
from services.scoring.domain import webhooks
from services.scoring.publish import publish
from shared.contracts.ballot import RatedProject, SatisfactionCertified
from shared.contracts.envelope import Envelope
from shared.contracts.supervision import (
    DeputyRating,
    InspectionKind,
    InspectionRecorded,
    ProgressReported,
    ProjectCompleted,
    ProjectCreated,
    ProjectPlanned,
    RectificationUpdated,
)
from shared.db import create_pool, unit_of_work
from shared.messaging import EVENTS_EXCHANGE, new_broker
from tests.support import depth, eventually, running

TOWN = "taihu.nixu"



def envelope(payload, producer: str = "supervision") -> Envelope:
    return Envelope(type=payload.TYPE, version=payload.VERSION, jurisdiction=TOWN, correlation_id=uuid4(),
                    producer=producer, data=payload.model_dump(mode="json"))


async def test_a_projects_events_published_in_reverse_order_are_parked_then_applied_and_none_is_dead_lettered(settings, amqp):
    project, year = uuid4(), 2024
    events = [  # in the order supervision sent them
        ProjectCreated(project_id=project, candidate_id=uuid4(), vote_id=uuid4(), title="倒序到达的项目", year=year),
        ProjectPlanned(project_id=project, year=year, lead_unit="镇水利站", leader="副镇长", budget=Decimal(1_000_000),
                       funding_source="镇财政", milestones=[]),
        ProgressReported(report_id=uuid4(), project_id=project, year=year, as_of=date(2024, 12, 31), percent_done=100,
                         funds_spent=Decimal(900_000), backdated=False),
        InspectionRecorded(inspection_id=uuid4(), project_id=project, year=year, kind=InspectionKind.MID_TERM,
                           inspected_on=date(2024, 7, 1), ratings=[DeputyRating(deputy="D1", rating=80)], term=1),
        InspectionRecorded(inspection_id=uuid4(), project_id=project, year=year, kind=InspectionKind.FINAL,
                           inspected_on=date(2024, 12, 1), ratings=[DeputyRating(deputy="D1", rating=90),
                                                                    DeputyRating(deputy="D2", rating=94)], term=1),
        RectificationUpdated(item_id=uuid4(), project_id=project, year=year, status="open", due_on=date(2024, 8, 1),
                             closed_on=None),
        ProjectCompleted(project_id=project, year=year, completion="completed", accepted_on=date(2024, 12, 20)),
    ]
    rating = SatisfactionCertified(vote_id=uuid4(), session_id=uuid4(), session_name="泥秀镇人代会", year=year, seated=10,
                                   present=10, issued=10, collected=10, certified_at=datetime.now(UTC), certified_by="chair",
                                   projects=[RatedProject(project_id=project, title="倒序到达的项目", satisfied=8,
                                                          basically_satisfied=2, dissatisfied=0, tier="satisfied", rate=1.0)])
    broker = new_broker(settings)
    await broker.connect()
    try:
        async with running(SCORING, settings) as app:
            pool = app.state.pool
            # Newest first, the satisfaction rating (from ballot, on the other queue) before all of them.
            for env in [envelope(rating, "ballot")] + [envelope(e) for e in reversed(events)]:
                await broker.publish(json.dumps(env.model_dump(mode="json")).encode(), exchange=RabbitExchange(EVENTS_EXCHANGE.name),
                                     routing_key=env.type, message_id=str(env.id), persist=True)

            async def applied():
                row = await pool.fetchrow("SELECT * FROM projects WHERE id = $1", project)
                done = await pool.fetchval("SELECT count(*) FROM inbox") >= len(events) + 1
                return row if done and row and row["completion"] and row["funds_spent"] else None

            row = await eventually(applied, what="every parked event to be applied")
            # (mid-term 80 × 0.3 + final 92 × 0.5 + satisfaction 100 × 0.25) / 1.05
            assert row["score"] == Decimal("90.48")
            assert (row["budget"], row["funds_spent"], row["lead_unit"]) == (Decimal(1_000_000), Decimal(900_000), "镇水利站")
            assert await pool.fetchval("SELECT count(*) FROM rectifications WHERE project_id = $1", project) == 1
            assert await pool.fetchval("SELECT count(*) FROM satisfaction WHERE project_id = $1", project) == 1
            assert await pool.fetchval("SELECT count(*) FROM pending") == 0
    finally:
        await broker.stop()
    assert await depth(amqp, "scoring.supervision.dead") == 0
    assert await depth(amqp, "scoring.ratings.dead") == 0


class Outage(httpx.AsyncBaseTransport):
    """The county system's side of the wire: answers 500 while ``down``, else reaches the real
    receiver. Keeps the last request it passed on, to replay it. While each POST is in flight it
    tries to lock the delivery's row from another connection: the sender must hold no lock (and
    no transaction) across the network."""

    def __init__(self, pool) -> None:
        self.down, self.inner, self.last, self.pool = True, httpx.AsyncHTTPTransport(), None, pool
        self.locked_during_post = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute("SET LOCAL lock_timeout = '100ms'")
                await conn.fetchval("SELECT 1 FROM webhook_deliveries WHERE id = $1 FOR UPDATE NOWAIT",
                                    UUID(request.headers[webhooks.DELIVERY]))
            except asyncpg.LockNotAvailableError:
                self.locked_during_post += 1
        if self.down:
            return httpx.Response(500, text="县考核系统维护中")
        self.last = (dict(request.headers), await request.aread())
        return await self.inner.handle_async_request(request)


async def test_a_receiver_answering_500_for_an_hour_loses_nothing_alerts_once_and_refuses_replays(settings, receiver):
    pool = await create_pool(settings, "scoring")
    town, outage = "taihu.huating", Outage(pool)
    try:
        async with unit_of_work(pool, "scoring") as uow:
            await store.add_subscriber(uow.conn, town, "县考核系统", f"{receiver.url}/webhooks/assessments", receiver.secret)
            await store.add_project(uow.conn, uuid4(), town, 2024, "花亭湖旅游公路")
            published = await publish(uow, town, 2024, "county", "published", date(2025, 1, 31))
        delivery = await pool.fetchrow("SELECT * FROM webhook_deliveries WHERE assessment_id = $1", published["assessment_id"])
        alerts_before = sender.ALERTS._value.get()

        # An hour of 500s on a clock we control: retried with growing waits, never given up.
        async with httpx.AsyncClient(transport=outage) as client:
            clock = datetime.now(UTC)
            end = clock + timedelta(hours=1)
            while clock < end:
                await sender.deliver_due(pool, client, clock)
                clock += timedelta(seconds=5)
            row = await pool.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery["id"])
            log = await pool.fetch("SELECT * FROM webhook_attempts WHERE delivery_id = $1 ORDER BY seq", delivery["id"])
            assert row["status"] == "pending" and 6 <= row["attempts"] == len(log) <= 15
            assert all(a["status_code"] == 500 for a in log)
            gaps = [(b["at"] - a["at"]).total_seconds() for a, b in zip(log, log[1:], strict=False)]
            assert gaps == sorted(gaps) and gaps[0] >= 10  # back-off
            assert row["alerted_at"] == log[webhooks.ALERT_AFTER - 1]["at"]  # alerted at the 5th failure, once
            assert sender.ALERTS._value.get() == alerts_before + 1
            assert outage.locked_during_post == 0
            assert (await httpx.AsyncClient().get(f"{receiver.url}/assessments")).json() == []

            # The county's system is back: the next retry delivers; the receiver verified and stored it.
            outage.down = False
            await sender.deliver_due(pool, client, row["next_attempt_at"])
            assert await pool.fetchval("SELECT status FROM webhook_deliveries WHERE id = $1", delivery["id"]) == "delivered"
            async with httpx.AsyncClient() as plain:
                stored = (await plain.get(f"{receiver.url}/assessments")).json()
                assert [(s["jurisdiction"], s["version"], s["delivery"]) for s in stored] == [(town, 1, str(delivery["id"]))]

                # Manual redelivery sends it again, freshly signed; the receiver keeps one copy.
                await store.redeliver(pool, delivery["id"], datetime.now(UTC))
                await sender.deliver_due(pool, client, datetime.now(UTC))
                assert len((await plain.get(f"{receiver.url}/assessments")).json()) == 1

                # What an attacker can do with a captured message: replay it, tamper with it, re-sign it.
                headers, body = outage.last
                signed = {k: v for k, v in headers.items() if k.lower().startswith("x-piaojue-")}
                url = f"{receiver.url}/webhooks/assessments"
                replay = await plain.post(url, content=body, headers=signed)
                assert (replay.status_code, replay.json()["code"]) == (409, "replayed")
                tampered = body.replace(b'"version": 1', b'"version": 9')
                assert tampered != body
                fresh = int(time.time()) + 1
                resigned = webhooks.headers("not-the-subscribers-secret", str(uuid4()), fresh, tampered)
                assert (await plain.post(url, content=tampered, headers=resigned)).json()["code"] == "bad-signature"
                kept = {**signed, webhooks.TIMESTAMP.lower(): str(fresh)}  # a new timestamp under the old signature
                assert (await plain.post(url, content=body, headers=kept)).json()["code"] == "bad-signature"
                old = webhooks.headers(receiver.secret, str(uuid4()), fresh - 3600, body)
                assert (await plain.post(url, content=body, headers=old)).json()["code"] == "stale-timestamp"
                assert len((await plain.get(f"{receiver.url}/assessments")).json()) == 1  # nothing stored by them
    finally:
        await pool.close()
