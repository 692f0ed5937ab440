"""Votes: create, withdraw a candidate, open a round (and make its key), close (count, or await
the tellers), void a round or the vote, certify. Each loads the ``Vote``, calls it, saves it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from fastapi import Depends, Request
from pydantic import Field

from services.ballot import counting, store
from services.ballot.domain import ballots, sealing
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.rules import VoteRules
from services.ballot.domain.session import SessionStatus, refuse_unless_open
from services.ballot.domain.vote import Kind, Mode, Ratings, Status, Subject, Vote
from services.ballot.routes.common import ANYONE, CHAIR, PRESIDING
from services.ballot.routes.common import router as make_router
from services.ballot.routes.models import CertifiedOut, VoteOut, VoteStep, WithdrawalOut
from shared.auth import Principal, Role
from shared.db import UnitOfWork
from shared.fields import Body, Reason, Year
from shared.http import command, problems

router = make_router()


class VoteIn(Body):
    kind: Kind = Kind.SELECTION
    slate_id: UUID | None = Field(None, description="selection: the slate to vote on")
    year: Year | None = Field(None, description="satisfaction: whose projects to rate (default: the session's year)")
    mode: Mode = Mode.ELECTRONIC
    rules: VoteRules = VoteRules()
    reason: Reason | None = Field(None, description="why the rules depart from the default procedure (presiding role only)")


class WithdrawalIn(Body):
    candidate_id: UUID
    reason: Reason


class VoidIn(Body):
    reason: Reason


class RerunMode(StrEnum):
    ELECTRONIC = "electronic"
    PAPER = "paper"


class VoidRoundIn(Body):
    reason: Reason
    rerun: RerunMode = Field(RerunMode.PAPER, description="how the round is run again")


def view(vote: Vote, issued: int | None = None, cast: int | None = None) -> dict[str, Any]:
    """A vote as every caller sees it: its ballot (subjects, rules, departures), progress while open
    (issued / cast so far, never a partial tally), the result once counted."""
    current = vote.current
    body = {"id": vote.id, "session_id": vote.session_id, "kind": vote.kind, "mode": vote.mode, "slate_id": vote.slate_id,
            "status": vote.status, "round": len(vote.rounds), "rules": vote.rules.model_dump(mode="json"), "seats": vote.seats,
            "subjects": [{"id": s.id, "title": s.title} for s in vote.on_ballot], "withdrawn": vote.withdrawn,
            "departures": [d.__dict__ for d in vote.departures], "issued": issued, "cast": cast,
            "candidates": current.candidates if current else [s.id for s in vote.on_ballot],
            "sealed": current.sealed if current else vote.sealed, "void_reason": vote.void_reason}
    if any(r.counted or r.void_reason for r in vote.rounds):
        body["result"] = vote.result().as_json()
        body["certified_at"], body["certified_by"] = vote.certified_at, vote.certified_by
    return body


@router.post("/sessions/{session_id}/votes", status_code=201, response_model=VoteOut, responses=problems(403, 404, 409))
async def create_vote(session_id: UUID, body: VoteIn, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    async def act(uow: UnitOfWork):
        session = await store.session(uow.conn, who, session_id)
        refuse_unless_open(SessionStatus(session["status"]))
        slate_votes = {}
        if body.kind is Kind.SELECTION:
            if body.slate_id is None:
                raise Refused(Why.INVALID, "slate-required", "a selection vote needs a slate: give slate_id")
            slate = await store.slate(uow.conn, who, body.slate_id, own_only=True)
            subjects = [Subject(c["candidate_id"], c["title"]) for c in slate["candidates"]]
            seats, year = slate["seats"], slate["year"]
            slate_votes = await store.slate_votes(uow.conn, body.slate_id)
        else:
            year = body.year or session["year"]
            subjects = await store.projects(uow.conn, session["jurisdiction"], year)
            if not subjects:
                raise Refused(Why.CONFLICT, "no-projects", f"no voted projects of {year} known yet")
            seats = len(subjects)
        vote = Vote.create(id=uuid4(), session_id=session_id, jurisdiction=session["jurisdiction"], kind=body.kind, mode=body.mode,
                           slate_id=body.slate_id, year=year, subjects=subjects, seats=seats, vote_rules=body.rules, by=who.sub,
                           presiding=who.role is Role.PRESIDING, reason=body.reason, slate_votes=slate_votes)
        await store.insert_vote(uow.conn, vote)
        await uow.audit(who.jurisdiction, who.sub, "create", "vote", vote.id, after=body.model_dump(mode="json"))
        return view(vote)

    return await command(request, who.sub, act, 201)


@router.post("/votes/{vote_id}/withdrawals", response_model=WithdrawalOut, responses=problems(403, 404, 409))
async def withdraw(vote_id: UUID, body: WithdrawalIn, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    """A candidate withdrawn from the ballot: only before the vote opens."""

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        vote.withdraw(str(body.candidate_id), body.reason)
        await store.save_vote(uow.conn, vote)
        await uow.audit(who.jurisdiction, who.sub, "withdraw", "vote", vote_id, after=body.model_dump(mode="json"))
        return {"id": vote_id, "withdrawn": vote.withdrawn, "candidates": [{"id": s.id, "title": s.title} for s in vote.on_ballot]}

    return await command(request, who.sub, act)


@router.post("/votes/{vote_id}/open", response_model=VoteOut, responses=problems(403, 404, 409))
async def open_vote(vote_id: UUID, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    """Open the vote's first round, or the further round its last count called for: with a quorum, a
    ballot to each deputy present; a secret electronic round gets a key of its own, split among the
    session's tellers (k of n), its private half never stored."""

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        session = await store.session(uow.conn, who, vote.session_id, lock="FOR UPDATE")  # no roll call while opening
        refuse_unless_open(SessionStatus(session["status"]))
        counts = await store.attendance(uow.conn, vote.session_id)
        round_ = vote.open(counts["present"], counts["seated"], len(session["tellers"]), session["threshold"])
        await store.save_vote(uow.conn, vote)
        if round_.sealed:
            keys = await store.teller_keys(uow.conn, session["jurisdiction"], session["tellers"])
            suites = {keys[t][0] for t in session["tellers"] if t in keys}
            if len(keys) != len(session["tellers"]) or len(suites) != 1:
                raise Refused(Why.CONFLICT, "teller-keys-changed", "every teller needs a key of one cipher suite: set the tellers again")
            key = sealing.make_round_key(suites.pop(), [sealing.TellerKey(t, keys[t][1]) for t in session["tellers"]],
                                         session["threshold"], sealing.round_info(vote.id, round_.number))
            await store.save_round_key(uow.conn, vote.id, round_.number, key)
        await store.issue_ballots(uow.conn, vote.id, round_.number, vote.session_id)
        await uow.audit(who.jurisdiction, who.sub, "open", "vote", vote_id, after={"round": round_.number})
        return {**view(vote, round_.issued, 0), "candidates": round_.candidates, "seats": round_.seats,
                "tellers": session["tellers"] if round_.sealed else [], "threshold": session["threshold"] if round_.sealed else None}

    return await command(request, who.sub, act)


