"""Events the scoring service consumes."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from uuid import UUID

from services.scoring import domain
from services.scoring.store import method_for
from shared.contracts.ballot import SatisfactionCertified
from shared.contracts.envelope import Envelope
from shared.contracts.supervision import InspectionRecorded, ProjectCompleted, ProjectCreated
from shared.db import UnitOfWork
from shared.messaging import Consumer

supervision = Consumer("scoring.supervision")
ratings = Consumer("scoring.ratings")


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
    await rescore(uow, envelope.jurisdiction, event.project_id, event.year)


async def rescore(uow: UnitOfWork, jurisdiction: str, project_id: UUID, year: int) -> None:
    """Recompute a project's score from all its ratings under the year's method."""
    by_kind: dict[str, list[Decimal]] = defaultdict(list)
    for r in await uow.conn.fetch("SELECT kind, rating FROM ratings WHERE project_id = $1", project_id):
        by_kind[r["kind"]].append(Decimal(r["rating"]))
    for r in await uow.conn.fetch("SELECT rate FROM satisfaction WHERE project_id = $1 AND rate IS NOT NULL", project_id):
        by_kind[domain.SATISFACTION].append(r["rate"] * 100)
    method = await method_for(uow.conn, jurisdiction, year)
    await uow.conn.execute("UPDATE projects SET score = $2 WHERE id = $1", project_id, domain.project_score(by_kind, method))


@supervision.on(ProjectCompleted)
async def project_completed(uow: UnitOfWork, envelope: Envelope, event: ProjectCompleted) -> None:
    await _known(uow, event.project_id)
    await uow.conn.execute("UPDATE projects SET completion = $2 WHERE id = $1", event.project_id, event.completion)




@ratings.on(SatisfactionCertified)
async def satisfaction_certified(uow: UnitOfWork, envelope: Envelope, rating: SatisfactionCertified) -> None:
    """The deputies' satisfaction rate counts in each rated project's score."""
    for project in rating.projects:
        await _known(uow, project.project_id)
        await uow.conn.execute(
            "INSERT INTO satisfaction (vote_id, project_id, tier, rate) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            rating.vote_id, project.project_id, project.tier, project.rate,
        )
        await rescore(uow, envelope.jurisdiction, project.project_id, rating.year)
