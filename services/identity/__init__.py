"""身份 identity: accounts, sign-in, deputies' voting credentials; signs every token."""

from pathlib import Path

from fastapi import APIRouter

from services.identity import api, oidc, sessions
from services.identity.events import sessions as session_events
from shared.service import Service

router = APIRouter()
for part in (api.router, oidc.router, sessions.router):
    router.include_router(part)

SERVICE = Service("identity", "身份", router, Path(__file__).parent / "migrations", [session_events])
