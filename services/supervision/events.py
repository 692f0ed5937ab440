"""Events the supervision service consumes."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.supervision import store
from shared.contracts.ballot import ResultCertified, SatisfactionCertified
from shared.contracts.envelope import Envelope
from shared.contracts.supervision import ProjectCreated, RectificationUpdated
from shared.db import UnitOfWork
from shared.messaging import Consumer

results = Consumer("supervision.results")


@results.on(ResultCertified)
async def result_certified(uow: UnitOfWork, envelope: Envelope, result: ResultCertified) -> None:
    """A certified vote result creates one project per chosen candidate, exactly once: the inbox
    stops a redelivery, and (vote, candidate) is unique should the event be re-sent."""
    for candidate in result.chosen:
        project_id = uuid4()
        created = await uow.conn.fetchval(
            "INSERT INTO projects (id, jurisdiction, year, vote_id, candidate_id, title) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (vote_id, candidate_id) DO NOTHING RETURNING true",
            project_id, envelope.jurisdiction, result.year, result.vote_id, candidate.candidate_id, candidate.title,
        )
        if created:
            await uow.emit(
                ProjectCreated(project_id=project_id, candidate_id=candidate.candidate_id, vote_id=result.vote_id,
                               title=candidate.title, year=result.year),
                envelope.jurisdiction,
            )


RECTIFICATION_DAYS = 30


@results.on(SatisfactionCertified)
async def satisfaction_certified(uow: UnitOfWork, envelope: Envelope, rating: SatisfactionCertified) -> None:
    """A project rated 不满意 goes back to its lead unit for rectification (整改): one item per
    rating, closed only by the deputies' verification."""
    due = rating.certified_at.date() + timedelta(days=RECTIFICATION_DAYS)
    for rated in rating.projects:
        if rated.tier != "dissatisfied":
            continue
        project = await uow.conn.fetchrow("SELECT * FROM projects WHERE id = $1 AND jurisdiction = $2",
                                          rated.project_id, envelope.jurisdiction)
        if project is None:
            continue
        problem = (f"满意度测评不满意 (满意 {rated.satisfied}, 基本满意 {rated.basically_satisfied}, "
                   f"不满意 {rated.dissatisfied})")
        item = await store.open_item(uow.conn, project, "satisfaction", rating.vote_id, problem, due, rating.certified_by,
                                     "presiding", await store.current_term(uow.conn, envelope.jurisdiction))
        if item is not None:
            await uow.emit(RectificationUpdated(item_id=item["id"], project_id=project["id"], year=project["year"],
                                                status="open", due_on=due, closed_on=None), envelope.jurisdiction)
