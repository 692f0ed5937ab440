"""All of the scoring service's SQL: routes, handlers and the webhook sender call these."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.scoring.domain import AssessmentMethod, MethodVersion, default_method
from shared.auth import scope_sql

# ---------------------------------------------------------------- methods


async def method_for(conn, jurisdiction: str, year: int) -> MethodVersion:
    """The year's method for a township: the latest version of its own, else of its county, else the defaults."""
    row = await conn.fetchrow(
        "SELECT * FROM method_versions WHERE year = $2 AND (jurisdiction = $1 OR starts_with($1, jurisdiction || '.'))"
        " ORDER BY length(jurisdiction) DESC, version DESC LIMIT 1", jurisdiction, year)
    if row is None:
        return default_method(year)
    return MethodVersion(row["jurisdiction"], year, row["version"], AssessmentMethod.model_validate(row["method"]))


async def add_method(conn, jurisdiction: str, year: int, method: AssessmentMethod, by: str) -> MethodVersion:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('method:' || $1 || ':' || $2))", jurisdiction, str(year))
    version = 1 + await conn.fetchval("SELECT coalesce(max(version), 0) FROM method_versions WHERE jurisdiction = $1 AND year = $2",
                                      jurisdiction, year)
    await conn.execute("INSERT INTO method_versions (jurisdiction, year, version, method, set_by) VALUES ($1, $2, $3, $4, $5)",
                       jurisdiction, year, version, method.model_dump(mode="json"), by)
    return MethodVersion(jurisdiction, year, version, method)


async def method_versions(conn, jurisdiction: str, year: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM method_versions WHERE jurisdiction = $1 AND year = $2 ORDER BY version",
                            jurisdiction, year)


# ---------------------------------------------------------------- projects (as supervision reports them)


async def lock_project(conn, project_id: UUID) -> None:
    """Serialises, per project, parking an event and creating the project: without it an event could
    be parked by a transaction the creation's unparking cannot see yet, and wait for ever."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))", project_id)


async def project_known(conn, project_id: UUID) -> bool:
    await lock_project(conn, project_id)
    return bool(await conn.fetchval("SELECT true FROM projects WHERE id = $1 FOR UPDATE", project_id))


async def add_project(conn, project_id: UUID, jurisdiction: str, year: int, title: str) -> None:
    await lock_project(conn, project_id)
    await conn.execute("INSERT INTO projects (id, jurisdiction, year, title) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                       project_id, jurisdiction, year, title)


async def update_project(conn, project_id: UUID, **columns: Any) -> None:
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
    await conn.execute(f"UPDATE projects SET {sets} WHERE id = $1", project_id, *columns.values())


async def add_rating(conn, inspection_id: UUID, project_id: UUID, kind: str, scores: list[int]) -> None:
    await conn.execute("INSERT INTO ratings (inspection_id, project_id, kind, scores) VALUES ($1, $2, $3, $4)"
                       " ON CONFLICT DO NOTHING", inspection_id, project_id, kind, scores)


async def ratings(conn, project_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT kind, scores FROM ratings WHERE project_id = $1", project_id)


async def satisfaction_rates(conn, project_id: UUID) -> list:
    return [r["rate"] for r in await conn.fetch(
        "SELECT rate FROM satisfaction WHERE project_id = $1 AND rate IS NOT NULL", project_id)]


async def add_satisfaction(conn, vote_id: UUID, project_id: UUID, tier: str, rate: float | None) -> None:
    await conn.execute("INSERT INTO satisfaction (vote_id, project_id, tier, rate) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                       vote_id, project_id, tier, rate)


async def set_rectification(conn, item_id: UUID, project_id: UUID, status: str, due_on: date, closed_on: date | None) -> None:
    await conn.execute(
        "INSERT INTO rectifications (item_id, project_id, status, due_on, closed_on) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (item_id) DO UPDATE SET status = EXCLUDED.status, due_on = EXCLUDED.due_on, closed_on = EXCLUDED.closed_on",
        item_id, project_id, status, due_on, closed_on)


async def projects(conn, jurisdiction: str, year: int | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT p.*, (SELECT s.tier FROM satisfaction s WHERE s.project_id = p.id ORDER BY s.vote_id LIMIT 1) AS satisfaction
            FROM projects p WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2) ORDER BY jurisdiction, title""",
        jurisdiction, year)


async def township_projects(conn, jurisdiction: str, year: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM projects WHERE jurisdiction = $1 AND year = $2 ORDER BY title", jurisdiction, year)


async def overdue_rectifications(conn, jurisdiction: str, year: int, on: date) -> int:
    """Items past their due date on ``on`` and not verified by it (closed late counts too)."""
    return await conn.fetchval(
        "SELECT count(*) FROM rectifications r JOIN projects p ON p.id = r.project_id WHERE p.jurisdiction = $1"
        " AND p.year = $2 AND r.due_on < $3 AND (r.closed_on IS NULL OR r.closed_on > r.due_on)", jurisdiction, year, on)


# ---------------------------------------------------------------- parked events


async def park(conn, event_id: UUID, awaits: UUID, type_: str, body: dict) -> None:
    await conn.execute("INSERT INTO pending (event_id, awaits, type, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                       event_id, awaits, type_, body)


async def unpark(conn, awaits: UUID) -> list[dict]:
    rows = await conn.fetch("DELETE FROM pending WHERE awaits = $1 RETURNING body, parked_at", awaits)
    return [r["body"] for r in sorted(rows, key=lambda r: r["parked_at"])]


# ---------------------------------------------------------------- assessments


async def lock_township_year(conn, jurisdiction: str, year: int) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2))", jurisdiction, str(year))


