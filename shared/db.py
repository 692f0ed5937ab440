"""PostgreSQL: the pool, migrations (yoyo), and the unit of work that writes the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import psycopg
from yoyo import get_backend, read_migrations

from shared.contracts.envelope import Envelope, Payload
from shared.settings import Settings

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_ in ("json", "jsonb"):
        await conn.set_type_codec(
            type_, schema="pg_catalog", encoder=lambda v: json.dumps(v, ensure_ascii=False, default=str),
            decoder=json.loads,
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Connections go back to the pool as they are: we keep no session state (search_path is set
    at connect, locks are transaction-scoped, LISTEN has its own connection), so the default
    reset query would be a wasted round trip on every request."""


async def create_pool(settings: Settings, schema: str, **kwargs: Any) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=kwargs.pop("max_size", settings.db_pool_max),
        server_settings={"search_path": schema, "application_name": f"piaojue-{schema}"},
        init=_init_connection,
        reset=_keep_session,
        timeout=settings.db_connect_timeout_seconds,  # a new connection gives up: no request waits on a dead host
        **kwargs,
    )


# What "the database is unavailable right now" looks like from asyncpg: it cannot connect (refused,
# timed out, class 08), the server is starting, shutting down or was restarted under us (class 57:
# 57P01-03; a cancelled statement too), it is out of connections or resources (class 53), or the
# connection broke in the middle of a statement. Requests answer 503 with Retry-After for these
# (shared.http), never 500; background loops retry them.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08*: ConnectionDoesNotExistError, ConnectionFailureError, ...
    asyncpg.exceptions.OperatorInterventionError,  # 57*: CannotConnectNowError, AdminShutdownError, ...
    asyncpg.exceptions.InsufficientResourcesError,  # 53*: TooManyConnectionsError, disk or memory full
    OSError,  # connection refused or reset, host unreachable (ConnectionError is an OSError)
    TimeoutError,  # connecting, or waiting for a pooled connection, took too long
)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unavailable for now (retry later), not a bug."""
    if isinstance(exc, asyncpg.InterfaceError):  # asyncpg's own: only a closed connection is an outage
        return "closed" in str(exc)
    return isinstance(exc, UNAVAILABLE)


def migrate(settings: Settings, schema: str, migrations: Path) -> list[str]:
    """Bring ``schema`` up to date: the shared plumbing, then the service's own SQL.
    Returns the ids applied. Safe to run from several processes at once (yoyo takes a lock)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    parts = urlsplit(settings.database_url)
    query = "&".join(q for q in (parts.query, f"schema={schema}") if q)  # keep sslmode and the like
    url = urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, query, ""))
    backend = get_backend(url, migration_table="_yoyo_migration")
    found = read_migrations(str(SHARED_MIGRATIONS), str(migrations))
    with backend.lock():
        pending = backend.to_apply(found)
        backend.apply_migrations(pending)
    return [m.id for m in pending]


# The id naming an event's aggregate, most encompassing first: a project's events stay in order
# (scoring relies on it), a session's (created, attendance, its votes' results, revoked credentials).
AGGREGATE_IDS = ("project_id", "session_id", "vote_id", "slate_id", "assessment_id", "item_id", "credential_id")


def aggregate_of(payload: Payload) -> str:
    """The outbox's ordering key for an event: ``<field>:<id>`` of the first AGGREGATE_IDS field the
    payload has; an event with none of them is ordered with every other such event of its type."""
    for name in AGGREGATE_IDS:
        value = getattr(payload, name, None)
        if value is not None:
            return f"{name}:{value}"
    return f"type:{payload.TYPE}"


@dataclass
class UnitOfWork:
    """One transaction: the state change and the events it causes commit together."""

    conn: asyncpg.Connection
    producer: str
    correlation_id: UUID
    causation_id: UUID | None = None
    emitted: list[Envelope] = field(default_factory=list)

    async def emit(self, payload: Payload, jurisdiction: str, aggregate: str | None = None) -> Envelope:
        """Write the event to the outbox. ``aggregate`` (default: ``aggregate_of(payload)``) is what
        the relay keeps in order: an aggregate's later event is never published before its earlier one."""
        envelope = Envelope(
            type=payload.TYPE,
            version=payload.VERSION,
            jurisdiction=jurisdiction,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            producer=self.producer,
            data=payload.model_dump(mode="json"),
        )
        await self.conn.execute(
            "INSERT INTO outbox (id, routing_key, body, aggregate) VALUES ($1, $2, $3, $4)",
            envelope.id, envelope.type, envelope.model_dump(mode="json"), aggregate or aggregate_of(payload),
        )
        self.emitted.append(envelope)
        return envelope

    async def audit(
        self, jurisdiction: str, actor: str, action: str, entity: str, entity_id: Any,
        before: Any = None, after: Any = None,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO audit (jurisdiction, actor, action, entity, entity_id, before, after)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            jurisdiction, actor, action, entity, str(entity_id), before, after,
        )


@asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool, producer: str, correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, producer, correlation_id or uuid4(), causation_id)
        yield uow
        if uow.emitted:
            # NOTIFY is transactional: the relay wakes only if this commits.
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(producer))


async def prune(pool: asyncpg.Pool, settings: Settings) -> dict[str, int]:
    """Delete what is kept only for a while: outbox rows published longer ago than their retention,
    inbox event ids, Idempotency-Key answers. Each table in its own short statement; safe in every
    replica at once. Returns the rows deleted per table."""
    deleted = {}
    for table, column, days, unpublished_only in (
        ("outbox", "published_at", settings.outbox_retention_days, True),
        ("inbox", "received_at", settings.inbox_retention_days, False),
        ("idempotency", "created_at", settings.idempotency_retention_days, False),
    ):
        status = await pool.execute(
            f"DELETE FROM {table} WHERE {column} < now() - make_interval(secs => $1)"
            + (" AND published_at IS NOT NULL" if unpublished_only else ""), days * 86400.0)
        deleted[table] = int(status.split()[-1])
    return deleted
