"""What every ballot route shares: the roles, and the one place where a domain refusal becomes
an RFC 9457 problem (a route class, so that no route converts by hand)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from services.ballot.domain.refusal import Refused, Why
from shared.auth import Principal, Role, require
from shared.http import Problem

# Writes belong to the congress of the session's own jurisdiction: never the county's token in a
# township's session (own=True). Reads: anyone in scope, and the hall display for its session.
OFFICE = require(Role.OFFICE, own=True)
CHAIR = require(Role.OFFICE, Role.PRESIDING, own=True)
PRESIDING = require(Role.PRESIDING, own=True)
TELLER = require(Role.TELLER, own=True)
DEPUTY = require(Role.DEPUTY, own=True)
# Who may see the individual anonymised ballots: what a full recount needs, and no more.
RECOUNTERS = require(Role.TELLER, Role.PRESIDING, Role.COUNTY)
READERS = require(display=True)  # the live view's: its watcher checks revocations, with no query per client


def readers(display: bool):
    """Anyone in scope (with ``display``: the hall display too); a revoked session credential, a
    display's or a deputy's, reads nothing more (403 credential-revoked, or deputy-absent once the deputy left)."""
    caller = require(display=display)

    async def dependency(request: Request, who: Principal = Depends(caller)) -> Principal:
        if who.credential is not None and (reason := await request.app.state.pool.fetchval(
                "SELECT reason FROM revoked_credentials WHERE credential_id = $1", who.credential)):
            raise Problem(403, "deputy-absent" if reason == "left" else "credential-revoked", "无权查看 Not allowed",
                          "this credential no longer follows the session")
        return who

    return dependency


ANYONE = readers(display=True)

STATUS = {Why.INVALID: 422, Why.CONFLICT: 409, Why.FORBIDDEN: 403, Why.NOT_FOUND: 404}
TITLES = {Why.INVALID: "请求有误 Refused", Why.CONFLICT: "当前状态不允许 Not now", Why.FORBIDDEN: "无权操作 Not allowed",
          Why.NOT_FOUND: "未找到 Not found"}


def problem(exc: Refused) -> Problem:
    return Problem(STATUS[exc.why], exc.code, TITLES[exc.why], exc.message, **exc.extra)


class RefusalRoute(APIRoute):
    """Runs the route; a ``Refused`` raised anywhere in it (domain or storage) is answered as a problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return refusing(super().get_route_handler())


def refusing(handler: Callable[[Request], Coroutine[Any, Any, Response]]) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as exc:
            raise problem(exc) from exc

    return route


def router(tag: str = "ballot 票决", route_class: type[APIRoute] = RefusalRoute) -> APIRouter:
    return APIRouter(tags=[tag], route_class=route_class)
