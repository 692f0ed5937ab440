"""Sign-in: the one module that knows where the pages' access tokens come from. The web front
mints no token for anyone who signs in: every one comes from the identity service.

- Staff (office, presiding officers, tellers, lead units, the county) sign in with their
  account's name and password at identity (``password_sign_in``); the page session keeps the
  refresh token and renews the access token while the page is in use.
- Deputies check in on their own phone (签到, ``/checkin``) with the session's check-in code and
  their personal code; the voting credential identity issues, bound to the phone (a key kept in
  the ``pj_device`` cookie), is their page session, good for that session only.
- The hall's big screen (大屏): the office turns a browser into the screen of one session with
  identity's read-only display credential (``display``); the office's own sign-in ends there,
  and the office can revoke the credential from the session's page (撤销大屏凭证).
- ``resident_token``: the public proposal form's credential (role ``resident``: it can only
  submit a proposal through the online channel), a client-credentials token of the front's
  machine account at identity (``PIAOJUE_WEB_CLIENT_ID``/``_SECRET``); a development front
  without one signs it itself.

Also here: the dependencies a page uses to require a signed-in person of some roles, and the
CSRF check of every form."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
import time
from typing import Annotated

import httpx
import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from shared.auth import Role, mint
from shared.settings import get_settings
from web.client import ServiceDown, ServiceRefused, Services, refused
from web.session import ANON_CSRF, Visitor, cookie

router = APIRouter()
JURISDICTION = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+){0,3}$")
PART_MAX = 6 * 1024 * 1024  # one form field or file: a 5 MB photo fits, the rest is refused
ROLE_LABELS = {Role.OFFICE: "人大办", Role.PRESIDING: "主持人", Role.DEPUTY: "人大代表", Role.TELLER: "监票人",
               Role.LEAD_UNIT: "牵头单位", Role.COUNTY: "县人大/县考核", Role.DISPLAY: "大屏"}


class NotSignedIn(Exception):
    """No page session: the person is sent to sign in (or told it expired)."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired


class Forbidden(Exception):
    pass


class FormRefused(Exception):
    """A form without its CSRF token, or one from another page session."""


def _visitor(answer: dict, refresh: bool = True) -> Visitor:
    """A page session from identity's answer (the token came from identity over our own connection)."""
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    return Visitor(token=answer["access_token"], sub=claims["sub"], role=claims["role"], jurisdiction=claims["jurisdiction"],
                   name=claims.get("name") or claims["sub"], unit=claims.get("unit") or "", token_exp=claims["exp"],
                   refresh=answer.get("refresh_token", "") if refresh else "")


async def password_sign_in(request: Request, username: str, password: str, role: str | None = None,
                           jurisdiction: str | None = None) -> Visitor:
    body = {"username": username, "password": password, "role": role or None, "jurisdiction": jurisdiction or None}
    return _visitor(await request.app.state.services.call("POST", "identity", "/auth/sign-in", None, body))


async def check_in(request: Request, code: str, deputy_id: str, personal_code: str, device_key: str) -> Visitor:
    """签到 on the deputy's own phone: identity's voting credential for the session, bound to the phone."""
    answer = await request.app.state.services.call("POST", "identity", "/checkin", None, {
        "code": code, "deputy_id": deputy_id, "personal_code": personal_code, "device_key": device_key})
    return _visitor(answer, refresh=False)


async def display(request: Request, who: Visitor, session_id: str) -> Visitor:
    """The hall display's page session: identity's read-only credential for this one session,
    asked for with the office's token (identity records who turned the screen on)."""
    answer = await request.app.state.services.call("POST", "identity", f"/sessions/{session_id}/display", who.token)
    return _visitor(answer, refresh=False)


