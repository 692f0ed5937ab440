"""The ballot service runs as N replicas behind one address, and every ballot counts exactly once.

Three ballot processes share one database and broker. 120 deputies cast their ballots at once,
spread round-robin over the replicas; a share of them retry the very same request (same
Idempotency-Key) on a different replica, some while the first attempt is still in flight and
some after it answered. The count at close is exactly one ballot per deputy, and every replica
shows the same result."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from piaojue import processes
from piaojue.teller import new_key, open_share, registration
from shared.auth import Role
from tests.e2e.town import TELLERS, token
from tests.support import eventually

TOWN = "taihu.replica"  # a township of its own, away from the other tests' data
TERM, YEAR = 20, 2024
DEPUTIES = [f"R{i:03d}" for i in range(120)]
SEATS, CANDIDATES = 3, 4
EXTRA_PORT_OFFSETS = (12, 22)  # from the base port: 18112 and 18122 besides the cluster's ballot on 18102
# Deputy i: i % 4 == 0 retries concurrently with the first attempt, i % 4 == 1 after it answered.
CONCURRENT_RETRY, LATER_RETRY = 0, 1


@pytest.fixture
async def replicas(settings, cluster, tmp_path: Path):
    """The base URLs of three ballot replicas: the cluster's and two more on the same database and vhost."""
    procs: dict[str, subprocess.Popen] = {}
    ports = [settings.base_port + offset for offset in EXTRA_PORT_OFFSETS]
    try:
        for port in ports:
            log = open(tmp_path / f"ballot-{port}.log", "ab")  # noqa: SIM115 (closed with the process)
            procs[str(port)] = subprocess.Popen([sys.executable, "-m", "services.ballot", "--port", str(port)],
                                                env=dict(os.environ), stdout=log, stderr=log)
        urls = [settings.url("ballot"), *(f"http://{settings.http_host}:{port}" for port in ports)]
        async with httpx.AsyncClient(timeout=2) as client:
            async def all_ready() -> bool:
                for port, proc in procs.items():
                    assert proc.poll() is None, f"ballot replica on {port} exited: {(tmp_path / f'ballot-{port}.log').read_text()}"
                for url in urls:
                    try:
                        if (await client.get(f"{url}/health/ready")).status_code != 200:
                            return False
                    except httpx.HTTPError:
                        return False
                return True

            await eventually(all_ready, timeout=60, what="the extra ballot replicas to be ready")
        yield urls
    finally:
        processes.stop(procs)


def _marks(rng: random.Random, candidates: list[str]) -> dict[str, str]:
    """A valid ballot: up to SEATS "for" marks, the others against, abstain or left unmarked."""
    chosen = set(rng.sample(candidates, rng.randint(0, SEATS)))
    marks = {}
    for c in candidates:
        mark = "for" if c in chosen else rng.choice(("against", "abstain", None))
        if mark:
            marks[c] = mark
    return marks


