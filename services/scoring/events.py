"""Events the scoring service consumes. Order does not matter: an event about a project scoring
has not heard of yet is parked (``pending``) in the transaction of its inbox row, and applied when
the project's creation arrives. Nothing waits on redelivery, nothing is dead-lettered for it."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from services.scoring import store
from services.scoring.publish import recalculate, rescore
from shared.contracts.ballot import SatisfactionCertified
from shared.contracts.envelope import Envelope, parse
from shared.contracts.supervision import (
    InspectionRecorded,
    InspectionRecordedV1,
    ProgressReported,
    ProjectCompleted,
    ProjectCreated,
    ProjectPlanned,
    RectificationUpdated,
)
from shared.db import UnitOfWork
from shared.messaging import Consumer

supervision = Consumer("scoring.supervision")
ratings = Consumer("scoring.ratings")


async def _waits(uow: UnitOfWork, envelope: Envelope, project_ids: list[UUID]) -> bool:
    """Park the event if one of its projects is not known yet; True if parked."""
    for project_id in project_ids:
        if not await store.project_known(uow.conn, project_id):
            await store.park(uow.conn, envelope.id, project_id, envelope.type, envelope.model_dump(mode="json"))
            return True
    return False


@supervision.on(ProjectCreated)
async def project_created(uow: UnitOfWork, envelope: Envelope, event: ProjectCreated) -> None:
    await store.add_project(uow.conn, event.project_id, envelope.jurisdiction, event.year, event.title)
    for body in await store.unpark(uow.conn, event.project_id):  # what arrived before it, in arrival order
        parked, payload = parse_parked(body)
        await HANDLERS[parked.type](uow, parked, payload)


@supervision.on(ProjectPlanned)
async def project_planned(uow: UnitOfWork, envelope: Envelope, event: ProjectPlanned) -> None:
    if await _waits(uow, envelope, [event.project_id]):
        return
    await store.update_project(uow.conn, event.project_id, lead_unit=event.lead_unit, budget=event.budget)
    await recalculate(uow, envelope.jurisdiction, event.year, "plan corrected")


@supervision.on(ProgressReported)
async def progress_reported(uow: UnitOfWork, envelope: Envelope, event: ProgressReported) -> None:
    """The latest report by the day it describes gives the investment completed."""
    if await _waits(uow, envelope, [event.project_id]):
        return
    await uow.conn.execute(
        "UPDATE projects SET funds_spent = $2 WHERE id = $1 AND $2::numeric IS NOT NULL", event.project_id, event.funds_spent)
    await recalculate(uow, envelope.jurisdiction, event.year, "progress reported")


@supervision.on(InspectionRecorded)
async def inspection_recorded(uow: UnitOfWork, envelope: Envelope, event: InspectionRecorded | InspectionRecordedV1) -> None:
    """Each rated inspection updates the project's score under the year's method (v1: one rating)."""
    if await _waits(uow, envelope, [event.project_id]):
        return
    scores = [event.rating] if isinstance(event, InspectionRecordedV1) else [r.rating for r in event.ratings]
    await store.add_rating(uow.conn, event.inspection_id, event.project_id, event.kind, scores)
    await rescore(uow, envelope.jurisdiction, event.project_id, event.year)
    await recalculate(uow, envelope.jurisdiction, event.year, f"{event.kind} inspection recorded")


@supervision.on(RectificationUpdated)
async def rectification_updated(uow: UnitOfWork, envelope: Envelope, event: RectificationUpdated) -> None:
    if await _waits(uow, envelope, [event.project_id]):
        return
    await store.set_rectification(uow.conn, event.item_id, event.project_id, event.status, event.due_on, event.closed_on)
    await recalculate(uow, envelope.jurisdiction, event.year, "rectification updated")


@supervision.on(ProjectCompleted)
async def project_completed(uow: UnitOfWork, envelope: Envelope, event: ProjectCompleted) -> None:
    if await _waits(uow, envelope, [event.project_id]):
        return
    await store.update_project(uow.conn, event.project_id, completion=event.completion)
    await recalculate(uow, envelope.jurisdiction, event.year, "completion recorded")


@ratings.on(SatisfactionCertified)
async def satisfaction_certified(uow: UnitOfWork, envelope: Envelope, rating: SatisfactionCertified) -> None:
    """The deputies' satisfaction rate counts in each rated project's score."""
    if await _waits(uow, envelope, [p.project_id for p in rating.projects]):
        return
    for project in rating.projects:
        await store.add_satisfaction(uow.conn, rating.vote_id, project.project_id, project.tier, project.rate)
        await rescore(uow, envelope.jurisdiction, project.project_id, rating.year)
    await recalculate(uow, envelope.jurisdiction, rating.year, "satisfaction rating certified")


HANDLERS = {**supervision.handlers, **ratings.handlers}


def parse_parked(body: dict[str, Any]) -> tuple[Envelope, Any]:
    return parse(json.dumps(body).encode())
