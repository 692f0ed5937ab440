"""Sign-in: the one module that knows where the pages' access tokens come from.

Today (until the identity service lands) it offers a clearly labelled **development sign-in**:
pick a role, a jurisdiction and a name, and it mints a token with ``shared.auth.mint``. It
exists only when ``PIAOJUE_ENV`` is not ``production``. The integration point for the identity
service is ``issue`` (staff: account and password; deputies: the session credential made on
their own device at check-in) and ``resident_token`` (the online proposal form's machine
credential): replace their bodies and the sign-in form, and no page changes.

Also here: the dependencies a page uses to require a signed-in person of some roles, and the
CSRF check of every form."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from shared.auth import Role, mint
from shared.settings import get_settings
from web.session import ANON_CSRF, Visitor, cookie

router = APIRouter()
JURISDICTION = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+){0,3}$")
SUBJECT = re.compile(r"^[^\x00-\x1f\x7f<>\"'&]{1,64}$")
PART_MAX = 6 * 1024 * 1024  # one form field or file: a 5 MB photo fits, the rest is refused
ROLE_LABELS = {Role.OFFICE: "人大办", Role.PRESIDING: "主持人", Role.DEPUTY: "人大代表", Role.TELLER: "监票人",
               Role.LEAD_UNIT: "牵头单位", Role.COUNTY: "县人大/县考核"}


class NotSignedIn(Exception):
    """No page session: the person is sent to sign in (or told it expired)."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired


class Forbidden(Exception):
    pass


class FormRefused(Exception):
    """A form without its CSRF token, or one from another page session."""


def dev_sign_in_enabled() -> bool:
    return get_settings().env != "production"


# ---------------------------------------------------------------- where tokens come from


def issue(role: Role, jurisdiction: str, sub: str, name: str = "") -> Visitor:
    """A signed-in page session for this person. Development: a token minted here (12 hours).
    Identity service: exchange the account's password (or the deputy's check-in credential) for
    its access token instead, and keep the rest."""
    claims = {"unit": sub} if role is Role.LEAD_UNIT else {}  # a lead unit's token names its unit
    token = mint(sub, role, jurisdiction, name=name, ttl_s=12 * 3600, **claims)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    return Visitor(token=token, sub=sub, role=str(role), jurisdiction=jurisdiction, name=name or sub, token_exp=exp)


async def voting_token(request: Request, who: Visitor, session_id: str) -> str:
    """What a deputy casts with: the voting credential for this session. Identity service: the
    token the deputy's device received at check-in (签到) already is it. Development sign-in:
    one is minted here for the session, with the claims identity would give (session, term)."""
    claims = jwt.decode(who.token, options={"verify_signature": False})
    if claims.get("session") == str(session_id) or not dev_sign_in_enabled():
        return who.token  # else the ballot service refuses it, in its own words
    session = await request.app.state.services.call("GET", "ballot", f"/sessions/{session_id}", who.token)
    return mint(who.sub, Role.DEPUTY, who.jurisdiction, name=who.name, ttl_s=3600, session=str(session_id), term=session["term"])


def resident_token(jurisdiction: str) -> str:
    """The online form's credential for a township (role ``resident``: it may only submit a
    proposal through the online channel). Identity service: a client-credentials token of the
    web front's machine account."""
    return mint("web-online-form", Role.RESIDENT, jurisdiction, name="线上征集", ttl_s=300)


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
        return who

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


# ---------------------------------------------------------------- the development sign-in


@router.get("/signin")
async def sign_in_page(request: Request, next: str = "/"):
    from web.ui import render

    if not dev_sign_in_enabled():
        return render(request, "error.html", {"title": "登录", "message": "请通过统一身份认证登录。"}, status=503)
    return render(request, "signin.html", {"roles": ROLE_LABELS, "next": _local(next)})


@router.post("/signin")
async def sign_in(request: Request, form: Annotated[FormData, Depends(checked_form)]):
    from web.ui import render

    if not dev_sign_in_enabled():
        return render(request, "error.html", {"title": "登录", "message": "请通过统一身份认证登录。"}, status=503)
    role, jurisdiction = str(form.get("role", "")), str(form.get("jurisdiction", "")).strip()
    sub, name = str(form.get("sub", "")).strip(), str(form.get("name", "")).strip()
    if role not in ROLE_LABELS or not JURISDICTION.match(jurisdiction) or not SUBJECT.match(sub) or (name and not SUBJECT.match(name)):
        return render(request, "signin.html", {"roles": ROLE_LABELS, "next": _local(str(form.get("next", "/"))),
                                               "error": "请选择身份，并填写辖区（如 taihu.fuyu）和账号。"}, status=422)
    request.state.visitor_out = issue(Role(role), jurisdiction, sub, name)
    return RedirectResponse(_local(str(form.get("next", "/"))), status_code=303)


@router.post("/signout")
async def sign_out(request: Request, form: Annotated[FormData, Depends(checked_form)]):
    request.state.visitor_out = None
    return RedirectResponse("/signin", status_code=303)


def _local(path: str) -> str:
    """Only a path on this site: no open redirect."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def seconds_left(who: Visitor) -> int:
    return max(0, who.expires_at - int(time.time()))
