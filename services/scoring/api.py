"""HTTP routes of the scoring service: methods, project scores, township assessments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.scoring import domain
from services.scoring.domain import AssessmentMethod
from services.scoring.store import method_for
from shared.auth import Principal, Role, in_scope, require, scope_sql
from shared.contracts.scoring import AssessmentUpdated, ProjectScore
from shared.contracts.supervision import Completion
from shared.db import UnitOfWork
from shared.fields import Body, Jurisdiction, Year, YearParam
from shared.http import Problem, command, links, problems

router = APIRouter(tags=["scoring 考核"])
COUNTY = require(Role.COUNTY)
ANYONE = require()


class AssessmentIn(Body):
    jurisdiction: Jurisdiction = Field(description="the township assessed, e.g. taihu.fuyu")
    year: Year


class MethodSet(BaseModel):
    jurisdiction: str = Field(description="whose method: the county that set it")
    year: int
    method: AssessmentMethod


class ProjectScored(BaseModel):
    id: UUID
    jurisdiction: str
    year: int
    title: str
    completion: Completion | None
    score: float | None = Field(description="weighted from the inspection ratings and satisfaction; none before any")
    satisfaction: str | None = Field(description="the latest satisfaction tier (满意度测评)")


class AssessmentOut(AssessmentUpdated):
    """A township's assessment (as sent to the county assessment system)."""

    jurisdiction: str


class AssessmentRecord(AssessmentOut):
    published_at: datetime


class Ranked(BaseModel):
    rank: int
    jurisdiction: str
    version: int
    published_at: datetime
    total_projects: int
    completed: int
    completion_rate: Decimal
    bonus: Decimal
    deduction: Decimal
    net_points: Decimal


@router.put("/methods/{year}", response_model=MethodSet,
            responses=problems(403) | links(200, get_method={"year": "$response.body#/year"}))
async def set_method(year: YearParam, body: AssessmentMethod, request: Request, who: Principal = Depends(COUNTY)):
    async def act(uow: UnitOfWork):
        before = await uow.conn.fetchval("SELECT method FROM methods WHERE jurisdiction = $1 AND year = $2", who.jurisdiction, year)
        method = body.model_dump(mode="json")
        await uow.conn.execute(
            "INSERT INTO methods (jurisdiction, year, method) VALUES ($1, $2, $3)"
            " ON CONFLICT (jurisdiction, year) DO UPDATE SET method = EXCLUDED.method, set_at = now()",
            who.jurisdiction, year, method,
        )
        await uow.audit(who.jurisdiction, who.sub, "set-method", "method", year, before=before, after=method)
        return {"jurisdiction": who.jurisdiction, "year": year, "method": method}

    return await command(request, who.sub, act)


