"""The project library (项目库): candidates not chosen but carried into next year's intake."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from services.intake import store
from services.intake.routes.common import ANYONE
from services.intake.schemas import LibraryItem
from shared.auth import Principal
from shared.fields import Year
from shared.http import problems

router = APIRouter(tags=["intake 征集"])


@router.get("/library", response_model=list[LibraryItem], responses=problems())
async def library(request: Request, year: Year, who: Principal = Depends(ANYONE)):
    """The year's candidates disposed to the project library, and the proposal each became in the
    next year's intake (``carried_from`` provenance), which is screened again."""
    async with request.app.state.pool.acquire() as conn:
        rows = await store.library(conn, who, year)
        supporters = await store.supporters(conn, [r["id"] for r in rows])
    return [{"id": r["id"], "code": r["code"], "title": r["fields"]["title"], "year": r["year"],
             "disposition_reason": r["disposition_reason"], "supporters": len(supporters[r["id"]]),
             "carried_to": r["carried_id"], "carried_to_stage": r["carried_stage"]} for r in rows]
