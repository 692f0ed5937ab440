"""Sends the signed webhooks: every due delivery, logged attempt by attempt, retried with back-off
until the subscriber answers 2xx; the county's operators are alerted after ``ALERT_AFTER``
consecutive failures. The clock is a parameter, so that an hour of failures can be tested."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import Counter

from services.scoring import store
from services.scoring.domain import webhooks

log = structlog.get_logger()
ATTEMPTS = Counter("piaojue_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
ALERTS = Counter("piaojue_webhook_alerts_total", "Deliveries that reached the alert threshold of failures")
POST_TIMEOUT_S = 10.0
# How long claimed deliveries stay another replica's to skip: the whole batch's POSTs at their timeout, and more.
LEASE = timedelta(minutes=5)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def send(client: httpx.AsyncClient, url: str, secret: str, delivery_id: str, body: str) -> tuple[int | None, str | None]:
    """POST one signed delivery; (status, error). The timestamp is the moment of sending."""
    content = body.encode()
    try:
        response = await client.post(url, content=content,
                                     headers=webhooks.headers(secret, delivery_id, int(time.time()), content))
        return response.status_code, None if webhooks.delivered(response.status_code) else response.text[:500]
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]


async def deliver_due(pool: asyncpg.Pool, client: httpx.AsyncClient, now: datetime, batch: int = 10,
                      alert_after: int = webhooks.ALERT_AFTER) -> int:
    """Attempt every delivery due at ``now``; returns how many were attempted. The due rows are
    claimed in one short transaction, POSTed outside any (a slow county system holds no lock and
    no transaction open), and each attempt is logged in the short transaction that schedules the next."""
    async with pool.acquire() as conn, conn.transaction():
        due = await store.claim_due(conn, now, batch, now + LEASE)
    for d in due:
        status, error = await send(client, d["url"], d["secret"], str(d["id"]), d["body"])
        ok = webhooks.delivered(status)
        failures = 0 if ok else d["failures"] + 1
        alert = not ok and webhooks.alert_due(failures, alert_after)
        async with pool.acquire() as conn, conn.transaction():
            await store.record_attempt(conn, d["id"], now, status, error, ok,
                                       None if ok else now + webhooks.next_wait(failures), alert)
        ATTEMPTS.labels("delivered" if ok else "failed").inc()
        if alert:
            ALERTS.inc()
            log.error("webhook delivery keeps failing: alert", delivery=str(d["id"]), failures=failures, url=d["url"],
                      last_status=status, last_error=error)
    return len(due)


async def run(app: FastAPI, clock: Callable[[], datetime] = utcnow, poll_seconds: float = 1.0) -> None:
    """Send forever, polling for due deliveries."""
    async with httpx.AsyncClient(timeout=POST_TIMEOUT_S) as client:
        while True:
            try:
                if await deliver_due(app.state.pool, client, clock()):
                    continue
            except Exception:
                log.exception("webhook sender failed; will retry")
            await asyncio.sleep(poll_seconds)
