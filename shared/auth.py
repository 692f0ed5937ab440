"""Who is calling: bearer tokens verified with the issuer's public keys, roles, jurisdictions.

Only the identity service signs tokens (``services/identity``); every service verifies them
here with public keys (``PIAOJUE_AUTH_JWKS``, and, if set, unknown key ids fetched from
``PIAOJUE_AUTH_JWKS_URL``). A token carries a subject, a role and a jurisdiction (辖区).
Jurisdictions are dotted paths: the county ``taihu`` contains the township ``taihu.fuyu``. A
caller sees its own jurisdiction and everything below it; a write that belongs to a township's
congress takes only that township's own token (``require(..., own=True)``)."""

from __future__ import annotations

import base64
import json
import re
import time
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ValidationError

from shared import tokens
from shared.fields import Jurisdiction, Name, OptionalName, text
from shared.http import Problem
from shared.settings import Settings, get_settings

log = structlog.get_logger()
Subject = text(200)
# Declared (not read: authenticate() reads the header) so that OpenAPI documents the bearer scheme.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description="a token from the identity service")
MAX_TOKEN_LENGTH = 4096  # ours are ~500 bytes; anything far larger is not worth parsing


class Role(StrEnum):
    OFFICE = "office"  # 人大办: runs intake, sessions and supervision records of its jurisdiction
    PRESIDING = "presiding"  # 主持人/主席团: certifies results
    DEPUTY = "deputy"  # 人大代表: votes (with the session's credential), inspects (with an account)
    TELLER = "teller"  # 监票人/计票人: enters paper ballots
    LEAD_UNIT = "lead_unit"  # 牵头实施单位: reports progress on its own projects
    COUNTY = "county"  # 县人大/县考核: compares and assesses townships
    ADMIN = "admin"  # 系统管理员 of the county: manages accounts of the county and its townships
    DISPLAY = "display"  # 大屏: the hall's screen, read-only, one session
    RESIDENT = "resident"  # 群众: submits a proposal through the online form (线上), nothing else


class Principal(BaseModel):
    # Bounded like any input: a token's claims reach logs, queries and stored rows.
    sub: Subject
    role: Role
    jurisdiction: Jurisdiction
    name: OptionalName = ""
    term: int | None = None  # a deputy's term (届): with jurisdiction and sub, who the deputy is
    session: UUID | None = None  # a session's credential (deputy, display): good for that session only
    unit: Name | None = None  # a lead unit's own unit (牵头单位)
    credential: UUID | None = None  # a deputy's voting credential (revocable)
    expires_at: int | None = None  # the token's exp (epoch seconds): a live stream ends then
    # Set by require(own=True), never by a token: this request may act in the caller's own
    # jurisdiction only, not in those below it.
    own: bool = False

    def sees(self, jurisdiction: str) -> bool:
        return jurisdiction == self.jurisdiction if self.own else in_scope(self.jurisdiction, jurisdiction)

    def scope_sql(self, param: str, column: str = "jurisdiction") -> str:
        return f"({column} = {param})" if self.own else scope_sql(param, column)


def in_scope(scope: str, jurisdiction: str) -> bool:
    return jurisdiction == scope or jurisdiction.startswith(scope + ".")


# SQL twin of in_scope, for WHERE clauses: pass the caller's jurisdiction as the parameter.
def scope_sql(param: str, column: str = "jurisdiction") -> str:
    return f"({column} = {param} OR starts_with({column}, {param} || '.'))"


# ---------------------------------------------------------------- verification


class TokenRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


