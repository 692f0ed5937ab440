"""A resident proposes a livelihood project from a phone (the online channel, 线上) and gets a
tracking code; anyone holding a code looks up what became of that proposal (查询). No account:
the page submits through the web front's own resident credential for the chosen township
(``web.auth.resident_token``); the lookup is intake's public endpoint."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote
from uuid import uuid4

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData

from web.auth import JURISDICTION, checked_form, resident_token
from web.client import ServiceRefused, Services, refused
from web.ui import render

router = APIRouter()
CONTENT_MAX = 10_000  # the longest proposal text intake keeps (shared.fields.Content)
TOWNS = {"taihu.fuyu": "孚玉镇"}  # the townships that take proposals online (a setting when there are more)


class Calls:
    def __init__(self, request: Request) -> None:
        self.services: Services = request.app.state.services

    async def submit(self, town: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self.services.call("POST", "intake", "/proposals", await resident_token(self.services, town), body, key=key)

    async def track(self, code: str, client: str) -> dict[str, Any]:
        """Public by design, rate-limited per client by intake: the resident's address is passed on
        (intake counts it when it trusts this front's X-Forwarded-For)."""
        response = await self.services.client.get(f"{self.services.settings.url('intake')}/public/track/{quote(code, safe='')}",
                                                  headers={"x-forwarded-for": client})
        if response.status_code != 200:
            raise refused(response)
        return response.json()


def proposal_body(form: FormData, channel: str = "online") -> tuple[dict[str, Any], str]:
    """The proposal a form describes, or the reason (in Chinese) it cannot be sent."""
    title, content = str(form.get("title", "")).strip(), str(form.get("content", "")).strip()
    if not title:
        return {}, "请填写标题。"
    if len(title) > 200:
        return {}, f"标题最多 200 字，当前 {len(title)} 字。"
    if len(content) > CONTENT_MAX:
        return {}, f"内容最多 {CONTENT_MAX} 字，当前 {len(content)} 字。"
    body: dict[str, Any] = {"title": title, "content": content, "channel": channel,
                            "location": str(form.get("location", "")).strip()[:100],
                            "category": str(form.get("category", "")).strip()[:50], "year": _year(form)}
    for name, kind in (("estimated_budget", Decimal), ("beneficiaries", int)):
        raw = str(form.get(name) or "").strip().replace(",", "")
        if raw:
            try:
                body[name] = str(kind(raw)) if kind is Decimal else kind(raw)
            except (InvalidOperation, ValueError):
                return {}, "估算投资和受益人数请填写数字。"
    if form.get("lead_unit"):
        body["lead_unit"] = str(form.get("lead_unit")).strip()[:100]
    if form.get("contact"):
        body["contact"] = str(form.get("contact")).strip()[:100]
    return body, ""


def _year(form: FormData) -> int:
    from datetime import date

    try:
        return int(str(form.get("year")))
    except (TypeError, ValueError):
        return date.today().year + 1  # proposals collected now are for next year's projects


@router.get("/propose")
async def propose_page(request: Request, town: str = "taihu.fuyu"):
    return render(request, "propose.html", {"town": town if town in TOWNS else "taihu.fuyu", "towns": TOWNS, "key": str(uuid4()),
                                            "v": {}, "max": CONTENT_MAX})


@router.post("/propose")
async def propose(request: Request, form: Annotated[FormData, Depends(checked_form)]):
    town = str(form.get("town", ""))
    key = str(form.get("key") or "")[:64] or str(uuid4())
    body, error = proposal_body(form)
    if not error and (town not in TOWNS or not JURISDICTION.match(town)):
        error = "请选择乡镇。"
    if error:
        return render(request, "propose.html", {"town": town if town in TOWNS else "taihu.fuyu", "towns": TOWNS, "key": key,
                                                "v": dict(form), "error": error, "max": CONTENT_MAX}, status=422)
    try:
        created = await Calls(request).submit(town, body, key)
    except ServiceRefused as exc:
        return render(request, "propose.html", {"town": town, "towns": TOWNS, "key": key, "v": dict(form), "error": exc.message,
                                                "max": CONTENT_MAX}, status=422)
    return render(request, "propose_done.html", {"title": body["title"], "town": TOWNS[town], "code": created.get("code"),
                                                 "eligibility": created.get("eligibility") or []})


@router.get("/track")
async def track(request: Request, code: str = ""):
    """查询: what became of a proposal, by its tracking code."""
    code = code.strip()[:40]
    if not code:
        return render(request, "track.html", {"code": "", "found": None})
    try:
        found = await Calls(request).track(code, request.client.host if request.client else "")
    except ServiceRefused as exc:
        return render(request, "track.html", {"code": code, "found": None, "error": exc.message},
                      status=exc.status if exc.status in (404, 422, 429) else 502)
    return render(request, "track.html", {"code": code, "found": found})
