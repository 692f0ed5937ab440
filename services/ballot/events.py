"""Events the ballot service consumes."""

from __future__ import annotations

from shared.contracts.envelope import Envelope
from shared.contracts.identity import CredentialRevoked
from shared.contracts.intake import SlatePublished
from shared.contracts.supervision import ProjectCreated
from shared.db import UnitOfWork
from shared.messaging import Consumer

slates = Consumer("ballot.slates")
projects = Consumer("ballot.projects")
credentials = Consumer("ballot.credentials")


@slates.on(SlatePublished)
async def slate_published(uow: UnitOfWork, envelope: Envelope, slate: SlatePublished) -> None:
    """Keep the slate so that a session can put it to the vote."""
    await uow.conn.execute(
        "INSERT INTO slates (id, jurisdiction, title, year, seats, candidates) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (id) DO NOTHING",
        slate.slate_id, envelope.jurisdiction, slate.title, slate.year, slate.seats,
        [c.model_dump(mode="json") for c in slate.candidates],
    )


@projects.on(ProjectCreated)
async def project_created(uow: UnitOfWork, envelope: Envelope, project: ProjectCreated) -> None:
    """Keep the voted projects so that a session can rate them (满意度测评)."""
    await uow.conn.execute(
        "INSERT INTO projects (id, jurisdiction, year, title) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        project.project_id, envelope.jurisdiction, project.year, project.title,
    )


@credentials.on(CredentialRevoked)
async def credential_revoked(uow: UnitOfWork, envelope: Envelope, revoked: CredentialRevoked) -> None:
    """A voting credential no longer good: its ballots are refused from now on."""
    await uow.conn.execute(
        "INSERT INTO revoked_credentials (credential_id, session_id, deputy_id, reason) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (credential_id) DO NOTHING",
        revoked.credential_id, revoked.session_id, revoked.deputy_id, revoked.reason,
    )
