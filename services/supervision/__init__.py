"""监督 supervision: voted projects, lead units, progress, inspections, completion."""

from pathlib import Path

from services.supervision.api import router
from services.supervision.events import results
from shared.service import Service

SERVICE = Service("supervision", "监督", router, Path(__file__).parent / "migrations", [results])
