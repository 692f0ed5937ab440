"""HTTP routes of the scoring service, one module per topic (``routes/``)."""

from __future__ import annotations

from fastapi import APIRouter

from services.scoring.routes import assessments, methods, webhooks

router = APIRouter()
for part in (methods, assessments, webhooks):
    router.include_router(part.router)