class KeyRing:
    """The public keys this process trusts, by key id. Configured keys are fixed; with a URL,
    an unknown key id is looked up there (at most once per ``min_interval`` s), so a key that
    identity starts signing with is learned without a restart."""

    def __init__(self, jwks: dict[str, Any], url: str = "", min_interval: float = 30.0) -> None:
        self.keys: dict[str, tuple[str, Any]] = {}
        self.url, self.min_interval, self.fetched_at = url, min_interval, -min_interval
        self.add(jwks)

    def add(self, jwks: dict[str, Any]) -> None:
        for jwk in jwks.get("keys", []):
            alg = tokens.algorithm_of(jwk)
            public = tokens.public_jwk(jwk)
            self.keys[public["kid"]] = (alg, jwt.PyJWK({k: public[k] for k in ("kty", "crv", "x", "y") if k in public}, alg).key)

    async def find(self, kid: str) -> tuple[str, Any] | None:
        if kid not in self.keys and self.url and time.monotonic() - self.fetched_at >= self.min_interval:
            self.fetched_at = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    response = await client.get(self.url)
                response.raise_for_status()
                self.add(response.json())
                log.info("fetched the issuer's keys", url=self.url, kids=sorted(self.keys))
            except (httpx.HTTPError, ValueError, tokens.KeyError_) as exc:
                log.warning("could not fetch the issuer's keys", url=self.url, error=str(exc))
        return self.keys.get(kid)


def trusted_jwks(settings: Settings) -> dict[str, Any]:
    """The configured public keys; in development without any, the development key's."""
    if settings.auth_jwks:
        jwks = json.loads(settings.auth_jwks)
        return jwks if isinstance(jwks, dict) and "keys" in jwks else {"keys": [jwks]}
    if settings.env == "production":
        return {"keys": []}
    return {"keys": [tokens.development_key(settings.auth_algorithm).public]}


_rings: dict[tuple[str, str, str, str], KeyRing] = {}


def keyring(settings: Settings) -> KeyRing:
    cache_key = (settings.env, settings.auth_algorithm, settings.auth_jwks, settings.auth_jwks_url)
    if cache_key not in _rings:
        _rings[cache_key] = KeyRing(trusted_jwks(settings), settings.auth_jwks_url)
    return _rings[cache_key]


# A compact JWS: three base64url segments. Checked here, and decoded without PyJWT's decoder,
# which walks every character in Python: a third of a cast's token check at a session's peak.
# The signature itself is PyJWT's (its Ed25519 and ES256 algorithms, over ``cryptography``).
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_SIGNATURES = {alg: jwt.get_algorithm_by_name(alg) for alg in tokens.ALGORITHMS}
_headers: dict[str, dict[str, Any]] = {}  # a signer's header is the same on all its tokens: parsed once


