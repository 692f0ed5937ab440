"""Inspections (视察, 问询, 询问, 考评, 回头看): kind, date, participants, each deputy's rating, and
findings, each of which may open a rectification item for the lead unit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.supervision import domain, store
from services.supervision.routes.common import refused
from shared.auth import Principal, Role, require
from shared.contracts.supervision import DeputyRating, InspectionKind, InspectionRecorded, RectificationUpdated
from shared.db import UnitOfWork
from shared.fields import Content, Identifier, Rating, items
from shared.http import command, problems

router = APIRouter(tags=["supervision 监督: inspections 视察与考评"])
RECTIFICATION_DAYS = 30  # default time given to fix a finding


class RatingIn(BaseModel):
    deputy: Identifier
    rating: Rating


class FindingIn(BaseModel):
    problem: Content = Field(description="问题")
    rectify: bool = Field(default=True, description="opens a rectification item (整改事项) for the lead unit")
    due_on: date | None = Field(default=None, description=f"default: {RECTIFICATION_DAYS} days after the inspection")


class InspectionIn(BaseModel):
    kind: InspectionKind
    inspected_on: date
    deputies: list[Identifier] = items(200, default_factory=list)  # who took part
    ratings: list[RatingIn] = items(200, default_factory=list)  # each rating deputy's score 0–100
    findings: list[FindingIn] = items(50, default_factory=list)


@router.post("/projects/{project_id}/inspections", status_code=201, responses=problems(403, 404, 409))
async def record_inspection(project_id: UUID, body: InspectionIn, request: Request,
                            who: Principal = Depends(require(Role.OFFICE, Role.DEPUTY, own=True))):
    """An inspection with each deputy's rating (scoring aggregates them under the year's method).
    Mid-term and final are the supervision group's: recorded by the office, rated by the group."""

    async def act(uow: UnitOfWork):
        project = await store.project(uow.conn, who, project_id, lock="FOR UPDATE")
        term = await store.current_term(uow.conn, project["jurisdiction"])
        raters = [r.deputy for r in body.ratings]
        try:
            if len(set(raters)) != len(raters):
                raise domain.SupervisionRefused("duplicate-rating", "one rating per deputy", 422)
            domain.check_inspection(body.kind, await store.kinds_inspected(uow.conn, project_id))
            domain.check_raters(body.kind, who.role is Role.DEPUTY, set(raters), await store.group(uow.conn, project_id, term))
        except domain.SupervisionRefused as exc:
            raise refused(exc) from exc
        mean = (Decimal(sum(r.rating for r in body.ratings)) / len(raters)).quantize(Decimal("0.01"), ROUND_HALF_UP) \
            if raters else None
        data = body.model_dump()
        data["deputies"] = sorted(set(body.deputies) | set(raters))
        row = await store.add_inspection(uow.conn, project_id, data, mean, term, who.sub)
        await uow.emit(InspectionRecorded(
            inspection_id=row["id"], project_id=project_id, year=project["year"], kind=body.kind, inspected_on=body.inspected_on,
            ratings=[DeputyRating(deputy=r.deputy, rating=r.rating) for r in body.ratings], term=term,
        ), project["jurisdiction"])
        opened = []
        for finding in body.findings:
            if not finding.rectify:
                continue
            due = finding.due_on or body.inspected_on + timedelta(days=RECTIFICATION_DAYS)
            item = await store.open_item(uow.conn, project, "inspection", row["id"], finding.problem, due, who.sub, who.role, term)
            await uow.emit(RectificationUpdated(item_id=item["id"], project_id=project_id, year=project["year"],
                                                status="open", due_on=due, closed_on=None), project["jurisdiction"])
            opened.append(dict(item))
        await uow.audit(project["jurisdiction"], who.sub, "inspect", "project", project_id, after=body.model_dump(mode="json"))
        return {**dict(row), "ratings": [r.model_dump() for r in body.ratings], "rectifications": opened}

    return await command(request, who.sub, act, 201)
