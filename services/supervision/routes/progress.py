"""Progress with history (who, when, before/after; backdated reports shown as such), photos, and
the progress board coloured against each project's plan."""

from __future__ import annotations

from collections import Counter
from datetime import date
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from services.supervision import domain, store
from services.supervision.domain import photos
from services.supervision.domain.plan import BoardSetting, colour, expected_percent
from services.supervision.routes.common import check_own_project, refused, today
from shared.auth import Principal, Role, require
from shared.contracts.supervision import ProgressReported
from shared.db import UnitOfWork
from shared.fields import Money, OptionalText, Percent, Reason, Year, items
from shared.http import Problem, command, problems

router = APIRouter(tags=["supervision 监督: progress 进度"])
ANYONE = require()
REPORTERS = require(Role.LEAD_UNIT, Role.OFFICE, own=True)


class ProgressIn(BaseModel):
    as_of: date | None = None  # the day described; default today
    percent_done: Percent
    funds_spent: Money | None = None  # cumulative: investment completed so far
    milestones_met: list[date] = items(24, default_factory=list)
    narrative: OptionalText = ""
    reason: Reason | None = None  # required when percent done goes down


@router.post("/projects/{project_id}/progress", status_code=201, responses=problems(403, 404, 409))
async def report_progress(project_id: UUID, body: ProgressIn, request: Request, who: Principal = Depends(REPORTERS)):
    """A progress report. A lead unit reports only on its own projects; percent done may go down only
    with a reason; a report about a day before the latest one is marked backdated."""

    async def act(uow: UnitOfWork):
        project = await store.project(uow.conn, who, project_id, lock="FOR UPDATE")
        check_own_project(who, project["lead_unit"])
        if project["lead_unit"] is None:
            raise Problem(409, "no-lead-unit", "尚未确定牵头单位 No lead unit yet", "assign the lead unit first")
        report = body.model_dump() | {"as_of": body.as_of or today()}
        latest = await store.latest_progress(uow.conn, project_id)
        try:
            domain.check_progress(latest and latest["percent_done"], body.percent_done, body.reason)
        except domain.SupervisionRefused as exc:
            raise refused(exc) from exc
        before = latest and {"as_of": latest["as_of"].isoformat(), "percent_done": latest["percent_done"],
                             "funds_spent": latest["funds_spent"] and str(latest["funds_spent"])}
        backdated = domain.is_backdated(report["as_of"], latest and latest["as_of"])
        row = await store.add_progress(uow.conn, project_id, who.sub, report, backdated, before)
        await uow.emit(ProgressReported(report_id=row["id"], project_id=project_id, year=project["year"], as_of=row["as_of"],
                                        percent_done=row["percent_done"], funds_spent=row["funds_spent"],
                                        backdated=backdated), project["jurisdiction"])
        await uow.audit(project["jurisdiction"], who.sub, "progress", "project", project_id, before=before,
                        after={**body.model_dump(mode="json"), "as_of": report["as_of"].isoformat(), "backdated": backdated})
        return dict(row)

    return await command(request, who.sub, act, 201)


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request body, read no further than one byte past ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise refused(domain.SupervisionRefused("photo-too-large", f"a photo may be at most {limit} bytes", 413))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            break
    body = b"".join(chunks)
    request._body = body  # Starlette's cache: command() reads it again for the Idempotency-Key fingerprint
    return body


@router.post("/progress/{report_id}/photos", status_code=201, responses=problems(403, 404, 413, 415),
             openapi_extra={"requestBody": {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                                        for t in ("image/jpeg", "image/png", "image/webp")}}})
async def add_photo(report_id: UUID, request: Request, who: Principal = Depends(REPORTERS)):
    """A photo of a progress report, sent as the raw body (JPEG, PNG or WebP, at most 5 MB)."""
    content = await _bounded_body(request, photos.MAX_BYTES)
    try:
        media_type = photos.check_photo(content)
    except domain.SupervisionRefused as exc:
        raise refused(exc) from exc

    async def act(uow: UnitOfWork):
        report = await store.report(uow.conn, who, report_id)
        check_own_project(who, report["lead_unit"])
        row = await store.add_photo(uow.conn, report_id, media_type, content, who.sub)
        await uow.audit(report["jurisdiction"], who.sub, "photo", "progress_report", report_id,
                        after={"photo": str(row["id"]), "size": len(content), "media_type": media_type})
        return dict(row)

    return await command(request, who.sub, act, 201)


@router.get("/photos/{photo_id}", responses=problems(404), response_class=Response)
async def get_photo(photo_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        row = await store.photo(conn, who, photo_id)
    return Response(row["content"], media_type=row["media_type"])


@router.get("/board", responses=problems())
async def board(request: Request, year: Year, on: date | None = None, who: Principal = Depends(ANYONE)):
    """进度看板: each project's colour against its plan on ``on`` (default today), and the count per colour."""
    on = on or today()
    async with request.app.state.pool.acquire() as conn:
        rows = await store.projects(conn, who.jurisdiction, year)
        plans = await store.all_milestones(conn, [r["id"] for r in rows])
        settings = {j: await store.board_setting(conn, j) for j in {r["jurisdiction"] for r in rows}}
    projects = []
    for r in rows:
        expected = expected_percent(plans[r["id"]], on)
        accepted = r["completion"] == "completed" and r["accepted_on"] is not None and r["accepted_on"] <= on
        projects.append({"id": r["id"], "jurisdiction": r["jurisdiction"], "title": r["title"], "lead_unit": r["lead_unit"],
                         "percent_done": r["percent_done"], "expected_percent": expected,
                         "colour": colour(r["percent_done"], expected, accepted, settings[r["jurisdiction"]])})
    return {"on": on, "counts": dict(Counter(p["colour"] for p in projects)), "projects": projects}


@router.put("/settings/board", responses=problems(403))
async def set_board(body: BoardSetting, request: Request, who: Principal = Depends(require(Role.OFFICE, Role.COUNTY))):
    """The board's colours for the caller's jurisdiction (a county's apply to townships without their own)."""

    async def act(uow: UnitOfWork):
        before = await store.board_setting(uow.conn, who.jurisdiction)
        await store.set_board(uow.conn, who.jurisdiction, body)
        await uow.audit(who.jurisdiction, who.sub, "board-setting", "jurisdiction", who.jurisdiction,
                        before=before.model_dump(), after=body.model_dump())
        return body.model_dump()

    return await command(request, who.sub, act)


