"""The cast (投票), the hot path of a session: check the marks, seal them to the round's public
key, and store the sealed ballot with the deputy's ballot taken, in one statement.

What the database gets from a cast: that the deputy voted (``issued``), a sealed ballot of the
round's fixed size that nobody can open until k tellers present their shares, and the answer for a
retry with the same Idempotency-Key: the tracker (the hash of that sealed ballot), which links the
deputy to no more than the transaction id already does until the close, and to no marks ever."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Histogram
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from services.ballot import group_commit, store
from services.ballot.domain import ballots, sealing
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.rules import VoteRules
from services.ballot.domain.vote import Kind, check_marks
from services.ballot.routes.common import DEPUTY, RefusalRoute, refusing
from services.ballot.routes.common import router as make_router
from shared.auth import Principal
from shared.fields import Body, text
from shared.http import idempotency_key, problems, stored_answer


class CastRoute(RefusalRoute):
    """The cast's arguments bound by hand. FastAPI's generic dependency solving and validation took
    a fifth of a replica's CPU per ballot at a session's peak (py-spy: ``piaojue bench ballot
    --profile``); here they are a few direct calls, with FastAPI's refusals in FastAPI's order: a body
    that does not parse (400, 422), then the caller (401, 403), then the path and the body (422).
    ``cast_ballot``'s signature still documents the operation (OpenAPI); its test is the contract run."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Straight to the handler, past FastAPI's per-request wrapper too (its exit stacks serve
        dependencies with ``yield``, which this route has none of). A refusal raised here still
        reaches the app's problem handlers (Starlette's ExceptionMiddleware), before any byte is sent."""
        if scope["method"] != "POST":  # 405, as FastAPI answers it
            await super().handle(scope, receive, send)
            return
        response = await self.cast(Request(scope, receive, send))
        await response(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            raw = await request.body()
            body: Any = raw  # JSON only when the Content-Type says so (as FastAPI): other bytes fail validation
            if raw and _json_declared(request.headers.get("content-type", "")):
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                                   "input": {}, "ctx": {"error": exc.msg}}]) from exc
                except ValueError as exc:  # not UTF-8
                    raise HTTPException(400, "There was an error parsing the body") from exc
            who = await DEPUTY(request)
            errors: list[dict[str, Any]] = []
            try:
                vote_id = UUID(request.path_params["vote_id"])
            except ValueError:
                errors.append({"type": "uuid_parsing", "loc": ("path", "vote_id"), "msg": "Input should be a valid UUID",
                               "input": request.path_params["vote_id"]})
            try:
                ballot = BallotIn.model_validate(body) if raw else None
                if ballot is None:
                    errors.append({"type": "missing", "loc": ("body",), "msg": "Field required", "input": None})
            except ValidationError as exc:
                errors += [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            if errors:
                raise RequestValidationError(errors)
            return await endpoint(vote_id=vote_id, body=ballot, request=request, who=who)

        self.cast = refusing(handler)  # what handle() calls
        return self.cast


def _json_declared(content_type: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


router = make_router(route_class=CastRoute)

# The cast from the request's arrival in the route to its answer (token checked; the HTTP layer's own
# piaojue_http_request_seconds has the rest). outcome: cast, replayed (Idempotency-Key), refused.
CAST_SECONDS = Histogram("piaojue_ballot_cast_seconds", "Time to cast a ballot (check, seal, store)", ["outcome"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


class BallotIn(Body):
    marks: dict[UUID, text(32)] = Field(max_length=1_000, description="subject id → for/against/abstain, or "
                                        "satisfied/basically_satisfied/dissatisfied; a subject left out is not marked")


class CastOut(BaseModel):
    vote_id: UUID
    round: int
    status: str
    receipt: str | None = Field(description="your tracker: the hash of your sealed ballot; check it after the count")


@dataclass(frozen=True)
class OpenRound:
    """What a cast needs to know of a vote's round. It cannot change while the round is open, so
    each replica keeps it; the cast statement itself checks that the round is still the open one."""

    jurisdiction: str
    session_id: UUID
    term: int
    round: int
    kind: Kind
    candidates: list[UUID]
    seats: int
    rules: VoteRules
    sealed: bool
    seal: Callable[[bytes, bytes], bytes] | None  # to the round's public key
    info: bytes


_open_rounds: dict[UUID, OpenRound] = {}


async def _round_to_cast_in(db, who: Principal, vote_id: UUID, fresh: bool) -> OpenRound:
    known = _open_rounds.get(vote_id)
    if known and not fresh and who.sees(known.jurisdiction):
        return known
    row = await store.open_round_for_cast(db, who, vote_id)
    if row is None:
        raise store.not_found("vote", vote_id)
    if row["status"] != "open":
        raise Refused(Why.CONFLICT, "vote-not-open", f"vote {vote_id} is {row['status']}", status_now=row["status"])
    if row["mode"] != "electronic":
        raise Refused(Why.CONFLICT, f"{row['mode']}-vote", f"this vote is {row['mode']}: tellers enter its ballots")
    if len(_open_rounds) > 10_000:  # bounded: a county has a few hundred votes open at most
        _open_rounds.clear()
    known = _open_rounds[vote_id] = OpenRound(
        row["jurisdiction"], row["session_id"], row["term"], row["round"], Kind(row["kind"]), [UUID(c) for c in row["candidates"]], row["seats"],
        VoteRules.model_validate(row["rules"]), row["sealed"],
        sealing.suite(row["suite"]).sealer(row["public_key"]) if row["sealed"] else None, sealing.round_info(vote_id, row["round"]))
    return known


@router.post("/votes/{vote_id}/ballots", status_code=201, response_model=CastOut, responses=problems(403, 404, 409))
async def cast_ballot(vote_id: UUID, body: BallotIn, request: Request, who: Principal = Depends(DEPUTY)):
    """A deputy casts a secret ballot and gets a receipt (tracker). A retry with the same
    Idempotency-Key gets the same answer, receipt included, without casting again. Only with the
    deputy's voting credential for this session: a deputy is (jurisdiction, term, deputy id)."""
    started, outcome = time.perf_counter(), "refused"
    try:
        response = await _cast(vote_id, body, request, who)
        outcome = "replayed" if response.headers.get("idempotent-replayed") else "cast"
        return response
    finally:
        CAST_SECONDS.labels(outcome).observe(time.perf_counter() - started)


