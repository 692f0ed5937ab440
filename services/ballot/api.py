"""HTTP routes of the ballot service: rosters, sessions, roll call, votes and their rounds,
electronic and paper ballots, certification, publication, and the live view of a session."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from services.ballot import domain, store
from services.ballot.domain import Mark, Satisfaction, VoteRules
from shared.auth import Principal, Role, require
from shared.contracts.ballot import (
    AttendanceRecorded,
    CandidateResult,
    RatedProject,
    ResultCertified,
    RoundCounts,
    SatisfactionCertified,
    SessionCreated,
)
from shared.db import UnitOfWork
from shared.http import Problem, command, stored_answer

router = APIRouter(tags=["ballot 票决"])
# Writes belong to the congress of the session's own jurisdiction: never the county's token in a
# township's session (own=True). Reads: anyone in scope, and the hall display for its session.
OFFICE = require(Role.OFFICE, own=True)
CHAIR = require(Role.OFFICE, Role.PRESIDING, own=True)
TELLER = require(Role.TELLER, own=True)
DEPUTY = require(Role.DEPUTY, own=True)
PRESIDING = require(Role.PRESIDING, own=True)
ANYONE = require(display=True)


class DeputyIn(BaseModel):
    deputy_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    seated: bool = Field(True, description="false: the seat is vacant (出缺)")


class RosterIn(BaseModel):
    quota: int = Field(gt=0, description="名额: the nominal number of deputies")
    deputies: list[DeputyIn] = Field(min_length=1)


class SessionIn(BaseModel):
    name: str = Field(min_length=1, description="e.g. 孚玉镇第十九届人民代表大会第四次会议")
    year: int = Field(ge=2000, le=2100)
    term: int = Field(gt=0, description="届")


class RollCallIn(BaseModel):
    present: list[str] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list, description="deputies who left (离场)")


class Kind(StrEnum):
    SELECTION = "selection"  # 票决 of the slate
    SATISFACTION = "satisfaction"  # 满意度测评 of the year's voted projects


class Mode(StrEnum):
    ELECTRONIC = "electronic"
    PAPER = "paper"  # tellers (监票人/计票人) enter the paper ballots


class VoteIn(BaseModel):
    kind: Kind = Kind.SELECTION
    slate_id: UUID | None = Field(None, description="selection: the slate to vote on")
    year: int | None = Field(None, description="satisfaction: whose projects to rate (default: the session's year)")
    mode: Mode = Mode.ELECTRONIC
    rules: VoteRules = VoteRules()


class WithdrawalIn(BaseModel):
    candidate_id: UUID
    reason: str = Field(min_length=1)


class BallotIn(BaseModel):
    marks: dict[UUID, str] = Field(description="subject id → for/against/abstain, or satisfied/basically_satisfied/dissatisfied")


class TotalsIn(BaseModel):
    collected: int = Field(ge=0, description="收回")
    invalid: int = Field(0, ge=0)
    counts: dict[UUID, dict[str, int]] = Field(description="candidate → {for, against, abstain}")


def _wrong_state(vote, wanted: str) -> Problem:
    return Problem(409, f"vote-not-{wanted}", f"表决状态不符 The vote is not {wanted}",
                   f"vote {vote['id']} is {vote['status']}", status_now=vote["status"])


def _subjects(vote) -> list[dict[str, Any]]:
    withdrawn = {w["id"] for w in vote["withdrawn"]}
    return [s for s in vote["subjects"] if s["id"] not in withdrawn]


def _parse_marks(vote_kind: str, marks: dict[UUID, str]) -> dict[UUID, Any]:
    kind = Mark if vote_kind == Kind.SELECTION else Satisfaction
    try:
        return {c: kind(m) for c, m in marks.items()}
    except ValueError as exc:
        allowed = ", ".join(k.value for k in kind)
        raise Problem(422, "mark-not-allowed", "选票标记有误 Mark not allowed", f"marks are one of: {allowed}") from exc


# ---------------------------------------------------------------- rosters, sessions, roll call


@router.put("/terms/{term}/roster")
async def put_roster(term: int, body: RosterIn, request: Request, who: Principal = Depends(OFFICE)):
    """The deputies of a term (届) of the caller's congress; seated ones count for quorum and majorities."""
    ids = [d.deputy_id for d in body.deputies]
    if len(set(ids)) != len(ids):
        raise Problem(422, "duplicate-deputy", "名单重复 Duplicate deputy in roster", "each deputy once")
    seated = sum(d.seated for d in body.deputies)
    if seated > body.quota:
        raise Problem(422, "over-quota", "超过名额 More seated deputies than the quota", f"{seated} seated > quota {body.quota}")

    async def act(uow: UnitOfWork):
        await uow.conn.execute(
            "INSERT INTO terms (jurisdiction, term, quota) VALUES ($1, $2, $3)"
            " ON CONFLICT (jurisdiction, term) DO UPDATE SET quota = EXCLUDED.quota", who.jurisdiction, term, body.quota,
        )
        await uow.conn.executemany(
            "INSERT INTO deputies (jurisdiction, term, deputy_id, name, seated) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (jurisdiction, term, deputy_id) DO UPDATE SET name = EXCLUDED.name, seated = EXCLUDED.seated",
            [(who.jurisdiction, term, d.deputy_id, d.name, d.seated) for d in body.deputies],
        )
        await uow.audit(who.jurisdiction, who.sub, "roster", "term", term, after=body.model_dump())
        return {"term": term, "quota": body.quota, "seated": seated, "vacant": body.quota - seated}

    return await command(request, who.sub, act)


