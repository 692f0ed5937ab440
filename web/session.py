"""The signed-in person's page session: one signed cookie, and the headers every page carries.

The cookie (``pj_session``, HttpOnly, SameSite=Lax, Secure when ``PIAOJUE_COOKIE_SECURE``) holds
the person's access token, who they are, a CSRF token and an idle deadline; it is signed with a
key derived from ``PIAOJUE_WEB_SECRET``, so nothing is kept in the process (any replica serves
any page). Every page seen while signed in renews the deadline; forms carry the CSRF token and a
POST without it is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings

COOKIE = "pj_session"
ANON_CSRF = "pj_csrf"  # the CSRF token of forms shown to someone not signed in (sign-in, a resident's proposal)
# No inline script or style, nothing from another origin; pages may not be framed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


@dataclass
class Visitor:
    """Who is signed in to this page session."""

    token: str  # the access token the services accept; never shown to the page's scripts
    sub: str
    role: str
    jurisdiction: str
    name: str = ""
    unit: str = ""  # a lead unit's account names its unit (牵头单位)
    token_exp: int = 0  # the token's own expiry (epoch seconds)
    refresh: str = ""  # identity's refresh token (staff): the access token is renewed with it while in use
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    idle_until: int = 0  # epoch seconds; renewed while in use

    def expired(self, now: float | None = None) -> bool:
        now = now or time.time()
        return now >= self.idle_until or bool(self.token_exp and now >= self.token_exp and not self.refresh)

    @property
    def expires_at(self) -> int:
        """When this session ends if left alone: what a deputy is shown before casting."""
        return min(self.idle_until, self.token_exp) if self.token_exp and not self.refresh else self.idle_until


DEVELOPMENT_SECRET = "piaojue-web-development-secret"  # public: development only (production refuses to start without one)


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"piaojue-web-session:" + (settings.web_secret or DEVELOPMENT_SECRET).encode()).digest()


def encode(visitor: Visitor, settings: Settings) -> str:
    body = base64.urlsafe_b64encode(json.dumps(asdict(visitor), separators=(",", ":")).encode()).decode().rstrip("=")
    sig = hmac.new(_key(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}"


def decode(cookie: str, settings: Settings) -> Visitor | None:
    """The visitor of a cookie this deployment signed; None for anything else (tampered, garbage)."""
    body, _, sig = cookie.rpartition(".")
    if not body or len(cookie) > 8192:
        return None
    expected = hmac.new(_key(settings), body.encode(errors="replace"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sig.encode(errors="replace")):
        return None
    try:
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return Visitor(**data)
    except (ValueError, TypeError):
        return None


def cookie_header(value: str, settings: Settings, max_age: int, name: str = COOKIE, raw: str | None = None) -> bytes:
    parts = [f"{name}={raw if raw is not None else value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
    if settings.cookie_secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


class PageSession:
    """ASGI middleware: reads the session cookie into ``request.state`` (``visitor``, or
    ``expired`` when there was one and it ran out), writes it back renewed (or cleared) with the
    response, and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["visitor"], state["expired"] = None, False
        raw = cookie(scope, COOKIE)
        if raw:
            visitor = decode(raw, self.settings)
            if visitor and not visitor.expired():
                state["visitor"] = visitor
            else:
                state["expired"] = True
                state["expired_role"] = visitor.role if visitor else ""  # the expired page says how to come back
        static = scope["path"].startswith("/static/")

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *HEADERS]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                    out = state.get("visitor_out", state["visitor"])  # sign-in/out replaces it
                    if out is not None:
                        out.idle_until = int(time.time()) + 60 * self.settings.web_session_minutes
                        headers.append((b"set-cookie", cookie_header(encode(out, self.settings), self.settings,
                                                                     60 * self.settings.web_session_minutes)))
                    elif raw:
                        headers.append((b"set-cookie", cookie_header("", self.settings, 0)))
                    if state.get("anon_csrf_out"):
                        headers.append((b"set-cookie", cookie_header("", self.settings, 3600, ANON_CSRF,
                                                                     state["anon_csrf_out"])))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_session)


def cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None