async def latest_assessment(conn, jurisdiction: str, year: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM assessments WHERE jurisdiction = $1 AND year = $2 ORDER BY version DESC LIMIT 1",
                               jurisdiction, year)


async def add_assessment(conn, assessment_id: UUID, jurisdiction: str, year: int, version: int, figures: dict, by: str,
                         method_version: str, reason: str) -> None:
    await conn.execute(
        "INSERT INTO assessments (id, jurisdiction, year, version, figures, published_by, method_version, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        assessment_id, jurisdiction, year, version, figures, by, method_version, reason)


async def assessed_townships(conn, scope: str, year: int) -> list[str]:
    return [r["jurisdiction"] for r in await conn.fetch(
        f"SELECT DISTINCT jurisdiction FROM assessments WHERE {scope_sql('$1')} AND year = $2", scope, year)]


async def latest_assessments(conn, scope: str, year: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT DISTINCT ON (jurisdiction) * FROM assessments WHERE {scope_sql('$1')} AND year = $2
            ORDER BY jurisdiction, version DESC""", scope, year)


async def changes(conn, scope: str, year: int | None, since: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM assessments WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2) AND seq > $3 ORDER BY seq LIMIT $4",
        scope, year, since, limit)


async def last_change(conn, scope: str, year: int | None) -> int:
    return await conn.fetchval(
        f"SELECT coalesce(max(seq), 0) FROM assessments WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2)", scope, year)


async def versions(conn, jurisdiction: str, year: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM assessments WHERE jurisdiction = $1 AND year = $2 ORDER BY version", jurisdiction, year)


# ---------------------------------------------------------------- webhooks


async def add_subscriber(conn, jurisdiction: str, name: str, url: str, secret: str) -> asyncpg.Record:
    return await conn.fetchrow("INSERT INTO webhook_subscribers (id, jurisdiction, name, url, secret) VALUES ($1, $2, $3, $4, $5)"
                               " RETURNING *", uuid4(), jurisdiction, name, url, secret)


async def subscribers(conn, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT id, jurisdiction, name, url, active, created_at FROM webhook_subscribers WHERE {scope_sql('$1')}"
                            " ORDER BY created_at", scope)


async def enqueue_deliveries(conn, assessment_id: UUID, jurisdiction: str, body: str) -> int:
    """One delivery per active subscriber whose jurisdiction covers the township, in the assessment's transaction."""
    rows = await conn.fetch(
        "INSERT INTO webhook_deliveries (id, subscriber_id, assessment_id, body)"
        " SELECT gen_random_uuid(), s.id, $1, $3 FROM webhook_subscribers s"
        " WHERE s.active AND ($2 = s.jurisdiction OR starts_with($2, s.jurisdiction || '.')) RETURNING id",
        assessment_id, jurisdiction, body)
    return len(rows)


async def claim_due(conn, now: datetime, limit: int, lease_until: datetime) -> list[asyncpg.Record]:
    """Deliveries due at ``now``, claimed until ``lease_until`` (their next attempt is moved there),
    so that the POSTs happen outside any transaction and another replica skips them meanwhile; a
    replica that dies mid-POST leaves them due again when the lease ends."""
    return await conn.fetch(
        "UPDATE webhook_deliveries d SET next_attempt_at = $3 FROM webhook_subscribers s,"
        " (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1"
        "  ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due"
        " WHERE d.id = due.id AND s.id = d.subscriber_id RETURNING d.*, s.url, s.secret", now, limit, lease_until)


async def record_attempt(conn, delivery_id: UUID, at: datetime, status_code: int | None, error: str | None,
                         delivered: bool, next_attempt_at: datetime | None, alert: bool, manual: bool = False) -> None:
    await conn.execute("INSERT INTO webhook_attempts (delivery_id, at, status_code, error, manual) VALUES ($1, $2, $3, $4, $5)",
                       delivery_id, at, status_code, error, manual)
    if delivered:
        await conn.execute("UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, failures = 0,"
                           " delivered_at = $2 WHERE id = $1", delivery_id, at)
    else:
        await conn.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, failures = failures + 1, next_attempt_at = $2,"
            " alerted_at = CASE WHEN $3 THEN $4 ELSE alerted_at END WHERE id = $1", delivery_id, next_attempt_at, alert, at)


async def deliveries(conn, scope: str, status: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT d.id, d.subscriber_id, s.name AS subscriber, d.assessment_id, a.jurisdiction, a.year, a.version, d.status,
                   d.attempts, d.failures, d.next_attempt_at, d.delivered_at, d.alerted_at, d.created_at,
                   coalesce((SELECT jsonb_agg(jsonb_build_object('at', t.at, 'status_code', t.status_code, 'error', t.error,
                                                                 'manual', t.manual) ORDER BY t.seq)
                             FROM webhook_attempts t WHERE t.delivery_id = d.id), '[]') AS log
            FROM webhook_deliveries d JOIN webhook_subscribers s ON s.id = d.subscriber_id JOIN assessments a ON a.id = d.assessment_id
            WHERE {scope_sql('$1', 's.jurisdiction')} AND ($2::text IS NULL OR d.status = $2) ORDER BY d.created_at LIMIT $3""",
        scope, status, limit)


async def delivery(conn, scope: str, delivery_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT d.*, s.url, s.secret FROM webhook_deliveries d JOIN webhook_subscribers s ON s.id = d.subscriber_id"
        f" WHERE d.id = $1 AND {scope_sql('$2', 's.jurisdiction')} FOR UPDATE OF d", delivery_id, scope)


async def redeliver(conn, delivery_id: UUID, now: datetime) -> None:
    """Manual redelivery: due now again, even if it was delivered (the receiver keeps versions idempotently)."""
    await conn.execute("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2 WHERE id = $1", delivery_id, now)
