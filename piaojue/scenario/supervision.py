"""Stage 4, supervision (监督): lead units, progress, mid-term and final assessments, completion."""

from __future__ import annotations

from piaojue.scenario.client import Year
from piaojue.scenario.fuyu import PROPOSALS, SUPERVISION, YEAR
from shared.auth import Role


async def run(year: Year) -> None:
    api, office = year.api, year.office
    for project in year.projects:
        mid, final, completion = SUPERVISION[project["title"]]
        plan = next(p for p in PROPOSALS if p.title == project["title"])
        await api.call("PUT", "supervision", f"/projects/{project['id']}/assignment", office,
                       {"lead_unit": plan.lead_unit, "leader": "分管副镇长", "budget": plan.budget,
                        "deadline": f"{YEAR}-12-31"})
        unit = year.token(plan.lead_unit, Role.LEAD_UNIT)
        done = 100 if completion == "completed" else 60
        for percent, month in ((45, "06"), (done, "12")):
            await api.call("POST", "supervision", f"/projects/{project['id']}/progress", unit,
                           {"percent_done": percent, "funds_spent": plan.budget * percent // 100,
                            "narrative": f"{YEAR}-{month} 进度报告"})
        for kind, rating, day in (("mid_term", mid, f"{YEAR}-07-15"), ("final", final, f"{YEAR}-12-20")):
            await api.call("POST", "supervision", f"/projects/{project['id']}/inspections", office,
                           {"kind": kind, "rating": rating, "inspected_on": day,
                            "deputies": year.present[:5], "findings": "集中视察"})
        await api.call("PUT", "supervision", f"/projects/{project['id']}/completion", office,
                       {"completion": completion, "accepted_on": f"{YEAR}-12-28" if completion == "completed" else None})
    supervised = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
    year.supervised = [p for p in supervised if p["vote_id"] == year.vote["id"]]
    year.progress("supervision", {"projects": year.supervised})
