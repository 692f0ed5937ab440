"""HTTP routes of the intake service: proposals, screening, slates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.intake import domain
from services.intake.domain import ProposalFields, SlateRules, Stage
from shared.auth import Principal, Role, fetch_in_scope, require, scope_sql
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.db import UnitOfWork
from shared.fields import Body, Flag, OptionalText, Seats, Title, Year, YearParam, items
from shared.http import Problem, command, links, problems

router = APIRouter(tags=["intake 征集"])
OFFICE = require(Role.OFFICE)
ANYONE = require()


class ProposalIn(ProposalFields):
    year: Year = Field(description="the year the project would be carried out")


class ScreeningIn(Body):
    to: Stage
    reason: OptionalText = ""


class SlateIn(Body):
    title: Title
    year: Year
    seats: Seats
    proposal_ids: list[UUID] = items(1_000, min_length=1)
    allow_equal: Flag = Field(False, description="等额: only when the congress explicitly allows it")


class ProposalOut(BaseModel):
    """A proposal as anyone in its jurisdiction sees it: the proposer and contact are left out."""

    id: UUID
    year: int
    stage: Stage
    title: str
    content: str = ""
    channel: domain.Channel
    channel_label: str
    location: str = ""
    category: str = ""
    beneficiaries: int | None = None
    estimated_budget: Decimal | None = None
    funding_secured: bool = False
    funding_source: str = ""
    lead_unit: str = ""
    disposition: domain.Disposition | None
    disposition_reason: str | None


class Decision(BaseModel):
    at: datetime
    actor: str
    from_stage: Stage
    to_stage: Stage
    reason: str


class ProposalDetail(ProposalOut):
    history: list[Decision]


class SlateOut(BaseModel):
    id: UUID
    title: str
    year: int
    seats: int
    status: str = Field(description="published, then decided once its vote is certified")


class SlatePublishedOut(SlateOut):
    candidates: list[SlateCandidate]


class CandidateOut(ProposalOut):
    disposition_label: str | None = Field(description="分类处置 of a candidate not chosen")


class SlateDetail(SlateOut):
    jurisdiction: str
    created_at: datetime
    candidates: list[CandidateOut]


def _public(row) -> dict:
    fields = {k: v for k, v in row["fields"].items() if k not in ("proposer", "contact")}  # kept private
    return {"id": row["id"], "year": row["year"], "stage": row["stage"], **fields,
            "channel_label": domain.CHANNEL_LABELS[domain.Channel(fields["channel"])],
            "disposition": row["disposition"], "disposition_reason": row["disposition_reason"]}


def _refused(exc: domain.ScreeningRefused) -> Problem:
    return Problem(422 if exc.code != "transition-not-allowed" else 409, exc.code, "不符合规则 Refused by the rules", str(exc))


@router.post("/proposals", status_code=201, response_model=ProposalOut,
             responses=problems(403) | links(201, get_proposal={"proposal_id": "$response.body#/id"},
                                             screen={"proposal_id": "$response.body#/id"}))
async def submit(body: ProposalIn, request: Request, who: Principal = Depends(require(Role.OFFICE, Role.DEPUTY))):
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


@router.get("/proposals", response_model=list[ProposalOut], responses=problems())
async def list_proposals(request: Request, year: YearParam | None = None, who: Principal = Depends(ANYONE)):
    rows = await request.app.state.pool.fetch(
        f"SELECT * FROM proposals WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2) ORDER BY created_at",
        who.jurisdiction, year,
    )
    return [_public(r) for r in rows]


async def _proposal(conn, who: Principal, proposal_id: UUID, lock: str = ""):
    return await fetch_in_scope(conn, who, "proposals", proposal_id, "proposal", "提案", lock)


@router.get("/proposals/{proposal_id}", response_model=ProposalDetail, responses=problems(404))
async def get_proposal(proposal_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        row = await _proposal(conn, who, proposal_id)
        history = await conn.fetch(
            "SELECT at, actor, from_stage, to_stage, reason FROM decisions WHERE proposal_id = $1 ORDER BY seq", proposal_id
        )
    return {**_public(row), "history": [dict(h) for h in history]}


@router.post("/proposals/{proposal_id}/screening", response_model=ProposalOut,
             responses=problems(403, 404, 409) | links(200, get_proposal={"proposal_id": "$response.body#/id"},
                                                       screen={"proposal_id": "$response.body#/id"}))
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


@router.post("/slates", status_code=201, response_model=SlatePublishedOut,
             responses=problems(403, 404, 409) | links(201, get_slate={"slate_id": "$response.body#/id"}))
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


@router.get("/slates/{slate_id}", response_model=SlateDetail, responses=problems(404))
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
