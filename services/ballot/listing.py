"""Read-only lists of the ballot service, for the pages that let people find their way to a
session, a vote, a roster or a slate (the web front cannot guess ids)."""

from __future__ import annotations

from uuid import UUID

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from services.ballot import store
from services.ballot.domain.rules import Mark, Satisfaction, VoteRules
from services.ballot.routes.common import readers
from services.ballot.routes.common import router as make_router
from shared.auth import Principal, scope_sql
from shared.fields import TermParam, YearParam
from shared.http import Problem, problems

router = make_router()  # a refusal (not found) answered as a problem
ANYONE = readers(display=False)


class VoteBrief(BaseModel):
    id: UUID
    kind: str
    mode: str
    status: str
    round: int
    seats: int
    slate_id: UUID | None


class SessionBrief(BaseModel):
    id: UUID
    jurisdiction: str
    name: str
    year: int
    term: int
    votes: list[VoteBrief]


class DeputyOut(BaseModel):
    deputy_id: str
    name: str
    seated: bool
    present: bool | None = None


class RosterOut(BaseModel):
    term: int
    quota: int
    deputies: list[DeputyOut]


class SlateBrief(BaseModel):
    id: UUID
    title: str
    year: int
    seats: int
    candidates: int


class Subject(BaseModel):
    id: str
    title: str


class BallotPaper(BaseModel):
    vote_id: UUID
    session_id: UUID
    session_name: str
    kind: str
    status: str
    round: int
    seats: int = Field(description="应选数 of this round")
    max_for: int | None = Field(description="most 'for' marks on one ballot (selection only)")
    choices: list[str]
    candidates: list[Subject] = Field(description="on the ballot of this round (a further round: those still in it)")
    departures: list[dict[str, str]] = Field(description="departures from the default procedure (记名, quorum, basis), each "
                                             "with the presiding officer's recorded reason: shown on every ballot")
    sealed: bool = Field(description="secret and electronic: sealed at cast, opened by the tellers' shares at close")


@router.get("/votes/{vote_id}/ballot-paper", response_model=BallotPaper, responses=problems(403, 404))
async def ballot_paper(vote_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """What a deputy's ballot shows in the current round (or the first, before it opens)."""
    async with request.app.state.pool.acquire() as conn:
        vote = await store.vote(conn, who, vote_id)
        session = await conn.fetchrow("SELECT name FROM sessions WHERE id = $1", vote["session_id"])
        current = await conn.fetchrow("SELECT candidates, seats FROM rounds WHERE vote_id = $1 AND round = $2",
                                      vote_id, vote["round"])
    withdrawn = {w["id"] for w in vote["withdrawn"]}
    ids = current["candidates"] if current else [s["id"] for s in vote["subjects"] if s["id"] not in withdrawn]
    seats = current["seats"] if current else vote["seats"]
    selection = vote["kind"] == "selection"
    titles = {s["id"]: s["title"] for s in vote["subjects"]}
    return {"vote_id": vote_id, "session_id": vote["session_id"], "session_name": session["name"], "kind": vote["kind"],
            "status": vote["status"], "round": vote["round"], "seats": seats,
            "max_for": VoteRules.model_validate(vote["rules"]).for_limit(seats) if selection else None,
            "choices": [m.value for m in (Mark if selection else Satisfaction)],
            "candidates": [{"id": c, "title": titles[c]} for c in ids], "departures": vote["departures"],
            "sealed": vote["mode"] == "electronic" and not VoteRules.model_validate(vote["rules"]).named}


@router.get("/sessions", response_model=list[SessionBrief], responses=problems(403))
async def list_sessions(request: Request, year: YearParam | None = None,
                        who: Principal = Depends(readers(display=True))):
    """The sessions in the caller's jurisdiction, newest first, each with its votes. A session's
    credential (a deputy's voting credential, the hall display's) lists that session only."""
    async with request.app.state.pool.acquire() as conn:
        sessions = await conn.fetch(
            f"SELECT * FROM sessions WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2)"
            " AND ($3::uuid IS NULL OR id = $3) ORDER BY created_at DESC", who.jurisdiction, year, who.session)
        votes = await conn.fetch("SELECT id, session_id, kind, mode, status, round, seats, slate_id FROM votes"
                                 " WHERE session_id = ANY($1::uuid[]) ORDER BY id", [s["id"] for s in sessions])
    return [{**dict(s), "votes": [dict(v) for v in votes if v["session_id"] == s["id"]]} for s in sessions]


@router.get("/sessions/{session_id}/deputies", response_model=list[DeputyOut], responses=problems(403, 404))
async def session_deputies(session_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """The seated deputies of the session's term, and whether each is present now (签到)."""
    async with request.app.state.pool.acquire() as conn:
        session = await store.session(conn, who, session_id)
        rows = await conn.fetch(
            """SELECT d.deputy_id, d.name, d.seated, coalesce(a.present, false) AS present FROM deputies d
               LEFT JOIN attendance a ON a.session_id = $1 AND a.deputy_id = d.deputy_id
               WHERE d.jurisdiction = $2 AND d.term = $3 AND d.seated ORDER BY d.deputy_id""",
            session_id, session["jurisdiction"], session["term"])
    return [dict(r) for r in rows]


@router.get("/terms/{term}/roster", response_model=RosterOut, responses=problems(403, 404))
async def get_roster(term: TermParam, request: Request, who: Principal = Depends(ANYONE)):
    """The roster of the caller's own congress for a term (届)."""
    async with request.app.state.pool.acquire() as conn:
        quota = await conn.fetchval("SELECT quota FROM terms WHERE jurisdiction = $1 AND term = $2", who.jurisdiction, term)
        if quota is None:
            raise Problem(404, "roster-not-found", "该届代表名单未录入 No roster for this term", f"no roster for term {term}")
        rows = await conn.fetch("SELECT deputy_id, name, seated FROM deputies WHERE jurisdiction = $1 AND term = $2"
                                " ORDER BY deputy_id", who.jurisdiction, term)
    return {"term": term, "quota": quota, "deputies": [dict(r) for r in rows]}


@router.get("/slates", response_model=list[SlateBrief], responses=problems(403))
async def list_slates(request: Request, year: YearParam | None = None, who: Principal = Depends(ANYONE)):
    """The slates intake has published to the caller's jurisdiction: what a vote can be set up on."""
    rows = await request.app.state.pool.fetch(
        f"SELECT id, title, year, seats, jsonb_array_length(candidates) AS candidates FROM slates"
        f" WHERE {scope_sql('$1')} AND ($2::int IS NULL OR year = $2) ORDER BY received_at DESC", who.jurisdiction, year)
    return [dict(r) for r in rows]
