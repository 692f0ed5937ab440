"""Rosters and their changes, sessions (opened → closed), roll call (签到), the session's tellers
(监票人) and their keys, slates as received from intake."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID, uuid4

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from services.ballot import store
from services.ballot.domain import rules, sealing
from services.ballot.domain import session as rules_of_session
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.session import SessionStatus, Tellers
from services.ballot.routes.common import ANYONE, CHAIR, OFFICE, TELLER
from services.ballot.routes.common import router as make_router
from services.ballot.routes.models import AttendanceOut, RosterChangeOut, RosterOut, SessionClosedOut, SessionOut, SlateCopy, TellersOut
from shared.auth import Principal
from shared.contracts.ballot import AttendanceRecorded, SessionCreated
from shared.db import UnitOfWork
from shared.fields import Body, Flag, Identifier, Name, Reason, Term, TermParam, Title, Year, items, text, whole
from shared.http import body_limit, command, problems

router = make_router()


class DeputyIn(Body):
    deputy_id: Identifier
    name: Name
    seated: Flag = Field(True, description="false: the seat is vacant (出缺)")


class RosterIn(Body):
    quota: whole(1, 100_000, "名额: the nominal number of deputies (up to a province-wide sitting)")
    deputies: list[DeputyIn] = items(10_000, min_length=1, description="up to 10,000 a request; more in several (they add up)")


class RosterChangeIn(Body):
    deputy_id: Identifier
    name: Name | None = None
    seated: Flag = Field(description="true: takes up a seat (补选); false: leaves it (辞职/罢免/出缺)")
    reason: Reason


class SessionIn(Body):
    name: Title = Field(description="e.g. 孚玉镇第十九届人民代表大会第四次会议")
    year: Year
    term: Term


class RollCallIn(Body):
    present: list[Identifier] = items(10_000, default_factory=list)
    absent: list[Identifier] = items(10_000, default_factory=list, description="deputies who left (离场)")


class TellersIn(Body):
    tellers: list[Identifier] = items(99, min_length=1, description="监票人: each has registered a public key")
    threshold: whole(1, 99, "k: how many of them open a secret round together")


class TellerKeyIn(Body):
    public_key: text(200) = Field(description="base64 of the raw public key (piaojue ballot teller-key)")
    suite: text(64) = sealing.DEFAULT_SUITE


class TellerKeyOut(BaseModel):
    teller_id: str
    suite: str
    fingerprint: str


@router.put("/terms/{term}/roster", response_model=RosterOut, responses=problems(403, 409),
            openapi_extra=body_limit(4 * 1024 * 1024))  # 10,000 deputies a request
async def put_roster(term: TermParam, body: RosterIn, request: Request, who: Principal = Depends(OFFICE)) -> dict[str, Any]:
    """The deputies of a term (届) of the caller's congress, before its sessions: frozen while one is open."""
    ids = [d.deputy_id for d in body.deputies]
    if len(set(ids)) != len(ids):
        raise Refused(Why.INVALID, "duplicate-deputy", "each deputy once")

    async def act(uow: UnitOfWork):
        await store.lock_term(uow.conn, who.jurisdiction, term)
        rules_of_session.refuse_roster_edit(await store.open_sessions(uow.conn, who.jurisdiction, term))
        await store.put_roster(uow.conn, who.jurisdiction, term, body.quota, [(d.deputy_id, d.name, d.seated) for d in body.deputies])
        quota, seated = await store.seated_count(uow.conn, who.jurisdiction, term)
        if seated > quota:
            raise Refused(Why.INVALID, "over-quota", f"{seated} seated > quota {quota}")
        await uow.audit(who.jurisdiction, who.sub, "roster", "term", term, after=body.model_dump())
        return {"term": term, "quota": quota, "seated": seated, "vacant": quota - seated}

    return await command(request, who.sub, act)