async def renewed(request: Request, who: Visitor) -> Visitor:
    """The visitor, its access token renewed with the refresh token when it has two minutes left."""
    if not who.refresh or who.token_exp - time.time() > 120:
        return who
    try:
        answer = await _refresh_once(request.app.state.services, who.refresh)
    except ServiceRefused as exc:
        raise NotSignedIn(expired=True) from exc
    fresh = _visitor(answer)
    fresh.csrf = who.csrf
    request.state.visitor = request.state.visitor_out = fresh
    return fresh


_renewals: dict[str, tuple[float, asyncio.Future]] = {}  # refresh token → (when, identity's answer)


async def _refresh_once(services: Services, refresh: str) -> dict:
    """One renewal per refresh token, shared by the requests of a page session that renew together
    (a page's quiet call and its live stream reconnecting, two tabs whose streams end together):
    identity ends the whole sign-in when a refresh token is used twice. Per process: the web
    front runs as one."""
    now = time.monotonic()
    for token, (at, _) in list(_renewals.items()):
        if now - at > 60:
            del _renewals[token]
    if (kept := _renewals.get(refresh)) is None:
        kept = _renewals[refresh] = (now, asyncio.ensure_future(
            services.call("POST", "identity", "/auth/refresh", None, {"refresh_token": refresh})))
    try:
        return await asyncio.shield(kept[1])
    except ServiceDown:
        _renewals.pop(refresh, None)  # identity did not answer: the token is unused, the next request tries again
        raise


_resident_tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (client, township) → (token, expires at)


async def resident_token(services: Services, jurisdiction: str) -> str:
    """The online form's credential for a township (role ``resident``: it may only submit a
    proposal through the online channel): identity's client-credentials token for the front's
    machine account, kept until a minute before it expires."""
    settings = services.settings
    if not settings.web_client_id:
        if settings.env == "production":
            raise ServiceRefused(503, "online-form-unavailable", "线上征集暂未开通 The online form is not set up",
                                 "the web front has no machine account at identity (PIAOJUE_WEB_CLIENT_ID, _SECRET)")
        return mint("web-online-form", Role.RESIDENT, jurisdiction, name="线上征集", ttl_s=300)  # development only
    key = (settings.web_client_id, jurisdiction)
    if (kept := _resident_tokens.get(key)) and kept[1] > time.time() + 60:
        return kept[0]
    try:
        response = await services.client.post(
            settings.url("identity") + "/oauth/token", auth=(settings.web_client_id, settings.web_client_secret),
            data={"grant_type": "client_credentials", "role": str(Role.RESIDENT), "jurisdiction": jurisdiction})
    except httpx.HTTPError as exc:
        raise ServiceDown(f"identity: {exc!r}") from exc
    if response.status_code != 200:
        raise refused(response)
    answer = response.json()
    _resident_tokens[key] = (answer["access_token"], time.time() + int(answer["expires_in"]))
    return answer["access_token"]


# ---------------------------------------------------------------- what pages depend on


def visitor(request: Request) -> Visitor | None:
    return request.state.visitor


def signed_in(*roles: Role):
    """A page dependency: the signed-in visitor, who must hold one of ``roles`` (any if none)."""

    async def dependency(request: Request) -> Visitor:
        who: Visitor | None = request.state.visitor
        if who is None:
            raise NotSignedIn(expired=request.state.expired)
        if roles and who.role not in roles:
            raise Forbidden()
        return await renewed(request, who)

    return dependency


def csrf_token(request: Request) -> str:
    """The token a form on this page must send back."""
    who: Visitor | None = request.state.visitor
    if who is not None:
        return who.csrf
    token = getattr(request.state, "anon_csrf_out", None) or cookie(request.scope, ANON_CSRF)
    if not token or len(token) > 64:
        token = secrets.token_urlsafe(24)
        request.state.anon_csrf_out = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches this page session's."""
    form = await request.form(max_part_size=PART_MAX)
    sent = form.get("csrf")
    who: Visitor | None = request.state.visitor
    expected = who.csrf if who is not None else cookie(request.scope, ANON_CSRF)
    if who is None and request.state.expired:
        raise NotSignedIn(expired=True)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise FormRefused()
    return form


