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

from shared import audit as audit_chain
from shared import tracing
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
        **kwargs,
    )


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
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        audit_chain.chain_unchained(conn, schema)  # rows written before the chain existed, once
    return [m.id for m in pending]


@dataclass
class UnitOfWork:
    """One transaction: the state change and the events it causes commit together."""

    conn: asyncpg.Connection
    producer: str
    correlation_id: UUID
    causation_id: UUID | None = None
    emitted: list[Envelope] = field(default_factory=list)
    audited: list[audit_chain.Entry] = field(default_factory=list)

    async def emit(self, payload: Payload, jurisdiction: str) -> Envelope:
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
            "INSERT INTO outbox (id, routing_key, body) VALUES ($1, $2, $3)",
            envelope.id, envelope.type, envelope.model_dump(mode="json"),
        )
        self.emitted.append(envelope)
        with tracing.outbox_span(envelope):  # a span the relay's publish span names as its parent
            pass
        return envelope

    async def audit(
        self, jurisdiction: str, actor: str, action: str, entity: str, entity_id: Any,
        before: Any = None, after: Any = None,
    ) -> None:
        """Who did what: appended to the service's audit chain when the unit of work ends (shared/audit.py)."""
        self.audited.append(audit_chain.Entry(jurisdiction, actor, action, entity, str(entity_id), before, after))


@asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool, producer: str, correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, producer, correlation_id or tracing.current_correlation() or uuid4(), causation_id)
        yield uow
        if uow.audited:  # last: the chain's head stays locked only while this commits
            await audit_chain.append(conn, producer, uow.audited)
        if uow.emitted:
            # NOTIFY is transactional: the relay wakes only if this commits.
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(producer))
