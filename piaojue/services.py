"""The five services, in one list for the command line."""

from __future__ import annotations

from shared.db import migrate
from shared.service import Service
from shared.settings import Settings


def all_services() -> list[Service]:
    from services.ballot.service import SERVICE as ballot
    from services.identity import SERVICE as identity
    from services.intake.app import SERVICE as intake
    from services.scoring import SERVICE as scoring
    from services.supervision import SERVICE as supervision

    return [intake, ballot, supervision, scoring, identity]


def migrate_all(settings: Settings) -> dict[str, list[str]]:
    return {s.name: migrate(settings, s.name, s.migrations) for s in all_services()}


def openapi_documents() -> dict[str, dict]:
    """Each service's OpenAPI document, as its running app serves it at /openapi.json."""
    from shared.service import create_app

    return {s.name: create_app(s, Settings()).openapi() for s in all_services()}
