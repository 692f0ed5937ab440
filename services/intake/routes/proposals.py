"""Proposals: submission (checked for eligibility, with likely duplicates), screening, overrides
of a failed check, feasibility scores, duplicates, and the proposer's contact (office only)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.intake import store
from services.intake.domain import eligibility, feasibility
from services.intake.domain import screening as rules
from services.intake.domain.screening import OPEN, ProposalFields, Refused, Stage
from services.intake.routes.common import ANYONE, OFFICE, SUBMITTERS, detector, duplicate, duplicates_of, refused, shown
from services.intake.schemas import (
    ContactOut,
    Duplicate,
    DuplicatePair,
    OverrideIn,
    ProposalDetail,
    ProposalIn,
    ProposalOut,
    ScreeningIn,
    SubmittedOut,
)
from services.intake.settings import get_intake_settings
from shared.auth import Principal, Role
from shared.db import UnitOfWork
from shared.fields import Year
from shared.http import Problem, command, problems

router = APIRouter(tags=["intake 征集"])


@router.post("/proposals", status_code=201, response_model=SubmittedOut, responses=problems(403))
async def submit(body: ProposalIn, request: Request, who: Principal = Depends(SUBMITTERS)):
    """A proposal (群众点单). It is checked against the year's eligibility rules at once: a failed
    check is recorded with its reason (the proposer sees it by the tracking code), never dropped.
    The answer carries the tracking code and the likely duplicates among the year's proposals."""
    if who.role is Role.RESIDENT and body.channel != "online":
        raise Problem(422, "channel-not-allowed", "群众只能通过线上渠道提交 Residents submit online",
                      "a resident's proposal comes through the online channel")

    async def act(uow: UnitOfWork):
        fields = ProposalFields.model_validate(body.model_dump(exclude={"year"}))
        settings = await store.year_settings(uow.conn, who.jurisdiction, body.year)
        failures = eligibility.check(fields.public(), settings["eligibility"])
        row = await store.insert_proposal(uow.conn, who.jurisdiction, body.year, fields, failures,
                                          get_intake_settings().contact_retention_days)
        # The audit keeps what was proposed, never who: an audit row is never erased, a contact must be.
        await uow.audit(who.jurisdiction, who.sub, "submit", "proposal", row["id"], after=fields.public())
        return {**(await shown(uow.conn, [row]))[0], "duplicates": await duplicates_of(uow.conn, row)}

    return await command(request, who.sub, act, 201)


@router.get("/proposals", response_model=list[ProposalOut], responses=problems())
async def list_proposals(request: Request, year: Year | None = None, stage: Stage | None = None,
                         who: Principal = Depends(ANYONE)):
    async with request.app.state.pool.acquire() as conn:
        return await shown(conn, await store.proposals(conn, who, year, stage))


