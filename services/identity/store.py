"""SQL of the identity service."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from services.identity.domain import LIVE, Grant, Live, Status
from services.identity.hashing import digest
from shared.http import Problem


def not_found(what: str, key: Any) -> Problem:
    return Problem(404, f"{what}-not-found", f"未找到 {what} not found", f"no {what} {key} in your jurisdiction")


# ---------------------------------------------------------------- accounts


async def account(conn, username: str, lock: str = ""):
    return await conn.fetchrow(f"SELECT * FROM accounts WHERE username = $1 {lock}", username)


async def grants(conn, account_id: UUID) -> list[Grant]:
    rows = await conn.fetch("SELECT role, jurisdiction, unit, term, deputy_id FROM grants WHERE account_id = $1"
                            " ORDER BY role, jurisdiction", account_id)
    return [Grant(**dict(r)) for r in rows]


async def set_grants(conn, account_id: UUID, new: list[Grant]) -> None:
    await conn.execute("DELETE FROM grants WHERE account_id = $1", account_id)
    await conn.executemany(
        "INSERT INTO grants (account_id, role, jurisdiction, unit, term, deputy_id) VALUES ($1, $2, $3, $4, $5, $6)",
        [(account_id, g.role, g.jurisdiction, g.unit, g.term, g.deputy_id) for g in new],
    )


async def create_account(conn, username: str, display_name: str, kind: str, password_hash: str | None,
                         oidc_subject: str | None, created_by: str, new_grants: list[Grant]) -> UUID:
    account_id = uuid4()
    await conn.execute(
        "INSERT INTO accounts (id, username, display_name, kind, password_hash, oidc_subject, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        account_id, username, display_name, kind, password_hash, oidc_subject, created_by,
    )
    await set_grants(conn, account_id, new_grants)
    return account_id


async def accounts_within(conn, scope: str) -> list[dict[str, Any]]:
    """Accounts with a grant in ``scope`` or below (all for ""), each with all its grants."""
    rows = await conn.fetch(
        """SELECT a.*, coalesce(jsonb_agg(jsonb_build_object('role', g.role, 'jurisdiction', g.jurisdiction, 'unit', g.unit,
                  'term', g.term, 'deputy_id', g.deputy_id) ORDER BY g.role, g.jurisdiction)
                  FILTER (WHERE g.role IS NOT NULL), '[]') AS grants
           FROM accounts a LEFT JOIN grants g ON g.account_id = a.id
           WHERE EXISTS (SELECT 1 FROM grants s WHERE s.account_id = a.id
                         AND ($1 = '' OR s.jurisdiction = $1 OR starts_with(s.jurisdiction, $1 || '.')))
           GROUP BY a.id ORDER BY a.username""", scope)
    return [public(r, [Grant(**g) for g in r["grants"]]) for r in rows]


def public(row, account_grants: list[Grant]) -> dict[str, Any]:
    """An account as an administrator sees it: never a hash."""
    return {"username": row["username"], "display_name": row["display_name"], "kind": row["kind"],
            "disabled": row["disabled"], "locked_until": row["locked_until"], "sso": row["oidc_subject"] is not None,
            "created_at": row["created_at"], "created_by": row["created_by"],
            "grants": [g.__dict__ for g in account_grants]}


async def any_admin(conn) -> bool:
    return bool(await conn.fetchval("SELECT true FROM grants WHERE role = 'admin' LIMIT 1"))


# ---------------------------------------------------------------- sign-in bookkeeping


async def address_failures(conn, address: str, seconds: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM signin_failures WHERE address = $1 AND at > now() - make_interval(secs => $2)", address, seconds)


async def record_failure(conn, address: str, username: str, account_id: UUID | None) -> int:
    """Counts the failure; returns the account's consecutive failures (0 for an unknown name)."""
    await conn.execute("INSERT INTO signin_failures (address, username) VALUES ($1, $2)", address, username)
    await conn.execute("DELETE FROM signin_failures WHERE at < now() - interval '1 day'")
    if account_id is None:
        return 0
    return await conn.fetchval(
        "UPDATE accounts SET failed_signins = failed_signins + 1 WHERE id = $1 RETURNING failed_signins", account_id)


async def lock(conn, account_id: UUID, until: datetime) -> None:
    await conn.execute("UPDATE accounts SET locked_until = $2 WHERE id = $1", account_id, until)


async def signed_in(conn, account_id: UUID, rehashed: str | None = None) -> None:
    await conn.execute("UPDATE accounts SET failed_signins = 0, locked_until = NULL,"
                       " password_hash = coalesce($2, password_hash) WHERE id = $1", account_id, rehashed)


