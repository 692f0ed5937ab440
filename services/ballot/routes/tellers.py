"""What tellers (监票人/计票人) do through the API: enter paper ballots or totals, fetch their sealed
share of a round's key, and present it (opened on their own device) when the round closes."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal
from uuid import UUID

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from services.ballot import counting, store
from services.ballot.cast import BallotIn
from services.ballot.domain import rules, sealing
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.vote import Kind, Mode, Status, check_marks, tally_json
from services.ballot.routes.common import TELLER
from services.ballot.routes.common import router as make_router
from services.ballot.routes.models import MyShareOut, PaperBallotOut, RoundStep
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.fields import Body, Headcount, text
from shared.http import command, problems

router = make_router()


class TotalsIn(Body):
    collected: Headcount = Field(description="收回")
    invalid: Headcount = 0
    counts: dict[UUID, dict[Literal["for", "against", "abstain"], Headcount]] = Field(
        max_length=1_000, description="candidate → {for, against, abstain}")


class ShareIn(Body):
    share: text(64) = Field(description="base64 of your opened share (piaojue ballot present-share does it)")


async def _open_paper_round(conn, who: Principal, vote_id: UUID, lock: str = "FOR KEY SHARE"):
    """The vote, if its current round takes paper ballots now (a close waits for the entry in flight)."""
    vote = await store.load_vote(conn, who, vote_id, lock=lock)
    if vote.status is not Status.OPEN:
        raise Refused(Why.CONFLICT, "vote-not-open", f"vote {vote_id} is {vote.status}", status_now=vote.status.value)
    if vote.current.mode is not Mode.PAPER:
        raise Refused(Why.CONFLICT, "electronic-vote", "this round is electronic: deputies cast their own ballots")
    return vote


@router.post("/votes/{vote_id}/paper-ballots", status_code=201, response_model=PaperBallotOut, responses=problems(403, 404, 409))
async def enter_paper_ballot(vote_id: UUID, body: BallotIn, request: Request, who: Principal = Depends(TELLER)) -> dict[str, Any]:
    """A teller enters one collected paper ballot. An over-marked one is recorded as invalid."""

    async def act(uow: UnitOfWork):
        vote = await _open_paper_round(uow.conn, who, vote_id)
        current = vote.current
        if current.totals_entered:
            raise Refused(Why.CONFLICT, "totals-already-entered", "this round was counted by totals")
        ballot, valid = check_marks(vote.kind, [UUID(c) for c in current.candidates], current.seats, vote.rules, body.marks)
        await store.insert_paper_ballot(uow.conn, vote_id, current.number, ballot)
        await uow.audit(who.jurisdiction, who.sub, "enter-paper-ballot", "vote", vote_id, after={"round": current.number})
        return {"vote_id": vote_id, "round": current.number, "status": "entered", "valid": valid}

    return await command(request, who.sub, act, 201)


@router.put("/votes/{vote_id}/paper-totals", response_model=RoundStep, responses=problems(403, 404, 409))
async def enter_paper_totals(vote_id: UUID, body: TotalsIn, request: Request, who: Principal = Depends(TELLER)) -> dict[str, Any]:
    """Tellers' per-candidate totals for the round, with the ballots collected (and invalid)."""

    async def act(uow: UnitOfWork):
        vote = await _open_paper_round(uow.conn, who, vote_id, lock="FOR UPDATE")
        current = vote.current
        if vote.kind is not Kind.SELECTION:
            raise Refused(Why.CONFLICT, "totals-not-supported", "enter rating ballots one by one")
        if await store.has_ballots(uow.conn, vote_id, current.number):
            raise Refused(Why.CONFLICT, "ballots-already-entered", "ballots already entered one by one")
        current.tally = rules.tally_from_totals(body.counts, body.collected, body.invalid, [UUID(c) for c in current.candidates],
                                                current.seats, vote.rules)
        current.totals_entered = True
        await store.save_vote(uow.conn, vote)
        await uow.audit(who.jurisdiction, who.sub, "enter-paper-totals", "vote", vote_id, after=body.model_dump(mode="json"))
        return {"vote_id": vote_id, "round": current.number, "status": "entered", **tally_json(current.tally)}

    return await command(request, who.sub, act)


