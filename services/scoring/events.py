"""Events the scoring service consumes."""

from __future__ import annotations

from collections import defaultdict

from services.scoring import domain
from services.scoring.store import method_for
from shared.contracts.envelope import Envelope
from shared.contracts.supervision import InspectionKind, InspectionRecorded, ProjectCompleted, ProjectCreated
from shared.db import UnitOfWork
from shared.messaging import Consumer

supervision = Consumer("scoring.supervision")


@supervision.on(ProjectCreated)
async def project_created(uow: UnitOfWork, envelope: Envelope, event: ProjectCreated) -> None:
    await uow.conn.execute(
        "INSERT INTO projects (id, jurisdiction, year, title) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        event.project_id, envelope.jurisdiction, event.year, event.title,
    )


async def _known(uow: UnitOfWork, project_id) -> None:
    if not await uow.conn.fetchval("SELECT true FROM projects WHERE id = $1 FOR UPDATE", project_id):
        # Events of one project are published in order, so this is not a race: retry, then dead-letter.
        raise LookupError(f"project {project_id} not known yet")


@supervision.on(InspectionRecorded)
async def inspection_recorded(uow: UnitOfWork, envelope: Envelope, event: InspectionRecorded) -> None:
    """Each inspection updates the project's score under the year's method."""
    await _known(uow, event.project_id)
    await uow.conn.execute(
        "INSERT INTO ratings (inspection_id, project_id, kind, rating) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        event.inspection_id, event.project_id, event.kind, event.rating,
    )
    rows = await uow.conn.fetch("SELECT kind, rating FROM ratings WHERE project_id = $1", event.project_id)
    ratings: dict[InspectionKind, list[int]] = defaultdict(list)
    for r in rows:
        ratings[InspectionKind(r["kind"])].append(r["rating"])
    method = await method_for(uow.conn, envelope.jurisdiction, event.year)
    await uow.conn.execute(
        "UPDATE projects SET score = $2 WHERE id = $1", event.project_id, domain.project_score(ratings, method)
    )


@supervision.on(ProjectCompleted)
async def project_completed(uow: UnitOfWork, envelope: Envelope, event: ProjectCompleted) -> None:
    await _known(uow, event.project_id)
    await uow.conn.execute("UPDATE projects SET completion = $2 WHERE id = $1", event.project_id, event.completion)


