"""Stage 2, the vote (票决): the session, roll call, tellers, one sealed secret vote, close, the
tellers' shares, certification."""

from __future__ import annotations

import random

from piaojue.scenario.client import Year, wait_for
from piaojue.scenario.fuyu import ABSENT, QUOTA, SESSION_NAME, TERM, YEAR, ballot_for, deputies
from shared.auth import Role


async def run(year: Year) -> None:
    api, office, chair, slate = year.api, year.office, year.chair, year.slate
    await wait_for("the slate to reach the ballot service", lambda: api.ok("ballot", f"/slates/{slate['id']}", office))
    roster = await api.call("PUT", "ballot", f"/terms/{TERM}/roster", office, {"quota": QUOTA, "deputies": deputies()})
    session = await api.call("POST", "ballot", "/sessions", office, {"name": SESSION_NAME, "year": YEAR, "term": TERM})
    year.present = [d["deputy_id"] for d in deputies() if d["deputy_id"] not in ABSENT]
    attendance = await api.call("POST", "ballot", f"/sessions/{session['id']}/roll-call", office, {"present": year.present})
    await year.tellers(session)
    year.vote = vote = await api.call("POST", "ballot", f"/sessions/{session['id']}/votes", office, {"slate_id": slate["id"]})
    opened = await api.call("POST", "ballot", f"/votes/{vote['id']}/open", chair)
    year.rng = random.Random(f"fuyu-{YEAR}")
    for deputy in year.present:
        await api.call("POST", "ballot", f"/votes/{vote['id']}/ballots", year.token(deputy, Role.DEPUTY, session=session["id"], term=TERM),
                       {"marks": ballot_for(year.rng, slate["candidates"])})
    await year.close(vote)  # sealed ballots, opened by two of the three tellers' shares
    year.certified = certified = await api.call("POST", "ballot", f"/votes/{vote['id']}/certify", chair)
    await api.call("POST", "ballot", f"/sessions/{session['id']}/close", chair)  # 闭会: the roster thaws
    chosen = [c for c in certified["candidates"] if c["chosen"]]
    year.outcome.update({
        "session": SESSION_NAME,
        "vote": {k: certified[k] for k in ("seated", "present", "issued", "collected", "valid", "invalid")},
        "candidates": certified["candidates"],
        "chosen": [{"title": c["title"], "for": c["for_votes"], "against": c["against"], "abstain": c["abstain"],
                    "rank": c["rank"]} for c in sorted(chosen, key=lambda c: c["rank"])],
    })
    year.outcome["ids"]["vote"] = vote["id"]
    year.progress("ballot", {"session": session, "roster": roster, "attendance": attendance, "opened": opened,
                             "result": certified})