@router.get("/votes/{vote_id}/shares/mine", response_model=MyShareOut, responses=problems(403, 404, 409))
async def my_share(vote_id: UUID, request: Request, who: Principal = Depends(TELLER)) -> dict[str, Any]:
    """The caller's share of the current round's key, sealed to the caller's own public key."""
    async with request.app.state.pool.acquire() as conn:
        vote = await store.load_vote(conn, who, vote_id)
        if vote.current is None or not vote.current.sealed:
            raise Refused(Why.CONFLICT, "not-sealed", "this vote has no sealed round")
        share = await store.teller_share(conn, vote_id, vote.current.number, who.sub)
        key = await store.round_key(conn, vote_id, vote.current.number)
    if share is None:
        raise Refused(Why.FORBIDDEN, "not-a-teller", f"{who.sub} is not one of this round's tellers")
    return {"vote_id": vote_id, "round": vote.current.number, "status": vote.status, "teller_id": who.sub, "index": share.index,
            "suite": key["suite"], "sealed": base64.b64encode(share.sealed).decode(), "commitment": share.commitment,
            "threshold": key["threshold"], "fingerprint": sealing.fingerprint(share.teller_key)}


@router.post("/votes/{vote_id}/shares", response_model=RoundStep,
             responses=problems(403, 404, 409) | {202: {"model": RoundStep, "description": "a share taken; more are needed"}})
async def present_share(vote_id: UUID, body: ShareIn, request: Request, who: Principal = Depends(TELLER)):
    """A teller presents their opened share after the close. A wrong share, a share from someone who
    is not a teller of the round, or one outside ``awaiting_shares`` is refused and changes nothing.
    The k-th valid share gets the count back (200); the ones before, how many are in (202)."""
    try:
        presented = base64.b64decode(body.share, validate=True)
    except ValueError as exc:
        raise Refused(Why.INVALID, "wrong-share", "a share is base64") from exc
    progress: dict[str, Any] = {}

    async def act(uow: UnitOfWork):
        vote = await store.load_vote(uow.conn, who, vote_id, lock="FOR UPDATE")
        if vote.status is not Status.AWAITING_SHARES:
            raise Refused(Why.CONFLICT, "vote-not-awaiting_shares", f"vote {vote_id} is {vote.status}: no shares wanted now",
                          status_now=vote.status.value)
        number, info = vote.current.number, sealing.round_info(vote_id, vote.current.number)
        share = await store.teller_share(uow.conn, vote_id, number, who.sub)
        if share is None:
            raise Refused(Why.FORBIDDEN, "not-a-teller", f"{who.sub} is not one of this round's tellers")
        sealing.check_share(share, presented, info)
        key = await store.round_key(uow.conn, vote_id, number)
        sealed = sealing.suite(key["suite"]).seal(key["count_key"], presented, sealing.presented_info(info, who.sub))
        await store.present_share(uow.conn, vote_id, number, who.sub, key["count_key"], sealed)
        count = len(await store.shares_presented(uow.conn, vote_id, number, key["count_key"]))
        progress.update(round=number, presented=count, needed=key["threshold"])
        await uow.audit(who.jurisdiction, who.sub, "present-share", "vote", vote_id, after={"round": number})
        return {"vote_id": vote_id, "round": number, "status": vote.status.value, "presented": count, "needed": key["threshold"]}

    answer = await command(request, who.sub, act, secret=lambda body: body)
    if not progress:  # a replayed request: its first answer
        return answer
    if progress["presented"] < progress["needed"]:
        return JSONResponse(json.loads(answer.body), status_code=202)
    if not await counting.wait_counted(request.app.state.pool, vote_id, progress["round"]):
        return JSONResponse({"vote_id": str(vote_id), "status": "awaiting_shares", **progress,
                             "detail": "the counting replica has not counted yet: see GET /votes/{id}"}, status_code=202)
    async with request.app.state.pool.acquire() as conn:
        vote = await store.load_vote(conn, who, vote_id)
    return JSONResponse({"vote_id": str(vote_id), "status": vote.status.value, **progress, **vote.result().as_json()})
