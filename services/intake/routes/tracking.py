"""The public tracking lookup (查询): PUBLIC BY DESIGN, no token. A proposer holding a code sees
what became of that one proposal, never a name or contact, nor any other proposal. It is its own
router with its own rate limit per client address, counted in the database so that every replica
shares it. Behind a proxy, run uvicorn with the proxy's address in FORWARDED_ALLOW_IPS so the
client's address (X-Forwarded-For) is the one counted."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake import store
from services.intake.domain import tracking
from services.intake.schemas import Code, TrackOut
from services.intake.settings import get_intake_settings
from shared.http import Problem, problem_response, problems

router = APIRouter(tags=["public 公开查询"])


@router.get("/public/track/{code}", response_model=TrackOut, responses={**problems(404, 429)})
async def track(code: Code, request: Request):
    """What became of a proposal, by its tracking code: its stage, the reason if rejected or
    failing a check, the item it was merged into, its slate, whether it was chosen or its
    disposition, a project's progress, and where the project library carried it."""
    client = request.client.host if request.client else "unknown"
    limit = get_intake_settings().lookups_per_minute
    async with request.app.state.pool.acquire() as conn:
        if await store.count_lookup(conn, client) > limit:
            response = problem_response(request, 429, "too-many-lookups", "查询过于频繁，请稍后再试 Too many lookups",
                                        f"at most {limit} lookups a minute")
            response.headers["retry-after"] = "60"
            return response
        facts = await store.track(conn, tracking.normalize(code) or "")
    if facts is None:
        raise Problem(404, "code-not-found", "查询码不存在 No such code", "check the code on your receipt")
    return JSONResponse(TrackOut.model_validate(tracking.public_view(**facts)).model_dump(mode="json"))
