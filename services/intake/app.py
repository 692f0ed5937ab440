"""征集 intake: proposals from the public, screening, the slate, dispositions after the vote.
The wiring of the service, in one place."""

from pathlib import Path

from services.intake.api import router
from services.intake.events import notices, projects, results
from services.intake.jobs import housekeeping
from shared.service import Service

SERVICE = Service("intake", "征集", router, Path(__file__).parent / "migrations", [results, projects, notices],
                  tasks=[housekeeping])
