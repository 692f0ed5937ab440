"""Stage 3, the certified result through events: projects in supervision, dispositions (分类处置) in intake."""

from __future__ import annotations

from piaojue.scenario.client import Year, wait_for
from piaojue.scenario.fuyu import YEAR


async def run(year: Year) -> None:
    api, office = year.api, year.office
    chosen = [c for c in year.certified["candidates"] if c["chosen"]]

    async def projects_created():
        projects = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
        mine = [p for p in projects if p["vote_id"] == year.vote["id"]]
        return mine if len(mine) == len(chosen) else None

    year.projects = await wait_for("projects to be created", projects_created)

    async def disposed():
        decided = await api.call("GET", "intake", f"/slates/{year.slate['id']}", office)
        return decided if decided["status"] == "decided" else None

    decided = await wait_for("dispositions in intake", disposed)
    dispositions = [c for c in decided["candidates"] if c["stage"] == "disposed"]
    year.outcome.update({
        "dispositions": [{"title": d["title"], "disposition": d["disposition"], "label": d["disposition_label"],
                          "reason": d["disposition_reason"]} for d in dispositions],
        "projects_created": len(year.projects),
    })
    year.progress("outcome", {"projects": year.projects, "dispositions": dispositions})
