"""Spreadsheets: the import template, the import of paper-collected proposals (a dry run first,
then all rows or none, once per file), and the year's export."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.intake import spreadsheets, store
from services.intake.domain import eligibility
from services.intake.domain.screening import CHANNEL_LABELS
from services.intake.routes.common import ANYONE, OFFICE, shown
from services.intake.schemas import ImportOut
from services.intake.settings import get_intake_settings
from shared.auth import Principal, Role
from shared.db import unit_of_work
from shared.fields import Flag, Year
from shared.http import Problem, problems

router = APIRouter(tags=["intake 征集"])
BINARY = {"schema": {"type": "string", "format": "binary"}}
XLSX_RESPONSE = {200: {"content": {spreadsheets.XLSX: BINARY}, "description": "an .xlsx file"}}


def _xlsx(data: bytes, name: str) -> Response:
    return Response(data, media_type=spreadsheets.XLSX,
                    headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@router.get("/imports/template", response_class=Response, responses={**XLSX_RESPONSE, **problems()})
async def template(who: Principal = Depends(ANYONE)):
    """The import template (群众点单导入模板.xlsx): Chinese headers, an example row, notes on filling it in."""
    return _xlsx(spreadsheets.template(), "群众点单导入模板.xlsx")


async def _body(request: Request, limit: int) -> bytes:
    too_large = Problem(413, "file-too-large", "文件过大 File too large",
                        f"文件不能超过 {limit // (1024 * 1024)} MB，请拆分后分别导入")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    if not size:
        raise Problem(422, "file-required", "请上传文件 No file", "send the .xlsx or .csv file as the request body")
    return b"".join(chunks)


@router.post("/imports", response_model=ImportOut, status_code=201,
             responses={200: {"model": ImportOut, "description": "a dry run, or a file imported before"}, **problems(403, 413)},
             openapi_extra={"requestBody": {"required": True, "content": {spreadsheets.XLSX: BINARY, "text/csv": BINARY}}})
async def import_sheet(request: Request, year: Year, dry_run: Flag = Query(False, description="only check and show"),
                       who: Principal = Depends(OFFICE)):
    """Import a grid worker's list (.xlsx or .csv; UTF-8 or GBK), sent as the request body. A dry
    run shows what would be created and every problem by row and column, in Chinese. The import
    itself creates all rows or none (``import-invalid`` lists the problems), checks each row's
    eligibility like a submission, and happens once per file: the same file again creates nothing."""
    limits = get_intake_settings()
    data = await _body(request, limits.import_max_bytes)
    pool = request.app.state.pool
    async with pool.acquire() as conn:
        rules = (await store.year_settings(conn, who.jurisdiction, year))["eligibility"]
        existing = await store.import_by_hash(conn, who.jurisdiction, year, spreadsheets.file_hash(data))
    if existing is not None and not dry_run:  # imported before: nothing to read, nothing to create
        return JSONResponse(ImportOut(dry_run=False, file_hash=existing["file_hash"], format="", encoding=None,
                                      rows=existing["rows"], problems=[], already_imported=True,
                                      import_id=existing["id"]).model_dump(mode="json"))
    parsed = spreadsheets.parse(data, limits.import_max_rows)
    checked = [(n, fields, eligibility.check(fields.public(), rules)) for n, fields in parsed.rows]
    answer = {"dry_run": dry_run, "file_hash": parsed.file_hash, "format": parsed.format, "encoding": parsed.encoding,
              "rows": len(parsed.rows), "problems": [p.as_dict() for p in parsed.problems],
              "already_imported": existing is not None, "import_id": existing and existing["id"],
              "ineligible": sum(1 for *_, failures in checked if failures)}
    if dry_run:
        answer["created"] = 0
        answer["preview"] = [{"row": n, "title": f.title, "location": f.location, "channel": CHANNEL_LABELS[f.channel],
                              "eligibility": [x.label for x in failures]} for n, f, failures in checked[:20]]
        return JSONResponse(ImportOut.model_validate(answer).model_dump(mode="json"))
    if parsed.problems:
        raise Problem(422, "import-invalid", "表格有误，未导入任何内容 Nothing imported",
                      f"{len(parsed.problems)} 处问题，请按行、列修改后重新上传", problems=answer["problems"])
    if existing is None:
        async with unit_of_work(pool, "intake") as uow:
            import_id = await store.claim_import(uow.conn, who.jurisdiction, year, parsed.file_hash, len(checked), who.sub)
            if import_id is not None:
                answer["created"] = await store.insert_imported(uow.conn, import_id, who.jurisdiction, year, checked,
                                                                limits.contact_retention_days)
                answer["import_id"] = import_id
                await uow.audit(who.jurisdiction, who.sub, "import", "import", import_id,
                                after={"file_hash": parsed.file_hash, "rows": len(checked)})
        if import_id is not None:
            return JSONResponse(ImportOut.model_validate(answer).model_dump(mode="json"), status_code=201)
        async with pool.acquire() as conn:  # imported meanwhile by a concurrent upload of the same file
            answer["import_id"] = (await store.import_by_hash(conn, who.jurisdiction, year, parsed.file_hash))["id"]
    answer["already_imported"] = True
    return JSONResponse(ImportOut.model_validate(answer).model_dump(mode="json"))


@router.get("/exports/proposals", response_class=Response, responses={**XLSX_RESPONSE, **problems(403)})
async def export(request: Request, year: Year, contacts: Flag = Query(False, description="office only: 建议人 and 联系方式"),
                 who: Principal = Depends(ANYONE)):
    """The year's proposals in your jurisdiction, with stage, reasons and supporters, as .xlsx.
    Proposers' names and contacts are personal information: only the office may include them."""
    if contacts and who.role is not Role.OFFICE:
        raise Problem(403, "contacts-not-allowed", "无权导出个人信息 Not allowed to export contacts",
                      "only the office that answers proposers may export their contacts")
    if contacts:  # a proposer's contact is for the office that answers them: its own township's only
        who = who.model_copy(update={"own": True})
    async with request.app.state.pool.acquire() as conn:
        rows = await store.proposals(conn, who, year)
        views = await shown(conn, rows)
        people = await store.contacts(conn, [r["id"] for r in rows]) if contacts else {}
    codes = {r["id"]: r["code"] for r in rows}
    lines = []
    for r, v in zip(rows, views, strict=True):
        support = v["supporters"] if r["merged_into"] is None else None  # a merged proposal is counted in its item
        line = [r["code"], v["title"], v["content"], v["location"], v["category"], v["channel_label"], v["stage_label"],
                _reasons(r), support and support["count"],
                "、".join(f"{c} {n}" for c, n in support["by_channel_label"].items()) if support else "",
                "、".join(f"{p} {n}" for p, n in support["by_location"].items()) if support else "",
                codes.get(r["merged_into"], ""), (r["history"] or {}).get("from_year", ""),
                v["feasibility"]["weighted"], v["estimated_budget"], v["beneficiaries"]]
        if contacts:
            person = people.get(r["id"])
            line += [person["proposer"], person["contact"]] if person and person["erased_at"] is None else ["（已删除）", ""]
        lines.append(line)
    return _xlsx(spreadsheets.export(lines, contacts), f"{year}年提案.xlsx")


def _reasons(row) -> str:
    """Why it stands where it stands: the rejection, the disposition, or the failed checks."""
    if row["rejection_reason"]:
        return row["rejection_reason"]
    if row["disposition_reason"]:
        return row["disposition_reason"]
    failures = [eligibility.Failure.model_validate(f) for f in row["eligibility"]]
    return "；".join(f"{f.label}：{f.reason}" + (f"（已豁免：{f.override_reason}）" if f.overridden else "") for f in failures)
