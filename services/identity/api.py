"""HTTP routes of the identity service: sign-in, refresh, sign-out, machine tokens, the
published keys, and accounts (managed by an administrator of the county).

For a web front (README "Signing in from a web front"): every answer is JSON and no cookie is
set here; the front keeps the refresh token in its own HttpOnly, SameSite cookie and calls
``/auth/refresh`` from its server while the page is in use."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, Field

from services.identity import accounts, domain, issuer, store
from services.identity.domain import Grant
from services.identity.hashing import hash_secret, needs_rehash, verify_secret
from shared.auth import Principal, Role, require
from shared.db import unit_of_work
from shared.fields import Identifier, Name, Term, items, text
from shared.http import Problem, command, problems

router = APIRouter(tags=["identity 身份"])
ADMIN = require(Role.ADMIN)
SECRET_FIELDS = ("password", "client_secret")


def _username(value: str) -> str:
    if not all(c.isalnum() or c in "._@-" for c in value) or not value[0].isalnum():
        raise ValueError("letters, digits and . _ @ - only, starting with a letter or digit")
    return value


Username = Annotated[text(64), AfterValidator(_username)]
Password = text(256)


class GrantIn(BaseModel):
    role: Literal[domain.ROLES]  # type: ignore[valid-type]
    jurisdiction: text(100)  # type: ignore[valid-type]
    unit: text(100, min_length=0) = ""  # type: ignore[valid-type]
    term: Term | None = None
    deputy_id: Identifier | None = None

    def grant(self) -> Grant:
        return Grant(self.role, self.jurisdiction, self.unit, self.term, self.deputy_id)


class SignInIn(BaseModel):
    username: Username
    password: Password
    role: Literal[domain.ROLES] | None = None  # type: ignore[valid-type]
    jurisdiction: text(100) | None = None  # type: ignore[valid-type]


class RefreshIn(BaseModel):
    refresh_token: text(200)  # type: ignore[valid-type]
    role: Literal[domain.ROLES] | None = Field(None, description="switch to another of the account's roles")  # type: ignore[valid-type]
    jurisdiction: text(100) | None = None  # type: ignore[valid-type]


class SignOutIn(BaseModel):
    refresh_token: text(200)  # type: ignore[valid-type]


class AccountIn(BaseModel):
    username: Username
    display_name: Name
    kind: Literal["person", "machine"] = "person"
    password: Password | None = Field(None, description="omitted: one is generated and returned once")
    oidc_subject: text(300) | None = Field(None, description="'<issuer>|<sub>': signs in through single sign-on")  # type: ignore[valid-type]
    grants: list[GrantIn] = items(20, min_length=1)


class GrantsIn(BaseModel):
    grants: list[GrantIn] = items(20, min_length=1)


class PasswordIn(BaseModel):
    password: Password | None = Field(None, description="omitted: one is generated and returned once")


class OwnPasswordIn(BaseModel):
    username: Username
    current_password: Password
    new_password: Password


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


def _redact(body: dict[str, Any]) -> dict[str, Any]:
    """What a retried request gets back: never a generated password again."""
    return {k: (None if k in SECRET_FIELDS else v) for k, v in body.items()}


async def tokens_for(request: Request, conn, row, grant: Grant, family=None) -> dict[str, Any]:
    """An access token for one grant, and (for a person) a refresh token; the answer of every sign-in."""
    settings = request.app.state.settings
    answer: dict[str, Any] = {
        "access_token": issuer.access_token(settings, row["username"], row["display_name"], grant),
        "token_type": "Bearer", "expires_in": settings.access_token_seconds, "grant": grant.__dict__,
        "grants": [g.__dict__ for g in await store.grants(conn, row["id"])],
    }
    if row["kind"] == "person":
        answer["refresh_token"] = await store.new_refresh_token(conn, row["id"], grant, settings.refresh_token_seconds, family)
        answer["refresh_expires_in"] = settings.refresh_token_seconds
    return answer


async def check_secret(request: Request, username: str, secret: str, kind: str):
    """The account, if ``secret`` is its password (or client secret); throttled per address and
    per account, every outcome audited."""
    settings, pool, address = request.app.state.settings, request.app.state.pool, _address(request)
    window = settings.signin_lockout_seconds
    async with pool.acquire() as conn:
        if await store.address_failures(conn, address, window) >= settings.signin_address_failures:
            raise Problem(429, "too-many-attempts", "尝试次数过多，请稍后再试 Too many failed sign-ins from this address",
                          f"wait up to {window} s", retry_after=window)
        row = await store.account(conn, username)
    now = datetime.now(UTC)
    if row is not None and domain.locked(row["locked_until"], now):
        wait = int((row["locked_until"] - now).total_seconds()) + 1
        raise Problem(429, "account-locked", "账户已锁定 Account locked after repeated failures",
                      f"try again in {wait} s, or ask an administrator to reset the password", retry_after=wait)
    usable = row is not None and row["kind"] == kind
    if not await verify_secret(row["password_hash"] if usable else None, secret):
        async with unit_of_work(pool, "identity") as uow:
            failures = await store.record_failure(uow.conn, address, username, row["id"] if row else None)
            until = domain.after_failure(failures, now, domain.Lockout(settings.signin_max_failures, window)) if row else None
            if until:
                await store.lock(uow.conn, row["id"], until)
            juris = (await store.grants(uow.conn, row["id"]))[0].jurisdiction if row else "*"
            await uow.audit(juris, username, "sign-in-failed", "account", username,
                            after={"address": address, "kind": kind, "locked_until": until and until.isoformat()})
        raise Problem(401, "sign-in-failed", "用户名或密码错误 Wrong name or password", "")
    if row["disabled"]:
        raise Problem(403, "account-disabled", "账户已停用 Account disabled", "ask an administrator of your county")
    return row


@router.post("/auth/sign-in", responses=problems(401, 403, 429))
async def sign_in(body: SignInIn, request: Request) -> dict[str, Any]:
    """A person signs in with name and password: an access token (minutes) for one of the
    account's grants, and a refresh token. ``role``/``jurisdiction`` pick the grant."""
    row = await check_secret(request, body.username, body.password, "person")
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        grants = await store.grants(uow.conn, row["id"])
        try:
            grant = domain.pick_grant(grants, body.role, body.jurisdiction)
        except domain.Refused as exc:
            raise accounts.refused(exc) from exc
        rehashed = await hash_secret(body.password) if needs_rehash(row["password_hash"]) else None
        await store.signed_in(uow.conn, row["id"], rehashed)
        await uow.audit(grant.jurisdiction, body.username, "sign-in", "account", body.username,
                        after={"address": _address(request), "role": grant.role, "jurisdiction": grant.jurisdiction})
        return await tokens_for(request, uow.conn, row, grant)


