"""HTTP routes of the intake service: proposals, screening, slates."""

from __future__ import annotations

from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.intake import domain
from services.intake.domain import ProposalFields, SlateRules, Stage
from shared.auth import Principal, Role, fetch_in_scope, require, scope_sql
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.db import UnitOfWork
from shared.http import Problem, command

router = APIRouter(tags=["intake 征集"])
OFFICE = require(Role.OFFICE, own=True)  # screening and the slate belong to the township's own office
ANYONE = require()


class ProposalIn(ProposalFields):
    year: int = Field(ge=2000, le=2100, description="the year the project would be carried out")


class ScreeningIn(BaseModel):
    to: Stage
    reason: str = ""


class SlateIn(BaseModel):
    title: str = Field(min_length=1)
    year: int = Field(ge=2000, le=2100)
    seats: int = Field(gt=0, description="应选数")
    proposal_ids: list[UUID] = Field(min_length=1)
    allow_equal: bool = Field(False, description="等额: only when the congress explicitly allows it")


def _public(row) -> dict:
    fields = {k: v for k, v in row["fields"].items() if k not in ("proposer", "contact")}  # kept private
    return {"id": row["id"], "year": row["year"], "stage": row["stage"], **fields,
            "channel_label": domain.CHANNEL_LABELS[domain.Channel(fields["channel"])],
            "disposition": row["disposition"], "disposition_reason": row["disposition_reason"]}


def _refused(exc: domain.ScreeningRefused) -> Problem:
    return Problem(422 if exc.code != "transition-not-allowed" else 409, exc.code, "不符合规则 Refused by the rules", str(exc))


@router.post("/proposals", status_code=201)
async def submit(body: ProposalIn, request: Request,
                 who: Principal = Depends(require(Role.OFFICE, Role.DEPUTY, Role.RESIDENT))):
    if who.role is Role.RESIDENT and body.channel is not domain.Channel.ONLINE:
        raise Problem(422, "channel-not-allowed", "群众只能通过线上渠道提交 Residents submit online",
                      "a resident's proposal comes through the online channel")

    async def act(uow: UnitOfWork):
        proposal_id = uuid4()
        fields = body.model_dump(mode="json", exclude={"year"})
        row = await uow.conn.fetchrow(
            "INSERT INTO proposals (id, jurisdiction, year, stage, fields) VALUES ($1, $2, $3, $4, $5) RETURNING *",
            proposal_id, who.jurisdiction, body.year, Stage.SUBMITTED, fields,
        )
        await uow.audit(who.jurisdiction, who.sub, "submit", "proposal", proposal_id, after=fields)
        return _public(row)

    return await command(request, who.sub, act, 201)


@router.get("/proposals")
async def list_proposals(request: Request, year: int | None = None, who: Principal = Depends(ANYONE)):
    rows = await request.app.state.pool.fetch(
        f"SELECT * FROM proposals WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2) ORDER BY created_at",
        who.jurisdiction, year,
    )
    return [_public(r) for r in rows]


async def _proposal(conn, who: Principal, proposal_id: UUID, lock: str = ""):
    return await fetch_in_scope(conn, who, "proposals", proposal_id, "proposal", "提案", lock)


