"""Stage 5, the satisfaction rating (满意度测评) at the next session: each present deputy rates each project."""

from __future__ import annotations

from piaojue.scenario.client import Year, wait_for
from piaojue.scenario.fuyu import RATING_ABSENT, RATING_SESSION_NAME, SUPERVISION, TERM, YEAR, deputies, rate_project
from shared.auth import Role


async def run(year: Year) -> None:
    api, office, chair = year.api, year.office, year.chair
    session = await api.call("POST", "ballot", "/sessions", office, {"name": RATING_SESSION_NAME, "year": YEAR + 1, "term": TERM})
    present = [d["deputy_id"] for d in deputies() if d["deputy_id"] not in RATING_ABSENT]
    await api.call("POST", "ballot", f"/sessions/{session['id']}/roll-call", office, {"present": present})
    await year.tellers(session)

    async def rating_vote():  # the projects reach the ballot service as events
        response = await api.request("POST", "ballot", f"/sessions/{session['id']}/votes", office,
                                     {"kind": "satisfaction", "year": YEAR})
        vote = response.json() if response.status_code == 201 else None
        return vote if vote and len(vote["subjects"]) == len(year.projects) else None

    rating = await wait_for("the projects to reach the ballot service", rating_vote)
    await api.call("POST", "ballot", f"/votes/{rating['id']}/open", chair)
    completion = {p["title"]: SUPERVISION[p["title"]][2] for p in year.supervised}
    for deputy in present:
        marks = {s["id"]: rate_project(year.rng, completion[s["title"]]) for s in rating["subjects"]}
        credential = year.token(deputy, Role.DEPUTY, session=session["id"], term=TERM)
        await api.call("POST", "ballot", f"/votes/{rating['id']}/ballots", credential, {"marks": marks})
    await year.close(rating)
    rated = await api.call("POST", "ballot", f"/votes/{rating['id']}/certify", chair)
    if "satisfaction_rating" in year.activities:  # the plan's activity took place
        await api.call("POST", "supervision", f"/activities/{year.activities['satisfaction_rating']['id']}/actions", office,
                       {"action": "hold", "on": f"{YEAR + 1}-01-18"})
    await api.call("POST", "ballot", f"/sessions/{session['id']}/close", chair)
    year.outcome["satisfaction"] = [
        {"title": r["title"], "tier": r["tier"], "label": r["tier_label"], "satisfied": r["satisfied"],
         "basically_satisfied": r["basically_satisfied"], "dissatisfied": r["dissatisfied"], "rate": r["rate"]}
        for r in rated["ratings"]]
    year.progress("rating", {"session": session, "result": rated})
