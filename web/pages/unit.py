"""The lead unit (牵头单位): its projects, progress reports (percent, funds, narrative, a photo),
and the rectification items (整改事项) it must answer."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, UploadFile

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import Services, refused
from web.session import Visitor
from web.ui import problem_page, render

router = APIRouter(prefix="/unit")
UNIT = signed_in(Role.LEAD_UNIT)
PHOTO_MAX = 5 * 1024 * 1024  # the supervision service's limit for a photo


class Calls:
    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token, self.unit = who.token, who.unit

    async def projects(self) -> list[dict[str, Any]]:
        """The unit's own projects (the account names its unit; the identity issue makes the
        services enforce it, the page only lists them)."""
        return [p for p in await self.services.call("GET", "supervision", "/projects", self.token) if p["lead_unit"] == self.unit]

    async def project(self, project_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "supervision", f"/projects/{project_id}", self.token)

    async def report(self, project_id: UUID, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self.services.call("POST", "supervision", f"/projects/{project_id}/progress", self.token, body, key=key)

    async def add_photo(self, report_id: UUID, content: bytes, media_type: str, key: str) -> None:
        response = await self.services.response("POST", "supervision", f"/progress/{report_id}/photos", self.token,
                                                key=key, content=content, content_type=media_type)
        if response.status_code >= 400:
            raise refused(response)

    async def items(self) -> list[dict[str, Any]]:
        """The rectification items sent to this unit (整改事项), overdue ones marked by the service."""
        listed = await self.services.call("GET", "supervision", "/rectifications", self.token)
        return [i for i in listed["items"] if i.get("lead_unit") == self.unit]

    async def respond(self, item_id: UUID, text: str, key: str) -> dict[str, Any]:
        return await self.services.call("POST", "supervision", f"/rectifications/{item_id}/actions", self.token,
                                        {"action": "respond", "text": text}, key=key)


@router.get("")
async def projects(request: Request, who: Visitor = Depends(UNIT)):
    calls = Calls(request, who)
    return render(request, "unit.html", {"projects": await calls.projects(), "items": await calls.items(), "key": str(uuid4())})


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
    if form.get("reason"):
        body["reason"] = str(form.get("reason")).strip()[:2000]
    photo = form.get("photo")
    content = await photo.read(PHOTO_MAX + 1) if isinstance(photo, UploadFile) and photo.filename else b""
    if len(content) > PHOTO_MAX:
        return problem_page(request, "照片不能超过 5 MB。", status=413)
    key = str(form.get("key") or "")[:64] or str(uuid4())
    calls = Calls(request, who)
    report = await calls.report(project_id, body, key)
    if content:
        await calls.add_photo(report["id"], content, photo.content_type or "application/octet-stream", f"{key}-photo")
    return RedirectResponse(f"/unit/projects/{project_id}", status_code=303)


@router.post("/rectifications/{item_id}")
async def respond(item_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                  who: Visitor = Depends(UNIT)):
    """整改反馈: what the unit did, for the deputies to verify (or send back)."""
    text = str(form.get("text", "")).strip()[:10_000]
    if not text:
        return problem_page(request, "请填写整改情况。", status=422)
    await Calls(request, who).respond(item_id, text, str(form.get("key") or "")[:64] or str(uuid4()))
    return RedirectResponse("/unit#items", status_code=303)
