"""The year's rules of a jurisdiction (eligibility, feasibility weights, notice period) and its
gazetteer of places, which the duplicate detector reads places through."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from services.intake import store
from services.intake.routes.common import ANYONE, OFFICE
from services.intake.schemas import PlacesIn, SettingsIn, SettingsOut
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.fields import Year
from shared.http import command, problems

router = APIRouter(tags=["intake 征集"])


@router.get("/settings/{year}", response_model=SettingsOut, responses=problems())
async def get_settings(year: Year, request: Request, who: Principal = Depends(ANYONE)):
    """The caller's jurisdiction's rules for the year: the defaults until the office sets its own."""
    async with request.app.state.pool.acquire() as conn:
        return await store.year_settings(conn, who.jurisdiction, year)


@router.put("/settings/{year}", response_model=SettingsOut, responses=problems(403))
async def put_settings(year: Year, body: SettingsIn, request: Request, who: Principal = Depends(OFFICE)):
    """Set the year's rules: the eligibility rules (负面清单) as data, the feasibility weights, and
    the slate's notice period (公示期, days; 0: the slate goes to the ballot when published).
    Proposals are checked against the rules in force when they are submitted and screened."""

    async def act(uow: UnitOfWork):
        before = await store.year_settings(uow.conn, who.jurisdiction, year)
        await store.put_year_settings(uow.conn, who.jurisdiction, year, body, who.sub)
        await uow.audit(who.jurisdiction, who.sub, "settings", "year", year,
                        before=None if before["default"] else SettingsIn.model_validate(before).model_dump(mode="json"),
                        after=body.model_dump(mode="json"))
        return await store.year_settings(uow.conn, who.jurisdiction, year)

    return await command(request, who.sub, act)


@router.get("/places", response_model=PlacesIn, responses=problems())
async def get_places(request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        places = await store.places(conn, who.jurisdiction)
    return {"places": [{"name": p.name, "kind": p.kind, "aliases": list(p.aliases), "within": p.within, "ends": list(p.ends)}
                       for p in places]}


@router.put("/places", response_model=PlacesIn, responses=problems(403))
async def put_places(body: PlacesIn, request: Request, who: Principal = Depends(OFFICE)):
    """The township's gazetteer (地名): villages, roads, schools, with the short names people use
    (王马路 for 王马公路), the place each lies in, and a road's two ends."""

    async def act(uow: UnitOfWork):
        await store.put_places(uow.conn, who.jurisdiction, body.places)
        await uow.audit(who.jurisdiction, who.sub, "places", "gazetteer", who.jurisdiction, after=body.model_dump())
        return body.model_dump()

    return await command(request, who.sub, act)
