"""HTTP routes of the supervision service: projects, lead units, progress, inspections, completion."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.supervision import domain
from shared.auth import Principal, Role, fetch_in_scope, require, scope_sql
from shared.contracts.supervision import Completion, InspectionKind, InspectionRecorded, ProjectCompleted
from shared.db import UnitOfWork
from shared.http import Problem, command

router = APIRouter(tags=["supervision 监督"])
# Supervision of a township's projects belongs to that township (own=True): never the county's token.
OFFICE = require(Role.OFFICE, own=True)
REPORTER = require(Role.LEAD_UNIT, Role.OFFICE, own=True)
INSPECTOR = require(Role.OFFICE, Role.DEPUTY, own=True)
ANYONE = require()


class AssignmentIn(BaseModel):
    lead_unit: str = Field(min_length=1, description="牵头实施单位")
    leader: str = ""
    budget: Decimal | None = Field(default=None, ge=0)
    deadline: date | None = None


class ProgressIn(BaseModel):
    percent_done: int = Field(ge=0, le=100)
    funds_spent: Decimal | None = Field(default=None, ge=0)
    narrative: str = ""


class InspectionIn(BaseModel):
    kind: InspectionKind
    inspected_on: date
    rating: int = Field(ge=0, le=100)
    deputies: list[str] = Field(default_factory=list)
    findings: str = ""


class CompletionIn(BaseModel):
    completion: Completion
    accepted_on: date | None = None


async def _project(conn, who: Principal, project_id: UUID, lock: str = ""):
    return await fetch_in_scope(conn, who, "projects", project_id, "project", "项目", lock)


async def _kinds_inspected(conn, project_id: UUID) -> set[InspectionKind]:
    rows = await conn.fetch("SELECT kind FROM inspections WHERE project_id = $1", project_id)
    return {InspectionKind(r["kind"]) for r in rows}


def _refused(exc: domain.SupervisionRefused) -> Problem:
    return Problem(409, exc.code, "不符合监督规则 Refused by the rules", str(exc))


@router.get("/projects")
async def list_projects(request: Request, year: int | None = None, who: Principal = Depends(ANYONE)):
    rows = await request.app.state.pool.fetch(
        f"""SELECT p.*, (SELECT percent_done FROM progress_reports r WHERE r.project_id = p.id
                         ORDER BY reported_at DESC LIMIT 1) AS percent_done
            FROM projects p WHERE {scope_sql('$1', 'p.jurisdiction')} AND ($2::int IS NULL OR year = $2)
            ORDER BY p.created_at, p.title""",
        who.jurisdiction, year,
    )
    return [dict(r) for r in rows]


@router.get("/projects/{project_id}")
async def get_project(project_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        row = await _project(conn, who, project_id)
        progress = await conn.fetch("SELECT * FROM progress_reports WHERE project_id = $1 ORDER BY reported_at", project_id)
        inspections = await conn.fetch("SELECT * FROM inspections WHERE project_id = $1 ORDER BY recorded_at", project_id)
        rectifications = await conn.fetch("SELECT * FROM rectifications WHERE project_id = $1 ORDER BY created_at", project_id)
    return {**dict(row), "progress": [dict(p) for p in progress], "inspections": [dict(i) for i in inspections],
            "rectifications": [dict(r) for r in rectifications]}


@router.put("/projects/{project_id}/assignment")
async def assign(project_id: UUID, body: AssignmentIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        before = await _project(uow.conn, who, project_id, lock="FOR UPDATE")
        row = await uow.conn.fetchrow(
            "UPDATE projects SET lead_unit = $2, leader = $3, budget = $4, deadline = $5 WHERE id = $1 RETURNING *",
            project_id, body.lead_unit, body.leader, body.budget, body.deadline,
        )
        await uow.audit(row["jurisdiction"], who.sub, "assign", "project", project_id,
                        before={k: before[k] for k in ("lead_unit", "leader", "budget", "deadline")},
                        after=body.model_dump(mode="json"))
        return dict(row)

    return await command(request, who.sub, act)


@router.post("/projects/{project_id}/progress", status_code=201)
async def report_progress(project_id: UUID, body: ProgressIn, request: Request,
                          who: Principal = Depends(REPORTER)):
    async def act(uow: UnitOfWork):
        project = await _project(uow.conn, who, project_id)
        if project["lead_unit"] is None:
            raise Problem(409, "no-lead-unit", "尚未确定牵头单位 No lead unit yet", "assign the lead unit first")
        if who.role is Role.LEAD_UNIT and who.unit != project["lead_unit"]:
            raise Problem(403, "not-your-project", "非本单位牵头项目 Not your unit's project",
                          f"{project['title']} is led by {project['lead_unit']}")
        report_id = uuid4()
        row = await uow.conn.fetchrow(
            "INSERT INTO progress_reports (id, project_id, reported_by, percent_done, funds_spent, narrative)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            report_id, project_id, who.sub, body.percent_done, body.funds_spent, body.narrative,
        )
        return dict(row)

    return await command(request, who.sub, act, 201)


@router.post("/projects/{project_id}/inspections", status_code=201)
async def record_inspection(project_id: UUID, body: InspectionIn, request: Request,
                            who: Principal = Depends(INSPECTOR)):
    """期中/期末考评, 回头看: a rated inspection, sent on to scoring."""

    async def act(uow: UnitOfWork):
        project = await _project(uow.conn, who, project_id, lock="FOR UPDATE")
        kinds = await _kinds_inspected(uow.conn, project_id)
        try:
            domain.check_inspection(body.kind, kinds)
        except domain.SupervisionRefused as exc:
            raise _refused(exc) from exc
        inspection_id = uuid4()
        row = await uow.conn.fetchrow(
            "INSERT INTO inspections (id, project_id, kind, inspected_on, rating, deputies, findings, recorded_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
            inspection_id, project_id, body.kind, body.inspected_on, body.rating, body.deputies, body.findings, who.sub,
        )
        await uow.emit(
            InspectionRecorded(inspection_id=inspection_id, project_id=project_id, year=project["year"],
                               kind=body.kind, rating=body.rating, inspected_on=body.inspected_on),
            project["jurisdiction"],
        )
        await uow.audit(project["jurisdiction"], who.sub, "inspect", "project", project_id, after=body.model_dump(mode="json"))
        return dict(row)

    return await command(request, who.sub, act, 201)


@router.put("/projects/{project_id}/completion")
async def record_completion(project_id: UUID, body: CompletionIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        project = await _project(uow.conn, who, project_id, lock="FOR UPDATE")
        kinds = await _kinds_inspected(uow.conn, project_id)
        try:
            domain.check_completion(body.completion, kinds, project["completion"] and Completion(project["completion"]))
        except domain.SupervisionRefused as exc:
            raise _refused(exc) from exc
        row = await uow.conn.fetchrow(
            "UPDATE projects SET completion = $2, accepted_on = $3 WHERE id = $1 RETURNING *",
            project_id, body.completion, body.accepted_on,
        )
        await uow.emit(
            ProjectCompleted(project_id=project_id, year=project["year"], completion=body.completion, accepted_on=body.accepted_on),
            project["jurisdiction"],
        )
        await uow.audit(project["jurisdiction"], who.sub, "complete", "project", project_id, after=body.model_dump(mode="json"))
        return dict(row)

    return await command(request, who.sub, act)
