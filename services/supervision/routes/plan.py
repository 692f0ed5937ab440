"""The annual key supervision plan (年度重点监督计划) and the change of term (换届)."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.supervision import domain, store
from services.supervision.domain.plan import ActivityKind, ActivityStatus, next_status, timing
from services.supervision.routes.common import refused, today
from shared.auth import Principal, Role, require
from shared.db import UnitOfWork
from shared.fields import Identifier, OptionalText, Reason, Term, Title, Year, items
from shared.http import Problem, command, problems

router = APIRouter(tags=["supervision 监督: plan 年度重点监督计划"])
OFFICE = require(Role.OFFICE, own=True)  # the township's own supervision: never the county's token
ANYONE = require()


class ActivityIn(BaseModel):
    kind: ActivityKind
    title: Title
    scheduled_on: date
    project_ids: list[UUID] = items(100, default_factory=list)
    participants: list[Identifier] = items(200, default_factory=list)


class ActivityActionIn(BaseModel):
    action: Literal["hold", "cancel", "reschedule"]
    on: date | None = None  # held on (hold), or the new date (reschedule)
    reason: Reason | None = None
    notes: OptionalText = ""


class GroupHandover(BaseModel):
    project_id: UUID
    deputies: list[Identifier] = items(50, min_length=1)
    leader: Identifier | None = None


class TermIn(BaseModel):
    groups: list[GroupHandover] = items(500, default_factory=list)  # the new term's supervision groups


def _view(row, on: date) -> dict:
    return {**dict(row), "timing": timing(ActivityStatus(row["status"]), row["scheduled_on"], on)}


@router.post("/plan/{year}/activities", status_code=201, responses=problems(403, 404))
async def add_activity(year: Year, body: ActivityIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        unknown = await store.unknown_projects(uow.conn, who.jurisdiction, body.project_ids)
        if unknown:
            raise Problem(404, "project-not-found", "未找到项目 Project not found", f"not in your jurisdiction: {unknown}")
        row = await store.add_activity(uow.conn, who.jurisdiction, year, body.model_dump(), who.sub)
        await store.log_activity(uow.conn, row["id"], "plan", None, body.model_dump(mode="json"), None, who.sub)
        await uow.audit(who.jurisdiction, who.sub, "plan-activity", "activity", row["id"], after=body.model_dump(mode="json"))
        return _view(row, today())

    return await command(request, who.sub, act, 201)


@router.get("/plan/{year}", responses=problems())
async def get_plan(year: Year, request: Request, on: date | None = None, who: Principal = Depends(ANYONE)):
    """The year's activities in date order, with those overdue and upcoming on ``on`` (default today)."""
    on = on or today()
    async with request.app.state.pool.acquire() as conn:
        views = [_view(r, on) for r in await store.activities(conn, who.jurisdiction, year)]
    return {"year": year, "on": on, "activities": views,
            "overdue": [v for v in views if v["timing"] == "overdue"],
            "upcoming": [v for v in views if v["timing"] == "upcoming"]}


@router.post("/activities/{activity_id}/actions", responses=problems(404, 409))
async def move_activity(activity_id: UUID, body: ActivityActionIn, request: Request, who: Principal = Depends(OFFICE)):
    """Hold, cancel (with reason) or reschedule (with reason and the new date) a planned activity."""

    async def act(uow: UnitOfWork):
        row = await store.activity(uow.conn, who, activity_id, lock="FOR UPDATE")
        try:
            status = next_status(ActivityStatus(row["status"]), body.action, body.reason)
            if body.action == "reschedule" and body.on is None:
                raise domain.SupervisionRefused("date-required", "reschedule needs the new date (on)", 422)
        except domain.SupervisionRefused as exc:
            raise refused(exc) from exc
        scheduled = body.on if body.action == "reschedule" else row["scheduled_on"]
        held_on = (body.on or today()) if body.action == "hold" else None
        moved = await store.update_activity(uow.conn, activity_id, status, scheduled, held_on, body.notes or row["notes"])
        before = {"status": row["status"], "scheduled_on": row["scheduled_on"].isoformat()}
        after = {"status": status, "scheduled_on": scheduled.isoformat(), "held_on": held_on and held_on.isoformat()}
        await store.log_activity(uow.conn, activity_id, body.action, before, after, body.reason, who.sub)
        await uow.audit(row["jurisdiction"], who.sub, f"activity-{body.action}", "activity", activity_id, before, after)
        return _view(moved, today())

    return await command(request, who.sub, act)


@router.post("/terms/{term}/start", responses=problems(403, 404, 409))
async def start_term(term: Term, body: TermIn, request: Request, who: Principal = Depends(OFFICE)):
    """换届: the new term (届) serves from now. Projects, their records and the old groups stay; the
    new term's deputies take over the supervision groups named here; history keeps each term."""

    async def act(uow: UnitOfWork):
        current = await store.current_term(uow.conn, who.jurisdiction)
        if current is not None and term <= current:
            raise Problem(409, "term-not-newer", "届次须递增 Term must be newer", f"term {current} serves already")
        before = await store.change_term(uow.conn, who.jurisdiction, term, who.sub)
        for g in body.groups:
            await store.project(uow.conn, who, g.project_id)
            await store.set_group(uow.conn, g.project_id, term, g.deputies, g.leader)
        await uow.audit(who.jurisdiction, who.sub, "term-start", "jurisdiction", who.jurisdiction,
                        before={"term": before}, after={"term": term, "groups": len(body.groups)})
        return {"jurisdiction": who.jurisdiction, "term": term, "previous": before, "groups": len(body.groups)}

    return await command(request, who.sub, act)