def _segment(text: str) -> bytes:
    """A base64url segment, in its one canonical form (no other spelling of the same bytes)."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        raise ValueError("not canonical base64url")
    return raw


def _header(text: str) -> dict[str, Any]:
    if (header := _headers.get(text)) is None:
        header = json.loads(_segment(text))
        if not isinstance(header, dict):
            raise ValueError("the header is not an object")
        if len(_headers) < 64:  # a handful of signing keys; never grown by forged headers without bound
            _headers[text] = header
    return header


def _check_claims(claims: dict[str, Any], audiences: tuple[str, ...], issuer: str, leeway: int = 30) -> None:
    """The checks PyJWT's decode makes with exp, iat, iss, aud and sub required, in its order:
    TokenRefused (token-expired, or token-claims-invalid saying what) unless the claims pass."""
    def invalid(detail: str) -> TokenRefused:
        return TokenRefused("token-claims-invalid", detail)

    missing = [c for c in ("exp", "iat", "iss", "aud", "sub") if c not in claims]
    if missing:
        raise invalid(f'Token is missing the "{missing[0]}" claim')
    now = time.time()
    for name in ("exp", "iat", "nbf"):
        if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], int | float)):
            raise invalid(f"the {name} claim must be a number")
    if claims["iat"] > now + leeway or claims.get("nbf", 0) > now + leeway:  # before exp, as PyJWT
        raise invalid("The token is not yet valid")
    if claims["exp"] <= now - leeway:
        raise TokenRefused("token-expired", "the token has expired: sign in again or refresh it")
    if claims["iss"] != issuer:
        raise invalid("Invalid issuer")
    aud = claims["aud"]
    given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) and all(isinstance(a, str) for a in aud) else None
    if not given or not set(given) & set(audiences):
        raise invalid("Audience doesn't match")
    if not isinstance(claims["sub"], str) or not isinstance(claims.get("jti", ""), str):
        raise invalid("Invalid claim format: sub and jti are strings")


async def verify(token: str, audiences: tuple[str, ...], settings: Settings | None = None, own: bool = False) -> Principal:
    """The principal a token names (``own``: see ``Principal.own``), or TokenRefused with a stable code."""
    settings = settings or get_settings()
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused("token-malformed", f"longer than {MAX_TOKEN_LENGTH} characters")
    compact = _COMPACT.fullmatch(token)
    try:
        if compact is None:
            raise ValueError("not three base64url segments")
        header = _header(compact[1])
    except (ValueError, TypeError) as exc:  # json's and base64's errors are ValueErrors
        raise TokenRefused("token-malformed", "not a signed token (JWS compact form)") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in tokens.ALGORITHMS:
        raise TokenRefused("token-algorithm-refused", f"algorithm {alg!r} is not accepted; tokens are signed with "
                                                      f"{' or '.join(tokens.ALGORITHMS)} by the identity service")
    if "crit" in header or header.get("b64", True) is not True:  # no extensions: none is understood here
        raise TokenRefused("token-malformed", "a JWS extension (crit, b64) this service does not support")
    found = await keyring(settings).find(kid) if isinstance(kid, str) and len(kid) < 100 else None
    if found is None or found[0] != alg:
        raise TokenRefused("token-signature-invalid", "not signed by a key this service trusts")
    try:
        signature, payload = _segment(compact[3]), _segment(compact[2])
    except ValueError as exc:
        raise TokenRefused("token-malformed", "not a signed token (JWS compact form)") from exc
    if not _SIGNATURES[alg].verify(f"{compact[1]}.{compact[2]}".encode(), found[1], signature):
        raise TokenRefused("token-signature-invalid", "the signature does not verify")
    try:
        claims = json.loads(payload)
    except ValueError as exc:
        raise TokenRefused("token-malformed", "the claims are not JSON") from exc
    if not isinstance(claims, dict):
        raise TokenRefused("token-malformed", "the claims are not a JSON object")
    _check_claims(claims, audiences, settings.auth_issuer)
    try:
        return Principal(sub=claims["sub"], role=claims.get("role"), jurisdiction=claims.get("jurisdiction"),
                         name=claims.get("name") or "", term=claims.get("term"), session=claims.get("session"),
                         unit=claims.get("unit"), credential=claims.get("cid"), expires_at=int(claims["exp"]), own=own)
    except ValidationError as exc:
        raise TokenRefused("token-claims-invalid", f"claims: {', '.join(str(e['loc'][0]) for e in exc.errors())}") from exc


async def authenticate(request: Request, own: bool = False) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "需要登录 Authentication required", "Send Authorization: Bearer <token>.")
    service = getattr(request.app.state, "service", "")
    try:
        return await verify(token.strip(), (tokens.STAFF_AUDIENCE, f"piaojue-{service}"), own=own)
    except TokenRefused as exc:
        raise Problem(401, exc.code, "令牌无效 Invalid token", exc.detail) from exc


def require(*roles: Role, own: bool = False, display: bool = False):
    """A FastAPI dependency: the caller, who must hold one of ``roles`` (any role if none is
    named, except the hall display, which reads only where ``display=True``). ``own=True``: a
    write that belongs to the caller's own congress — the county's token does not reach into a
    township's (see ``Principal.own``)."""

    allowed = [*roles, Role.DISPLAY] if display and roles else roles or [r for r in Role if r is not Role.DISPLAY or display]

    async def dependency(request: Request, _: object = Depends(BEARER)) -> Principal:  # async: not run in a thread
        who = await authenticate(request, own)
        if who.role not in allowed:
            raise Problem(
                403, "forbidden-role", "无权操作 Not allowed for this role",
                f"role {who.role} may not do this; needs one of {', '.join(allowed)}",
            )
        return who

    return dependency


async def fetch_in_scope(conn, who: Principal, table: str, id_: object, what: str, label: str, lock: str = ""):
    """The row of ``table`` with this id, if the caller's jurisdiction covers it (its own only,
    for a write of its own congress); else a 404 (not a 403: another jurisdiction's ids are not
    even confirmed to exist). ``lock``: e.g. "FOR UPDATE"."""
    row = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 AND {who.scope_sql('$2')} {lock}", id_, who.jurisdiction)
    if row is None:
        raise Problem(404, f"{what}-not-found", f"未找到{label} {what.capitalize()} not found",
                      f"no {what} {id_} in your jurisdiction")
    return row


