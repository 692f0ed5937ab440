"""The intake service's HTTP API: the topic routers of ``routes/`` under one router, and the
public tracking lookup under another (no token, rate-limited: public by design)."""

from __future__ import annotations

from fastapi import APIRouter

from services.intake.routes import library, merging, proposals, settings, sheets, slates, tracking

router = APIRouter()
for topic in (proposals, merging, slates, sheets, library, settings):
    router.include_router(topic.router)

public = tracking.router
router.include_router(public)
