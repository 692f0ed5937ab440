"""The live view of a session (server-sent events): ``GET /sessions/{id}/live``.

What is read and how often is the watcher's business (``live_hub.py``: one per replica, one read
for all clients). Here: who may follow which session, the refusals made before the stream
starts (404 for a session not in the caller's scope, 401/403 for an expired token, a revoked
credential or a deputy marked absent, 429 past the caller's streams, 503 while the database has
not answered), and the stream itself: ``retry``, the current state unless ``Last-Event-ID``
already names it, every change, heartbeats, and a last ``end`` event saying why it stops."""

from __future__ import annotations

import asyncio
import re
import time
from uuid import UUID

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.ballot.live_hub import Client, Hub, end_event
from services.ballot.routes.common import READERS
from services.ballot.routes.common import router as make_router
from services.ballot.routes.models import LIVE
from shared.auth import Principal
from shared.http import SERVER_SEND, Problem, problems

router = make_router()
EVENT_ID = re.compile(r"^[0-9a-f]{16}$")  # what this service sends; anything else is ignored
RETRY_MS = 2000
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]


def caller_of(who: Principal) -> str:
    """Whose streams count together against the per-caller limit: one token's holder."""
    return f"{who.role}|{who.jurisdiction}|{who.sub}|{who.session or ''}|{who.credential or ''}"


class LiveStream(Response):
    """The stream of one client, written straight to the ASGI channel (no extra task per event)."""

    def __init__(self, hub: Hub, client: Client, first: bytes) -> None:
        super().__init__(media_type="text/event-stream")
        self.hub, self.client, self.first = hub, client, first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client

        async def gone() -> None:  # the client hung up: http.disconnect after the (empty) request body
            while (await receive())["type"] != "http.disconnect":
                pass
            client.end("")

        watcher = asyncio.ensure_future(gone())
        write = scope.get(SERVER_SEND, send)  # the middlewares look only at the start: the events go past them
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": self.first, "more_body": True})
            while (chunk := await client.next()) is not None:
                await write({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": end_event(client.ending) if client.ending else b"",
                        "more_body": False})
        finally:
            watcher.cancel()
            self.hub.leave(client)


@router.get("/sessions/{session_id}/live", response_class=StreamingResponse, operation_id="session_live",
            responses=problems(403, 404, 429, 503) | LIVE)
async def live(session_id: UUID, request: Request, who: Principal = Depends(READERS),
               last_event_id: str | None = Header(None, alias="last-event-id", description=(
                   "the id of the last state event received: the current state follows unless it is that one; "
                   "anything that is not an id this service sent is ignored"))):
    """Server-sent events for the presiding officer's console, the hall's screen and the deputies'
    devices: ``event: state`` with the session's status, seated and present, and for each vote its
    status, round, issued and cast so far (a few times a second at most), the tellers' shares
    while a sealed round awaits them, and a round's counts only once it is closed — never a
    partial tally. Each state's ``id`` is the same on every replica; send it back as
    ``Last-Event-ID`` to resume (the current state follows unless you have it). ``: heartbeat``
    comments keep an idle stream alive. The stream ends with ``event: end`` ({reason, reconnect,
    message}): session-closed, credential-revoked, deputy-absent (no reconnect), token-expired (renew,
    then reconnect), too-slow or replica-stopping (reconnect). A closed session whose last state the
    client already has: 204 (an EventSource stops)."""
    hub: Hub | None = getattr(request.app.state, "live", None)
    if hub is None or hub.stopping:
        raise Problem(503, "live-unavailable", "实时视图暂不可用 Live view unavailable", "retry shortly", retry_after=2)
    if who.expires_at is not None and who.expires_at <= time.time():
        raise Problem(401, "token-expired", "令牌无效 Invalid token", "the token has expired: sign in again or refresh it")
    try:
        client = await hub.join(who, session_id, caller_of(who))
    except LookupError:
        raise Problem(404, "session-not-found", "未找到 Not found", f"no session {session_id} in your jurisdiction") from None
    except OverflowError:
        raise Problem(429, "too-many-streams", "实时连接过多 Too many live streams",
                      f"one caller holds at most {hub.settings.live_streams_per_caller} live streams", retry_after=5) from None
    except TimeoutError:
        raise Problem(503, "live-unavailable", "实时视图暂不可用 Live view unavailable", "the database has not answered; retry",
                      retry_after=2) from None
    w = client.watched
    if reason := client.revoked_by(w.absent, w.revoked):
        hub.leave(client)
        raise Problem(403, reason, "无权查看 Not allowed", "this credential no longer follows the session")
    last = last_event_id or ""
    has_it = bool(EVENT_ID.match(last)) and last == w.event_id
    if w.status == "closed":
        if has_it:
            hub.leave(client)
            return Response(status_code=204)
        client.end("session-closed")
    first = b"retry: %d\n\n" % RETRY_MS + (b"" if has_it else w.message)
    return LiveStream(hub, client, first)


async def run(app: FastAPI) -> None:
    """The replica's watcher, for the life of the process (a ``Service`` task)."""
    hub = app.state.live = Hub(app.state.settings)
    app.state.stopping.append(hub.stop)
    await hub.run()
