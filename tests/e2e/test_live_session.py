"""The live view of a session (server-sent events): present, issued and cast as they change, no
partial tally before close, the counts at close."""

from __future__ import annotations

import asyncio
import json

import httpx

from shared.auth import Role
from tests.e2e.town import Town, ballots_from

DEPUTIES = [f"L{i}" for i in range(5)]


async def next_state(lines, predicate, timeout: float = 15) -> dict:
    async def read():
        async for line in lines:
            if line.startswith("data: "):
                state = json.loads(line[len("data: "):])
                if predicate(state):
                    return state
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout)


async def test_the_live_view_follows_the_vote_without_revealing_a_partial_tally(settings, cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, "taihu.live")
        slate = await town.slate(["甲", "乙", "丙"], seats=2)
        a, b, c = (x["candidate_id"] for x in slate["candidates"])
        session = await town.session(DEPUTIES)
        vote = await town.vote(session, slate_id=slate["id"])
        headers = {"authorization": f"Bearer {town.token('L0', Role.DEPUTY)}"}  # a deputy's device
        async with client.stream("GET", f"{settings.url('ballot')}/sessions/{session['id']}/live", headers=headers) as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            lines = live.aiter_lines()
            first = await next_state(lines, lambda s: True)
            assert (first["seated"], first["present"], first["votes"][0]["status"]) == (5, 5, "draft")

            await town.open(vote)
            opened = await next_state(lines, lambda s: s["votes"][0]["status"] == "open")
            assert (opened["votes"][0]["issued"], opened["votes"][0]["cast"]) == (5, 0)

            ballots = ballots_from({a: DEPUTIES, b: DEPUTIES[:3]}, DEPUTIES, [a, b, c])
            await town.cast_all(vote, {d: ballots[d] for d in DEPUTIES[:2]})
            during = await next_state(lines, lambda s: s["votes"][0]["cast"] == 2)
            assert "result" not in during["votes"][0]
            assert not any(cid in json.dumps(during) for cid in (a, b, c))  # no count of any candidate while open

            await town.cast_all(vote, {d: ballots[d] for d in DEPUTIES[2:]})
            await town.ok("POST", "ballot", f"/votes/{vote['id']}/close", Role.PRESIDING, "chair")
            awaiting = await next_state(lines, lambda s: s["votes"][0]["status"] == "awaiting_shares")
            assert awaiting["votes"][0]["shares"] == {"presented": 0, "needed": 2} and "result" not in awaiting["votes"][0]
            for teller in ("T1", "T2"):
                await town.present_share(vote, teller)
            closed = await next_state(lines, lambda s: s["votes"][0]["status"] == "closed")
            result = closed["votes"][0]["result"]
            assert (result["issued"], result["collected"], result["valid"], result["invalid"]) == (5, 5, 5, 0)
            assert result["chosen"] == [a, b] and result["finished"]
