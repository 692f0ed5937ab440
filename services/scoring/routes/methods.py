"""The year's assessment method (年度考核评比办法), versioned: a correction is a new version and
every township assessed under it is recalculated (a new assessment version if figures change)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from services.scoring import store
from services.scoring.domain import AssessmentMethod
from services.scoring.publish import recalculate
from shared.auth import Principal, Role, require
from shared.db import UnitOfWork
from shared.fields import Year
from shared.http import command, problems

router = APIRouter(tags=["scoring 考核: method 考核评比办法"])
COUNTY = require(Role.COUNTY)
ANYONE = require()


def _view(m) -> dict:
    return {"jurisdiction": m.jurisdiction, "year": m.year, "version": m.version, "label": m.label,
            "method": m.method.model_dump(mode="json")}


@router.put("/methods/{year}", responses=problems(403))
async def set_method(year: Year, body: AssessmentMethod, request: Request, who: Principal = Depends(COUNTY)):
    """Set or correct the caller's method for ``year``: a new version. Weights, points and caps are
    never negative (422 otherwise). Townships already assessed get a recalculated version."""

    async def act(uow: UnitOfWork):
        before = await store.method_for(uow.conn, who.jurisdiction, year)
        method = await store.add_method(uow.conn, who.jurisdiction, year, body, who.sub)
        await uow.audit(who.jurisdiction, who.sub, "set-method", "method", f"{year}/v{method.version}",
                        before=_view(before), after=_view(method))
        recalculated = []
        for township in await store.assessed_townships(uow.conn, who.jurisdiction, year):
            if await recalculate(uow, township, year, f"method corrected ({method.label})", who.sub):
                recalculated.append(township)
        return {**_view(method), "recalculated": recalculated}

    return await command(request, who.sub, act)


@router.get("/methods/{year}", responses=problems())
async def get_method(year: Year, request: Request, who: Principal = Depends(ANYONE)):
    """The method in force for the caller's jurisdiction: its latest version (or its county's, or the defaults)."""
    async with request.app.state.pool.acquire() as conn:
        return _view(await store.method_for(conn, who.jurisdiction, year))


@router.get("/methods/{year}/versions", responses=problems())
async def method_history(year: Year, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        return [dict(r) for r in await store.method_versions(conn, who.jurisdiction, year)]