@router.post("/sessions", status_code=201)
async def create_session(body: SessionIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        if not await uow.conn.fetchval("SELECT true FROM terms WHERE jurisdiction = $1 AND term = $2", who.jurisdiction, body.term):
            raise Problem(409, "no-roster", "该届代表名单未录入 No roster for this term",
                          f"PUT /terms/{body.term}/roster first")
        session_id = uuid4()
        await uow.conn.execute(
            "INSERT INTO sessions (id, jurisdiction, term, name, year) VALUES ($1, $2, $3, $4, $5)",
            session_id, who.jurisdiction, body.term, body.name, body.year,
        )
        await uow.audit(who.jurisdiction, who.sub, "create", "session", session_id, after=body.model_dump())
        await uow.emit(SessionCreated(session_id=session_id, term=body.term, name=body.name, year=body.year), who.jurisdiction)
        return {"id": session_id, **body.model_dump(), **await store.attendance(uow.conn, session_id)}

    return await command(request, who.sub, act, 201)


@router.get("/sessions/{session_id}")
async def get_session(session_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        session = await store.session(conn, who, session_id)
        counts = await store.attendance(conn, session_id)
    return {"id": session["id"], "name": session["name"], "year": session["year"], "term": session["term"], **counts,
            "quorum": domain.has_quorum(counts["present"], counts["seated"])}


@router.post("/sessions/{session_id}/roll-call")
async def roll_call(session_id: UUID, body: RollCallIn, request: Request, who: Principal = Depends(OFFICE)):
    """签到: mark deputies present (or gone again). Deputies not seated in the term are refused."""

    async def act(uow: UnitOfWork):
        session = await store.session(uow.conn, who, session_id, lock="FOR UPDATE")
        seated = {r["deputy_id"] for r in await uow.conn.fetch(
            "SELECT deputy_id FROM deputies WHERE jurisdiction = $1 AND term = $2 AND seated", session["jurisdiction"], session["term"])}
        unknown = sorted(set(body.present + body.absent) - seated)
        if unknown:
            raise Problem(422, "not-on-roster", "非本届在任代表 Not a seated deputy", f"not seated in this term: {', '.join(unknown)}")
        await uow.conn.executemany(
            "INSERT INTO attendance (session_id, deputy_id, present) VALUES ($1, $2, $3)"
            " ON CONFLICT (session_id, deputy_id) DO UPDATE SET present = EXCLUDED.present",
            [(session_id, d, True) for d in body.present] + [(session_id, d, False) for d in body.absent],
        )
        counts = await store.attendance(uow.conn, session_id)
        await uow.audit(who.jurisdiction, who.sub, "roll-call", "session", session_id, after=body.model_dump())
        # identity: who may check in for a voting credential, whose credential ends (离场)
        await uow.emit(AttendanceRecorded(session_id=session_id, term=session["term"], present=body.present, absent=body.absent),
                       session["jurisdiction"])
        return {**counts, "quorum": domain.has_quorum(counts["present"], counts["seated"])}

    return await command(request, who.sub, act)


@router.get("/slates/{slate_id}")
async def get_slate(slate_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    row = await request.app.state.pool.fetchrow(
        "SELECT * FROM slates WHERE id = $1 AND (jurisdiction = $2 OR starts_with(jurisdiction, $2 || '.'))",
        slate_id, who.jurisdiction,
    )
    if row is None:
        raise store.not_found("slate", slate_id)
    return dict(row)


# ---------------------------------------------------------------- votes


@router.post("/sessions/{session_id}/votes", status_code=201)
async def create_vote(session_id: UUID, body: VoteIn, request: Request, who: Principal = Depends(OFFICE)):
    async def act(uow: UnitOfWork):
        session = await store.session(uow.conn, who, session_id)
        if body.kind is Kind.SELECTION:
            if body.slate_id is None:
                raise Problem(422, "slate-required", "缺少候选清单 A selection vote needs a slate", "give slate_id")
            slate = await uow.conn.fetchrow(
                "SELECT * FROM slates WHERE id = $1 AND jurisdiction = $2", body.slate_id, session["jurisdiction"])
            if slate is None:
                raise store.not_found("slate", body.slate_id)
            subjects = [{"id": c["candidate_id"], "title": c["title"]} for c in slate["candidates"]]
            seats, year = slate["seats"], slate["year"]
        else:
            year = body.year or session["year"]
            rows = await uow.conn.fetch(
                "SELECT id, title FROM projects WHERE jurisdiction = $1 AND year = $2 ORDER BY title", session["jurisdiction"], year)
            if not rows:
                raise Problem(409, "no-projects", "无可测评项目 No projects to rate", f"no voted projects of {year} known yet")
            subjects = [{"id": str(r["id"]), "title": r["title"]} for r in rows]
            seats = len(subjects)
        vote_id = uuid4()
        await uow.conn.execute(
            "INSERT INTO votes (id, session_id, jurisdiction, kind, mode, slate_id, year, subjects, status, rules, seats)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', $9, $10)",
            vote_id, session_id, session["jurisdiction"], body.kind, body.mode, body.slate_id, year, subjects,
            body.rules.model_dump(mode="json"), seats,
        )
        await uow.audit(who.jurisdiction, who.sub, "create", "vote", vote_id, after=body.model_dump(mode="json"))
        return {"id": vote_id, "kind": body.kind, "mode": body.mode, "status": "draft", "seats": seats, "subjects": subjects,
                "candidates": [{"candidate_id": s["id"], "title": s["title"]} for s in subjects]}

    return await command(request, who.sub, act, 201)


@router.post("/votes/{vote_id}/withdrawals")
async def withdraw(vote_id: UUID, body: WithdrawalIn, request: Request, who: Principal = Depends(OFFICE)):
    """A candidate withdrawn from the ballot: only before the vote opens."""

    async def act(uow: UnitOfWork):
        vote = await store.vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        if vote["status"] != "draft":
            raise Problem(409, "vote-already-open", "表决已开始，不能撤回候选 The vote has opened",
                          "a candidate can be withdrawn only before the vote opens", status_now=vote["status"])
        remaining = [s for s in _subjects(vote) if s["id"] != str(body.candidate_id)]
        if len(remaining) == len(_subjects(vote)):
            raise Problem(422, "unknown-candidate", "不在候选清单 Not on this ballot", f"{body.candidate_id} is not a candidate")
        if vote["kind"] == Kind.SELECTION and len(remaining) < vote["seats"]:
            raise Problem(409, "too-few-candidates", "候选不足 Too few candidates left",
                          f"{len(remaining)} candidates cannot fill {vote['seats']} seats")
        withdrawn = [*vote["withdrawn"], {"id": str(body.candidate_id), "reason": body.reason}]
        await uow.conn.execute("UPDATE votes SET withdrawn = $2 WHERE id = $1", vote_id, withdrawn)
        await uow.audit(who.jurisdiction, who.sub, "withdraw", "vote", vote_id, after=body.model_dump(mode="json"))
        return {"id": vote_id, "withdrawn": withdrawn, "candidates": remaining}

    return await command(request, who.sub, act)


@router.post("/votes/{vote_id}/open")
async def open_vote(vote_id: UUID, request: Request, who: Principal = Depends(CHAIR)):
    """Open the vote's first round, or the further round its last close called for. Only with a
    quorum. The rules freeze at the first opening; a ballot is issued to each deputy present."""

    async def act(uow: UnitOfWork):
        vote = await store.vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        await store.session(uow.conn, who, vote["session_id"], lock="FOR UPDATE")  # no roll call while opening
        counts = await store.attendance(uow.conn, vote["session_id"])
        rules = VoteRules.model_validate(vote["rules"])
        if vote["status"] == "draft":
            candidates, seats = [s["id"] for s in _subjects(vote)], vote["seats"]
        elif vote["status"] == "closed" and not vote["result"]["finished"]:
            candidates, seats = vote["result"]["next_candidates"], vote["result"]["next_seats"]
        else:
            raise _wrong_state(vote, "ready-to-open")
        if not domain.has_quorum(counts["present"], counts["seated"], rules):
            raise Problem(409, "quorum-not-met", "未达法定人数 No quorum",
                          f"{counts['present']} present of {counts['seated']} seated; "
                          f"need at least {rules.quorum_numerator}/{rules.quorum_denominator}", **counts)
        number = vote["round"] + 1
        await uow.conn.execute(
            "INSERT INTO rounds (vote_id, round, candidates, seats, issued) VALUES ($1, $2, $3, $4, $5)",
            vote_id, number, candidates, seats, counts["present"],
        )
        await uow.conn.execute(
            """INSERT INTO issued (vote_id, round, deputy_id)
               SELECT $1, $2, a.deputy_id FROM attendance a JOIN sessions s ON s.id = a.session_id
               JOIN deputies d ON d.jurisdiction = s.jurisdiction AND d.term = s.term AND d.deputy_id = a.deputy_id
               WHERE a.session_id = $3 AND a.present AND d.seated""",
            vote_id, number, vote["session_id"],
        )
        await uow.conn.execute(
            "UPDATE votes SET status = 'open', round = $2, seated = coalesce(seated, $3), present = coalesce(present, $4)"
            " WHERE id = $1", vote_id, number, counts["seated"], counts["present"],
        )
        await uow.audit(who.jurisdiction, who.sub, "open", "vote", vote_id, after={"round": number, **counts})
        return {"id": vote_id, "status": "open", "round": number, "candidates": candidates, "seats": seats, **counts,
                "issued": counts["present"]}

    return await command(request, who.sub, act)


async def _open_round(conn, who: Principal, vote_id: UUID, mode: Mode):
    """The vote and its current round, for entering a ballot. A shared lock: many ballots go in at
    once, but a close waits for those in flight, and a ballot arriving after the close finds the
    round closed. None is recorded uncounted."""
    row = await conn.fetchrow(
        f"""SELECT v.*, r.candidates, r.seats AS round_seats, r.totals_entered,
                   (SELECT term FROM sessions s WHERE s.id = v.session_id) AS term FROM votes v
            LEFT JOIN rounds r ON r.vote_id = v.id AND r.round = v.round
            WHERE v.id = $1 AND {who.scope_sql('$2', 'v.jurisdiction')} FOR KEY SHARE OF v""",
        vote_id, who.jurisdiction,
    )
    if row is None:
        raise store.not_found("vote", vote_id)
    if row["status"] != "open":
        raise _wrong_state(row, "open")
    if row["mode"] != mode:
        raise Problem(409, f"{row['mode']}-vote", "投票方式不符 Wrong voting mode", f"this vote is {row['mode']}")
    return row, {"candidates": row["candidates"], "seats": row["round_seats"], "totals_entered": row["totals_entered"]}


def _check(kind: str, candidates: list[UUID], seats: int, rules: VoteRules, marks: dict[UUID, Any]) -> bool:
    """Whether the ballot is valid; refuses what can never be recorded."""
    try:
        if kind == Kind.SATISFACTION:
            domain.check_rating_ballot(marks, candidates)
            return True
        return domain.check_ballot(marks, candidates, seats, rules)
    except domain.BallotRejected as exc:
        raise Problem(422, exc.code, "选票有误 Ballot refused", str(exc)) from exc


@dataclass(frozen=True)
class OpenRound:
    """What a cast needs to know of a vote's round. It cannot change while the round is open, so
    each replica keeps it; the cast statement itself checks that the round is still the open one."""

    jurisdiction: str
    session_id: UUID
    term: int
    round: int
    kind: str
    candidates: list[UUID]
    seats: int
    rules: VoteRules


_open_rounds: dict[UUID, OpenRound] = {}


async def _round_to_cast_in(conn, who: Principal, vote_id: UUID, fresh: bool) -> OpenRound:
    known = _open_rounds.get(vote_id)
    if known and not fresh and who.sees(known.jurisdiction):
        return known
    vote, current = await _open_round(conn, who, vote_id, Mode.ELECTRONIC)
    if len(_open_rounds) > 10_000:  # bounded: a county has a few hundred votes open at most
        _open_rounds.clear()
    known = _open_rounds[vote_id] = OpenRound(vote["jurisdiction"], vote["session_id"], vote["term"], vote["round"], vote["kind"],
                                              [UUID(c) for c in current["candidates"]], current["seats"],
                                              VoteRules.model_validate(vote["rules"]))
    return known


# One statement, one round trip, atomic on its own: lock the vote against a concurrent close,
# take the deputy's ballot, record the marks (in named_ballots only for a named vote) and the
# receipt's hash, and keep the (redacted) answer for a retry with the same Idempotency-Key.
# Retries of one request are serialised by the deputy's row in `issued`. The deputy's credential
# must not be revoked (identity's event) and the deputy still present (离场 ends it).
CAST = """
WITH vote AS (SELECT 1 FROM votes WHERE id = $1 AND round = $2 AND status = 'open' AND mode = 'electronic'
              AND (jurisdiction = $7 OR starts_with(jurisdiction, $7 || '.')) FOR KEY SHARE),
     revoked AS (SELECT 1 FROM revoked_credentials WHERE credential_id = $11),
     present AS (SELECT 1 FROM attendance WHERE session_id = $12 AND deputy_id = $3 AND present),
     taken AS (UPDATE issued SET cast_done = true
               WHERE vote_id = $1 AND round = $2 AND deputy_id = $3 AND NOT cast_done AND EXISTS (SELECT 1 FROM vote)
                 AND NOT EXISTS (SELECT 1 FROM revoked) AND EXISTS (SELECT 1 FROM present)
               RETURNING 1),
     secret AS (INSERT INTO ballots (vote_id, round, marks) SELECT $1, $2, $4 FROM taken WHERE NOT $6),
     named AS (INSERT INTO named_ballots (vote_id, round, deputy_id, marks) SELECT $1, $2, $3, $4 FROM taken WHERE $6),
     receipt AS (INSERT INTO receipts (vote_id, round, hash) SELECT $1, $2, $5 FROM taken),
     answer AS (INSERT INTO idempotency (principal, key, fingerprint, status, body)
                SELECT $3, $8, $9, 201, $10 FROM taken WHERE $8::text IS NOT NULL)
SELECT EXISTS (SELECT 1 FROM vote) AS open, EXISTS (SELECT 1 FROM taken) AS taken,
       EXISTS (SELECT 1 FROM issued WHERE vote_id = $1 AND round = $2 AND deputy_id = $3) AS issued,
       EXISTS (SELECT 1 FROM revoked) AS revoked, EXISTS (SELECT 1 FROM present) AS present
"""


@router.post("/votes/{vote_id}/ballots", status_code=201)
async def cast_ballot(vote_id: UUID, body: BallotIn, request: Request, who: Principal = Depends(DEPUTY)):
    """A deputy casts a secret ballot and gets a private receipt code. *That* the deputy voted and
    *what* was cast are written apart, with nothing linking them; a retry with the same
    Idempotency-Key is answered without the receipt, which is shown once. (The hot path of a
    session: one statement instead of the general command's transaction.) Only with the deputy's
    voting credential for this session: a deputy is (jurisdiction, term, deputy id), never the id alone."""
    if who.session is None or who.term is None or who.credential is None:
        raise Problem(403, "voting-credential-required", "须使用本次会议的签到凭证投票 Vote with your check-in credential",
                      "a ballot is cast with the voting credential the deputy's device received at check-in (签到)")
    key = request.headers.get("idempotency-key")
    fingerprint = hashlib.sha256(b"POST" + request.url.path.encode()).hexdigest()  # never the marks
    async with request.app.state.pool.acquire() as conn:
        for fresh in (False, True):
            if fresh and key and (replay := await stored_answer(conn, who.sub, key, fingerprint)):
                return replay
            current = await _round_to_cast_in(conn, who, vote_id, fresh)
            if (who.session, who.term) != (current.session_id, current.term):
                raise Problem(403, "credential-for-another-session", "凭证不属于本次会议 This credential is for another session",
                              "a voting credential is good in the session it was issued for only")
            marks = _parse_marks(current.kind, body.marks)
            if not _check(current.kind, current.candidates, current.seats, current.rules, marks):
                limit = current.rules.for_limit(current.seats)  # an electronic ballot cannot be over-marked
                raise Problem(422, "too-many-for-marks", "赞成票超过应选数 Too many 'for' marks",
                              f"at most {limit} 'for' marks on this ballot", max_for=limit)
            receipt = secrets.token_hex(8)
            answer = {"vote_id": str(vote_id), "round": current.round, "status": "cast", "receipt": receipt}
            try:
                outcome = await conn.fetchrow(
                    CAST, vote_id, current.round, who.sub, {str(c): m.value for c, m in marks.items()},
                    receipt_hash(receipt), current.rules.named, who.jurisdiction, key, fingerprint, {**answer, "receipt": None},
                    who.credential, who.session,
                )
            except asyncpg.UniqueViolationError as exc:  # the key was used before, for another request
                replay = await stored_answer(conn, who.sub, key, fingerprint)
                if replay:
                    return replay
                raise Problem(409, "already-voted", "已投票 Already voted", "one ballot per deputy and round") from exc
            if outcome["open"]:
                break
    if outcome["taken"]:
        return JSONResponse(answer, status_code=201)
    async with request.app.state.pool.acquire() as conn:
        if key and (replay := await stored_answer(conn, who.sub, key, fingerprint)):
            return replay
    if not outcome["issued"]:
        raise Problem(403, "not-issued", "未领取选票 No ballot issued", "only deputies present when the round opened receive a ballot")
    if outcome["revoked"]:
        raise Problem(403, "credential-revoked", "投票凭证已撤销 Your voting credential was revoked", "check in again")
    if not outcome["present"]:
        raise Problem(403, "deputy-left", "已离场 You have left the session", "a deputy who left (离场) no longer votes")
    raise Problem(409, "already-voted", "已投票 Already voted", "one ballot per deputy and round")


def receipt_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@router.post("/votes/{vote_id}/paper-ballots", status_code=201)
async def enter_paper_ballot(vote_id: UUID, body: BallotIn, request: Request, who: Principal = Depends(TELLER)):
    """A teller enters one collected paper ballot. An over-marked one is recorded as invalid."""

    async def act(uow: UnitOfWork):
        vote, current = await _open_round(uow.conn, who, vote_id, Mode.PAPER)
        if current["totals_entered"]:
            raise Problem(409, "totals-already-entered", "已录入汇总数 Totals already entered",
                          "this round was counted by totals; ballots cannot be added one by one")
        marks = _parse_marks(vote["kind"], body.marks)
        valid = _check(vote["kind"], [UUID(c) for c in current["candidates"]], current["seats"],
                       VoteRules.model_validate(vote["rules"]), marks)
        await uow.conn.execute("INSERT INTO ballots (vote_id, round, marks) VALUES ($1, $2, $3)",
                               vote_id, vote["round"], {str(c): m.value for c, m in marks.items()})
        await uow.audit(who.jurisdiction, who.sub, "enter-paper-ballot", "vote", vote_id, after={"round": vote["round"]})
        return {"vote_id": vote_id, "round": vote["round"], "status": "entered", "valid": valid}

    return await command(request, who.sub, act, 201)


@router.put("/votes/{vote_id}/paper-totals")
async def enter_paper_totals(vote_id: UUID, body: TotalsIn, request: Request, who: Principal = Depends(TELLER)):
    """Tellers' per-candidate totals for the round, with the ballots collected (and invalid)."""

    async def act(uow: UnitOfWork):
        vote, current = await _open_round(uow.conn, who, vote_id, Mode.PAPER)
        if vote["kind"] != Kind.SELECTION:
            raise Problem(409, "totals-not-supported", "测评票须逐张录入 Enter rating ballots one by one", "")
        if await uow.conn.fetchval("SELECT true FROM ballots WHERE vote_id = $1 AND round = $2 LIMIT 1", vote_id, vote["round"]):
            raise Problem(409, "ballots-already-entered", "已逐张录入 Ballots already entered one by one", "")
        try:
            tally = domain.tally_from_totals(body.counts, body.collected, body.invalid, [UUID(c) for c in current["candidates"]],
                                             current["seats"], VoteRules.model_validate(vote["rules"]))
        except domain.TotalsRefused as exc:
            raise Problem(422, exc.code, "汇总数有误 Totals refused", str(exc)) from exc
        await uow.conn.execute("UPDATE rounds SET tally = $3, totals_entered = true WHERE vote_id = $1 AND round = $2",
                               vote_id, vote["round"], store.tally_json(tally))
        await uow.audit(who.jurisdiction, who.sub, "enter-paper-totals", "vote", vote_id, after=body.model_dump(mode="json"))
        return {"vote_id": vote_id, "round": vote["round"], "status": "entered", **store.tally_json(tally)}

    return await command(request, who.sub, act)


@router.post("/votes/{vote_id}/close")
async def close_vote(vote_id: UUID, request: Request, who: Principal = Depends(CHAIR)):
    """Close the round and count: the result is announced with all counts (当场宣布), and says
    whether a further round is needed."""

    async def act(uow: UnitOfWork):
        vote = await store.vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        if vote["status"] != "open":
            raise _wrong_state(vote, "open")
        current = await uow.conn.fetchrow("SELECT * FROM rounds WHERE vote_id = $1 AND round = $2", vote_id, vote["round"])
        if not current["totals_entered"]:
            rows = await uow.conn.fetch(
                "SELECT marks FROM ballots WHERE vote_id = $1 AND round = $2 UNION ALL"
                " SELECT marks FROM named_ballots WHERE vote_id = $1 AND round = $2", vote_id, vote["round"])
            ids = {c: UUID(c) for c in current["candidates"]}
            ballots = [store.marks_of(vote["kind"], r["marks"], ids) for r in rows]
            await uow.conn.execute("UPDATE rounds SET tally = $3 WHERE vote_id = $1 AND round = $2",
                                   vote_id, vote["round"], _count(vote, current, ballots))
        await _unlink(uow.conn, vote_id, vote["round"])
        result = await _result(uow.conn, vote)
        await uow.conn.execute("UPDATE votes SET status = 'closed', result = $2 WHERE id = $1", vote_id, result)
        await uow.audit(who.jurisdiction, who.sub, "close", "vote", vote_id, after={"round": vote["round"]})
        return {"id": vote_id, "status": "closed", **result}

    response = await command(request, who.sub, act)
    await request.app.state.pool.execute("VACUUM ballots, receipts")  # purge the old row versions
    return response


def _count(vote, current, ballots: list[dict[UUID, Any]]) -> dict[str, Any]:
    candidates = [UUID(c) for c in current["candidates"]]
    if vote["kind"] == Kind.SATISFACTION:
        collected, counts = domain.tally_ratings(ballots, candidates)
        return {"collected": collected, "valid": collected, "invalid": 0,
                "ratings": {str(p): {"satisfied": c.satisfied, "basically_satisfied": c.basically,
                                     "dissatisfied": c.dissatisfied} for p, c in counts.items()}}
    return store.tally_json(domain.tally(ballots, candidates, current["seats"], VoteRules.model_validate(vote["rules"])))


async def _unlink(conn, vote_id: UUID, round_: int) -> None:
    """Rewrite the round's ballots and receipts in random order within this one transaction: no
    physical order or transaction id is left that ties one to the cast (and so to the `issued`
    row) that wrote it."""
    for table, columns in (("ballots", "vote_id, round, marks"), ("receipts", "vote_id, round, hash")):
        await conn.execute(
            f"""WITH old AS (DELETE FROM {table} WHERE vote_id = $1 AND round = $2 RETURNING {columns})
                INSERT INTO {table} ({columns}) SELECT {columns} FROM old ORDER BY random()""",
            vote_id, round_,
        )


async def _result(conn, vote) -> dict[str, Any]:
    """Every round with its counts, and where the vote stands."""
    rows = await conn.fetch("SELECT * FROM rounds WHERE vote_id = $1 ORDER BY round", vote["id"])
    titles = {s["id"]: s["title"] for s in vote["subjects"]}
    seated, present = vote["seated"], vote["present"]
    rounds = [{"round": r["round"], "candidates": r["candidates"], "seats": r["seats"], "issued": r["issued"],
               "void": not domain.round_stands(r["issued"], r["tally"]["collected"]), **r["tally"]} for r in rows]
    base = {"kind": vote["kind"], "seated": seated, "present": present, "rounds": rounds,
            **{k: rounds[0][k] for k in ("issued", "collected", "valid", "invalid")}}
    if vote["kind"] == Kind.SATISFACTION:
        ratings = []
        for pid, c in rounds[-1]["ratings"].items():
            count = domain.SatisfactionCount(c["satisfied"], c["basically_satisfied"], c["dissatisfied"])
            tier = domain.satisfaction_tier(count, seated)
            ratings.append({"project_id": pid, "title": titles[pid], **c, "tier": tier.value,
                            "tier_label": domain.SATISFACTION_LABELS[tier], "rate": domain.satisfaction_rate(count)})
        return {**base, "finished": True, "ratings": ratings}
    rules = VoteRules.model_validate(vote["rules"])
    state = domain.progress(store.rounds_of(rows), seated, present, rules)
    chosen = [str(c) for c in state.chosen]
    last_seen: dict[str, dict[str, Any]] = {}
    for r in rounds:
        if r["void"]:
            continue
        outcome = domain.decide(store.tally_from_json(r, [UUID(c) for c in r["candidates"]]), r["seats"], seated, present, rules)
        for cid in r["candidates"]:
            n = r["counts"][cid]
            last_seen[cid] = {"round": r["round"], "for_votes": n["for"], "against": n["against"], "abstain": n["abstain"],
                              "not_marked": n["not_marked"], "passed": UUID(cid) in outcome.ranks,
                              "rank": outcome.ranks.get(UUID(cid))}
    candidates = [{"candidate_id": s["id"], "title": s["title"], "chosen": s["id"] in chosen,
                   **last_seen.get(s["id"], {"round": None, "for_votes": 0, "against": 0, "abstain": 0, "not_marked": 0,
                                             "passed": False, "rank": None})}
                  for s in _subjects(vote)]
    return {**base, "finished": state.finished, "note": state.note, "chosen": chosen, "candidates": candidates,
            "next_candidates": [str(c) for c in state.next_candidates], "next_seats": state.next_seats}


@router.get("/votes/{vote_id}")
async def get_vote(vote_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """Progress while open (issued / cast so far, never a partial tally); the result once closed."""
    async with request.app.state.pool.acquire() as conn:
        vote = await store.vote(conn, who, vote_id)
        cast = await conn.fetchval("SELECT count(*) FROM issued WHERE vote_id = $1 AND round = $2 AND cast_done",
                                   vote_id, vote["round"])
        issued = await conn.fetchval("SELECT issued FROM rounds WHERE vote_id = $1 AND round = $2", vote_id, vote["round"])
    body = {"id": vote["id"], "session_id": vote["session_id"], "kind": vote["kind"], "mode": vote["mode"],
            "slate_id": vote["slate_id"], "status": vote["status"], "round": vote["round"], "rules": vote["rules"],
            "seats": vote["seats"], "subjects": _subjects(vote), "withdrawn": vote["withdrawn"], "issued": issued, "cast": cast}
    if vote["status"] in ("closed", "certified"):
        body["result"] = vote["result"]
        body["certified_at"], body["certified_by"] = vote["certified_at"], vote["certified_by"]
    return body


@router.post("/votes/{vote_id}/certify")
async def certify(vote_id: UUID, request: Request, who: Principal = Depends(PRESIDING)):
    """The presiding officer certifies the announced result; it is then immutable and goes out
    through the outbox (``ballot.result.certified`` or ``ballot.satisfaction.certified``)."""

    async def act(uow: UnitOfWork):
        vote = await store.vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        if vote["status"] != "closed":
            raise _wrong_state(vote, "closed")
        result = vote["result"]
        if not result["finished"]:
            last = result["rounds"][-1]
            code = "round-void" if last["void"] else "further-round-required"
            raise Problem(409, code, "需另行票决 A further round is required", f"{result['note']}: open round {vote['round'] + 1}",
                          next_candidates=result["next_candidates"], next_seats=result["next_seats"])
        if vote["kind"] == Kind.SELECTION:
            await uow.conn.execute("SELECT 1 FROM slates WHERE id = $1 FOR UPDATE", vote["slate_id"])  # one decision per slate
            decided = await uow.conn.fetchval(
                "SELECT id FROM votes WHERE slate_id = $1 AND status = 'certified' AND id <> $2", vote["slate_id"], vote_id)
            if decided:
                raise Problem(409, "slate-already-decided", "该候选清单已有确认结果 The slate is already decided",
                              f"vote {decided} on this slate is certified", decided_by=decided)
        session = await uow.conn.fetchrow("SELECT name FROM sessions WHERE id = $1", vote["session_id"])
        now = datetime.now(UTC)
        await uow.conn.execute("UPDATE votes SET status = 'certified', certified_at = $2, certified_by = $3 WHERE id = $1",
                               vote_id, now, who.sub)
        common = {"vote_id": vote_id, "session_id": vote["session_id"], "session_name": session["name"], "year": vote["year"],
                  "seated": result["seated"], "present": result["present"], "issued": result["issued"],
                  "collected": result["collected"], "certified_at": now, "certified_by": who.sub}
        if vote["kind"] == Kind.SATISFACTION:
            payload = SatisfactionCertified(**common, projects=[RatedProject(**{k: r[k] for k in RatedProject.model_fields})
                                                               for r in result["ratings"]])
        else:
            payload = ResultCertified(
                **common, slate_id=vote["slate_id"], seats=vote["seats"], valid=result["valid"], invalid=result["invalid"],
                rules=vote["rules"],
                candidates=[CandidateResult(**{k: c[k] for k in CandidateResult.model_fields}) for c in result["candidates"]],
                rounds=[RoundCounts(**{k: r[k] for k in RoundCounts.model_fields}) for r in result["rounds"]],
            )
        await uow.emit(payload, vote["jurisdiction"])
        await uow.audit(who.jurisdiction, who.sub, "certify", "vote", vote_id, after={"certified_at": now.isoformat()})
        return {"id": vote_id, "status": "certified", **result, "certified_at": now, "certified_by": who.sub}

    return await command(request, who.sub, act)


@router.get("/votes/{vote_id}/publication")
async def publication(vote_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """After certification: the hashes of every receipt code (a deputy finds their own), and the
    anonymised ballots in random order (anyone can recount: ``piaojue ballot recount``)."""
    async with request.app.state.pool.acquire() as conn:
        vote = await store.vote(conn, who, vote_id)
        if vote["status"] != "certified":
            raise _wrong_state(vote, "certified")
        rounds = await conn.fetch("SELECT * FROM rounds WHERE vote_id = $1 ORDER BY round", vote_id)
        published = []
        for r in rounds:
            hashes = await conn.fetch("SELECT hash FROM receipts WHERE vote_id = $1 AND round = $2 ORDER BY hash", vote_id, r["round"])
            ballots = await conn.fetch("SELECT marks FROM ballots WHERE vote_id = $1 AND round = $2 ORDER BY id", vote_id, r["round"])
            published.append({"round": r["round"], "candidates": r["candidates"], "seats": r["seats"], "issued": r["issued"],
                              "totals": r["tally"] if r["totals_entered"] else None,
                              "receipt_hashes": [h["hash"] for h in hashes], "ballots": [b["marks"] for b in ballots]})
    return {"vote_id": vote_id, "kind": vote["kind"], "rules": vote["rules"], "seats": vote["seats"],
            "subjects": _subjects(vote), "certified_at": vote["certified_at"], "result": vote["result"], "rounds": published}


# ---------------------------------------------------------------- live view


@router.get("/sessions/{session_id}/live")
async def live(session_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """Server-sent events for the presiding officer's screen and the deputies' devices: present,
    and for each vote its status, round, issued and cast so far. No partial tally before close;
    the counts of a closed round are announced with it. Read from the database, so every replica
    serves the same stream."""
    pool = request.app.state.pool
    async with pool.acquire() as conn:
        await store.session(conn, who, session_id)

    async def stream():
        last = None
        while not await request.is_disconnected():
            async with pool.acquire() as conn:
                state = {"session_id": str(session_id), **await store.attendance(conn, session_id), "votes": [
                    {"id": str(v["id"]), "kind": v["kind"], "status": v["status"], "round": v["round"],
                     "issued": v["issued"], "cast": v["cast"],
                     **({"result": {k: v["result"][k] for k in ("issued", "collected", "valid", "invalid")}
                         | {"chosen": v["result"].get("chosen"), "finished": v["result"]["finished"]}}
                        if v["status"] in ("closed", "certified") else {})}
                    for v in await conn.fetch(
                        """SELECT v.id, v.kind, v.status, v.round, v.result, r.issued,
                                  (SELECT count(*) FROM issued i WHERE i.vote_id = v.id AND i.round = v.round AND i.cast_done) AS cast
                           FROM votes v LEFT JOIN rounds r ON r.vote_id = v.id AND r.round = v.round
                           WHERE v.session_id = $1 ORDER BY v.id""", session_id)]}
            if state != last:
                yield f"event: state\ndata: {json.dumps(state, ensure_ascii=False)}\n\n"
                last = state
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})
