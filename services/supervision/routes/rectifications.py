"""The rectification loop (整改): respond, verify or send back, reopen at a look-back; the list with
what is overdue; the three ledgers (问题/责任/整改 三张清单) as xlsx."""

from __future__ import annotations

from collections import Counter
from datetime import date
from enum import StrEnum
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from services.supervision import domain, store
from services.supervision.domain.rectification import Action, Item, Status, act, is_overdue
from services.supervision.routes.common import refused, today, unit_of
from shared.auth import Principal, Role, require
from shared.contracts.supervision import RectificationUpdated
from shared.db import UnitOfWork
from shared.fields import Content, Year
from shared.http import Problem, command, problems
from shared.spreadsheet import XLSX, workbook

router = APIRouter(tags=["supervision 监督: rectification 整改"])
ANYONE = require()
STATUS_LABEL = {"open": "待整改", "responded": "已反馈待验证", "sent_back": "退回重新整改", "closed": "已验证销号",
                "reopened": "回头看重新整改"}


class ActionName(StrEnum):
    RESPOND = "respond"  # the lead unit, with evidence
    VERIFY = "verify"  # the deputies (or the office for the group): closed
    SEND_BACK = "send_back"  # the deputies, with the reason
    REOPEN = "reopen"  # at a look-back (回头看), with the reason


class ActionIn(BaseModel):
    action: ActionName
    text: Content | None = None  # the evidence (respond) or the reason (send_back, reopen); a note for verify
    on: date | None = None  # the day it happened, if not today (never later); the history keeps when it was recorded


def _view(row, on: date) -> dict:
    return {**dict(row), "status_label": STATUS_LABEL[row["status"]],
            "overdue": is_overdue(Status(row["status"]), row["due_on"], on)}


@router.get("/rectifications", responses=problems())
async def list_items(request: Request, year: Year | None = None, on: date | None = None, who: Principal = Depends(ANYONE)):
    """Every item with its history; ``overdue`` on ``on`` (default today) is listed and counted."""
    on = on or today()
    async with request.app.state.pool.acquire() as conn:
        rows = await store.items(conn, who.jurisdiction, year)
    views = [_view(r, on) for r in rows]
    actions = Counter(a["action"] for r in rows for a in r["history"])
    return {"on": on, "items": views, "overdue": [v for v in views if v["overdue"]],
            "counts": {"opened": actions["open"], "responded": actions["respond"], "sent_back": actions["send_back"],
                       "verified": actions["verify"], "reopened": actions["reopen"],
                       "overdue": sum(v["overdue"] for v in views), "open_now": sum(v["status"] != "closed" for v in views)}}


@router.post("/rectifications/{item_id}/actions", responses=problems(403, 404, 409))
async def move(item_id: UUID, body: ActionIn, request: Request,
               who: Principal = Depends(require(Role.LEAD_UNIT, Role.DEPUTY, Role.OFFICE, own=True))):
    """One step of the loop. The lead unit responds; deputies of the project's supervision group (or
    the office for the group) verify, send back or reopen; a lead unit never verifies its own item."""

    async def act_(uow: UnitOfWork):
        row = await store.item(uow.conn, who, item_id, lock="FOR UPDATE OF r")
        unit = unit_of(who)
        action = Action(body.action.value)
        try:
            to = act(Item(Status(row["status"]), row["lead_unit"], row["due_on"]), action, unit, body.text)
        except domain.SupervisionRefused as exc:
            raise refused(exc) from exc
        if unit is not None and action is not Action.RESPOND:
            raise Problem(403, "forbidden-role", "无权操作 Not allowed for this role", "the deputies verify, send back and reopen")
        if unit is None and action is Action.RESPOND and who.role is not Role.OFFICE:
            raise Problem(403, "forbidden-role", "无权操作 Not allowed for this role", "the lead unit responds")
        term = await store.current_term(uow.conn, row["jurisdiction"])
        if who.role is Role.DEPUTY:
            members = await store.group(uow.conn, row["project_id"], term)
            if members and who.sub not in members:
                raise refused(domain.SupervisionRefused(
                    "not-in-supervision-group", f"{who.sub} is not in this project's supervision group (term {term})", 403))
        if body.on is not None and body.on > today():
            raise Problem(422, "date-in-future", "日期不能晚于今天 Date in the future", f"{body.on} is after today")
        closed_on = (body.on or today()) if to is Status.CLOSED else None
        moved = await store.move_item(uow.conn, item_id, to, closed_on)
        await store.log_action(uow.conn, item_id, action, row["status"], to, who.sub, who.role, term, body.text or "")
        await uow.emit(RectificationUpdated(item_id=item_id, project_id=row["project_id"], year=row["year"], status=to,
                                            due_on=row["due_on"], closed_on=closed_on), row["jurisdiction"])
        await uow.audit(row["jurisdiction"], who.sub, f"rectification-{action}", "rectification", item_id,
                        before={"status": row["status"]}, after={"status": to, "text": body.text})
        return _view(moved, today())

    return await command(request, who.sub, act_)


@router.get("/ledgers.xlsx", responses=problems(), response_class=Response)
async def ledgers(request: Request, year: Year | None = None, on: date | None = None, who: Principal = Depends(ANYONE)):
    """问题清单, 责任清单, 整改清单: the three ledgers as one xlsx workbook."""
    on = on or today()
    async with request.app.state.pool.acquire() as conn:
        rows = await store.items(conn, who.jurisdiction, year)
    problems_ = [[i + 1, r["jurisdiction"], r["project_title"], r["source"], r["problem"], r["created_at"]]
                 for i, r in enumerate(rows)]
    duties = [[i + 1, r["project_title"], r["problem"], r["lead_unit"], r["responsible"] or r["leader"], r["due_on"]]
              for i, r in enumerate(rows)]
    fixes = [[i + 1, r["project_title"], r["problem"], STATUS_LABEL[r["status"]],
              sum(a["action"] == "respond" for a in r["history"]), sum(a["action"] == "send_back" for a in r["history"]),
              r["closed_on"], "是" if is_overdue(Status(r["status"]), r["due_on"], on) else "否"] for i, r in enumerate(rows)]
    content = workbook({
        "问题清单": (["序号", "辖区", "项目", "来源", "问题", "发现时间"], problems_),
        "责任清单": (["序号", "项目", "问题", "责任单位", "责任人", "整改时限"], duties),
        "整改清单": (["序号", "项目", "问题", "整改状态", "反馈次数", "退回次数", "销号日期", f"逾期({on})"], fixes),
    })
    return Response(content, media_type=XLSX, headers={"content-disposition": 'attachment; filename="ledgers.xlsx"'})
