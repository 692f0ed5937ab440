"""The presiding officer's console (present and quorum, open and close rounds, further rounds,
certify, live counts), the hall's big screen (大屏), the printable result announcement, and the
live stream both follow (the browser's EventSource cannot send a token, so the page's server
relays the ballot service's stream with the signed-in person's token)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import FormData

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import ServiceDown, ServiceRefused, Services, refused
from web.session import Visitor
from web.ui import render

router = APIRouter()
CHAIR = signed_in(Role.PRESIDING, Role.OFFICE)
WATCHERS = signed_in(Role.PRESIDING, Role.OFFICE, Role.DISPLAY)  # the big screen and its stream: the display too
ACTIONS = {"open", "close", "certify"}


class Calls:
    """This page's calls to the ballot service."""

    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token = who.token

    async def sessions(self) -> list[dict[str, Any]]:
        return await self.services.call("GET", "ballot", "/sessions", self.token)

    async def session(self, session_id: UUID) -> dict[str, Any]:
        """The session, its attendance and quorum, and each vote in full (results once closed)."""
        session = await self.services.call("GET", "ballot", f"/sessions/{session_id}", self.token)
        listed = next((s for s in await self.sessions() if s["id"] == str(session_id)), {"votes": []})
        session["votes"] = [await self.vote(v["id"]) for v in listed["votes"]]
        return session

    async def vote(self, vote_id: UUID | str) -> dict[str, Any]:
        return await self.services.call("GET", "ballot", f"/votes/{vote_id}", self.token)

    async def act(self, vote_id: UUID, action: str, key: str | None) -> dict[str, Any]:
        return await self.services.call("POST", "ballot", f"/votes/{vote_id}/{action}", self.token, key=key)

    def live(self, session_id: UUID, last_event_id: str | None):
        headers = {"authorization": f"Bearer {self.token}"}
        if last_event_id and len(last_event_id) <= 64:  # the browser's EventSource resumes where it was
            headers["last-event-id"] = last_event_id
        return self.services.client.stream("GET", f"{self.services.settings.url('ballot')}/sessions/{session_id}/live",
                                           headers=headers, timeout=None)


def _current(session: dict[str, Any]) -> dict[str, Any] | None:
    """The vote the hall is looking at: an open one, else the last one counted, else the first."""
    votes = session["votes"]
    return (next((v for v in votes if v["status"] in ("open", "awaiting_shares")), None)
            or next((v for v in reversed(votes) if v["status"] in ("closed", "certified")), None)
            or (votes[0] if votes else None))


@router.get("/chair")
async def sessions(request: Request, who: Visitor = Depends(CHAIR)):
    return render(request, "chair_list.html", {"sessions": await Calls(request, who).sessions()})


@router.get("/chair/sessions/{session_id}")
async def console(session_id: UUID, request: Request, who: Visitor = Depends(CHAIR)):
    session = await Calls(request, who).session(session_id)
    return render(request, "chair.html", {"session": session, "role": who.role})


@router.post("/chair/votes/{vote_id}/{action}")
async def act(vote_id: UUID, action: str, request: Request, form: Annotated[FormData, Depends(checked_form)],
              who: Visitor = Depends(CHAIR)):
    if action not in ACTIONS:
        return render(request, "error.html", {"title": "出错了", "message": "页面不存在"}, status=404)
    calls = Calls(request, who)
    await calls.act(vote_id, action, str(form.get("key") or "") or None)
    vote = await calls.vote(vote_id)
    return RedirectResponse(f"/chair/sessions/{vote['session_id']}#vote-{vote_id}", status_code=303)


