"""HTTP routes of the ballot service: sessions, roll call, votes, ballots, certification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.ballot import domain
from services.ballot.domain import Mark, VoteRules
from shared.auth import Principal, Role, require, scope_sql
from shared.contracts.ballot import CandidateResult, ResultCertified
from shared.db import UnitOfWork
from shared.http import Problem, command

router = APIRouter(tags=["ballot 票决"])
OFFICE = require(Role.OFFICE)
CHAIR = require(Role.OFFICE, Role.PRESIDING)
ANYONE = require()


class DeputyIn(BaseModel):
    deputy_id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class SessionIn(BaseModel):
    name: str = Field(min_length=1, description="e.g. 孚玉镇第十九届人民代表大会第四次会议")
    year: int = Field(ge=2000, le=2100)
    roster: list[DeputyIn] = Field(min_length=1, description="seated deputies (实有代表)")


class RollCallIn(BaseModel):
    present: list[str] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list, description="deputies who left (离场)")


class VoteIn(BaseModel):
    slate_id: UUID
    rules: VoteRules = VoteRules()


class BallotIn(BaseModel):
    marks: dict[UUID, Mark] = Field(description="candidate id → for / against / abstain")


def _not_found(what: str, id_: Any) -> Problem:
    return Problem(404, f"{what}-not-found", f"未找到 {what} not found", f"no {what} {id_} in your jurisdiction")


async def _session(conn, who: Principal, session_id: UUID, lock: bool = False):
    row = await conn.fetchrow(
        f"SELECT * FROM sessions WHERE id = $1 AND {scope_sql('$2')}" + (" FOR UPDATE" if lock else ""),
        session_id, who.jurisdiction,
    )
    if row is None:
        raise _not_found("session", session_id)
    return row


async def _vote(conn, who: Principal, vote_id: UUID, lock: bool = False):
    row = await conn.fetchrow(
        f"SELECT * FROM votes WHERE id = $1 AND {scope_sql('$2')}" + (" FOR UPDATE" if lock else ""),
        vote_id, who.jurisdiction,
    )
    if row is None:
        raise _not_found("vote", vote_id)
    return row


def _wrong_state(vote, wanted: str) -> Problem:
    return Problem(
        409, f"vote-not-{wanted}", f"表决状态不符 The vote is not {wanted}",
        f"vote {vote['id']} is {vote['status']}", status_now=vote["status"],
    )


async def _attendance(conn, session_id: UUID) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT count(*) AS seated, count(*) FILTER (WHERE present) AS present FROM roster WHERE session_id = $1",
        session_id,
    )
    return dict(row)


@router.post("/sessions", status_code=201)
async def create_session(body: SessionIn, request: Request, who: Principal = Depends(OFFICE)):
    ids = [d.deputy_id for d in body.roster]
    if len(set(ids)) != len(ids):
        raise Problem(422, "duplicate-deputy", "名单重复 Duplicate deputy in roster", "each deputy once")

    async def act(uow: UnitOfWork):
        session_id = uuid4()
        await uow.conn.execute(
            "INSERT INTO sessions (id, jurisdiction, name, year) VALUES ($1, $2, $3, $4)",
            session_id, who.jurisdiction, body.name, body.year,
        )
        await uow.conn.executemany(
            "INSERT INTO roster (session_id, deputy_id, name) VALUES ($1, $2, $3)",
            [(session_id, d.deputy_id, d.name) for d in body.roster],
        )
        await uow.audit(who.jurisdiction, who.sub, "create", "session", session_id, after=body.model_dump())
        return {"id": session_id, "name": body.name, "year": body.year, "seated": len(ids), "present": 0}

    return await command(request, who.sub, act, 201)


@router.get("/sessions/{session_id}")
async def get_session(session_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        session = await _session(conn, who, session_id)
        counts = await _attendance(conn, session_id)
    return {"id": session["id"], "name": session["name"], "year": session["year"], **counts,
            "quorum": domain.has_quorum(counts["present"], counts["seated"])}


@router.post("/sessions/{session_id}/roll-call")
async def roll_call(session_id: UUID, body: RollCallIn, request: Request, who: Principal = Depends(OFFICE)):
    """签到: mark deputies present (or gone again). Unknown deputies are refused, nothing changed."""

    async def act(uow: UnitOfWork):
        await _session(uow.conn, who, session_id, lock=True)
        known = {r["deputy_id"] for r in await uow.conn.fetch("SELECT deputy_id FROM roster WHERE session_id = $1", session_id)}
        unknown = sorted(set(body.present + body.absent) - known)
        if unknown:
            raise Problem(422, "not-on-roster", "非本次会议代表 Not on the roster", f"unknown deputies: {', '.join(unknown)}")
        for ids, present in ((body.present, True), (body.absent, False)):
            await uow.conn.execute(
                "UPDATE roster SET present = $3 WHERE session_id = $1 AND deputy_id = ANY($2::text[])", session_id, ids, present
            )
        counts = await _attendance(uow.conn, session_id)
        await uow.audit(who.jurisdiction, who.sub, "roll-call", "session", session_id, after=body.model_dump())
        return {**counts, "quorum": domain.has_quorum(counts["present"], counts["seated"])}

    return await command(request, who.sub, act)


@router.get("/slates/{slate_id}")
async def get_slate(slate_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    row = await request.app.state.pool.fetchrow(
        f"SELECT * FROM slates WHERE id = $1 AND {scope_sql('$2')}", slate_id, who.jurisdiction
    )
    if row is None:
        raise _not_found("slate", slate_id)
    return dict(row)


@router.post("/sessions/{session_id}/votes", status_code=201)
async def create_vote(session_id: UUID, body: VoteIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        session = await _session(uow.conn, who, session_id)
        slate = await uow.conn.fetchrow(
            "SELECT * FROM slates WHERE id = $1 AND jurisdiction = $2", body.slate_id, session["jurisdiction"]
        )
        if slate is None:
            raise _not_found("slate", body.slate_id)
        vote_id = uuid4()
        await uow.conn.execute(
            "INSERT INTO votes (id, session_id, jurisdiction, slate_id, status, rules, seats)"
            " VALUES ($1, $2, $3, $4, 'draft', $5, $6)",
            vote_id, session_id, session["jurisdiction"], slate["id"], body.rules.model_dump(mode="json"), slate["seats"],
        )
        await uow.audit(who.jurisdiction, who.sub, "create", "vote", vote_id, after=body.model_dump(mode="json"))
        return {"id": vote_id, "status": "draft", "seats": slate["seats"], "candidates": slate["candidates"]}

    return await command(request, who.sub, act, 201)


@router.post("/votes/{vote_id}/open")
async def open_vote(vote_id: UUID, request: Request, who: Principal = Depends(CHAIR)):
    """Open the vote: only with a quorum. The rules are frozen and a ballot is issued to each
    deputy present."""

    async def act(uow: UnitOfWork):
        vote = await _vote(uow.conn, who, vote_id, lock=True)
        if vote["status"] != "draft":
            raise _wrong_state(vote, "draft")
        await _session(uow.conn, who, vote["session_id"], lock=True)  # no roll call while opening
        counts = await _attendance(uow.conn, vote["session_id"])
        rules = VoteRules.model_validate(vote["rules"])
        if not domain.has_quorum(counts["present"], counts["seated"], rules):
            raise Problem(
                409, "quorum-not-met", "未达法定人数 No quorum",
                f"{counts['present']} present of {counts['seated']} seated; "
                f"need at least {rules.quorum_numerator}/{rules.quorum_denominator}", **counts,
            )
        await uow.conn.execute(
            "INSERT INTO issued (vote_id, deputy_id) SELECT $1, deputy_id FROM roster WHERE session_id = $2 AND present",
            vote_id, vote["session_id"],
        )
        await uow.conn.execute(
            "UPDATE votes SET status = 'open', seated = $2, present = $3, issued = $3, opened_at = now() WHERE id = $1",
            vote_id, counts["seated"], counts["present"],
        )
        await uow.audit(who.jurisdiction, who.sub, "open", "vote", vote_id, after=counts)
        return {"id": vote_id, "status": "open", **counts, "issued": counts["present"]}

    return await command(request, who.sub, act)


@router.post("/votes/{vote_id}/ballots", status_code=201)
async def cast_ballot(vote_id: UUID, body: BallotIn, request: Request, who: Principal = Depends(require(Role.DEPUTY))):
    """A deputy casts a secret ballot. The record of *that* they voted and the ballot itself are
    written apart, with nothing linking them."""

    async def act(uow: UnitOfWork):
        vote = await _vote(uow.conn, who, vote_id)
        if vote["status"] != "open":
            raise _wrong_state(vote, "open")
        slate = await uow.conn.fetchrow("SELECT candidates FROM slates WHERE id = $1", vote["slate_id"])
        rules = VoteRules.model_validate(vote["rules"])
        try:
            valid = domain.check_ballot(body.marks, [UUID(c["candidate_id"]) for c in slate["candidates"]], vote["seats"], rules)
        except domain.BallotRejected as exc:
            raise Problem(422, exc.code, "选票有误 Ballot refused", str(exc)) from exc
        if not valid:  # an electronic ballot cannot be over-marked: refuse it, the deputy may vote again
            limit = rules.for_limit(vote["seats"])
            raise Problem(422, "too-many-for-marks", "赞成票超过应选数 Too many 'for' marks",
                          f"at most {limit} 'for' marks on this ballot", max_for=limit)
        taken = await uow.conn.fetchval(
            "UPDATE issued SET cast_done = true WHERE vote_id = $1 AND deputy_id = $2 AND NOT cast_done RETURNING true",
            vote_id, who.sub,
        )
        if not taken:
            issued = await uow.conn.fetchval("SELECT true FROM issued WHERE vote_id = $1 AND deputy_id = $2", vote_id, who.sub)
            if issued:
                raise Problem(409, "already-voted", "已投票 Already voted", "one ballot per deputy")
            raise Problem(403, "not-issued", "未领取选票 No ballot issued",
                          "only deputies present when the vote opened receive a ballot")
        await uow.conn.execute(
            "INSERT INTO ballots (vote_id, marks) VALUES ($1, $2)",
            vote_id, {str(c): m.value for c, m in body.marks.items()},
        )
        return {"vote_id": vote_id, "status": "cast"}

    return await command(request, who.sub, act, 201)


@router.post("/votes/{vote_id}/close")
async def close_vote(vote_id: UUID, request: Request, who: Principal = Depends(CHAIR)):
    """Close the vote and count: the result is announced with all counts (当场宣布)."""

    async def act(uow: UnitOfWork):
        vote = await _vote(uow.conn, who, vote_id, lock=True)
        if vote["status"] != "open":
            raise _wrong_state(vote, "open")
        result = await _count(uow.conn, vote)
        await uow.conn.execute(
            "UPDATE votes SET status = 'closed', closed_at = now(), result = $2 WHERE id = $1", vote_id, result
        )
        await uow.audit(who.jurisdiction, who.sub, "close", "vote", vote_id, after=result)
        return {"id": vote_id, "status": "closed", **result}

    return await command(request, who.sub, act)


async def _count(conn, vote) -> dict[str, Any]:
    slate = await conn.fetchrow("SELECT candidates FROM slates WHERE id = $1", vote["slate_id"])
    candidates = {UUID(c["candidate_id"]): c["title"] for c in slate["candidates"]}
    rules = VoteRules.model_validate(vote["rules"])
    rows = await conn.fetch("SELECT marks FROM ballots WHERE vote_id = $1", vote["id"])
    ballots = ({UUID(c): Mark(m) for c, m in r["marks"].items()} for r in rows)
    counted = domain.tally(ballots, candidates, vote["seats"], rules)
    outcome = domain.decide(counted, vote["seats"], vote["seated"], vote["present"], rules)
    return {
        "seated": vote["seated"], "present": vote["present"], "issued": vote["issued"],
        "collected": counted.collected, "valid": counted.valid, "invalid": counted.invalid,
        "stands": domain.round_stands(vote["issued"], counted.collected),
        "decided": outcome.decided, "tied": [str(c) for c in outcome.tied], "shortfall": outcome.shortfall,
        "candidates": [
            {
                "candidate_id": str(c), "title": title,
                "for_votes": n.for_votes, "against": n.against, "abstain": n.abstain, "not_marked": n.not_marked,
                "passed": c in outcome.ranks, "rank": outcome.ranks.get(c), "chosen": c in outcome.chosen,
            }
            for c, title in candidates.items()
            for n in [counted.counts[c]]
        ],
    }


@router.get("/votes/{vote_id}")
async def get_vote(vote_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """Progress while open (issued / cast so far, never a partial tally); the result once closed."""
    async with request.app.state.pool.acquire() as conn:
        vote = await _vote(conn, who, vote_id)
        cast = await conn.fetchval("SELECT count(*) FROM issued WHERE vote_id = $1 AND cast_done", vote_id)
    body = {"id": vote["id"], "session_id": vote["session_id"], "slate_id": vote["slate_id"], "status": vote["status"],
            "rules": vote["rules"], "seats": vote["seats"], "issued": vote["issued"], "cast": cast}
    if vote["status"] in ("closed", "certified"):
        body["result"] = vote["result"]
        body["certified_at"], body["certified_by"] = vote["certified_at"], vote["certified_by"]
    return body


@router.post("/votes/{vote_id}/certify")
async def certify(vote_id: UUID, request: Request, who: Principal = Depends(require(Role.PRESIDING))):
    """The presiding officer certifies the announced result; it is then immutable and goes out
    as ``ballot.result.certified``."""

    async def act(uow: UnitOfWork):
        vote = await _vote(uow.conn, who, vote_id, lock=True)
        if vote["status"] != "closed":
            raise _wrong_state(vote, "closed")
        result = vote["result"]
        if not result["stands"]:
            raise Problem(409, "round-void", "收回票数多于发出票数 Round void",
                          "more ballots collected than issued: the round must be run again")
        if not result["decided"]:
            raise Problem(409, "further-round-required", "需另行票决 A further round is required",
                          f"tied at the cut-off: {result['tied']}; seats short: {result['shortfall']}")
        session = await uow.conn.fetchrow("SELECT name FROM sessions WHERE id = $1", vote["session_id"])
        slate = await uow.conn.fetchrow("SELECT year FROM slates WHERE id = $1", vote["slate_id"])
        now = datetime.now(UTC)
        await uow.conn.execute(
            "UPDATE votes SET status = 'certified', certified_at = $2, certified_by = $3 WHERE id = $1", vote_id, now, who.sub
        )
        payload = ResultCertified(
            vote_id=vote_id, session_id=vote["session_id"], session_name=session["name"], slate_id=vote["slate_id"],
            year=slate["year"], seats=vote["seats"], seated=result["seated"], present=result["present"],
            issued=result["issued"], collected=result["collected"], valid=result["valid"], invalid=result["invalid"],
            rules=vote["rules"],
            candidates=[CandidateResult(**{k: c[k] for k in CandidateResult.model_fields}) for c in result["candidates"]],
            certified_at=now, certified_by=who.sub,
        )
        await uow.emit(payload, vote["jurisdiction"])
        await uow.audit(who.jurisdiction, who.sub, "certify", "vote", vote_id, after={"certified_at": now.isoformat()})
        return {"id": vote_id, "status": "certified", **result, "certified_at": now, "certified_by": who.sub}

    return await command(request, who.sub, act)
