"""Projects and their plans: lead unit, leader, budget, funding, milestones, presidium member,
supervision group by term, and the completion judgement."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, model_validator

from services.supervision import domain, store
from services.supervision.routes.common import refused
from shared.auth import Principal, Role, require
from shared.contracts.supervision import Completion, Milestone, ProjectCompleted, ProjectPlanned
from shared.db import UnitOfWork
from shared.fields import Identifier, Money, Name, OptionalText, Percent, Term, Year, items
from shared.http import command, problems

router = APIRouter(tags=["supervision 监督: projects 项目"])
OFFICE = require(Role.OFFICE, own=True)  # the township's own supervision: never the county's token
ANYONE = require()


class MilestoneIn(BaseModel):
    due_on: date
    expected_percent: Percent
    description: OptionalText = ""


class AssignmentIn(BaseModel):
    lead_unit: Name = Field(description="牵头实施单位")
    leader: Name | None = Field(default=None, description="责任领导")
    budget: Money | None = None
    funding_source: OptionalText = Field(default="", description="资金来源")
    deadline: date | None = None
    presidium_member: Name | None = Field(default=None, description="联系项目的主席团成员")
    milestones: list[MilestoneIn] = items(24, default_factory=list)

    @model_validator(mode="after")
    def _distinct_dates(self) -> AssignmentIn:
        if len({m.due_on for m in self.milestones}) != len(self.milestones):
            raise ValueError("two milestones on one date")
        return self


class GroupIn(BaseModel):
    term: Term | None = Field(default=None, description="届; default: the term now serving")
    deputies: list[Identifier] = items(50, min_length=1)
    leader: Identifier | None = Field(default=None, description="监督长, one of the deputies")


class CompletionIn(BaseModel):
    completion: Completion
    accepted_on: date | None = None


@router.get("/projects", responses=problems())
async def list_projects(request: Request, year: Year | None = None, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        return [dict(r) for r in await store.projects(conn, who.jurisdiction, year)]


@router.get("/projects/{project_id}", responses=problems(404))
async def get_project(project_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        return await store.detail(conn, await store.project(conn, who, project_id))


@router.put("/projects/{project_id}/assignment", responses=problems(403, 404))
async def assign(project_id: UUID, body: AssignmentIn, request: Request, who: Principal = Depends(OFFICE)):
    """The project's plan: lead unit, leader, budget and funding source, milestones (时间节点) of the
    year with the percent expected by each, and the presidium member. Sent to scoring."""

    async def act(uow: UnitOfWork):
        before = await store.project(uow.conn, who, project_id, lock="FOR UPDATE")
        plan = body.model_dump()
        row = await store.set_plan(uow.conn, project_id, plan)
        await uow.emit(ProjectPlanned(
            project_id=project_id, year=row["year"], lead_unit=body.lead_unit, leader=body.leader or "", budget=body.budget,
            funding_source=body.funding_source, milestones=[Milestone(**m.model_dump()) for m in body.milestones],
        ), row["jurisdiction"])
        await uow.audit(row["jurisdiction"], who.sub, "plan", "project", project_id,
                        before={k: before[k] for k in ("lead_unit", "leader", "budget", "deadline", "funding_source")},
                        after=body.model_dump(mode="json"))
        return dict(row)

    return await command(request, who.sub, act)


@router.put("/projects/{project_id}/supervisors", responses=problems(404, 409))
async def set_supervisors(project_id: UUID, body: GroupIn, request: Request, who: Principal = Depends(OFFICE)):
    """监督小组: the deputies who supervise the project under a term; a new term names its own."""

    async def act(uow: UnitOfWork):
        project = await store.project(uow.conn, who, project_id, lock="FOR UPDATE")
        term = body.term or await store.current_term(uow.conn, project["jurisdiction"])
        if term is None:
            raise refused(domain.SupervisionRefused("term-unknown", "name the term (届): none is recorded as serving", 422))
        if body.leader and body.leader not in body.deputies:
            raise refused(domain.SupervisionRefused("leader-not-in-group", "the 监督长 must be one of the deputies", 422))
        before = sorted(await store.group(uow.conn, project_id, term))
        await store.set_group(uow.conn, project_id, term, body.deputies, body.leader)
        await uow.audit(project["jurisdiction"], who.sub, "supervisors", "project", project_id,
                        before={"term": term, "deputies": before}, after={"term": term, **body.model_dump(exclude={"term"})})
        return {"project_id": project_id, "term": term, "deputies": body.deputies, "leader": body.leader}

    return await command(request, who.sub, act)


@router.put("/projects/{project_id}/completion", responses=problems(404, 409))
async def record_completion(project_id: UUID, body: CompletionIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        project = await store.project(uow.conn, who, project_id, lock="FOR UPDATE")
        kinds = await store.kinds_inspected(uow.conn, project_id)
        try:
            domain.check_completion(body.completion, kinds, project["completion"] and Completion(project["completion"]))
        except domain.SupervisionRefused as exc:
            raise refused(exc) from exc
        row = await uow.conn.fetchrow("UPDATE projects SET completion = $2, accepted_on = $3 WHERE id = $1 RETURNING *",
                                      project_id, body.completion, body.accepted_on)
        await uow.emit(ProjectCompleted(project_id=project_id, year=project["year"], completion=body.completion,
                                        accepted_on=body.accepted_on), project["jurisdiction"])
        await uow.audit(project["jurisdiction"], who.sub, "complete", "project", project_id, after=body.model_dump(mode="json"))
        return dict(row)

    return await command(request, who.sub, act)
