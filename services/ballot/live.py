"""The live view of a session (server-sent events), moved here unchanged from the routes module
(it belongs to the live-view work); it also reports a round closed and awaiting its tellers'
shares (status ``awaiting_shares``, with how many shares are in)."""

from __future__ import annotations

import asyncio
import json
from uuid import UUID

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from services.ballot import store
from services.ballot.routes.common import ANYONE
from services.ballot.routes.common import router as make_router
from services.ballot.routes.models import LIVE
from shared.auth import Principal
from shared.http import problems

router = make_router()


@router.get("/sessions/{session_id}/live", response_class=StreamingResponse, operation_id="session_live",
            responses=problems(404) | LIVE)
async def live(session_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """Server-sent events for the presiding officer's screen and the deputies' devices: present,
    and for each vote its status, round, issued and cast so far. No partial tally before close;
    the counts of a closed round are announced with it. Read from the database, so every replica
    serves the same stream."""
    pool = request.app.state.pool
    async with pool.acquire() as conn:
        await store.session(conn, who, session_id)

    async def stream():
        last = None
        while not await request.is_disconnected():
            async with pool.acquire() as conn:
                state = {"session_id": str(session_id), **await store.attendance(conn, session_id), "votes": [
                    {"id": str(v["id"]), "kind": v["kind"], "status": v["status"], "round": v["round"],
                     "issued": v["issued"], "cast": v["cast"],
                     **({"shares": {"presented": v["presented"], "needed": v["threshold"]}}
                        if v["status"] == "awaiting_shares" else {}),
                     **({"result": {k: v["result"][k] for k in ("issued", "collected", "valid", "invalid")}
                         | {"chosen": v["result"].get("chosen"), "finished": v["result"]["finished"]}}
                        if v["status"] in ("closed", "certified") else {})}
                    for v in await conn.fetch(
                        """SELECT v.id, v.kind, v.status, v.round, v.result, r.issued, r.threshold,
                                  (SELECT count(*) FROM issued i WHERE i.vote_id = v.id AND i.round = v.round AND i.cast_done) AS cast,
                                  (SELECT count(*) FROM presented_shares p WHERE p.vote_id = v.id AND p.round = v.round
                                   AND p.count_key = r.count_key) AS presented
                           FROM votes v LEFT JOIN rounds r ON r.vote_id = v.id AND r.round = v.round
                           WHERE v.session_id = $1 ORDER BY v.id""", session_id)]}
            if state != last:
                yield f"event: state\ndata: {json.dumps(state, ensure_ascii=False)}\n\n"
                last = state
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})
