"""The project board (进度看板): every voted project of the year with its progress against its plan,
coloured as the supervision service judges it (the colour always with its words), its score and
rating; each project's history. The office assigns a project's lead unit here."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import Services, refused
from web.session import Visitor
from web.ui import problem_page, render

router = APIRouter(prefix="/board")
VIEWERS = signed_in(Role.OFFICE, Role.COUNTY, Role.PRESIDING, Role.DEPUTY)
OFFICE = signed_in(Role.OFFICE)
PHOTO_VIEWERS = signed_in(Role.OFFICE, Role.COUNTY, Role.PRESIDING, Role.DEPUTY, Role.LEAD_UNIT)


class Calls:
    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token = who.token

    async def board(self, year: int) -> dict[str, Any]:
        board = await self.services.call("GET", "supervision", "/board", self.token, params={"year": year})
        scores = {s["id"]: s for s in await self.services.call("GET", "scoring", "/projects", self.token, params={"year": year})}
        board["projects"] = [{**p, "score": scores.get(p["id"], {}).get("score"),
                              "satisfaction": scores.get(p["id"], {}).get("satisfaction")} for p in board["projects"]]
        return board

    async def project(self, project_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "supervision", f"/projects/{project_id}", self.token)

    async def photo(self, photo_id: UUID):
        response = await self.services.response("GET", "supervision", f"/photos/{photo_id}", self.token)
        if response.status_code != 200:
            raise refused(response)
        return response.content, response.headers.get("content-type", "application/octet-stream")

    async def assign(self, project_id: UUID, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self.services.call("PUT", "supervision", f"/projects/{project_id}/assignment", self.token, body, key=key)


# The service's colours, each with the words that carry its meaning (colour is never alone).
COLOURS = {"red": "严重滞后", "yellow": "滞后", "green": "正常推进", "blue": "已完成并验收"}


@router.get("")
async def board(request: Request, year: str = "", who: Visitor = Depends(VIEWERS)):
    year = int(year) if year.isdigit() and 2000 <= int(year) <= 2100 else date.today().year
    board = await Calls(request, who).board(year)
    return render(request, "board.html", {"board": board, "year": year, "colours": COLOURS})


@router.get("/projects/{project_id}")
async def project(project_id: UUID, request: Request, who: Visitor = Depends(VIEWERS)):
    return render(request, "board_project.html", {"p": await Calls(request, who).project(project_id), "key": str(uuid4()),
                                                  "office": who.role == Role.OFFICE})


@router.get("/photos/{photo_id}")
async def photo(photo_id: UUID, request: Request, who: Visitor = Depends(PHOTO_VIEWERS)):
    """A progress report's photo, fetched with the viewer's token (an <img> cannot send one)."""
    content, media_type = await Calls(request, who).photo(photo_id)
    return Response(content, media_type=media_type, headers={"cache-control": "private, max-age=3600"})


@router.post("/projects/{project_id}/assignment")
async def assign(project_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                 who: Visitor = Depends(OFFICE)):
    """The project's plan (the service replaces it whole): lead unit, leader, budget, deadline, and
    the milestones (时间节点), one per line: ``2025-06-30 50 主体完工``."""
    calls = Calls(request, who)
    project = await calls.project(project_id)
    body: dict[str, Any] = {k: project[k] for k in ("funding_source", "presidium_member") if project.get(k)}
    for name in ("lead_unit", "leader", "deadline", "budget"):
        value = str(form.get(name) or "").replace(",", "").strip()[:100]
        if value:
            body[name] = value
    body["milestones"], bad = [], []
    for n, line in enumerate(str(form.get("milestones") or "").splitlines()[:24], 1):
        parts = line.split(None, 2)
        if not parts:
            continue
        if len(parts) < 2 or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", parts[0]) or not parts[1].rstrip("%").isdigit():
            bad.append(str(n))
            continue
        body["milestones"].append({"due_on": parts[0], "expected_percent": int(parts[1].rstrip("%")),
                                   "description": parts[2] if len(parts) > 2 else ""})
    if bad:
        return problem_page(request, "计划节点每行：日期 百分比 说明（如 2025-06-30 50 主体完工）", f"行 {', '.join(bad)}", status=422)
    await calls.assign(project_id, body, str(form.get("key") or "")[:64] or str(uuid4()))
    return RedirectResponse(f"/board/projects/{project_id}", status_code=303)
