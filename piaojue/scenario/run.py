"""The whole year, stage after stage, through the services' HTTP APIs."""

from __future__ import annotations

from typing import Any

import httpx

from piaojue.scenario import ballot, county, intake, library, outcome, rating, scoring, supervision
from piaojue.scenario.client import AlreadyPlayed, Api, Progress, ScenarioError, Year
from piaojue.scenario.fuyu import COUNTY, TOWN, YEAR
from shared.settings import Settings

STAGES = (intake, ballot, outcome, library, supervision, rating, scoring, county)
SUMMARY_DAY = f"{YEAR + 1}-02-20"  # the plan, the loop and the board as they stood a month after the rating


async def run(settings: Settings, progress: Progress = lambda stage, data: None, town: str = TOWN,
              receiver: str | None = None, receiver_secret: str | None = None) -> dict[str, Any]:
    """Replay the whole year in ``town``; ``progress(stage, data)`` is told as each stage completes.
    ``receiver``: the base URL of a running ``piaojue county-receiver`` subscribed with ``receiver_secret``.
    Returns the outcome (``piaojue demo --json``)."""
    if not town.startswith(COUNTY + "."):
        raise ScenarioError(f"the township must be in the county {COUNTY}: {COUNTY}.<name>")
    async with httpx.AsyncClient(timeout=30) as client:
        year = Year(Api(settings, client, town), progress, outcome={"jurisdiction": town, "year": YEAR},
                    receiver=receiver, receiver_secret=receiver_secret)
        if await year.api.call("GET", "supervision", "/projects", year.office, params={"year": YEAR}):
            raise AlreadyPlayed(f"{town} already has voted projects for {YEAR} on these services; "
                                f"choose another township with --jurisdiction {COUNTY}.<name>, or stop the services "
                                "(the demo then runs on a database of its own)")
        year.outcome["ids"] = {}
        await county.subscribe(year)
        for stage in STAGES:
            await stage.run(year)
        year.outcome["supervision"] = await supervision.summary(year, SUMMARY_DAY)
    year.outcome["ids"] = year.outcome.pop("ids")  # last, as before: what a script looks up afterwards
    return year.outcome
