"""The slate (候选项目清单): the candidates with their supporters and feasibility scores, its public
notice (公示) before it goes to the ballot, and the result's notice after the vote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request

from services.intake import store
from services.intake.domain import notice as notices
from services.intake.domain import screening as rules
from services.intake.domain.screening import Refused, SlateRules, Stage
from services.intake.routes.common import ANYONE, OFFICE, refused, shown
from services.intake.schemas import AnswerIn, NoticeIn, NoticeOut, ObjectionIn, ProposalOut, SendIn, SlateIn, SlateOut
from shared.auth import Principal
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.db import UnitOfWork
from shared.fields import Year
from shared.http import Problem, command, problems

router = APIRouter(tags=["intake 征集"])


async def slate_view(conn, slate) -> dict[str, Any]:
    rows = await store.slate_candidates(conn, slate["id"])
    candidates = [{**c, "candidate_id": c["id"], "summary": c["content"][:200], "on_slate_supporters": r["on_slate_supporters"]}
                  for c, r in zip(await shown(conn, rows), rows, strict=True)]
    notice_rows, objections = await store.notices(conn, slate["id"])
    now = datetime.now(UTC)
    return {**{k: slate[k] for k in ("id", "title", "year", "seats", "status", "created_at", "sent_at", "notice_override")},
            "candidates": candidates,
            "notices": [{"id": n["id"], "kind": n["kind"], "kind_label": notices.KIND_LABELS[notices.Kind(n["kind"])],
                         "starts_at": n["starts_at"], "ends_at": n["ends_at"],
                         "open": notices.is_open(n["starts_at"], n["ends_at"], now),
                         "objections": [dict(o) for o in objections if o["notice_id"] == n["id"]]} for n in notice_rows]}


async def _send(uow: UnitOfWork, slate, candidates) -> None:
    """Send the slate to the ballot service (``intake.slate.published``), with each candidate's supporters."""
    await uow.emit(SlatePublished(
        slate_id=slate["id"], title=slate["title"], year=slate["year"], seats=slate["seats"],
        candidates=[SlateCandidate(candidate_id=c["id"], title=c["fields"]["title"], summary=c["fields"].get("content", "")[:200],
                                   supporters=c["on_slate_supporters"]) for c in candidates]), slate["jurisdiction"])


@router.get("/candidates", response_model=list[ProposalOut], responses=problems())
async def candidates(request: Request, year: Year, who: Principal = Depends(ANYONE)):
    """What the slate is built from: the year's candidates with their supporters and weighted
    feasibility scores, in the order they were proposed (ranking stays a human decision)."""
    async with request.app.state.pool.acquire() as conn:
        return await shown(conn, await store.proposals(conn, who, year, Stage.CANDIDATE))


