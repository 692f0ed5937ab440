"""Events the supervision service consumes."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from shared.contracts.ballot import ResultCertified, SatisfactionCertified
from shared.contracts.envelope import Envelope
from shared.contracts.supervision import ProjectCreated
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
    """A project rated 不满意 goes back to its lead unit for rectification (整改)."""
    due = rating.certified_at.date() + timedelta(days=RECTIFICATION_DAYS)
    for project in rating.projects:
        if project.tier != "dissatisfied":
            continue
        await uow.conn.execute(
            "INSERT INTO rectifications (id, project_id, source, source_id, problem, due_on)"
            " SELECT $1, id, 'satisfaction', $3, $4, $5 FROM projects WHERE id = $2 AND jurisdiction = $6"
            " ON CONFLICT (project_id, source_id) DO NOTHING",
            uuid4(), project.project_id, rating.vote_id,
            f"满意度测评不满意 (满意 {project.satisfied}, 基本满意 {project.basically_satisfied}, 不满意 {project.dissatisfied})",
            due, envelope.jurisdiction,
        )