# ---------------------------------------------------------------- refresh tokens


async def new_refresh_token(conn, account_id: UUID, grant: Grant, seconds: int, family: UUID | None = None) -> str:
    token = "rt_" + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO refresh_tokens (hash, family, account_id, role, jurisdiction, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        digest(token), family or uuid4(), account_id, grant.role, grant.jurisdiction, seconds,
    )
    return token


async def take_refresh_token(conn, token: str):
    """The refresh token's row, marked used (each is good once). A second use of one revokes its
    whole family and returns None, as does an unknown, expired or revoked one."""
    row = await conn.fetchrow("SELECT * FROM refresh_tokens WHERE hash = $1 FOR UPDATE", digest(token))
    if row is None or row["revoked_at"] is not None or row["expires_at"] < datetime.now(row["expires_at"].tzinfo):
        return None
    if row["used_at"] is not None:
        await revoke_family(conn, row["family"])
        return "reused"
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE hash = $1", row["hash"])
    return row


async def revoke_family(conn, family: UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL", family)


async def revoke_account_tokens(conn, account_id: UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL", account_id)


# ---------------------------------------------------------------- sessions and credentials


async def session_by_code(conn, code: str):
    return await conn.fetchrow("SELECT * FROM sessions WHERE checkin_code = $1", code.strip().upper())


async def session_of_office(conn, session_id: UUID, jurisdiction: str):
    """The session, if it belongs to the caller's own congress (a write of that congress)."""
    row = await conn.fetchrow("SELECT * FROM sessions WHERE id = $1 AND jurisdiction = $2", session_id, jurisdiction)
    if row is None:
        raise not_found("session", session_id)
    return row


async def present(conn, session_id: UUID, deputy_id: str) -> bool:
    return bool(await conn.fetchval("SELECT present FROM attendance WHERE session_id = $1 AND deputy_id = $2",
                                    session_id, deputy_id))


async def live_credential(conn, session_id: UUID, deputy_id: str):
    """The deputy's live credential in the session, locked (check-ins of one deputy go one at a time)."""
    return await conn.fetchrow(
        "SELECT * FROM credentials WHERE session_id = $1 AND deputy_id = $2 AND status = ANY($3::text[]) FOR UPDATE",
        session_id, deputy_id, list(LIVE))


def as_live(row) -> Live | None:
    return None if row is None else Live(Status(row["status"]), row["device_hash"])


async def end_credential(conn, session_id: UUID, deputy_id: str, status: Status, reason: str):
    """End the live credential, if any; returns it."""
    return await conn.fetchrow(
        "UPDATE credentials SET status = $3, ended_at = now(), reason = $4"
        " WHERE session_id = $1 AND deputy_id = $2 AND status = ANY($5::text[]) RETURNING *",
        session_id, deputy_id, status, reason, list(LIVE))


async def activate(conn, credential_id: UUID, seconds: int):
    return await conn.fetchrow(
        "UPDATE credentials SET status = 'active', activated_at = now(), expires_at = now() + make_interval(secs => $2)"
        " WHERE id = $1 RETURNING *", credential_id, seconds)


async def new_credential(conn, session_id: UUID, deputy_id: str, device_hash: str, status: Status, seconds: int,
                         bound_by: str | None = None):
    return await conn.fetchrow(
        "INSERT INTO credentials (id, session_id, deputy_id, device_hash, tablet, bound_by, status, activated_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 = 'active' THEN now() END,"
        "         CASE WHEN $7 = 'active' THEN now() + make_interval(secs => $8) END) RETURNING *",
        uuid4(), session_id, deputy_id, device_hash, bound_by is not None, bound_by, status, seconds)


async def new_display_credential(conn, session_id: UUID, issued_by: str, seconds: int):
    """The hall display's credential: no deputy, no device; the office account that turned it on."""
    return await conn.fetchrow(
        "INSERT INTO credentials (id, session_id, kind, bound_by, status, activated_at, expires_at)"
        " VALUES ($1, $2, 'display', $3, 'active', now(), now() + make_interval(secs => $4)) RETURNING *",
        uuid4(), session_id, issued_by, seconds)


async def personal_code(conn, jurisdiction: str, term: int, deputy_id: str):
    return await conn.fetchrow("SELECT * FROM personal_codes WHERE jurisdiction = $1 AND term = $2 AND deputy_id = $3"
                               " FOR UPDATE", jurisdiction, term, deputy_id)


def expires_in(row) -> int:
    return max(0, int((row["expires_at"] - datetime.now(row["expires_at"].tzinfo)) / timedelta(seconds=1)))