@router.post("/auth/refresh", responses=problems(401, 403))
async def refresh(body: RefreshIn, request: Request) -> dict[str, Any]:
    """A new access token and a new refresh token (each refresh token is good once); optionally
    for another of the account's grants. A refresh token used twice ends the whole sign-in."""
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        taken = await store.take_refresh_token(uow.conn, body.refresh_token)
        if taken == "reused":
            await uow.audit("*", "-", "refresh-token-reused", "sign-in", "-", after={"address": _address(request)})
        elif taken is not None:
            row = await uow.conn.fetchrow("SELECT * FROM accounts WHERE id = $1", taken["account_id"])
            if not row["disabled"]:
                try:
                    grant = domain.pick_grant(await store.grants(uow.conn, row["id"]), body.role or taken["role"],
                                              body.jurisdiction or (None if body.role else taken["jurisdiction"]))
                except domain.Refused as exc:
                    raise accounts.refused(exc) from exc  # rolls back: the refresh token stays good
                return await tokens_for(request, uow.conn, row, grant, taken["family"])
    if taken == "reused":
        raise Problem(401, "refresh-token-reused", "登录已失效 Sign in again",
                      "this refresh token was already used: every token of this sign-in is revoked")
    raise Problem(401, "refresh-token-invalid", "登录已失效 Sign in again", "unknown, expired, revoked, or the account disabled")


@router.post("/auth/sign-out", status_code=204, responses=problems())
async def sign_out(body: SignOutIn, request: Request) -> None:
    """Ends the sign-in: its refresh tokens are revoked (access tokens run out within minutes)."""
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        row = await uow.conn.fetchrow("SELECT family FROM refresh_tokens WHERE hash = $1", store.digest(body.refresh_token))
        if row:
            await store.revoke_family(uow.conn, row["family"])


