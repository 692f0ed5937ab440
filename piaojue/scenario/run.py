"""The whole year, stage after stage, through the services' HTTP APIs."""

from __future__ import annotations

from typing import Any

import httpx

from piaojue.scenario import ballot, intake, library, outcome, rating, scoring, supervision
from piaojue.scenario.client import AlreadyPlayed, Api, Progress, ScenarioError, Year
from piaojue.scenario.fuyu import COUNTY, TOWN, YEAR
from shared.settings import Settings

STAGES = (intake, ballot, outcome, library, supervision, rating, scoring)


async def run(settings: Settings, progress: Progress = lambda stage, data: None, town: str = TOWN) -> dict[str, Any]:
    """Replay the whole year in ``town``; ``progress(stage, data)`` is told as each stage completes.
    Returns the outcome (``piaojue demo --json``)."""
    if not town.startswith(COUNTY + "."):
        raise ScenarioError(f"the township must be in the county {COUNTY}: {COUNTY}.<name>")
    async with httpx.AsyncClient(timeout=30) as client:
        year = Year(Api(settings, client, town), progress, outcome={"jurisdiction": town, "year": YEAR})
        if await year.api.call("GET", "supervision", "/projects", year.office, params={"year": YEAR}):
            raise AlreadyPlayed(f"{town} already has voted projects for {YEAR} on these services; "
                                f"choose another township with --jurisdiction {COUNTY}.<name>, or stop the services "
                                "(the demo then runs on a database of its own)")
        for stage in STAGES:
            await stage.run(year)
    year.outcome["ids"] = year.outcome.pop("ids")  # last, as before: what a script looks up afterwards
    return year.outcome