async def _cast(vote_id: UUID, body: BallotIn, request: Request, who: Principal) -> JSONResponse:
    if who.session is None or who.term is None or who.credential is None:
        raise Refused(Why.FORBIDDEN, "voting-credential-required",
                      "a ballot is cast with the voting credential the deputy's device received at check-in (签到)")
    key = idempotency_key(request)
    fingerprint = hashlib.sha256(b"POST" + request.scope["path"].encode()).hexdigest()  # never the marks
    pool = request.app.state.pool  # no connection is held while the cast waits for its group commit
    for fresh in (False, True):
        if fresh and key and (replay := await stored_answer(pool, who.sub, key, fingerprint)):
            return replay
        current = await _round_to_cast_in(pool, who, vote_id, fresh)
        if (who.session, who.term) != (current.session_id, current.term):
            raise Refused(Why.FORBIDDEN, "credential-for-another-session", "a voting credential is good in its own session only")
        ballot, valid = check_marks(current.kind, current.candidates, current.seats, current.rules, body.marks)
        if not valid:  # an electronic ballot cannot be over-marked
            limit = current.rules.for_limit(current.seats)
            raise Refused(Why.INVALID, "too-many-for-marks", f"at most {limit} 'for' marks on this ballot", max_for=limit)
        sealed = current.seal(ballot.encode(), current.info) if current.sealed else b""
        answer = {"vote_id": str(vote_id), "round": current.round, "status": "cast",
                  "receipt": ballots.tracker(sealed) if current.sealed else None}
        try:
            # The plain ballot goes to the database only for a named vote (a statement log would keep it).
            outcome = await group_commit.writer(request.app).write(group_commit.Cast(
                vote_id, current.round, who.sub, sealed, None if current.sealed else ballot, not current.sealed,
                who.jurisdiction, key, fingerprint, answer, who.credential, who.session))
        except asyncpg.UniqueViolationError as exc:  # the key was used before, for another request
            if replay := await stored_answer(pool, who.sub, key, fingerprint):
                return replay
            raise Refused(Why.CONFLICT, "already-voted", "one ballot per deputy and round") from exc
        if outcome["open"]:
            break
    if outcome["taken"]:
        return JSONResponse(answer, status_code=201)
    if key and (replay := await stored_answer(pool, who.sub, key, fingerprint)):
        return replay
    if not outcome["issued"]:
        raise Refused(Why.FORBIDDEN, "not-issued", "only deputies present when the round opened receive a ballot")
    if outcome["revoked"]:
        raise Refused(Why.FORBIDDEN, "credential-revoked", "your voting credential was revoked: check in again")
    if not outcome["present"]:
        raise Refused(Why.FORBIDDEN, "deputy-left", "a deputy who left the session (离场) no longer votes")
    raise Refused(Why.CONFLICT, "already-voted", "one ballot per deputy and round")
