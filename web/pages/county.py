"""The county dashboard: townships side by side and ranked (the scoring service ranks them),
with ECharts charts, each beside a table that says the same in text, and the scoring
service's own ranking sheet (xlsx) passed through, so the sheet is defined once."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote
from uuid import uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from shared.auth import Role
from web.auth import JURISDICTION, checked_form, signed_in
from web.client import Services, refused
from web.pages.xlsx import XLSX
from web.session import Visitor
from web.ui import problem_page, render

router = APIRouter(prefix="/county")
COUNTY = signed_in(Role.COUNTY)


class Calls:
    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token = who.token

    async def ranking(self, year: int) -> list[dict[str, Any]]:
        return await self.services.call("GET", "scoring", "/assessments", self.token, params={"year": year})

    async def sheet(self, year: int):
        response = await self.services.response("GET", "scoring", "/assessments.xlsx", self.token, params={"year": year})
        if response.status_code != 200:
            raise refused(response)
        return response.content

    async def publish(self, township: str, year: int, key: str) -> dict[str, Any]:
        return await self.services.call("POST", "scoring", "/assessments", self.token, {"jurisdiction": township, "year": year}, key=key)


def _year(year: str | None) -> int:
    return int(year) if year and year.isdigit() and 2000 <= int(year) <= 2100 else date.today().year


@router.get("")
async def dashboard(request: Request, year: str = "", who: Visitor = Depends(COUNTY)):
    year = _year(year)
    rows = await Calls(request, who).ranking(year)
    chart = {"names": [r["jurisdiction"] for r in rows], "net": [float(r["net_points"]) for r in rows],
             "rate": [round(float(r["completion_rate"]) * 100, 1) for r in rows]}
    return render(request, "county.html", {"rows": rows, "year": year, "chart": chart, "key": str(uuid4())})


@router.get("/export.xlsx")
async def export(request: Request, year: str = "", who: Visitor = Depends(COUNTY)):
    year = _year(year)
    content = await Calls(request, who).sheet(year)
    return Response(content, media_type=XLSX, headers={
        "content-disposition": f"attachment; filename*=UTF-8''{quote(f'乡镇票决项目考核-{year}.xlsx')}"})


@router.post("/assessments")
async def publish(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(COUNTY)):
    township, year = str(form.get("township", "")).strip(), _year(str(form.get("year") or ""))
    if not JURISDICTION.match(township):
        return problem_page(request, "请填写乡镇（如 taihu.fuyu）。", status=422)
    await Calls(request, who).publish(township, year, str(form.get("key") or "")[:64] or str(uuid4()))
    return RedirectResponse(f"/county?year={year}", status_code=303)
