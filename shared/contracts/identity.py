"""Events produced by identity (身份)."""

from __future__ import annotations

from uuid import UUID

from shared.contracts.envelope import Payload, event


@event("identity.credential.revoked", 1)
class CredentialRevoked(Payload):
    """A deputy's voting credential for one session is no longer good: the office revoked it
    (a lost phone), or the deputy left (离场). The ballot service refuses its ballots from then on."""

    credential_id: UUID
    session_id: UUID
    term: int
    deputy_id: str
    reason: str  # "revoked" (by the office) or "left"
