"""Stage 1, intake: the public "orders" (群众点单), screening, the slate (候选项目清单)."""

from __future__ import annotations

from piaojue.scenario.client import Year
from piaojue.scenario.fuyu import PROPOSALS, SEATS, YEAR


async def run(year: Year) -> None:
    api, office = year.api, year.office
    proposals = []
    for p in PROPOSALS:
        body = {"year": YEAR, "title": p.title, "channel": p.channel, "location": p.location, "category": p.category,
                "estimated_budget": p.budget, "beneficiaries": p.beneficiaries, "funding_secured": p.funding_secured,
                "lead_unit": p.lead_unit, "content": p.content or f"{p.location}{p.title}"}
        proposals.append(await api.call("POST", "intake", "/proposals", office, body))
    for created in proposals:
        for stage in ("preliminary_review", "feasibility_reviewed", "approved_by_party_committee", "candidate"):
            await api.call("POST", "intake", f"/proposals/{created['id']}/screening", office, {"to": stage})
    year.slate = await api.call("POST", "intake", "/slates", office, {
        "title": f"孚玉镇{YEAR}年民生实事候选项目", "year": YEAR, "seats": SEATS,
        "proposal_ids": [p["id"] for p in proposals]})
    year.outcome["ids"]["slate"] = year.slate["id"]
    year.progress("intake", {"proposals": proposals, "slate": year.slate})
