"""Account changes, one function each, used by the HTTP routes (an administrator of the county)
and by the command line on the server (``piaojue users``). Each runs in the caller's unit of
work and is audited there."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.identity import domain, store
from services.identity.domain import Grant
from services.identity.hashing import hash_secret
from shared.db import UnitOfWork
from shared.http import Problem


def refused(exc: domain.Refused) -> Problem:
    return Problem(exc.status, exc.code, "不符合账户规则 Refused by the account rules", str(exc))


def _audit_scope(grants: list[Grant]) -> str:
    return grants[0].jurisdiction if grants else "*"


def _check_manages(scope: str | None, grants: list[Grant], username: str) -> None:
    """``scope`` None: the command line on the server, which manages every account."""
    if scope is not None and not domain.manages(scope, grants):
        raise Problem(404, "account-not-found", "未找到账户 Account not found",
                      f"no account {username} that your jurisdiction manages")


async def _existing(uow: UnitOfWork, scope: str | None, username: str):
    row = await store.account(uow.conn, username, "FOR UPDATE")
    current = await store.grants(uow.conn, row["id"]) if row else []
    if row is None:
        raise Problem(404, "account-not-found", "未找到账户 Account not found", f"no account {username}")
    _check_manages(scope, current, username)
    return row, current


async def add(uow: UnitOfWork, actor: str, scope: str | None, username: str, display_name: str, kind: str,
              password: str | None, grants: list[Grant], oidc_subject: str | None = None) -> dict[str, Any]:
    """A new account. A person without a password gets a generated one (returned once) unless it
    signs in only through single sign-on; a machine always gets a generated client secret."""
    try:
        domain.check_grants(grants)
        if password is not None:
            domain.check_password(password, username)
    except domain.Refused as exc:
        raise refused(exc) from exc
    _check_manages(scope, grants, username)
    generated = None
    if kind == "machine" or (password is None and oidc_subject is None):
        generated = password = domain.new_password()
    try:
        async with uow.conn.transaction():  # a savepoint: a taken name is a clear 409, not an aborted transaction
            await store.create_account(uow.conn, username, display_name, kind, password and await hash_secret(password),
                                       oidc_subject, actor, grants)
    except asyncpg.UniqueViolationError as exc:
        raise Problem(409, "account-exists", "账户已存在 Account exists",
                      f"the name {username} (or that single sign-on subject) is taken") from exc
    await uow.audit(_audit_scope(grants), actor, "create", "account", username,
                    after={"display_name": display_name, "kind": kind, "grants": [g.__dict__ for g in grants],
                           "sso": oidc_subject is not None})
    answer = store.public(await store.account(uow.conn, username), grants)
    if generated:
        answer["client_secret" if kind == "machine" else "password"] = generated  # shown once
    return answer


async def set_grants(uow: UnitOfWork, actor: str, scope: str | None, username: str, grants: list[Grant]) -> dict[str, Any]:
    try:
        domain.check_grants(grants)
    except domain.Refused as exc:
        raise refused(exc) from exc
    row, before = await _existing(uow, scope, username)
    _check_manages(scope, grants, username)
    await store.set_grants(uow.conn, row["id"], grants)
    await store.revoke_account_tokens(uow.conn, row["id"])  # refresh tokens name a grant that may be gone
    await uow.audit(_audit_scope(grants), actor, "set-grants", "account", username,
                    before=[g.__dict__ for g in before], after=[g.__dict__ for g in grants])
    return store.public(await store.account(uow.conn, username), grants)


async def set_disabled(uow: UnitOfWork, actor: str, scope: str | None, username: str, disabled: bool) -> dict[str, Any]:
    row, grants = await _existing(uow, scope, username)
    await uow.conn.execute("UPDATE accounts SET disabled = $2 WHERE id = $1", row["id"], disabled)
    if disabled:
        await store.revoke_account_tokens(uow.conn, row["id"])
    await uow.audit(_audit_scope(grants), actor, "disable" if disabled else "enable", "account", username,
                    before={"disabled": row["disabled"]}, after={"disabled": disabled})
    return store.public(await store.account(uow.conn, username), grants)


async def reset_password(uow: UnitOfWork, actor: str, scope: str | None, username: str, password: str | None) -> dict[str, Any]:
    """A new password (generated and returned once if none is given); unlocks the account and
    ends its sign-ins (refresh tokens)."""
    row, grants = await _existing(uow, scope, username)
    generated = None
    if password is None:
        generated = password = domain.new_password()
    try:
        domain.check_password(password, username)
    except domain.Refused as exc:
        raise refused(exc) from exc
    await uow.conn.execute("UPDATE accounts SET password_hash = $2, failed_signins = 0, locked_until = NULL WHERE id = $1",
                           row["id"], await hash_secret(password))
    await store.revoke_account_tokens(uow.conn, row["id"])
    await uow.audit(_audit_scope(grants), actor, "reset-password", "account", username, after={"generated": bool(generated)})
    answer = store.public(await store.account(uow.conn, username), grants)
    if generated:
        answer["client_secret" if row["kind"] == "machine" else "password"] = generated
    return answer