@router.post("/terms/{term}/roster/changes", status_code=201, response_model=RosterChangeOut, responses=problems(403, 404))
async def change_roster(term: TermParam, body: RosterChangeIn, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    """A recorded decision on a deputy's status (补选/辞职/罢免): it takes effect when the next session opens."""

    async def act(uow: UnitOfWork):
        if not await store.lock_term(uow.conn, who.jurisdiction, term):
            raise store.not_found("term", term)
        change = await store.record_roster_change(uow.conn, who.jurisdiction, term, body.deputy_id, body.name, body.seated,
                                                  body.reason, who.sub)
        await uow.audit(who.jurisdiction, who.sub, "roster-change", "term", term, after=body.model_dump())
        return {"id": change, "term": term, **body.model_dump(), "effective": "next session"}

    return await command(request, who.sub, act, 201)


@router.post("/sessions", status_code=201, response_model=SessionOut, responses=problems(403, 409))
async def create_session(body: SessionIn, request: Request, who: Principal = Depends(OFFICE)) -> dict[str, Any]:
    """Open a session of the term: the roster changes decided since the last one take effect now."""

    async def act(uow: UnitOfWork):
        if not await store.lock_term(uow.conn, who.jurisdiction, body.term):
            raise Refused(Why.CONFLICT, "no-roster", f"no roster for term {body.term}: PUT /terms/{body.term}/roster first")
        rules_of_session.refuse_new_session(await store.open_sessions(uow.conn, who.jurisdiction, body.term))
        applied = await store.apply_roster_changes(uow.conn, who.jurisdiction, body.term)
        session_id = uuid4()
        await uow.conn.execute("INSERT INTO sessions (id, jurisdiction, term, name, year) VALUES ($1, $2, $3, $4, $5)",
                               session_id, who.jurisdiction, body.term, body.name, body.year)
        await uow.audit(who.jurisdiction, who.sub, "open", "session", session_id, after={**body.model_dump(), "applied": applied})
        await uow.emit(SessionCreated(session_id=session_id, term=body.term, name=body.name, year=body.year), who.jurisdiction)
        return {"id": session_id, **body.model_dump(), "status": "open", "roster_changes_applied": applied,
                **await store.attendance(uow.conn, session_id)}

    return await command(request, who.sub, act, 201)


@router.post("/sessions/{session_id}/close", response_model=SessionClosedOut, responses=problems(403, 404, 409))
async def close_session(session_id: UUID, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    """闭会: once no vote of the session is open or awaiting its tellers. The roster thaws."""

    async def act(uow: UnitOfWork):
        row = await store.session(uow.conn, who, session_id, lock="FOR UPDATE")
        status = rules_of_session.close_session(SessionStatus(row["status"]), await store.votes_in_progress(uow.conn, session_id))
        await uow.conn.execute("UPDATE sessions SET status = $2, closed_at = now() WHERE id = $1", session_id, status.value)
        await uow.audit(who.jurisdiction, who.sub, "close", "session", session_id)
        return {"id": session_id, "status": status.value}

    return await command(request, who.sub, act)


@router.get("/sessions/{session_id}", response_model=SessionOut, responses=problems(403, 404))
async def get_session(session_id: UUID, request: Request, who: Principal = Depends(ANYONE)) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        s = await store.session(conn, who, session_id)
        counts = await store.attendance(conn, session_id)
    return {"id": s["id"], "name": s["name"], "year": s["year"], "term": s["term"], "status": s["status"], **counts,
            "quorum": rules.has_quorum(counts["present"], counts["seated"]), "tellers": s["tellers"], "threshold": s["threshold"]}


@router.post("/sessions/{session_id}/roll-call", response_model=AttendanceOut, responses=problems(403, 404, 409))
async def roll_call(session_id: UUID, body: RollCallIn, request: Request, who: Principal = Depends(OFFICE)) -> dict[str, Any]:
    """签到: mark deputies present (or gone again). Deputies not seated in the term are refused."""

    async def act(uow: UnitOfWork):
        s = await store.session(uow.conn, who, session_id, lock="FOR UPDATE")
        rules_of_session.refuse_unless_open(SessionStatus(s["status"]))
        unknown = sorted(set(body.present + body.absent) - await store.seated_ids(uow.conn, s["jurisdiction"], s["term"]))
        if unknown:
            raise Refused(Why.INVALID, "not-on-roster", f"not seated in this term: {', '.join(unknown)}")
        await store.mark_attendance(uow.conn, session_id, body.present, body.absent)
        counts = await store.attendance(uow.conn, session_id)
        await uow.audit(who.jurisdiction, who.sub, "roll-call", "session", session_id, after=body.model_dump())
        # identity: who may check in for a voting credential, whose credential ends (离场)
        await uow.emit(AttendanceRecorded(session_id=session_id, term=s["term"], present=body.present, absent=body.absent),
                       s["jurisdiction"])
        return {**counts, "quorum": rules.has_quorum(counts["present"], counts["seated"])}

    return await command(request, who.sub, act)


@router.put("/sessions/{session_id}/tellers", response_model=TellersOut, responses=problems(403, 404, 409))
async def set_tellers(session_id: UUID, body: TellersIn, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    """The session's tellers (监票人) and k: each must have registered their own public key."""
    tellers = Tellers(body.tellers, body.threshold)

    async def act(uow: UnitOfWork):
        s = await store.session(uow.conn, who, session_id, lock="FOR UPDATE")
        rules_of_session.refuse_unless_open(SessionStatus(s["status"]))
        busy = await store.votes_in_progress(uow.conn, session_id)
        if busy:
            raise Refused(Why.CONFLICT, "votes-in-progress", f"vote {busy[0]} is open: its round keeps the tellers it opened with")
        keys = await store.teller_keys(uow.conn, s["jurisdiction"], tellers.ids)
        rules_of_session.refuse_tellers_without_keys(tellers, keys)
        await uow.conn.execute("UPDATE sessions SET tellers = $2, threshold = $3 WHERE id = $1", session_id, tellers.ids,
                               tellers.threshold)
        await uow.audit(who.jurisdiction, who.sub, "tellers", "session", session_id, after=body.model_dump())
        return {"id": session_id, "tellers": [{"teller_id": t, "suite": keys[t][0], "fingerprint": sealing.fingerprint(keys[t][1])}
                                              for t in tellers.ids], "threshold": tellers.threshold}

    return await command(request, who.sub, act)


@router.put("/tellers/me/key", response_model=TellerKeyOut, responses=problems(403))
async def register_teller_key(body: TellerKeyIn, request: Request, who: Principal = Depends(TELLER)):
    """A teller registers their own public key; the private key never leaves them."""
    chosen = sealing.suite(body.suite)
    try:
        public = base64.b64decode(body.public_key, validate=True)
        chosen.seal(public, b"check", b"piaojue/teller-key")  # a key that cannot be sealed to is refused now
    except Exception as exc:  # noqa: BLE001 — any malformed key is the same answer
        raise Refused(Why.INVALID, "bad-public-key", f"not a {chosen.name} public key") from exc

    async def act(uow: UnitOfWork):
        await store.register_teller_key(uow.conn, who.jurisdiction, who.sub, chosen.name, public)
        await uow.audit(who.jurisdiction, who.sub, "teller-key", "teller", who.sub, after={"fingerprint": sealing.fingerprint(public)})
        return {"teller_id": who.sub, "suite": chosen.name, "fingerprint": sealing.fingerprint(public)}

    return await command(request, who.sub, act)


@router.get("/slates/{slate_id}", response_model=SlateCopy, responses=problems(403, 404))
async def get_slate(slate_id: UUID, request: Request, who: Principal = Depends(ANYONE)) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        return dict(await store.slate(conn, who, slate_id))