@router.post("/chair/sessions/{session_id}/tellers")
async def name_tellers(session_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                       who: Visitor = Depends(signed_in(Role.PRESIDING))):
    """监票人: the presidium names the session's tellers (their accounts) and how many of them open
    a sealed round; each must have registered a key on the tellers' page first (the service says who has not)."""
    import re

    names = [n for n in re.split(r"[\s,，、]+", str(form.get("tellers", ""))) if n][:20]
    raw = str(form.get("threshold") or "").strip()
    body = {"tellers": names, "threshold": int(raw) if raw.isdigit() and len(raw) < 3 else 0}
    calls = Calls(request, who)
    try:
        await calls.services.call("PUT", "ballot", f"/sessions/{session_id}/tellers", calls.token, body)
    except ServiceRefused as exc:
        session = await calls.session(session_id)
        return render(request, "chair.html", {"session": session, "role": who.role, "teller_error": exc.message,
                                              "teller_detail": exc.detail}, status=exc.status if exc.status < 500 else 502)
    return RedirectResponse(f"/chair/sessions/{session_id}#tellers-h", status_code=303)


@router.get("/chair/votes/{vote_id}/announcement")
async def announcement(vote_id: UUID, request: Request, who: Visitor = Depends(CHAIR)):
    """结果公告: printable on A4."""
    calls = Calls(request, who)
    vote = await calls.vote(vote_id)
    session = await calls.services.call("GET", "ballot", f"/sessions/{vote['session_id']}", calls.token)
    return render(request, "announcement.html", {"vote": vote, "session": session})


@router.get("/screen")
async def my_screen(request: Request, who: Visitor = Depends(WATCHERS)):
    """The display's own session (a display credential names it); staff pick one on the console."""
    session = _display_session(who)
    return RedirectResponse(f"/screen/{session}" if session else "/chair", status_code=303)


def _display_session(who: Visitor) -> str | None:
    if who.role != Role.DISPLAY:
        return None
    import jwt

    return str(jwt.decode(who.token, options={"verify_signature": False}).get("session") or "") or None


@router.post("/screen/{session_id}")
async def turn_into_screen(session_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                           who: Visitor = Depends(signed_in(Role.OFFICE))):
    """This browser becomes the hall's screen for one session: identity's read-only display
    credential replaces the office's sign-in here (the office signs in again on its own PC)."""
    from web.auth import display

    screen = await display(request, who, str(session_id))
    request.state.visitor_out = screen
    with contextlib.suppress(ServiceRefused, ServiceDown):  # the office's sign-in on this browser ends
        await request.app.state.services.call("POST", "identity", "/auth/sign-out", None, {"refresh_token": who.refresh})
    return RedirectResponse(f"/screen/{session_id}", status_code=303)


@router.get("/screen/{session_id}")
async def big_screen(session_id: UUID, request: Request, who: Visitor = Depends(WATCHERS)):
    """大屏 (1920×1080): the current vote; reloads itself when the stream says its state changed."""
    own = _display_session(who)
    if who.role == Role.DISPLAY and own != str(session_id):
        return RedirectResponse(f"/screen/{own}", status_code=303)
    session = await Calls(request, who).session(session_id)
    return render(request, "screen.html", {"session": session, "vote": _current(session)}, page_class="screen")


@router.get("/live/{session_id}")
async def live(session_id: UUID, request: Request, who: Visitor = Depends(WATCHERS)):
    """The ballot service's live stream, relayed (issued and cast counts, never a partial tally).
    The browser's Last-Event-ID goes with it; when the stream ends because the access token ran
    out, the EventSource reconnects here and the page session renews the token first (``signed_in``),
    so a page whose sign-in is renewed keeps following. 204 (a closed session the page has seen
    to its end) stops the EventSource."""
    calls = Calls(request, who)
    stream = calls.live(session_id, request.headers.get("last-event-id"))
    response = await stream.__aenter__()
    if response.status_code == 204:
        await stream.__aexit__(None, None, None)
        return Response(status_code=204)
    if response.status_code != 200:
        await response.aread()
        await stream.__aexit__(None, None, None)
        raise refused(response)

    async def relay():
        try:
            async for chunk in response.aiter_raw():
                if await request.is_disconnected():
                    break
                yield chunk
        finally:
            await stream.__aexit__(None, None, None)

    return StreamingResponse(relay(), media_type="text/event-stream", headers={"cache-control": "no-cache",
                                                                                "x-accel-buffering": "no"})