@router.post("/oauth/token", responses=problems(400, 401, 403, 429))
async def client_token(request: Request) -> dict[str, Any]:
    """OAuth 2.0 client credentials (RFC 6749 §4.4) for machine accounts, e.g. the county
    assessment system: form ``grant_type=client_credentials``, the client id and secret in HTTP
    Basic or as ``client_id``/``client_secret``. Optional ``role``/``jurisdiction`` pick the grant."""
    raw = await request.body()
    try:
        form = {k: v[0] for k, v in parse_qs(raw.decode(), max_num_fields=10).items()} if len(raw) < 4096 else {}
    except (UnicodeDecodeError, ValueError):
        form = {}
    client_id, secret = form.get("client_id"), form.get("client_secret")
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = None
    if form.get("grant_type") != "client_credentials":
        raise Problem(400, "unsupported-grant-type", "不支持的授权方式 Unsupported grant type",
                      "grant_type=client_credentials", error="unsupported_grant_type")
    if not client_id or not secret or len(client_id) > 64 or len(secret) > 256 or "\x00" in client_id + secret:
        raise Problem(401, "invalid-client", "客户端认证失败 Client authentication failed", "", error="invalid_client")
    row = await check_secret(request, client_id, secret, "machine")
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        try:
            grant = domain.pick_grant(await store.grants(uow.conn, row["id"]), form.get("role"), form.get("jurisdiction"))
        except domain.Refused as exc:
            raise accounts.refused(exc) from exc
        await uow.audit(grant.jurisdiction, client_id, "client-token", "account", client_id, after={"address": _address(request)})
        return await tokens_for(request, uow.conn, row, grant)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    """The public keys tokens are signed with (JWKS): what every service verifies against."""
    return issuer.jwks(request.app.state.settings)


@router.get("/me", responses=problems())
async def me(who: Principal = Depends(require())) -> dict[str, Any]:
    """Who this token says the caller is."""
    return who.model_dump(mode="json", exclude={"own"})


@router.post("/auth/password", status_code=204, responses=problems(401, 403, 429))
async def change_own_password(body: OwnPasswordIn, request: Request) -> None:
    """A person changes their own password (e.g. the one printed at set-up) with the current one."""
    row = await check_secret(request, body.username, body.current_password, "person")
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        await accounts.reset_password(uow, body.username, None, row["username"], body.new_password)


# ---------------------------------------------------------------- accounts (administrators of the county)


@router.get("/accounts", responses=problems(403))
async def list_accounts(request: Request, who: Principal = Depends(ADMIN)) -> list[dict[str, Any]]:
    async with request.app.state.pool.acquire() as conn:
        return await store.accounts_within(conn, who.jurisdiction)


@router.post("/accounts", status_code=201, responses=problems(403, 409))
async def add_account(body: AccountIn, request: Request, who: Principal = Depends(ADMIN)):
    """A new account; a generated password (or a machine's client secret) is in the answer, once."""
    return await command(request, who.sub, lambda uow: accounts.add(
        uow, who.sub, who.jurisdiction, body.username, body.display_name, body.kind, body.password,
        [g.grant() for g in body.grants], body.oidc_subject), 201, secret=_redact)


@router.get("/accounts/{username}", responses=problems(403, 404))
async def get_account(username: Username, request: Request, who: Principal = Depends(ADMIN)) -> dict[str, Any]:
    for account in await list_accounts(request, who):
        if account["username"] == username and domain.manages(who.jurisdiction, [Grant(**g) for g in account["grants"]]):
            return account
    raise store.not_found("account", username)


@router.put("/accounts/{username}/grants", responses=problems(403, 404))
async def put_grants(username: Username, body: GrantsIn, request: Request, who: Principal = Depends(ADMIN)):
    return await command(request, who.sub, lambda uow: accounts.set_grants(
        uow, who.sub, who.jurisdiction, username, [g.grant() for g in body.grants]))


@router.post("/accounts/{username}/disable", responses=problems(403, 404))
async def disable(username: Username, request: Request, who: Principal = Depends(ADMIN)):
    return await command(request, who.sub, lambda uow: accounts.set_disabled(uow, who.sub, who.jurisdiction, username, True))


@router.post("/accounts/{username}/enable", responses=problems(403, 404))
async def enable(username: Username, request: Request, who: Principal = Depends(ADMIN)):
    return await command(request, who.sub, lambda uow: accounts.set_disabled(uow, who.sub, who.jurisdiction, username, False))


@router.post("/accounts/{username}/password", responses=problems(403, 404))
async def reset_password(username: Username, body: PasswordIn, request: Request, who: Principal = Depends(ADMIN)):
    """A new password (generated and shown once if none is given); unlocks the account."""
    return await command(request, who.sub, lambda uow: accounts.reset_password(
        uow, who.sub, who.jurisdiction, username, body.password), secret=_redact)