@router.post("/votes/{vote_id}/close", response_model=VoteStep, responses=problems(403, 404, 409))
async def close_vote(vote_id: UUID, request: Request, who: Principal = Depends(CHAIR)) -> dict[str, Any]:
    """Close the round. A paper or named round is counted now and the result announced (当场宣布);
    a sealed round awaits k tellers' shares (POST /votes/{id}/shares). Closing again while it awaits
    them moves the counting to this replica (if the one counting was lost): shares are presented again."""
    counting_here: dict[str, Any] = {}

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        current = vote.current
        if vote.status is Status.AWAITING_SHARES:
            vote.count_elsewhere()
        elif current is not None and vote.status is Status.OPEN and not current.sealed and not current.counted:
            plain = await store.plain_ballots(uow.conn, vote_id, current.number)
            candidates = [UUID(c) for c in current.candidates]
            if vote.kind is Kind.SATISFACTION:
                collected, _, counts = ballots.tally_ratings_compact(plain, candidates)
                vote.close(Ratings(collected, counts))
            else:
                vote.close(ballots.tally_compact(plain, candidates, current.seats, vote.rules))
        else:
            vote.close()
        if vote.status is Status.AWAITING_SHARES:
            key = await store.round_key(uow.conn, vote_id, current.number)
            public = counting.counting_key(vote_id, current.number, key["suite"])
            await store.set_count_key(uow.conn, vote_id, current.number, public)
            counting_here.update(public=public, round=current.number, cast=await store.cast_count(uow.conn, vote_id, current.number),
                                 threshold=key["threshold"])
        await store.save_vote(uow.conn, vote)
        await uow.audit(who.jurisdiction, who.sub, "close", "vote", vote_id, after={"round": current.number if current else 0})
        answer = {"id": vote_id, "status": vote.status.value}
        if vote.status is Status.AWAITING_SHARES:
            return {**answer, "round": current.number, "needed": key["threshold"], "presented": 0}
        return {**answer, **vote.result().as_json()}

    response = await command(request, who.sub, act)
    if counting_here and response.status_code == 200:
        counting.watch(request.app.state.pool, vote_id, counting_here["round"], counting_here["public"], counting_here["cast"])
    return response


