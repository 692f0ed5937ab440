"""The project board (监督): every voted project of the year with its latest progress and its
completion, and each project's history. The office assigns a project's lead unit here.
Colours by progress against the plan come with the supervision issue's plans; until then a
project is coloured by its completion alone (completed, under way, not completed)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import Services
from web.session import Visitor
from web.ui import render

router = APIRouter(prefix="/board")
VIEWERS = signed_in(Role.OFFICE, Role.COUNTY, Role.PRESIDING, Role.DEPUTY)
OFFICE = signed_in(Role.OFFICE)


class Calls:
    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token = who.token

    async def projects(self, year: int) -> list[dict[str, Any]]:
        projects = await self.services.call("GET", "supervision", "/projects", self.token, params={"year": year})
        scores = {s["id"]: s for s in await self.services.call("GET", "scoring", "/projects", self.token, params={"year": year})}
        return [{**p, "score": scores.get(p["id"], {}).get("score"), "satisfaction": scores.get(p["id"], {}).get("satisfaction")}
                for p in projects]

    async def project(self, project_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "supervision", f"/projects/{project_id}", self.token)

    async def assign(self, project_id: UUID, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self.services.call("PUT", "supervision", f"/projects/{project_id}/assignment", self.token, body, key=key)


def state(p: dict[str, Any]) -> str:
    return {"completed": "done", "basically_completed": "done", "not_completed": "late"}.get(p.get("completion") or "", "open")


@router.get("")
async def board(request: Request, year: str = "", who: Visitor = Depends(VIEWERS)):
    year = int(year) if year.isdigit() and 2000 <= int(year) <= 2100 else date.today().year
    projects = await Calls(request, who).projects(year)
    return render(request, "board.html", {"projects": projects, "year": year, "state": state})


@router.get("/projects/{project_id}")
async def project(project_id: UUID, request: Request, who: Visitor = Depends(VIEWERS)):
    return render(request, "board_project.html", {"p": await Calls(request, who).project(project_id), "key": str(uuid4()),
                                                  "office": who.role == Role.OFFICE})


@router.post("/projects/{project_id}/assignment")
async def assign(project_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                 who: Visitor = Depends(OFFICE)):
    body = {k: str(form.get(k, "")).strip()[:100] for k in ("lead_unit", "leader")}
    if form.get("deadline"):
        body["deadline"] = str(form.get("deadline"))[:10]
    if form.get("budget"):
        body["budget"] = str(form.get("budget")).replace(",", "")[:15]
    await Calls(request, who).assign(project_id, body, str(form.get("key") or "")[:64] or str(uuid4()))
    return RedirectResponse(f"/board/projects/{project_id}", status_code=303)
