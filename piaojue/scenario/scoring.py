"""Stage 6, scoring (考核): every inspection, completion and rating has reached scoring; the county
publishes the township's assessment."""

from __future__ import annotations

from piaojue.scenario.client import Year, wait_for
from piaojue.scenario.fuyu import YEAR


async def run(year: Year) -> None:
    api, office = year.api, year.office
    ids = {p["id"] for p in year.projects}

    async def scored():
        scores = [s for s in await api.call("GET", "scoring", "/projects", office, params={"year": YEAR}) if s["id"] in ids]
        complete = len(scores) == len(ids) and all(s["completion"] and s["satisfaction"] for s in scores)
        return scores if complete else None

    scores = await wait_for("scores to reflect every inspection and rating", scored)
    assessment = await api.call("POST", "scoring", "/assessments", year.county, {"jurisdiction": api.town, "year": YEAR})
    year.outcome.update({
        "projects": [{"title": p["title"], "lead_unit": p["lead_unit"], "completion": p["completion"],
                      "score": next(s["score"] for s in scores if s["id"] == p["id"])} for p in year.supervised],
        "assessment": {k: assessment[k] for k in ("version", "total_projects", "completed", "completion_rate", "bonus",
                                                  "deduction", "net_points")} | {"method": assessment["method"]["version"]},
    })
    year.outcome["ids"]["assessment"] = assessment["assessment_id"]
    year.progress("scoring", {"scores": scores, "assessment": assessment})
