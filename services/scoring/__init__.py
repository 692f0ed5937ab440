"""考核 scoring: project scores and the township annual assessment, fed to the county."""

from pathlib import Path

from services.scoring import sender
from services.scoring.api import router
from services.scoring.events import ratings, supervision
from shared.service import Service

SERVICE = Service("scoring", "考核", router, Path(__file__).parent / "migrations", [supervision, ratings],
                  tasks=[sender.run])