@router.post("/slates", status_code=201, response_model=SlateOut, responses=problems(403, 404, 409))
async def publish_slate(body: SlateIn, request: Request, who: Principal = Depends(OFFICE)):
    """候选项目清单: put candidates before the congress. With a notice period (the year's setting,
    or ``notice_days``) the slate is first under public notice (公示) and goes to the ballot with
    ``POST /slates/{id}/send``; without one it is sent at once (``intake.slate.published``)."""
    if len(set(body.proposal_ids)) != len(body.proposal_ids):
        raise Problem(422, "duplicate-candidate", "候选项目重复 Duplicate candidate", "each proposal once")
    try:
        rules.check_slate(len(body.proposal_ids), body.seats, SlateRules(allow_equal=body.allow_equal))
    except Refused as exc:
        raise refused(exc) from exc

    async def act(uow: UnitOfWork):
        rows = await uow.conn.fetch(
            "SELECT * FROM proposals WHERE id = ANY($1::uuid[]) AND jurisdiction = $2 ORDER BY id FOR UPDATE",
            body.proposal_ids, who.jurisdiction)
        by_id = {r["id"]: r for r in rows}
        missing = [str(p) for p in body.proposal_ids if p not in by_id]
        if missing:
            raise Problem(404, "proposal-not-found", "未找到提案 Proposal not found", f"not in your jurisdiction: {', '.join(missing)}")
        unready = [f"{r['fields']['title']} ({r['stage']})" for r in rows if r["stage"] != Stage.CANDIDATE]
        if unready:
            raise Problem(409, "not-a-candidate", "尚未列为候选项目 Not a candidate yet",
                          f"only screened candidates go on a slate: {'; '.join(unready)}")
        settings = await store.year_settings(uow.conn, who.jurisdiction, body.year)
        days = settings["notice_days"] if body.notice_days is None else body.notice_days
        supporters = await store.supporters(uow.conn, body.proposal_ids)
        shown_ = {c["id"]: c for c in await shown(uow.conn, rows)}
        slate_id, now = uuid4(), datetime.now(UTC)
        status = "in_notice" if days else "published"
        slate = await uow.conn.fetchrow(
            "INSERT INTO slates (id, jurisdiction, title, year, seats, status, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " RETURNING *", slate_id, who.jurisdiction, body.title, body.year, body.seats, status, None if days else now)
        await uow.conn.executemany(
            "INSERT INTO slate_candidates (slate_id, proposal_id, supporters, feasibility, position) VALUES ($1, $2, $3, $4, $5)",
            [(slate_id, p, len(supporters[p]), shown_[p]["feasibility"]["weighted"], i) for i, p in enumerate(body.proposal_ids)])
        await uow.conn.execute("UPDATE proposals SET stage = $2 WHERE id = ANY($1::uuid[])", body.proposal_ids, Stage.ON_BALLOT)
        for p in body.proposal_ids:
            await store.decide(uow.conn, p, who.sub, Stage.CANDIDATE, Stage.ON_BALLOT, f"列入「{body.title}」")
        if days:
            starts, ends = notices.period(now, days)
            await uow.conn.execute(
                "INSERT INTO notices (id, jurisdiction, slate_id, kind, starts_at, ends_at, created_by)"
                " VALUES ($1, $2, $3, 'slate', $4, $5, $6)", uuid4(), who.jurisdiction, slate_id, starts, ends, who.sub)
        else:
            await _send(uow, slate, await store.slate_candidates(uow.conn, slate_id))
        await uow.audit(who.jurisdiction, who.sub, "publish", "slate", slate_id, after=body.model_dump(mode="json"))
        return await slate_view(uow.conn, slate)

    return await command(request, who.sub, act, 201)


@router.post("/slates/{slate_id}/send", response_model=SlateOut, responses=problems(403, 404, 409))
async def send(slate_id: UUID, body: SendIn, request: Request, who: Principal = Depends(OFFICE)):
    """Send a slate under notice to the ballot: once its notice period has ended, or before, with
    the office's recorded reason."""

    async def act(uow: UnitOfWork):
        slate = await store.slate(uow.conn, who, slate_id, "FOR UPDATE")
        if slate["status"] != "in_notice":
            raise refused(Refused("slate-not-in-notice", f"the slate is {slate['status']}, not under notice"))
        ends_at = await uow.conn.fetchval("SELECT ends_at FROM notices WHERE slate_id = $1 AND kind = 'slate'", slate_id)
        try:
            overridden = notices.may_go_to_ballot(ends_at, datetime.now(UTC), body.override_reason)
        except Refused as exc:
            raise refused(exc) from exc
        slate = await uow.conn.fetchrow(
            "UPDATE slates SET status = 'published', sent_at = now(), notice_override = $2 WHERE id = $1 RETURNING *",
            slate_id, body.override_reason if overridden else None)
        await _send(uow, slate, await store.slate_candidates(uow.conn, slate_id))
        await uow.audit(slate["jurisdiction"], who.sub, "send", "slate", slate_id,
                        after={"override_reason": body.override_reason} if overridden else None)
        return await slate_view(uow.conn, slate)

    return await command(request, who.sub, act)


@router.get("/slates", response_model=list[SlateOut], responses=problems())
async def list_slates(request: Request, year: Year | None = None, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT * FROM slates WHERE {who.scope_sql('$1')} AND ($2::int IS NULL OR year = $2)"
                                " ORDER BY created_at", who.jurisdiction, year)
        return [await slate_view(conn, s) for s in rows]


@router.get("/slates/{slate_id}", response_model=SlateOut, responses=problems(404))
async def get_slate(slate_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """The slate, its notices with the objections and answers, and, once the vote is certified,
    each candidate's outcome and disposition."""
    async with request.app.state.pool.acquire() as conn:
        return await slate_view(conn, await store.slate(conn, who, slate_id))


@router.post("/slates/{slate_id}/result-notice", status_code=201, response_model=NoticeOut, responses=problems(403, 404, 409))
async def result_notice(slate_id: UUID, body: NoticeIn, request: Request, who: Principal = Depends(OFFICE)):
    """票决结果公示: publish the decided result for a period, during which objections are recorded."""

    async def act(uow: UnitOfWork):
        slate = await store.slate(uow.conn, who, slate_id, "FOR UPDATE")
        if slate["status"] != "decided":
            raise refused(Refused("slate-not-decided", "a result notice follows the certified result"))
        starts, ends = notices.period(datetime.now(UTC), body.days)
        row = await uow.conn.fetchrow(
            "INSERT INTO notices (id, jurisdiction, slate_id, kind, starts_at, ends_at, created_by)"
            " VALUES ($1, $2, $3, 'result', $4, $5, $6) ON CONFLICT (slate_id, kind) DO NOTHING RETURNING *",
            uuid4(), slate["jurisdiction"], slate_id, starts, ends, who.sub)
        if row is None:
            raise Problem(409, "notice-exists", "结果已公示 The result is already under notice", "one result notice per slate")
        await uow.audit(slate["jurisdiction"], who.sub, "notice", "slate", slate_id, after={"kind": "result", "days": body.days})
        return {**dict(row), "kind_label": notices.KIND_LABELS[notices.Kind.RESULT], "open": True, "objections": []}

    return await command(request, who.sub, act, 201)


@router.post("/notices/{notice_id}/objections", status_code=201, response_model=NoticeOut, responses=problems(403, 404, 409))
async def object_(notice_id: UUID, body: ObjectionIn, request: Request, who: Principal = Depends(OFFICE)):
    """Record a comment or objection received during the notice period (意见建议/异议)."""

    async def act(uow: UnitOfWork):
        row = await store.notice(uow.conn, who, notice_id, "FOR UPDATE")
        try:
            notices.may_record_objection(row["starts_at"], row["ends_at"], datetime.now(UTC))
        except Refused as exc:
            raise refused(exc) from exc
        await uow.conn.execute("INSERT INTO objections (id, notice_id, text, source, recorded_by) VALUES ($1, $2, $3, $4, $5)",
                               uuid4(), notice_id, body.text, body.source, who.sub)
        await uow.audit(row["jurisdiction"], who.sub, "object", "notice", notice_id, after=body.model_dump())
        return await _notice_view(uow.conn, row)

    return await command(request, who.sub, act, 201)


@router.post("/objections/{objection_id}/answer", response_model=NoticeOut, responses=problems(403, 404, 409))
async def answer(objection_id: UUID, body: AnswerIn, request: Request, who: Principal = Depends(OFFICE)):
    """Answer an objection (答复); an answer is given once."""

    async def act(uow: UnitOfWork):
        row = await store.objection(uow.conn, who, objection_id, "FOR UPDATE")
        if row["answer"] is not None:
            raise Problem(409, "already-answered", "已答复 Already answered", f"answered at {row['answered_at']}")
        await uow.conn.execute("UPDATE objections SET answer = $2, answered_at = now(), answered_by = $3 WHERE id = $1",
                               objection_id, body.answer, who.sub)
        await uow.audit(row["jurisdiction"], who.sub, "answer", "objection", objection_id, after=body.model_dump())
        return await _notice_view(uow.conn, await store.notice(uow.conn, who, row["notice_id"]))

    return await command(request, who.sub, act)


async def _notice_view(conn, row) -> dict[str, Any]:
    objections = await conn.fetch("SELECT * FROM objections WHERE notice_id = $1 ORDER BY received_at", row["id"])
    return {**dict(row), "kind_label": notices.KIND_LABELS[notices.Kind(row["kind"])],
            "open": notices.is_open(row["starts_at"], row["ends_at"], datetime.now(UTC)),
            "objections": [dict(o) for o in objections]}
