"""The one place tokens are signed in production: identity's private key, the published keys."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from services.identity.domain import Grant
from shared import tokens
from shared.auth import trusted_jwks
from shared.settings import Settings


@lru_cache
def _key(signing_key: str, algorithm: str) -> tokens.SigningKey:
    return tokens.signing_key(signing_key) if signing_key else tokens.development_key(algorithm)


def key(settings: Settings) -> tokens.SigningKey:
    return _key(settings.auth_signing_key, settings.auth_algorithm)


def jwks(settings: Settings) -> dict[str, Any]:
    """What identity publishes: its signing key's public half, and the other keys every service
    trusts (during a rotation: the previous key, until the tokens it signed have expired)."""
    own = key(settings).public
    others = [tokens.public_jwk(k) for k in trusted_jwks(settings)["keys"]]
    return {"keys": [own, *(k for k in others if k["kid"] != own["kid"])]}


def access_token(settings: Settings, username: str, display_name: str, grant: Grant) -> str:
    """A staff or machine token for one grant; a deputy's account is named by (jurisdiction, term, deputy id)."""
    sub = grant.deputy_id if grant.role == "deputy" else username
    claims = tokens.token_claims(sub, grant.role, grant.jurisdiction, settings.access_token_seconds, settings.auth_issuer,
                                 display_name, term=grant.term, unit=grant.unit or None)
    return tokens.sign(claims, key(settings))


def voting_credential(settings: Settings, deputy_id: str, jurisdiction: str, term: int, session: UUID, credential: UUID,
                      seconds: int) -> str:
    claims = tokens.token_claims(deputy_id, "deputy", jurisdiction, seconds, settings.auth_issuer, term=term,
                                 session=session, credential=credential)
    return tokens.sign(claims, key(settings))


def display_credential(settings: Settings, jurisdiction: str, session: UUID, issued_by: str, credential: UUID) -> str:
    """The hall's big screen: read-only, one session; its credential id lets the office revoke it."""
    claims = tokens.token_claims(display_subject(issued_by), "display", jurisdiction, settings.session_credential_seconds,
                                 settings.auth_issuer, "大屏", session=session, credential=credential)
    return tokens.sign(claims, key(settings))


def display_subject(issued_by: str) -> str:
    return f"display:{issued_by}"
