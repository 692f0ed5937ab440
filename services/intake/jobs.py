"""What each intake replica does on a schedule: erase proposers' contacts past retention (PIPL)
and prune the lookup counters. Safe in every replica at once: both are single statements."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import structlog
from fastapi import FastAPI

from services.intake import store
from services.intake.settings import get_intake_settings

log = structlog.get_logger()


async def housekeep_once(pool: asyncpg.Pool, today: date | None = None) -> int:
    async with pool.acquire() as conn:
        erased = await store.erase_due_contacts(conn, today or date.today())
        await store.prune_lookups(conn)
    if erased:
        log.info("contacts erased after retention", erased=erased)
    return erased


async def housekeeping(app: FastAPI) -> None:
    while True:
        try:
            await housekeep_once(app.state.pool)
        except Exception:
            log.exception("intake housekeeping failed; will retry")
        await asyncio.sleep(get_intake_settings().housekeeping_seconds)