@router.get("/methods/{year}", response_model=AssessmentMethod, responses=problems())
async def get_method(year: YearParam, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        return (await method_for(conn, who.jurisdiction, year)).model_dump(mode="json")


@router.get("/projects", response_model=list[ProjectScored], responses=problems())
async def project_scores(request: Request, year: YearParam | None = None, who: Principal = Depends(ANYONE)):
    rows = await request.app.state.pool.fetch(
        f"""SELECT p.*, (SELECT s.tier FROM satisfaction s WHERE s.project_id = p.id ORDER BY s.vote_id LIMIT 1) AS satisfaction
            FROM projects p WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2) ORDER BY jurisdiction, title""",
        who.jurisdiction, year,
    )
    return [dict(r) for r in rows]


@router.post("/assessments", status_code=201, response_model=AssessmentOut,
             responses=problems(403, 409) | links(201, get_assessment={"jurisdiction": "$response.body#/jurisdiction",
                                                                       "year": "$response.body#/year"},
                                                  county_view={"year": "$response.body#/year"}))
async def publish_assessment(body: AssessmentIn, request: Request, who: Principal = Depends(COUNTY)):
    """Compute a township's assessment for the year and publish it as ``scoring.assessment.updated``
    to the county assessment system. Publishing again after new inspections sends a new version."""
    if not in_scope(who.jurisdiction, body.jurisdiction):
        raise Problem(403, "out-of-jurisdiction", "超出管辖范围 Outside your jurisdiction",
                      f"{body.jurisdiction} is not within {who.jurisdiction}")

    async def act(uow: UnitOfWork):
        # Serialise versions of one township's year.
        await uow.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2))", body.jurisdiction, str(body.year))
        projects = await uow.conn.fetch(
            "SELECT * FROM projects WHERE jurisdiction = $1 AND year = $2 ORDER BY title", body.jurisdiction, body.year
        )
        if not projects:
            raise Problem(409, "no-projects", "该年度无票决项目 No voted projects",
                          f"{body.jurisdiction} has no voted projects for {body.year} yet")
        method = await method_for(uow.conn, body.jurisdiction, body.year)
        completions = [Completion(p["completion"]) if p["completion"] else None for p in projects]
        figures = domain.assess(completions, method)
        version = 1 + await uow.conn.fetchval(
            "SELECT coalesce(max(version), 0) FROM assessments WHERE jurisdiction = $1 AND year = $2", body.jurisdiction, body.year
        )
        event = AssessmentUpdated(
            assessment_id=uuid4(), year=body.year, version=version, method=method.model_dump(mode="json"),
            total_projects=figures.total_projects, completed=figures.completed, completion_rate=figures.completion_rate,
            bonus=figures.bonus, deduction=figures.deduction, net_points=figures.net_points,
            projects=[ProjectScore(project_id=p["id"], title=p["title"], score=p["score"], completion=c)
                      for p, c in zip(projects, completions, strict=True)],
        )
        data = event.model_dump(mode="json")
        await uow.conn.execute(
            "INSERT INTO assessments (id, jurisdiction, year, version, figures, published_by) VALUES ($1, $2, $3, $4, $5, $6)",
            event.assessment_id, body.jurisdiction, body.year, version, data, who.sub,
        )
        await uow.emit(event, body.jurisdiction)
        return {"jurisdiction": body.jurisdiction, **data}

    return await command(request, who.sub, act, 201)


@router.get("/assessments", response_model=list[Ranked], responses=problems())
async def county_view(request: Request, year: YearParam, who: Principal = Depends(ANYONE)):
    """Every township in the caller's view, latest version each, ranked by net points then completion rate."""
    rows = await request.app.state.pool.fetch(
        f"""SELECT DISTINCT ON (jurisdiction) jurisdiction, version, figures, published_at FROM assessments
            WHERE {scope_sql('$1')} AND year = $2 ORDER BY jurisdiction, version DESC""",
        who.jurisdiction, year,
    )
    ranked = sorted(rows, key=lambda r: (-Decimal(r["figures"]["net_points"]), -Decimal(r["figures"]["completion_rate"])))
    return [{"rank": i + 1, "jurisdiction": r["jurisdiction"], "version": r["version"], "published_at": r["published_at"],
             **{k: r["figures"][k] for k in ("total_projects", "completed", "completion_rate", "bonus", "deduction", "net_points")}}
            for i, r in enumerate(ranked)]


@router.get("/assessments/{jurisdiction}/{year}", response_model=AssessmentRecord, responses=problems(403, 404))
async def get_assessment(jurisdiction: Jurisdiction, year: YearParam, request: Request, who: Principal = Depends(ANYONE)):
    if not in_scope(who.jurisdiction, jurisdiction):
        raise Problem(403, "out-of-jurisdiction", "超出管辖范围 Outside your jurisdiction", f"{jurisdiction} is not within {who.jurisdiction}")
    row = await request.app.state.pool.fetchrow(
        "SELECT * FROM assessments WHERE jurisdiction = $1 AND year = $2 ORDER BY version DESC LIMIT 1", jurisdiction, year
    )
    if row is None:
        raise Problem(404, "assessment-not-found", "尚无考核结果 No assessment yet", f"no assessment of {jurisdiction} for {year}")
    return {"jurisdiction": jurisdiction, **row["figures"], "published_at": row["published_at"]}
