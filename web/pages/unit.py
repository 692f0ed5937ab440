"""The lead unit (牵头单位): its projects and their progress reports (percent, funds, narrative).
Photos and rectification items to answer come with the supervision issue's APIs."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import Services
from web.session import Visitor
from web.ui import problem_page, render

router = APIRouter(prefix="/unit")
UNIT = signed_in(Role.LEAD_UNIT)


class Calls:
    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token, self.unit = who.token, who.sub

    async def projects(self) -> list[dict[str, Any]]:
        """The unit's own projects (the account names its unit; the identity issue makes the
        services enforce it, the page only lists them)."""
        return [p for p in await self.services.call("GET", "supervision", "/projects", self.token) if p["lead_unit"] == self.unit]

    async def project(self, project_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "supervision", f"/projects/{project_id}", self.token)

    async def report(self, project_id: UUID, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self.services.call("POST", "supervision", f"/projects/{project_id}/progress", self.token, body, key=key)


@router.get("")
async def projects(request: Request, who: Visitor = Depends(UNIT)):
    return render(request, "unit.html", {"projects": await Calls(request, who).projects()})


@router.get("/projects/{project_id}")
async def project(project_id: UUID, request: Request, who: Visitor = Depends(UNIT)):
    return render(request, "unit_project.html", {"p": await Calls(request, who).project(project_id), "key": str(uuid4())})


@router.post("/projects/{project_id}/progress")
async def report(project_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                 who: Visitor = Depends(UNIT)):
    try:
        percent = int(str(form.get("percent_done", "")))
        funds = str(form.get("funds_spent") or "").replace(",", "").strip()
        body: dict[str, Any] = {"percent_done": percent, "narrative": str(form.get("narrative", "")).strip()[:10_000]}
        if funds:
            body["funds_spent"] = str(Decimal(funds))
    except (ValueError, InvalidOperation):
        return problem_page(request, "完成百分比和已用资金请填写数字。", status=422)
    key = str(form.get("key") or "")[:64] or str(uuid4())
    await Calls(request, who).report(project_id, body, key)
    return RedirectResponse(f"/unit/projects/{project_id}", status_code=303)
