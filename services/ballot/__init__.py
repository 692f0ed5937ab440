"""票决 ballot: sessions, roll call, quorum, secret ballots, tally, certification."""

from pathlib import Path

from services.ballot.api import router
from services.ballot.events import credentials, projects, slates
from services.ballot.listing import router as listing
from shared.service import Service

router.include_router(listing)  # read-only lists for the pages
SERVICE = Service("ballot", "票决", router, Path(__file__).parent / "migrations", [slates, projects, credentials])
