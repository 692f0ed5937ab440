"""Events the identity service consumes: the sessions the ballot service sets up and its roll calls."""

from __future__ import annotations

from services.identity import domain
from services.identity.domain import Status
from services.identity.sessions import end_live_credential
from shared.contracts.ballot import AttendanceRecorded, SessionCreated
from shared.contracts.envelope import Envelope
from shared.db import UnitOfWork
from shared.messaging import Consumer

sessions = Consumer("identity.sessions")


@sessions.on(SessionCreated)
async def session_created(uow: UnitOfWork, envelope: Envelope, session: SessionCreated) -> None:
    """Give the session its check-in code (签到码)."""
    await uow.conn.execute(
        "INSERT INTO sessions (id, jurisdiction, term, name, year, checkin_code) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (id) DO NOTHING",
        session.session_id, envelope.jurisdiction, session.term, session.name, session.year, domain.new_checkin_code(),
    )


@sessions.on(AttendanceRecorded)
async def attendance_recorded(uow: UnitOfWork, envelope: Envelope, roll: AttendanceRecorded) -> None:
    """Who may check in now; a deputy who left (离场) loses the credential."""
    await uow.conn.executemany(
        "INSERT INTO attendance (session_id, deputy_id, present) VALUES ($1, $2, $3)"
        " ON CONFLICT (session_id, deputy_id) DO UPDATE SET present = EXCLUDED.present",
        [(roll.session_id, d, True) for d in roll.present] + [(roll.session_id, d, False) for d in roll.absent],
    )
    session = {"id": roll.session_id, "term": roll.term, "jurisdiction": envelope.jurisdiction}
    for deputy_id in roll.absent:
        await end_live_credential(uow, session, deputy_id, Status.ENDED, "left the session (离场)", "ballot:roll-call")
