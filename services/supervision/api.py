"""HTTP routes of the supervision service, one module per topic (``routes/``)."""

from __future__ import annotations

from fastapi import APIRouter

from services.supervision.routes import inspections, plan, progress, projects, rectifications

router = APIRouter()
for part in (projects, progress, inspections, rectifications, plan):
    router.include_router(part.router)
