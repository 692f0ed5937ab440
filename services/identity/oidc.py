"""Single sign-on (OIDC authorization code flow with PKCE, authlib as the client), where the county
already has a provider: instead of a password, the provider says who the person is, and the
account an administrator linked to that subject (``oidc_subject`` = "<issuer>|<sub>") signs in.
The provider must be HTTPS (authlib refuses plain HTTP unless AUTHLIB_INSECURE_TRANSPORT is set,
which only a local test does)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from services.identity import store
from services.identity.api import tokens_for
from services.identity.domain import pick_grant
from shared.db import unit_of_work
from shared.fields import text
from shared.http import Problem, problems
from shared.settings import Settings

router = APIRouter(tags=["identity 身份"])
_ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]  # the provider's asymmetric keys only
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}


def _configured(settings: Settings) -> None:
    if not (settings.oidc_issuer and settings.oidc_client_id):
        raise Problem(404, "sso-not-configured", "未配置统一身份认证 Single sign-on is not configured",
                      "set PIAOJUE_OIDC_ISSUER, PIAOJUE_OIDC_CLIENT_ID and PIAOJUE_OIDC_CLIENT_SECRET")


async def _provider(settings: Settings) -> dict[str, Any]:
    """The provider's metadata (OIDC discovery), kept for an hour."""
    cached = _metadata.get(settings.oidc_issuer)
    if cached and time.monotonic() - cached[0] < 3600:
        return cached[1]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration")
            response.raise_for_status()
            meta = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Problem(503, "sso-unavailable", "统一身份认证不可用 Single sign-on unavailable", str(exc), retry_after=30) from exc
    _metadata[settings.oidc_issuer] = (time.monotonic(), meta)
    return meta


def _client(settings: Settings) -> AsyncOAuth2Client:
    redirect = settings.oidc_redirect_url or f"{settings.url('identity')}/auth/oidc/callback"
    return AsyncOAuth2Client(settings.oidc_client_id, settings.oidc_client_secret, scope="openid profile email",
                             redirect_uri=redirect, code_challenge_method="S256", timeout=10)


async def _provider_key(meta: dict[str, Any], id_token: str) -> Any:
    """The provider's key for this ID token: by its key id, or the provider's only key."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(meta["jwks_uri"])
        response.raise_for_status()
    keys = [k for k in jwt.PyJWKSet.from_dict(response.json()).keys if k.public_key_use in (None, "sig")]
    kid = jwt.get_unverified_header(id_token).get("kid")
    matching = [k for k in keys if k.key_id == kid] if kid else keys
    if len(matching) != 1:
        raise jwt.InvalidTokenError(f"no single provider key for key id {kid!r}")
    return matching[0].key


@router.get("/auth/oidc/start", status_code=302, responses=problems(404, 503))
async def start(request: Request) -> RedirectResponse:
    """Sends the browser to the county's provider."""
    settings = request.app.state.settings
    _configured(settings)
    meta = await _provider(settings)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    async with _client(settings) as client:
        url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier)
    async with request.app.state.pool.acquire() as conn:
        await conn.execute("DELETE FROM oidc_requests WHERE created_at < now() - interval '10 minutes'")
        await conn.execute("INSERT INTO oidc_requests (state, nonce, verifier) VALUES ($1, $2, $3)", state, nonce, verifier)
    return RedirectResponse(url, status_code=302)


@router.get("/auth/oidc/callback", responses=problems(400, 401, 403, 404, 503))
async def callback(request: Request, code: text(2000), state: text(200)) -> dict[str, Any]:  # type: ignore[valid-type]
    """Where the provider sends the browser back: the same tokens as a password sign-in."""
    settings = request.app.state.settings
    _configured(settings)
    pool = request.app.state.pool
    pending = await pool.fetchrow("DELETE FROM oidc_requests WHERE state = $1 AND created_at > now() - interval '10 minutes'"
                                  " RETURNING nonce, verifier", state)
    if pending is None:
        raise Problem(400, "sso-state-invalid", "登录请求已失效 The sign-in request expired", "start again")
    meta = await _provider(settings)
    try:
        async with _client(settings) as client:
            token = await client.fetch_token(meta["token_endpoint"], code=code, code_verifier=pending["verifier"])
        id_token = token.get("id_token", "")
        claims = jwt.decode(id_token, await _provider_key(meta, id_token), algorithms=_ID_TOKEN_ALGORITHMS,
                            audience=settings.oidc_client_id,
                            issuer=meta["issuer"], options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except (OAuth2Error, jwt.PyJWTError, httpx.HTTPError, KeyError, ValueError) as exc:
        raise Problem(401, "sso-failed", "统一身份认证失败 Single sign-on failed", str(exc)[:300]) from exc
    if claims.get("nonce") != pending["nonce"]:
        raise Problem(401, "sso-failed", "统一身份认证失败 Single sign-on failed", "nonce mismatch")
    subject = f"{claims['iss']}|{claims['sub']}"
    async with unit_of_work(pool, "identity") as uow:
        row = await uow.conn.fetchrow("SELECT * FROM accounts WHERE oidc_subject = $1", subject)
        if row is None or row["disabled"]:
            await uow.audit("*", subject, "sign-in-failed", "account", subject, after={"method": "sso", "known": row is not None})
        else:
            grant = pick_grant(await store.grants(uow.conn, row["id"]), None, None)
            await uow.audit(grant.jurisdiction, row["username"], "sign-in", "account", row["username"], after={"method": "sso"})
            return await tokens_for(request, uow.conn, row, grant)
    raise Problem(403, "sso-no-account", "无对应账户 No account for this person",
                  "an administrator of the county links an account to this single sign-on subject")