# ---------------------------------------------------------------- development tokens


def mint(sub: str, role: Role | str, jurisdiction: str, name: str = "", ttl_s: int = 30 * 86400,
         secret: str | None = None, **claims: Any) -> str:
    """A DEVELOPMENT tool (tests, the scenario, the benchmark, ``piaojue token``): a token with
    the same algorithm and claims as the identity service issues, signed with this process's
    issuer key (``PIAOJUE_AUTH_SIGNING_KEY``, or the development key). ``claims``: ``term``,
    ``session``, ``unit``, ``credential`` (a deputy's voting credential names the session and the
    term; its credential id is made up if not given). ``secret`` is obsolete and ignored.
    Refused in production."""
    settings = get_settings()
    if claims.get("session") and not claims.get("credential"):
        claims["credential"] = uuid4()
    if settings.env == "production":
        raise RuntimeError("mint is a development tool: in production, tokens come from the identity service")
    key = tokens.signing_key(settings.auth_signing_key) if settings.auth_signing_key else tokens.development_key(
        settings.auth_algorithm)
    return tokens.sign(tokens.token_claims(sub, str(role), jurisdiction, ttl_s, settings.auth_issuer, name, **claims), key)


# ---------------------------------------------------------------- production mode

_PLACEHOLDERS = ("change-me", "changeme", "change_me", "placeholder", "example.", "replace-me", "xxxx")


def production_problems(settings: Settings, service: str) -> list[str]:
    """Why this process must not start in production mode (empty: it may). Development: none."""
    if settings.env != "production":
        return []
    problems = []
    secrets = {"PIAOJUE_DATABASE_URL": settings.database_url, "PIAOJUE_AMQP_URL": settings.amqp_url,
               "PIAOJUE_AUTH_JWKS": settings.auth_jwks, "PIAOJUE_AUTH_SIGNING_KEY": settings.auth_signing_key,
               "PIAOJUE_OIDC_CLIENT_SECRET": settings.oidc_client_secret}
    for name, value in secrets.items():
        if any(p in value.lower() for p in _PLACEHOLDERS):
            problems.append(f"{name} is still a placeholder: set the real value")
    development = {tokens.development_key(alg).kid for alg in tokens.ALGORITHMS}
    trusted: set[str] = set()
    if not settings.auth_jwks:
        problems.append("PIAOJUE_AUTH_JWKS is not set: give every service the issuer's public keys (piaojue keys generate)")
    else:
        try:
            trusted = set(KeyRing(trusted_jwks(settings)).keys)
        except (ValueError, tokens.KeyError_, jwt.PyJWTError) as exc:
            problems.append(f"PIAOJUE_AUTH_JWKS is not a set of public keys ({exc})")
        if trusted & development:
            problems.append("PIAOJUE_AUTH_JWKS contains the development key, with which anyone can sign tokens")
        elif not trusted and not problems:
            problems.append("PIAOJUE_AUTH_JWKS holds no key")
    if service == "identity":
        if not settings.auth_signing_key:
            problems.append("PIAOJUE_AUTH_SIGNING_KEY is not set: identity needs its private key (piaojue keys generate)")
        else:
            try:
                key = tokens.signing_key(settings.auth_signing_key)
                if key.kid in development:
                    problems.append("PIAOJUE_AUTH_SIGNING_KEY is the development key, which anyone can use")
                elif trusted and key.kid not in trusted:
                    problems.append(f"the signing key {key.kid} is not in PIAOJUE_AUTH_JWKS: add its public key to "
                                    "every service first (README: key rotation)")
                if key.alg != settings.auth_algorithm:
                    problems.append(f"PIAOJUE_AUTH_SIGNING_KEY is an {key.alg} key but PIAOJUE_AUTH_ALGORITHM is "
                                    f"{settings.auth_algorithm}")
            except tokens.KeyError_ as exc:
                problems.append(f"PIAOJUE_AUTH_SIGNING_KEY is not a private key ({exc})")
    return problems
