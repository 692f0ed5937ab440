"""Merging (合并) proposals that ask for the same thing into one item, and undoing it."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Request

from services.intake import store
from services.intake.domain import merging
from services.intake.domain.merging import Mergee
from services.intake.domain.screening import Refused, Stage
from services.intake.routes.common import ANY_OFFICE, OFFICE, refused, shown
from services.intake.schemas import MergeIn, ProposalOut, UnmergeIn
from shared.auth import Principal
from shared.contracts.intake import ProposalMerged
from shared.db import UnitOfWork
from shared.http import command, problems

router = APIRouter(tags=["intake 征集"])


def _mergee(row) -> Mergee:
    return Mergee(row["id"], row["jurisdiction"], row["year"], Stage(row["stage"]))


@router.post("/proposals/{proposal_id}/merge", response_model=ProposalOut, responses=problems(403, 404, 409))
async def merge(proposal_id: UUID, body: MergeIn, request: Request, who: Principal = Depends(ANY_OFFICE)):
    """Merge proposals into this one, the item: each stays on record, with its tracking code, as a
    supporter of the item, which shows how many asked, from which channels and villages. Refused
    across jurisdictions or years, and for anything already on a slate. Sends ``intake.proposal.merged``."""
    item_id, ids = proposal_id, list(dict.fromkeys(body.proposal_ids))

    async def act(uow: UnitOfWork):
        await store.proposal(uow.conn, who.model_copy(update={"own": True}), item_id)  # the item: the caller's own township's
        rows = await store.in_scope(uow.conn, who, [item_id, *ids], lock="FOR UPDATE")  # in id order: no deadlock
        by_id = {r["id"]: r for r in rows}
        item, others = by_id[item_id], [by_id[i] for i in ids if i != item_id]
        try:
            if item_id in ids:
                raise Refused("merge-into-itself", "a proposal cannot be merged into itself")
            merging.check_merge(_mergee(item), [_mergee(o) for o in others])
        except Refused as exc:
            raise refused(exc) from exc
        await store.merge(uow.conn, item_id, ids)
        reason = body.reason or f"与「{item['fields']['title']}」为同一诉求，合并办理"
        for other in others:
            await store.decide(uow.conn, other["id"], who.sub, other["stage"], Stage.MERGED, reason)
        supporters = (await store.supporters(uow.conn, [item_id]))[item_id]
        support = merging.support(supporters)
        await uow.emit(ProposalMerged(item_id=item_id, title=item["fields"]["title"], year=item["year"], merged=ids,
                                      supporters=support.count, by_channel=support.by_channel,
                                      by_location=support.by_location), item["jurisdiction"])
        await uow.audit(item["jurisdiction"], who.sub, "merge", "proposal", item_id, after={"merged": [str(i) for i in ids]})
        return (await shown(uow.conn, [item]))[0]

    return await command(request, who.sub, act)


@router.post("/proposals/{proposal_id}/unmerge", response_model=ProposalOut, responses=problems(403, 404, 409))
async def unmerge(proposal_id: UUID, body: UnmergeIn, request: Request, who: Principal = Depends(OFFICE)):
    """Undo a merge while the item is not yet on a slate: the proposal goes back to the stage it had."""

    async def act(uow: UnitOfWork):
        row = await store.proposal(uow.conn, who, proposal_id, lock="FOR UPDATE")
        if row["merged_into"] is None:
            raise refused(Refused("not-merged", "the proposal is not merged into an item"))
        item = await store.proposal(uow.conn, who, row["merged_into"], lock="FOR UPDATE")
        try:
            merging.check_unmerge(_mergee(row), _mergee(item))
        except Refused as exc:
            raise refused(exc) from exc
        stage = await store.stage_before_merge(uow.conn, proposal_id)
        updated = await store.update(uow.conn, proposal_id, stage=stage, merged_into=None)
        await store.decide(uow.conn, proposal_id, who.sub, Stage.MERGED, stage, body.reason)
        await uow.audit(row["jurisdiction"], who.sub, "unmerge", "proposal", proposal_id,
                        before={"merged_into": str(item["id"])}, after={"stage": stage})
        return (await shown(uow.conn, [updated]))[0]

    return await command(request, who.sub, act)
