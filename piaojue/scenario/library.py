"""Stage 3b, the project library (项目库): what the vote left for later is carried into the next
year's intake of the town, with its history, and is screened again (G105 land acquisition)."""

from __future__ import annotations

from piaojue.scenario.client import Year, wait_for
from piaojue.scenario.fuyu import YEAR


async def run(year: Year) -> None:
    api, office = year.api, year.office
    library = await api.call("GET", "intake", "/library", office, params={"year": YEAR})

    async def carried():
        proposals = await api.call("GET", "intake", "/proposals", office, params={"year": YEAR + 1})
        mine = [p for p in proposals if p["carried_from"] in {i["id"] for i in library}]
        return mine if len(mine) == len(library) else None

    next_year = await wait_for("the project library to reach next year's intake", carried) if library else []
    screened = [await api.call("POST", "intake", f"/proposals/{p['id']}/screening", office, {"to": "preliminary_review"})
                for p in next_year]
    year.outcome["intake"]["carried_to_next_year"] = [
        {"title": p["title"], "year": p["year"], "from_year": p["history"]["from_year"], "carried_from": p["carried_from"],
         "code": p["code"], "stage": p["stage"], "supporters": p["supporters"]["count"],
         "votes": {k: p["history"]["votes"][k] for k in ("for", "against", "abstain", "seated")} if p["history"]["votes"] else None,
         "reason": p["history"]["reason"]} for p in screened]
    year.progress("library", {"library": library, "next_year": screened})
