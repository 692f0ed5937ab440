"""Events produced by identity (身份)."""

from __future__ import annotations

from uuid import UUID

from shared.contracts.envelope import Payload, event


@event("identity.credential.revoked", 1)
class CredentialRevoked(Payload):
    """A session's credential is no longer good: the office revoked a deputy's voting credential
    (a lost phone) or the hall display's (大屏), or the deputy left (离场). The ballot service
    refuses it from then on, and ends the live streams opened with it."""

    credential_id: UUID
    session_id: UUID
    term: int
    deputy_id: str  # the hall display's: its subject, display:<the office account that turned it on>
    reason: str  # "revoked" (by the office) or "left"