async def test_ballots_through_three_replicas_with_retries_count_exactly_once(settings, replicas):
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        credential: dict = {}  # a deputy votes with the session's credential (session and term)

        def call(method, base, path, role=Role.OFFICE, sub="replica-office", **kw):
            bearer = token(sub, role, TOWN, **(credential if role == Role.DEPUTY else {}))
            return client.request(method, base + path, headers={"authorization": f"Bearer {bearer}", **kw.pop("headers", {})},
                                  **kw)

        # ---- setup through the HTTP API: a slate made through intake, a roster, a session, a vote
        slate = await _slate(call, settings, replicas[0])
        candidates = [c["candidate_id"] for c in slate["candidates"]]
        assert len(candidates) == CANDIDATES
        roster = [{"deputy_id": d, "name": f"代表{d}"} for d in DEPUTIES]
        put = await call("PUT", replicas[1], f"/terms/{TERM}/roster", json={"quota": len(DEPUTIES), "deputies": roster})
        assert put.status_code == 200, put.text
        session = await call("POST", replicas[2], "/sessions", json={"name": "太湖副本镇人代会", "year": YEAR, "term": TERM})
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]
        credential.update(session=session_id, term=TERM)
        present = await call("POST", replicas[0], f"/sessions/{session_id}/roll-call", json={"present": DEPUTIES})
        assert present.status_code == 200, present.text
        assert (present.json()["present"], present.json()["quorum"]) == (len(DEPUTIES), True)
        keys = {t: new_key() for t in TELLERS}
        for i, (teller, key) in enumerate(keys.items()):
            registered = await call("PUT", replicas[i], "/tellers/me/key", Role.TELLER, teller, json=registration(key))
            assert registered.status_code == 200, registered.text
        tellers = await call("PUT", replicas[0], f"/sessions/{session_id}/tellers", Role.PRESIDING, "chair",
                             json={"tellers": list(TELLERS), "threshold": 2})
        assert tellers.status_code == 200, tellers.text
        vote = await call("POST", replicas[1], f"/sessions/{session_id}/votes", json={"slate_id": slate["id"]})
        assert vote.status_code == 201, vote.text
        vote_id = vote.json()["id"]
        opened = await call("POST", replicas[2], f"/votes/{vote_id}/open")
        assert opened.status_code == 200, opened.text
        assert opened.json()["issued"] == len(DEPUTIES)

        # ---- every deputy casts once, concurrently, round-robin over the replicas; some retry elsewhere
        rng = random.Random(20240315)
        ballots = {d: _marks(rng, candidates) for d in DEPUTIES}
        answers: dict[str, list[tuple[int, str, httpx.Response]]] = {}  # deputy → (replica, when, response)

        def cast(deputy: str, replica: int, key: str):
            return call("POST", replicas[replica], f"/votes/{vote_id}/ballots", role=Role.DEPUTY, sub=deputy,
                        json={"marks": ballots[deputy]}, headers={"idempotency-key": key})

        async def deputy_votes(i: int, deputy: str) -> None:
            key, first, other = str(uuid4()), i % len(replicas), (i + 1) % len(replicas)
            if i % 4 == CONCURRENT_RETRY:
                a, b = await asyncio.gather(cast(deputy, first, key), cast(deputy, other, key))
                answers[deputy] = [(first, "first", a), (other, "concurrent", b)]
            elif i % 4 == LATER_RETRY:
                a = await cast(deputy, first, key)
                answers[deputy] = [(first, "first", a), (other, "later", await cast(deputy, other, key))]
            else:
                answers[deputy] = [(first, "first", await cast(deputy, first, key))]

        await asyncio.gather(*(deputy_votes(i, d) for i, d in enumerate(DEPUTIES)))

        every = [(d, r, when, resp) for d, sent in answers.items() for r, when, resp in sent]
        assert not [(d, when, resp.status_code, resp.text) for d, _, when, resp in every if resp.status_code >= 500]
        outcomes = Counter((when, resp.status_code, resp.headers.get("idempotent-replayed") == "true",
                            resp.json().get("code")) for _, _, when, resp in every)
        print(f"outcomes (when, status, replayed, problem code): {dict(outcomes)}")
        for deputy, sent in answers.items():
            # Exactly one request per deputy acted (201 with the receipt); each other is a replay of that
            # answer, receipt included: a deputy whose first answer was lost still gets it.
            acted = [resp for _, _, resp in sent if resp.status_code == 201 and "idempotent-replayed" not in resp.headers]
            assert len(acted) == 1, (deputy, [(when, resp.status_code, resp.text) for _, when, resp in sent])
            first = acted[0].json()
            assert first["status"] == "cast" and len(first["receipt"]) == 64
            for _, when, resp in sent:
                if resp is acted[0]:
                    continue
                assert resp.status_code == 201, (deputy, when, resp.status_code, resp.text)
                assert resp.headers["idempotent-replayed"] == "true"
                assert resp.json() == first
        # Every replica took ballots of its own.
        assert {r for _, r, _, resp in every if "idempotent-replayed" not in resp.headers} == set(range(len(replicas)))

        # ---- a second, different ballot (a new key) is refused, on whichever replica
        for i, deputy in enumerate(DEPUTIES[:6]):
            again = await call("POST", replicas[(i + 2) % len(replicas)], f"/votes/{vote_id}/ballots", role=Role.DEPUTY,
                               sub=deputy, json={"marks": {candidates[-1]: "for"}}, headers={"idempotency-key": str(uuid4())})
            assert again.status_code == 409, again.text
            assert again.json()["code"] == "already-voted"

        progress = [(await call("GET", url, f"/votes/{vote_id}")).json() for url in replicas]
        assert [(p["status"], p["issued"], p["cast"]) for p in progress] == [("open", len(DEPUTIES), len(DEPUTIES))] * len(replicas)

        # ---- close on one replica (which counts), the tellers' shares presented to the two others:
        # exactly one ballot per deputy, as sent
        closed = await call("POST", replicas[1], f"/votes/{vote_id}/close")
        assert (closed.status_code, closed.json()["status"]) == (200, "awaiting_shares"), closed.text
        for teller, replica, status in (("T1", replicas[0], 202), ("T3", replicas[2], 200)):
            mine = await call("GET", replica, f"/votes/{vote_id}/shares/mine", Role.TELLER, teller)
            presented = await call("POST", replica, f"/votes/{vote_id}/shares", Role.TELLER, teller,
                                   json=open_share(keys[teller], mine.json()), headers={"idempotency-key": str(uuid4())})
            assert presented.status_code == status, presented.text
        result = presented.json()
        assert (result["issued"], result["collected"], result["valid"], result["invalid"]) == (len(DEPUTIES),) * 3 + (0,)
        counted = {c["candidate_id"]: c for c in result["candidates"]}
        assert set(counted) == set(candidates)
        assert sum(c["for_votes"] + c["against"] + c["abstain"] + c["not_marked"] for c in counted.values()) \
            == result["collected"] * CANDIDATES
        for mark, field in (("for", "for_votes"), ("against", "against"), ("abstain", "abstain")):
            expected = Counter(c for marks in ballots.values() for c, m in marks.items() if m == mark)
            assert {c: counted[c][field] for c in candidates} == {c: expected[c] for c in candidates}, mark
        unmarked = Counter(c for marks in ballots.values() for c in candidates if c not in marks)
        assert {c: counted[c]["not_marked"] for c in candidates} == {c: unmarked[c] for c in candidates}

        # ---- every replica shows the same result
        shown = [(await call("GET", url, f"/votes/{vote_id}")).json() for url in replicas]
        assert all(s["status"] == "closed" and s["cast"] == len(DEPUTIES) for s in shown)
        assert all(s["result"] == shown[0]["result"] for s in shown)
        assert shown[0]["result"] == {k: v for k, v in result.items() if k in shown[0]["result"]}
        # Every receipt is among the trackers of the ballots opened.
        checked = await call("GET", replicas[0], f"/votes/{vote_id}/receipts/{first['receipt']}", Role.DEPUTY, DEPUTIES[-1])
        assert checked.status_code == 200 and checked.json()["counted"]


async def _slate(call, settings, ballot: str) -> dict:
    """A slate of CANDIDATES candidates for SEATS seats, made through intake, once it reached the ballot service."""
    intake = settings.url("intake")
    ids = []
    for i in range(CANDIDATES):
        created = await call("POST", intake, "/proposals", json={"year": YEAR, "title": f"副本镇项目{i}", "channel": "grid"})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        for stage in ("preliminary_review", "approved_by_party_committee", "candidate"):
            moved = await call("POST", intake, f"/proposals/{ids[-1]}/screening", json={"to": stage})
            assert moved.status_code == 200, moved.text
    slate = await call("POST", intake, "/slates", json={"title": "副本镇候选清单", "year": YEAR, "seats": SEATS,
                                                        "proposal_ids": ids})
    assert slate.status_code == 201, slate.text
    slate = slate.json()

    async def arrived() -> bool:
        return (await call("GET", ballot, f"/slates/{slate['id']}")).status_code == 200

    await eventually(arrived, what="the slate in the ballot service")
    return slate