@router.get("/proposals/{proposal_id}")
async def get_proposal(proposal_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        row = await _proposal(conn, who, proposal_id)
        history = await conn.fetch(
            "SELECT at, actor, from_stage, to_stage, reason FROM decisions WHERE proposal_id = $1 ORDER BY seq", proposal_id
        )
    return {**_public(row), "history": [dict(h) for h in history]}


@router.post("/proposals/{proposal_id}/screening")
async def screen(proposal_id: UUID, body: ScreeningIn, request: Request, who: Principal = Depends(OFFICE)):
    """One screening decision (初审, 可行性论证, 党委会研究确定, 列为候选, or reject with reason)."""

    async def act(uow: UnitOfWork):
        row = await _proposal(uow.conn, who, proposal_id, lock="FOR UPDATE")
        try:
            stage = domain.screen(Stage(row["stage"]), body.to, body.reason)
        except domain.ScreeningRefused as exc:
            raise _refused(exc) from exc
        previous = row["stage"]
        row = await uow.conn.fetchrow("UPDATE proposals SET stage = $2 WHERE id = $1 RETURNING *", proposal_id, stage)
        await uow.conn.execute(
            "INSERT INTO decisions (proposal_id, actor, from_stage, to_stage, reason) VALUES ($1, $2, $3, $4, $5)",
            proposal_id, who.sub, previous, stage, body.reason,
        )
        return _public(row)

    return await command(request, who.sub, act)


@router.post("/slates", status_code=201)
async def publish_slate(body: SlateIn, request: Request, who: Principal = Depends(OFFICE)):
    """候选项目清单: put candidates before the congress. Published as ``intake.slate.published``."""
    if len(set(body.proposal_ids)) != len(body.proposal_ids):
        raise Problem(422, "duplicate-candidate", "候选项目重复 Duplicate candidate", "each proposal once")
    try:
        domain.check_slate(len(body.proposal_ids), body.seats, SlateRules(allow_equal=body.allow_equal))
    except domain.ScreeningRefused as exc:
        raise _refused(exc) from exc

    async def act(uow: UnitOfWork):
        rows = await uow.conn.fetch(
            "SELECT * FROM proposals WHERE id = ANY($1::uuid[]) AND jurisdiction = $2 FOR UPDATE",
            body.proposal_ids, who.jurisdiction,
        )
        by_id = {r["id"]: r for r in rows}
        missing = [str(p) for p in body.proposal_ids if p not in by_id]
        if missing:
            raise Problem(404, "proposal-not-found", "未找到提案 Proposal not found", f"not in your jurisdiction: {', '.join(missing)}")
        unready = [f"{r['fields']['title']} ({r['stage']})" for r in rows if r["stage"] != Stage.CANDIDATE]
        if unready:
            raise Problem(409, "not-a-candidate", "尚未列为候选项目 Not a candidate yet",
                          f"only screened candidates go on a slate: {'; '.join(unready)}")
        slate_id = uuid4()
        await uow.conn.execute(
            "INSERT INTO slates (id, jurisdiction, title, year, seats, status) VALUES ($1, $2, $3, $4, $5, 'published')",
            slate_id, who.jurisdiction, body.title, body.year, body.seats,
        )
        await uow.conn.executemany(
            "INSERT INTO slate_candidates (slate_id, proposal_id) VALUES ($1, $2)", [(slate_id, p) for p in body.proposal_ids]
        )
        await uow.conn.execute(
            "UPDATE proposals SET stage = $2 WHERE id = ANY($1::uuid[])", body.proposal_ids, Stage.ON_BALLOT
        )
        candidates = [
            SlateCandidate(candidate_id=p, title=by_id[p]["fields"]["title"], summary=by_id[p]["fields"]["content"][:200])
            for p in body.proposal_ids
        ]
        await uow.emit(
            SlatePublished(slate_id=slate_id, title=body.title, year=body.year, seats=body.seats, candidates=candidates),
            who.jurisdiction,
        )
        await uow.audit(who.jurisdiction, who.sub, "publish", "slate", slate_id, after=body.model_dump(mode="json"))
        return {"id": slate_id, "title": body.title, "year": body.year, "seats": body.seats, "status": "published",
                "candidates": [c.model_dump() for c in candidates]}

    return await command(request, who.sub, act, 201)


@router.get("/slates/{slate_id}")
async def get_slate(slate_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """The slate and, once the vote is certified, each candidate's outcome and disposition."""
    async with request.app.state.pool.acquire() as conn:
        slate = await conn.fetchrow(f"SELECT * FROM slates WHERE id = $1 AND {scope_sql('$2')}", slate_id, who.jurisdiction)
        if slate is None:
            raise Problem(404, "slate-not-found", "未找到候选清单 Slate not found", f"no slate {slate_id} in your jurisdiction")
        rows = await conn.fetch(
            "SELECT p.* FROM proposals p JOIN slate_candidates s ON s.proposal_id = p.id WHERE s.slate_id = $1"
            " ORDER BY p.created_at", slate_id,
        )
    return {**dict(slate), "candidates": [
        {**_public(r), "disposition_label": r["disposition"] and domain.DISPOSITION_LABELS[domain.Disposition(r["disposition"])]}
        for r in rows
    ]}