# ---------------------------------------------------------------- the sign-in pages


def _sign_in_page(request: Request, next_: str, error: str = "", status: int = 200, **extra):
    from web.ui import render

    return render(request, "signin.html", {"roles": {r: l for r, l in ROLE_LABELS.items() if r not in (Role.DEPUTY, Role.DISPLAY)},
                                           "next": _local(next_), "error": error, **extra}, status=status)


@router.get("/signin")
async def sign_in_page(request: Request, next: str = "/"):
    return _sign_in_page(request, next)


@router.post("/signin")
async def sign_in(request: Request, form: Annotated[FormData, Depends(checked_form)]):
    """Account and password, at the identity service."""
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    next_ = str(form.get("next", "/"))
    if not username or not password or len(username) > 64 or len(password) > 200:
        return _sign_in_page(request, next_, "请输入账号和密码。", 422)
    try:
        visitor = await password_sign_in(request, username, password, str(form.get("role") or ""),
                                         str(form.get("jurisdiction") or "").strip())
    except ServiceRefused as exc:
        return _sign_in_page(request, next_, exc.message, 401 if exc.status in (401, 403) else exc.status, username=username)
    request.state.visitor_out = visitor
    return RedirectResponse(_local(next_), status_code=303)


@router.get("/checkin")
async def check_in_page(request: Request, code: str = ""):
    from web.ui import render

    response = render(request, "checkin.html", {"code": code[:20]}, light=True)
    if not device_key(request):
        set_device(response, secrets.token_urlsafe(32))
    return response


@router.post("/checkin")
async def check_in_form(request: Request, form: Annotated[FormData, Depends(checked_form)]):
    from web.ui import render

    code, deputy_id = str(form.get("code", "")).strip()[:20], str(form.get("deputy_id", "")).strip()[:64]
    personal_code, device = str(form.get("personal_code", "")).strip()[:12], device_key(request) or secrets.token_urlsafe(32)
    try:
        request.state.visitor_out = await check_in(request, code, deputy_id, personal_code, device)
    except ServiceRefused as exc:
        response = render(request, "checkin.html", {"code": code, "deputy_id": deputy_id, "error": exc.message}, light=True,
                          status=exc.status if exc.status < 500 else 502)
    else:
        response = RedirectResponse("/vote", status_code=303)
    set_device(response, device)
    return response


DEVICE = "pj_device"  # the phone's own key for its voting credential: made here once, kept by the phone


def device_key(request: Request) -> str | None:
    key = request.cookies.get(DEVICE)
    return key if key and 32 <= len(key) <= 256 and re.fullmatch(r"[A-Za-z0-9_-]+", key) else None


def set_device(response, key: str) -> None:
    response.set_cookie(DEVICE, key, max_age=400 * 86400, httponly=True, samesite="lax", secure=get_settings().cookie_secure)


@router.get("/session/alive", status_code=204)
async def alive(request: Request, who: Visitor = Depends(signed_in())) -> None:
    """The page's quiet call while it is in use: the page session's idle deadline moves on (the
    cookie is written back) and the access token is renewed in its last two minutes."""


@router.post("/signout")
async def sign_out(request: Request, form: Annotated[FormData, Depends(checked_form)]):
    who: Visitor | None = request.state.visitor
    if who is not None and who.refresh:
        with contextlib.suppress(ServiceRefused, ServiceDown):
            await request.app.state.services.call("POST", "identity", "/auth/sign-out", None, {"refresh_token": who.refresh})
    request.state.visitor_out = None
    return RedirectResponse("/signin", status_code=303)


def _local(path: str) -> str:
    """Only a path on this site: no open redirect."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def seconds_left(who: Visitor) -> int:
    return max(0, who.expires_at - int(time.time()))
