"""Wiring of the ballot service (票决): its routes, consumers and migrations, in one place."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from services.ballot import cast, listing, live
from services.ballot.events import credentials, projects, slates
from services.ballot.routes import publication, sessions, tellers, votes
from shared.service import Service

router = APIRouter()
# The cast first: a request is matched against the routes in order, and the cast is the hot path.
for module in (cast, sessions, votes, tellers, publication, live, listing):  # listing: read-only lists for the pages
    router.include_router(module.router)

SERVICE = Service("ballot", "票决", router, Path(__file__).parent / "migrations", [slates, projects, credentials])