@router.post("/votes/{vote_id}/rounds/current/void", response_model=VoteOut, responses=problems(403, 404, 409))
async def void_round(vote_id: UUID, body: VoidRoundIn, request: Request, who: Principal = Depends(PRESIDING)) -> dict[str, Any]:
    """The presiding officer voids the current round with a recorded reason (the hall's network or
    devices failed; the tellers' shares never came): its sealed ballots are discarded unopened, and
    the round is run again, on paper if need be (``rerun``)."""

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        vote.void_round(body.reason, Mode(body.rerun.value))
        await store.discard_sealed(uow.conn, vote_id, vote.current.number)
        await store.save_vote(uow.conn, vote)
        await uow.audit(who.jurisdiction, who.sub, "void-round", "vote", vote_id, after=body.model_dump(mode="json"))
        return view(vote)

    return await command(request, who.sub, act)


@router.post("/votes/{vote_id}/void", response_model=VoteOut, responses=problems(403, 404, 409))
async def void_vote(vote_id: UUID, body: VoidIn, request: Request, who: Principal = Depends(PRESIDING)) -> dict[str, Any]:
    """The whole vote void, with a recorded reason: a new vote on its slate may then be held."""

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        vote.void(body.reason)
        if vote.current is not None:
            await store.discard_sealed(uow.conn, vote_id, vote.current.number)
        await store.save_vote(uow.conn, vote)
        await uow.audit(who.jurisdiction, who.sub, "void", "vote", vote_id, after=body.model_dump())
        return view(vote)

    return await command(request, who.sub, act)


@router.get("/votes/{vote_id}", response_model=VoteOut, responses=problems(403, 404))
async def get_vote(vote_id: UUID, request: Request, who: Principal = Depends(ANYONE)) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        vote = await store.load_vote(conn, who, vote_id)
        issued, cast = await store.issued_and_cast(conn, vote_id, len(vote.rounds))
        current = vote.current
        if vote.status is Status.OPEN and current is not None and current.mode is Mode.PAPER:
            # a paper round: what the tellers have entered so far, to check against the ballots issued
            cast = current.tally.collected if current.totals_entered else await store.paper_entered(conn, vote_id, current.number)
    return view(vote, issued, cast)


@router.post("/votes/{vote_id}/certify", response_model=CertifiedOut, responses=problems(403, 404, 409))
async def certify(vote_id: UUID, request: Request, who: Principal = Depends(PRESIDING)) -> dict[str, Any]:
    """The presiding officer certifies the announced result; it is then immutable and goes out
    through the outbox (``ballot.result.certified`` or ``ballot.satisfaction.certified``)."""

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        decided = await store.certified_on_slate(uow.conn, vote.slate_id, vote_id) if vote.slate_id else None
        session = await store.session(uow.conn, who, vote.session_id)
        event = vote.certify(who.sub, datetime.now(UTC), session["name"], decided)
        await store.save_vote(uow.conn, vote)
        await uow.emit(event, vote.jurisdiction)
        await uow.audit(who.jurisdiction, who.sub, "certify", "vote", vote_id, after={"certified_at": vote.certified_at.isoformat()})
        return {"id": vote_id, "status": vote.status.value, **vote.result().as_json(), "departures": [d.__dict__ for d in vote.departures],
                "certified_at": vote.certified_at, "certified_by": who.sub}

    return await command(request, who.sub, act)
