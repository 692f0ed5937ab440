"""Stage 7, the county view (县考核): two more townships of the county run a small year of their own, so
that the county ranks three; the assessments reach the county's webhook receiver, signed."""

from __future__ import annotations

from piaojue.scenario.client import Api, Year, close_vote, set_tellers, wait_for
from piaojue.scenario.fuyu import YEAR
from piaojue.scenario.scoring import ASSESSED_ON
from shared.auth import Role

# Two neighbours (晋熙镇, 徐桥镇): three candidates for two seats; (completion of each chosen project).
NEIGHBOURS = {
    "jinxi": ("晋熙镇", [("农贸市场改造", "completed", 1_200_000), ("村级卫生室标准化", "completed", 600_000),
                                   ("河道清淤", None, 900_000)]),
    "xuqiao": ("徐桥镇", [("集镇污水管网", "not_completed", 5_000_000), ("敬老院改造", "completed", 800_000),
                                    ("农村公路养护", None, 700_000)]),
}
DEPUTIES = [f"N{i:02d}" for i in range(1, 10)]


async def small_year(api: Api, name: str, proposals: list) -> None:
    """Proposals → slate → vote → projects → plan → inspections → completion, through the APIs."""
    office, chair = api.token(f"{name}-office", Role.OFFICE), api.token(f"{name}-presidium", Role.PRESIDING)
    ids = []
    for title, _, budget in proposals:
        p = await api.call("POST", "intake", "/proposals", office, {"year": YEAR, "title": title, "channel": "grid",
                                                                     "estimated_budget": budget})
        for stage in ("preliminary_review", "approved_by_party_committee", "candidate"):
            await api.call("POST", "intake", f"/proposals/{p['id']}/screening", office, {"to": stage})
        ids.append(p["id"])
    slate = await api.call("POST", "intake", "/slates", office, {"title": f"{name}{YEAR}年民生实事候选项目", "year": YEAR,
                                                                 "seats": 2, "proposal_ids": ids})
    await wait_for(f"{name}'s slate in ballot", lambda: api.ok("ballot", f"/slates/{slate['id']}", office))
    await api.call("PUT", "ballot", "/terms/1/roster", office,
                   {"quota": len(DEPUTIES), "deputies": [{"deputy_id": d, "name": f"代表{d}"} for d in DEPUTIES]})
    session = await api.call("POST", "ballot", "/sessions", office, {"name": f"{name}人民代表大会", "year": YEAR, "term": 1})
    await api.call("POST", "ballot", f"/sessions/{session['id']}/roll-call", office, {"present": DEPUTIES})
    keys: dict[str, dict[str, str]] = {}
    await set_tellers(api, chair, session, keys)
    vote = await api.call("POST", "ballot", f"/sessions/{session['id']}/votes", office, {"slate_id": slate["id"]})
    await api.call("POST", "ballot", f"/votes/{vote['id']}/open", chair)
    candidates = {c["title"]: c["candidate_id"] for c in slate["candidates"]}
    for d in DEPUTIES:
        marks = {cid: ("for" if title != proposals[2][0] else "against") for title, cid in candidates.items()}
        credential = api.token(d, Role.DEPUTY, session=session["id"], term=1)  # the deputy's voting credential
        await api.call("POST", "ballot", f"/votes/{vote['id']}/ballots", credential, {"marks": marks})
    await close_vote(api, chair, vote, keys)  # sealed: two of the three tellers open it
    await api.call("POST", "ballot", f"/votes/{vote['id']}/certify", chair)
    await api.call("POST", "ballot", f"/sessions/{session['id']}/close", chair)

    async def created():
        projects = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
        return projects if len(projects) == 2 else None

    for project in await wait_for(f"{name}'s projects", created):
        _, completion, budget = next(p for p in proposals if p[0] == project["title"])
        unit = f"{name}{project['title']}专班"
        await api.call("PUT", "supervision", f"/projects/{project['id']}/assignment", office,
                       {"lead_unit": unit, "budget": budget, "funding_source": "镇财政",
                        "milestones": [{"due_on": f"{YEAR}-12-31", "expected_percent": 100}]})
        done = 100 if completion == "completed" else 70
        await api.call("POST", "supervision", f"/projects/{project['id']}/progress", api.token(unit, Role.LEAD_UNIT),
                       {"as_of": f"{YEAR}-12-31", "percent_done": done, "funds_spent": budget * done // 100})
        for kind, day in (("mid_term", f"{YEAR}-07-10"), ("final", f"{YEAR}-12-15")):
            await api.call("POST", "supervision", f"/projects/{project['id']}/inspections", office,
                           {"kind": kind, "inspected_on": day,
                            "ratings": [{"deputy": d, "rating": 80 + i} for i, d in enumerate(DEPUTIES[:3])]})
        await api.call("PUT", "supervision", f"/projects/{project['id']}/completion", office,
                       {"completion": completion, "accepted_on": f"{YEAR}-12-20" if completion == "completed" else None})

    async def scored():
        scores = await api.call("GET", "scoring", "/projects", office, params={"year": YEAR})
        return len(scores) == 2 and all(s["completion"] for s in scores)

    await wait_for(f"{name}'s projects in scoring", scored)


async def subscribe(year: Year) -> None:
    """The county's webhook subscriber, before anything is published (only when a receiver runs)."""
    if year.receiver:
        subscriber = await year.api.call("POST", "scoring", "/webhooks/subscribers", year.county,
                                         {"name": "县考核系统", "url": f"{year.receiver}/webhooks/assessments",
                                          "secret": year.receiver_secret})
        year.outcome["ids"]["webhook_subscriber"] = subscriber["id"]


async def run(year: Year) -> None:
    api = year.api
    for suffix, (name, proposals) in NEIGHBOURS.items():
        town = f"{year.county_jurisdiction}.{suffix}"  # beside the township, in its county
        neighbour = Api(api.settings, api.client, town, api.tokens)
        if not await neighbour.call("GET", "supervision", "/projects", neighbour.token(f"{name}-office", Role.OFFICE),
                                    params={"year": YEAR}):
            await small_year(neighbour, name, proposals)
        await api.call("POST", "scoring", "/assessments", year.county, {"jurisdiction": town, "year": YEAR, "as_of": ASSESSED_ON})
    ranking = await api.call("GET", "scoring", "/assessments", year.county, params={"year": YEAR})
    county = {"ranking": [{k: r[k] for k in ("rank", "jurisdiction", "version", "net_points", "completion_rate",
                                              "investment_rate", "method_version")} for r in ranking]}
    if year.receiver:
        async def all_delivered():
            log = await api.call("GET", "scoring", "/webhooks/deliveries", year.county)
            mine = [d for d in log["deliveries"] if d["subscriber_id"] == year.outcome["ids"]["webhook_subscriber"]]
            return mine if mine and all(d["status"] == "delivered" for d in mine) else None

        mine = await wait_for("the webhooks to reach the county's receiver", all_delivered)
        received = await api.client.get(f"{year.receiver}/assessments")
        stored = received.json()
        county["webhook_deliveries"] = {
            "delivered": len(mine),
            "verified_and_stored": len(stored),
            "versions": sorted(f"{r['jurisdiction']} v{r['version']}" for r in stored),
        }
    year.outcome["county"] = county
    year.progress("county", county)
