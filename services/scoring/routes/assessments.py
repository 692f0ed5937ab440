"""Project scores and township assessments; the county view and its pull API (ETag, ``?since=``)."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from services.scoring import store
from services.scoring.domain import Standing, rank
from services.scoring.publish import publish
from services.scoring.routes.common import check_scope
from shared.auth import Principal, Role, require
from shared.db import UnitOfWork
from shared.fields import Year, text
from shared.http import Problem, command, problems
from shared.spreadsheet import XLSX, workbook

router = APIRouter(tags=["scoring 考核: assessments 年度考核"])
COUNTY = require(Role.COUNTY)
ANYONE = require()
Jurisdiction = text(100, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


class AssessmentIn(BaseModel):
    jurisdiction: Jurisdiction = Field(description="the township assessed, e.g. taihu.fuyu")
    year: Year
    as_of: date | None = Field(default=None, description="rectification items overdue on this day count; default today")


@router.get("/projects", responses=problems())
async def project_scores(request: Request, year: Year | None = None, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        return [dict(r) for r in await store.projects(conn, who.jurisdiction, year)]


@router.post("/assessments", status_code=201, responses=problems(403, 409))
async def publish_assessment(body: AssessmentIn, request: Request, who: Principal = Depends(COUNTY)):
    """Compute a township's assessment for the year under the method in force and publish it as a new
    version (``scoring.assessment.updated``, the county's queue, webhooks). Later changes send further
    versions by themselves."""
    check_scope(who, body.jurisdiction)

    async def act(uow: UnitOfWork):
        published = await publish(uow, body.jurisdiction, body.year, who.sub, "published", body.as_of or date.today())
        if published is None:
            raise Problem(409, "no-projects", "该年度无票决项目 No voted projects",
                          f"{body.jurisdiction} has no voted projects for {body.year} yet")
        return published

    return await command(request, who.sub, act, 201)


def _ranking(rows) -> list[dict]:
    standings = {r["jurisdiction"]: r for r in rows}
    ranked = rank(Standing(r["jurisdiction"], Decimal(r["figures"]["net_points"]), Decimal(r["figures"]["completion_rate"]),
                           Decimal(r["figures"].get("investment_rate", 0))) for r in rows)
    keys = ("total_projects", "completed", "completion_rate", "bonus", "deduction", "overdue_rectifications",
            "rectification_deduction", "net_points", "investment_planned", "investment_spent", "investment_rate", "method_version")
    return [{"rank": place, "jurisdiction": s.jurisdiction, "version": standings[s.jurisdiction]["version"],
             "published_at": standings[s.jurisdiction]["published_at"],
             **{k: standings[s.jurisdiction]["figures"].get(k) for k in keys}} for place, s in ranked]


def _etag(*parts: object) -> str:
    return 'W/"' + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


def _not_modified(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return etag in {t.strip() for t in sent.split(",")} or sent.strip() == "*"


@router.get("/assessments", responses=problems())
async def county_view(request: Request, response: Response, year: Year, who: Principal = Depends(ANYONE)):
    """Every township in the caller's view, latest version each, ranked by net points, then completion
    rate, then investment completed against plan. ETag: answer 304 to ``If-None-Match``."""
    async with request.app.state.pool.acquire() as conn:
        last = await store.last_change(conn, who.jurisdiction, year)
        etag = _etag("ranking", who.jurisdiction, year, last)
        if _not_modified(request, etag):
            return Response(status_code=304, headers={"etag": etag})
        rows = await store.latest_assessments(conn, who.jurisdiction, year)
    response.headers["etag"] = etag
    return _ranking(rows)


@router.get("/assessments.xlsx", responses=problems(), response_class=Response)
async def county_sheet(request: Request, year: Year, who: Principal = Depends(ANYONE)):
    """The county's ranking sheet (县考核排名) as xlsx."""
    async with request.app.state.pool.acquire() as conn:
        ranking = _ranking(await store.latest_assessments(conn, who.jurisdiction, year))
    headers = ["名次", "乡镇", "版本", "考核办法版本", "票决项目", "完成", "完成率", "加分", "扣分", "整改逾期", "整改扣分", "净分",
               "计划投资(元)", "完成投资(元)", "投资完成率"]
    rows = [[r["rank"], r["jurisdiction"], r["version"], r["method_version"], r["total_projects"], r["completed"],
             Decimal(r["completion_rate"]), Decimal(r["bonus"]), Decimal(r["deduction"]), r["overdue_rectifications"],
             Decimal(r["rectification_deduction"] or 0), Decimal(r["net_points"]), Decimal(r["investment_planned"] or 0),
             Decimal(r["investment_spent"] or 0), Decimal(r["investment_rate"] or 0)] for r in ranking]
    content = workbook({f"{year}年度考核排名": (headers, rows)})
    return Response(content, media_type=XLSX, headers={"content-disposition": f'attachment; filename="assessments-{year}.xlsx"'})


@router.get("/county/changes", responses=problems())
async def changes(request: Request, response: Response, since: Annotated[int, Query(ge=0, le=2**62)] = 0,
                  year: Year | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  who: Principal = Depends(ANYONE)):
    """Pull API for the county assessment system: every assessment version made after the cursor
    ``since`` (0: all), oldest first, each with its figures; ``next`` is the cursor for the next pull.
    ETag over the latest change: a repeated pull with ``If-None-Match`` gets 304 until something changes."""
    async with request.app.state.pool.acquire() as conn:
        last = await store.last_change(conn, who.jurisdiction, year)
        etag = _etag("changes", who.jurisdiction, year, since, limit, last)
        if _not_modified(request, etag):
            return Response(status_code=304, headers={"etag": etag})
        rows = await store.changes(conn, who.jurisdiction, year, since, limit)
    response.headers["etag"] = etag
    return {"since": since, "next": rows[-1]["seq"] if rows else since, "more": len(rows) == limit,
            "changes": [{"seq": r["seq"], "jurisdiction": r["jurisdiction"], "year": r["year"], "version": r["version"],
                         "reason": r["reason"], "method_version": r["method_version"], "published_at": r["published_at"],
                         "figures": r["figures"]} for r in rows]}


@router.get("/assessments/{jurisdiction}/{year}", responses=problems(403, 404))
async def get_assessment(jurisdiction: Jurisdiction, year: Year, request: Request, who: Principal = Depends(ANYONE)):
    check_scope(who, jurisdiction)
    async with request.app.state.pool.acquire() as conn:
        row = await store.latest_assessment(conn, jurisdiction, year)
    if row is None:
        raise Problem(404, "assessment-not-found", "尚无考核结果 No assessment yet", f"no assessment of {jurisdiction} for {year}")
    return {"jurisdiction": jurisdiction, **row["figures"], "published_at": row["published_at"]}


@router.get("/assessments/{jurisdiction}/{year}/versions", responses=problems(403))
async def assessment_versions(jurisdiction: Jurisdiction, year: Year, request: Request, who: Principal = Depends(ANYONE)):
    """Every version, oldest first: a recalculation never overwrites."""
    check_scope(who, jurisdiction)
    async with request.app.state.pool.acquire() as conn:
        return [{"version": r["version"], "reason": r["reason"], "method_version": r["method_version"],
                 "published_at": r["published_at"], "figures": r["figures"]} for r in await store.versions(conn, jurisdiction, year)]
