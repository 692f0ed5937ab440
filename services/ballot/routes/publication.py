"""Who sees what (公开范围), after certification:

- everyone in the jurisdiction: per-round tallies (in the result), the trackers of the ballots
  opened and the commitment that ``piaojue ballot recount`` checks (``GET …/publication``);
- tellers, the presiding officer and the county's supervising role: the anonymised ballots and the
  commitment's salt too, what a full recount needs (``GET …/publication/ballots``); publishing every
  ballot would let a buyer give each deputy a pattern of marks of their own;
- each deputy: the check of their own receipt (``GET …/receipts/{tracker}``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Depends, Request

from services.ballot import store
from services.ballot.domain.ballots import NOT_MARKED, RATING_CODES, SELECTION_CODES
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.vote import Kind, Status
from services.ballot.routes.common import ANYONE, RECOUNTERS
from services.ballot.routes.common import router as make_router
from services.ballot.routes.models import Publication, ReceiptOut
from shared.auth import Principal
from shared.fields import text
from shared.http import problems

router = make_router()


async def _publication(request: Request, who: Principal, vote_id: UUID, with_ballots: bool) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        vote = await store.load_vote(conn, who, vote_id)
        if vote.status is not Status.CERTIFIED:
            raise Refused(Why.CONFLICT, "vote-not-certified", f"vote {vote_id} is {vote.status}: published once certified",
                          status_now=vote.status.value)
        rounds = await store.published_rounds(conn, vote_id, with_ballots)
    codes = SELECTION_CODES if vote.kind is Kind.SELECTION else RATING_CODES
    return {"vote_id": vote.id, "kind": vote.kind, "rules": vote.rules.model_dump(mode="json"), "seats": vote.seats,
            "subjects": [{"id": s.id, "title": s.title} for s in vote.on_ballot],
            "departures": [d.__dict__ for d in vote.departures], "certified_at": vote.certified_at,
            "result": vote.result().as_json(), "codes": {**{k: v.value for k, v in codes.items()}, NOT_MARKED: "not_marked"},
            "rounds": rounds}


@router.get("/votes/{vote_id}/publication", response_model=Publication, responses=problems(403, 404, 409))
async def publication(vote_id: UUID, request: Request, who: Principal = Depends(ANYONE)) -> dict[str, Any]:
    """The public notice of a certified vote: tallies, trackers, commitments, departures."""
    return await _publication(request, who, vote_id, with_ballots=False)


@router.get("/votes/{vote_id}/publication/ballots", response_model=Publication, responses=problems(403, 404, 409))
async def publication_with_ballots(vote_id: UUID, request: Request, who: Principal = Depends(RECOUNTERS)) -> dict[str, Any]:
    """The same with each round's anonymised ballots (compact form, random order) and the salt."""
    return await _publication(request, who, vote_id, with_ballots=True)


@router.get("/votes/{vote_id}/receipts/{tracker}", response_model=ReceiptOut, responses=problems(403, 404))
async def check_receipt(vote_id: UUID, tracker: text(64, min_length=64, pattern="^[0-9a-f]{64}$"), request: Request,
                        who: Principal = Depends(ANYONE)) -> dict[str, Any]:
    """A deputy checks their receipt: their sealed ballot was among those opened and counted."""
    async with request.app.state.pool.acquire() as conn:
        vote = await store.load_vote(conn, who, vote_id)
        found = await store.find_tracker(conn, vote_id, tracker)
    if found is None:
        raise Refused(Why.NOT_FOUND, "receipt-not-found", "no ballot with this tracker was opened in this vote (yet)",
                      status_now=vote.status.value)
    return {"vote_id": vote_id, "tracker": tracker, "round": found, "counted": True, "status": vote.status}