@router.get("/proposals/{proposal_id}", response_model=ProposalDetail, responses=problems(404))
async def get_proposal(proposal_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """A proposal with every decision taken on it (who, when, from, to, why) and what was merged into it."""
    async with request.app.state.pool.acquire() as conn:
        row = await store.proposal(conn, who, proposal_id)
        return {**(await shown(conn, [row]))[0], "history_of_decisions": [dict(d) for d in await store.decisions(conn, proposal_id)],
                "merged": await store.merged_into(conn, proposal_id)}


async def _checks(conn, row) -> list[eligibility.Failure]:
    """The proposal's checks against the year's rules as they are now, with the office's overrides."""
    settings = await store.year_settings(conn, row["jurisdiction"], row["year"])
    failures = eligibility.check(row["fields"], settings["eligibility"])
    return eligibility.with_overrides(failures, {rule: o["reason"] for rule, o in row["overrides"].items()})


@router.post("/proposals/{proposal_id}/screening", response_model=ProposalOut, responses=problems(403, 404, 409))
async def screen(proposal_id: UUID, body: ScreeningIn, request: Request, who: Principal = Depends(OFFICE)):
    """One screening decision (初审, 可行性论证, 党委会研究确定, 列为候选, or reject with a reason). The
    eligibility checks run again: a step forward needs each failed check overridden; a rejection
    without a reason takes the failed checks' reasons."""

    async def act(uow: UnitOfWork):
        row = await store.proposal(uow.conn, who, proposal_id, lock="FOR UPDATE")
        failures = await _checks(uow.conn, row)
        reason = body.reason
        if body.to is Stage.REJECTED and not reason.strip():
            reason = eligibility.rejection_reason(failures)
        try:
            stage = rules.screen(Stage(row["stage"]), body.to, reason)
            if stage is not Stage.REJECTED:
                eligibility.require_eligible(failures)
        except Refused as exc:
            raise refused(exc) from exc
        updated = await store.update(uow.conn, proposal_id, stage=stage, eligibility=[f.model_dump() for f in failures],
                                     rejection_reason=reason if stage is Stage.REJECTED else None)
        await store.decide(uow.conn, proposal_id, who.sub, row["stage"], stage, reason)
        await uow.audit(row["jurisdiction"], who.sub, "screen", "proposal", proposal_id, before={"stage": row["stage"]},
                        after={"stage": stage, "reason": reason})
        return (await shown(uow.conn, [updated]))[0]

    return await command(request, who.sub, act)


@router.post("/proposals/{proposal_id}/eligibility/overrides", response_model=ProposalOut, responses=problems(403, 404, 409))
async def override(proposal_id: UUID, body: OverrideIn, request: Request, who: Principal = Depends(OFFICE)):
    """The office overrides a failed eligibility check, with its reason on the record."""

    async def act(uow: UnitOfWork):
        row = await store.proposal(uow.conn, who, proposal_id, lock="FOR UPDATE")
        try:
            if Stage(row["stage"]) not in OPEN:
                raise Refused("transition-not-allowed", f"a proposal {row['stage']} is past screening")
            eligibility.override(await _checks(uow.conn, row), body.rule, body.reason)
        except Refused as exc:
            raise refused(exc) from exc
        overrides = {**row["overrides"], body.rule: {"reason": body.reason, "by": who.sub}}
        updated = await store.update(uow.conn, proposal_id, overrides=overrides)
        failures = await _checks(uow.conn, updated)
        updated = await store.update(uow.conn, proposal_id, eligibility=[f.model_dump() for f in failures])
        await store.decide(uow.conn, proposal_id, who.sub, row["stage"], row["stage"], f"override {body.rule}: {body.reason}")
        await uow.audit(row["jurisdiction"], who.sub, "override", "proposal", proposal_id, after={body.rule: body.reason})
        return (await shown(uow.conn, [updated]))[0]

    return await command(request, who.sub, act)


@router.put("/proposals/{proposal_id}/feasibility", response_model=ProposalOut, responses=problems(403, 404, 409))
async def score(proposal_id: UUID, body: feasibility.Scores, request: Request, who: Principal = Depends(OFFICE)):
    """可行性论证 scores (0–100 each); shown weighted by the year's weights when the slate is built."""

    async def act(uow: UnitOfWork):
        row = await store.proposal(uow.conn, who, proposal_id, lock="FOR UPDATE")
        if Stage(row["stage"]) not in OPEN:
            raise refused(Refused("transition-not-allowed", f"a proposal {row['stage']} is past screening"))
        updated = await store.update(uow.conn, proposal_id, feasibility=body.model_dump())
        await uow.audit(row["jurisdiction"], who.sub, "score", "proposal", proposal_id, before=row["feasibility"],
                        after=body.model_dump())
        return (await shown(uow.conn, [updated]))[0]

    return await command(request, who.sub, act)


@router.get("/proposals/{proposal_id}/duplicates", response_model=list[Duplicate], responses=problems(404))
async def proposal_duplicates(proposal_id: UUID, request: Request, who: Principal = Depends(ANYONE)):
    """Likely duplicates of this proposal among its jurisdiction's year, scored, best first."""
    async with request.app.state.pool.acquire() as conn:
        return await duplicates_of(conn, await store.proposal(conn, who, proposal_id))


@router.get("/duplicates", response_model=list[DuplicatePair], responses=problems(403))
async def all_duplicates(request: Request, year: Year, threshold: float = Query(0.5, ge=0.1, le=1.0),
                         who: Principal = Depends(OFFICE)):
    """In bulk: every likely duplicate pair among the year's open proposals of the caller's jurisdiction."""
    async with request.app.state.pool.acquire() as conn:
        corpus, _, items = await detector(conn, who.jurisdiction, year)
    by_id = {str(i["id"]): i for i in items}
    return [{"a": duplicate(by_id[a.id], s), "b": duplicate(by_id[b.id], s), "score": s.total}
            for a, b, s in corpus.pairs(threshold)]


@router.get("/proposals/{proposal_id}/contact", response_model=ContactOut, responses=problems(403, 404))
async def get_contact(proposal_id: UUID, request: Request, who: Principal = Depends(OFFICE)):
    """The proposer's name and contact, for the office that answers them (PIPL: nobody else); empty
    once erased after the retention period."""
    async with request.app.state.pool.acquire() as conn:
        await store.proposal(conn, who, proposal_id)
        row = await store.contact(conn, proposal_id)
    return {"proposer": row["proposer"], "contact": row["contact"], "erase_after": row["erase_after"],
            "erased": row["erased_at"] is not None}
