"""Stage 6, scoring (考核): every inspection, completion and rating has reached scoring; the county
sets the year's method, publishes the township's assessment, then corrects the method, which sends
a new version of the assessment by itself."""

from __future__ import annotations

from piaojue.scenario.client import Year, wait_for
from piaojue.scenario.fuyu import YEAR

METHOD = {"weights": {"mid_term": "0.3", "final": "0.5", "look_back": "0.2", "satisfaction": "0.25"},
          "points_per_overdue_rectification": "0.5", "rectification_cap": "2"}
# The correction (a new version): the trimmed mean of the group's ratings, and overdue items cost more.
ASSESSED_ON = f"{YEAR + 1}-01-31"  # the county assesses the year at the end of January
CORRECTED = METHOD | {"aggregation": "trimmed_mean", "points_per_overdue_rectification": "1.0"}


async def run(year: Year) -> None:
    api, office = year.api, year.office
    ids = {p["id"] for p in year.projects}

    async def scored():
        scores = [s for s in await api.call("GET", "scoring", "/projects", office, params={"year": YEAR}) if s["id"] in ids]
        complete = len(scores) == len(ids) and all(s["completion"] and s["satisfaction"] for s in scores)
        return scores if complete else None

    await api.call("PUT", "scoring", f"/methods/{YEAR}", year.county, METHOD)
    await wait_for("scores to reflect every inspection and rating", scored)
    first = await api.call("POST", "scoring", "/assessments", year.county,
                           {"jurisdiction": api.town, "year": YEAR, "as_of": ASSESSED_ON})
    corrected = await api.call("PUT", "scoring", f"/methods/{YEAR}", year.county, CORRECTED)
    assessment = await api.call("GET", "scoring", f"/assessments/{api.town}/{YEAR}", year.county)
    scores = await scored()
    year.outcome.update({
        "projects": [{"title": p["title"], "lead_unit": p["lead_unit"], "completion": p["completion"],
                      "score": next(s["score"] for s in scores if s["id"] == p["id"])} for p in year.supervised],
        "assessment": {k: assessment[k] for k in ("version", "total_projects", "completed", "completion_rate", "bonus",
                                                  "deduction", "overdue_rectifications", "rectification_deduction",
                                                  "net_points", "investment_rate", "method_version", "reason")}
                      | {"first_version": {k: first[k] for k in ("version", "method_version", "net_points")},
                         "recalculated_by_correction": api.town in corrected["recalculated"]},
    })
    year.outcome["ids"]["assessment"] = assessment["assessment_id"]
    year.progress("scoring", {"scores": scores, "assessment": assessment})
