"""PostgreSQL restarting while deputies cast: every request gets an answer (201, or 503 with
Retry-After and a stable code, never 500), and every deputy who retries with the same
Idempotency-Key is counted exactly once. On a throwaway PostgreSQL cluster of this module's own
(never the machine's), with the ballot service as a process on it.

Run with ``-s`` to see the figures: ``pytest tests/e2e/test_database_restart.py -s``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from uuid import uuid4

import httpx
import pytest

from piaojue import processes
from shared.auth import Role
from shared.contracts.envelope import Envelope
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.messaging import BrokerLink, publish_envelope
from tests.e2e.town import Town
from tests.support import PrivatePostgres, assert_problem, eventually

TOWN = "taihu.chongqi"
DEPUTIES = [f"CQ{i:02d}" for i in range(30)]
BEFORE = 10  # deputies who cast before the restart (and later re-send their cast, as if the answer was lost)
SEATS = 3


@pytest.fixture(scope="module")
def ballot_on_own_pg(settings, tmp_path_factory):
    with PrivatePostgres("piaojue-restart-") as pg:
        own = settings.model_copy(update={"database_url": pg.url, "base_port": settings.base_port + 60})
        env = {**os.environ, "PIAOJUE_DATABASE_URL": pg.url, "PIAOJUE_BASE_PORT": str(own.base_port)}
        log = tmp_path_factory.mktemp("restart-ballot") / "ballot.log"
        procs = {}
        try:
            with open(log, "ab") as out:
                procs["ballot"] = subprocess.Popen([sys.executable, "-m", "services.ballot", "--migrate"], env=env,
                                                   stdout=out, stderr=out)
            processes.wait_ready(own, procs)
            yield own, pg, log
        finally:
            processes.stop(procs)


async def publish_slate(settings, town: Town, candidates: int = 6, seats: int = SEATS) -> dict:
    """A slate as intake would publish it, straight to the broker; returns it once the ballot service has it."""
    slate = SlatePublished(slate_id=uuid4(), title=f"{town.jurisdiction} 候选清单", year=2024, seats=seats,
                           candidates=[SlateCandidate(candidate_id=uuid4(), title=f"项目{i}") for i in range(candidates)])
    link = BrokerLink(settings)
    await link.run()
    try:
        await publish_envelope(link.broker, Envelope(type=slate.TYPE, version=slate.VERSION, jurisdiction=town.jurisdiction,
                                                     correlation_id=uuid4(), producer="intake",
                                                     data=slate.model_dump(mode="json")).model_dump(mode="json"))
    finally:
        await link.stop()

    async def arrived():
        return (await town.request("GET", "ballot", f"/slates/{slate.slate_id}")).status_code == 200

    await eventually(arrived, what="the slate in the ballot service")
    return {"id": str(slate.slate_id), "candidates": [str(c.candidate_id) for c in slate.candidates]}


async def test_a_postgresql_restart_while_deputies_cast_gives_503_with_retry_after_never_500_and_counts_each_deputy_once(
        ballot_on_own_pg):
    own, pg, _ = ballot_on_own_pg
    answers: Counter[int] = Counter()
    refused_during_outage: set[str] = set()
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(own, client, TOWN)
        slate = await publish_slate(own, town)
        session = await town.session(DEPUTIES)
        vote = await town.vote(session, slate_id=slate["id"])
        await town.open(vote)
        marks = {d: {c: ("for" if (i + j) % 3 == 0 else "against") for j, c in enumerate(slate["candidates"])}
                 for i, d in enumerate(DEPUTIES)}
        keys = {d: str(uuid4()) for d in DEPUTIES}

        async def cast(deputy: str) -> httpx.Response:
            """A deputy's phone: retry the same cast (same Idempotency-Key) after Retry-After until it is answered."""
            while True:
                response = await town.request("POST", "ballot", f"/votes/{vote['id']}/ballots", Role.DEPUTY, deputy,
                                              json={"marks": marks[deputy]}, headers={"idempotency-key": keys[deputy]})
                answers[response.status_code] += 1
                if response.status_code != 503:
                    assert response.status_code == 201, response.text  # never a 500, never "already voted"
                    return response
                assert_problem(response, 503, "database-unavailable")
                assert int(response.headers["retry-after"]) >= 1
                refused_during_outage.add(deputy)
                await asyncio.sleep(int(response.headers["retry-after"]))  # as the client is told

        first = await asyncio.gather(*(cast(d) for d in DEPUTIES[:BEFORE]))

        # PostgreSQL stops (fast shutdown: sessions are cut) while the other deputies cast.
        await asyncio.to_thread(pg.stop, "fast")
        later = [asyncio.create_task(cast(d)) for d in DEPUTIES[BEFORE:]]
        ready = await client.get(f"{own.url('ballot')}/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"] == {"database": False}
        await eventually(lambda: _true(refused_during_outage >= set(DEPUTIES[BEFORE:])), timeout=30,
                         what="every deputy casting during the outage to be answered 503")
        await asyncio.to_thread(pg.start)
        await asyncio.gather(*later)
        # Those who cast before re-send (their answer lost, say): the first answer comes back, nothing is cast again.
        again = await asyncio.gather(*(cast(d) for d in DEPUTIES[:BEFORE]))
        assert [r.json()["receipt"] for r in again] == [r.json()["receipt"] for r in first]
        assert all(r.headers.get("idempotent-replayed") == "true" for r in again)
        assert (await client.get(f"{own.url('ballot')}/health/ready")).status_code == 200

        counted = await town.close(vote)
    assert set(answers) <= {201, 503} and answers[503] >= len(DEPUTIES) - BEFORE
    assert (counted["collected"], counted["valid"]) == (len(DEPUTIES), len(DEPUTIES))
    print(f"\nPostgreSQL restart while casting: {sum(answers.values())} casts attempted by {len(DEPUTIES)} deputies, "
          f"{answers[503]} answered 503 (database-unavailable, Retry-After), {answers[201]} answered 201 "
          f"({BEFORE} of them replays of a first answer), 0 answered 500; counted {counted['collected']} ballots, "
          f"each deputy once")


async def _true(value) -> bool:
    return bool(value)
