"""Secret ballot (无记名投票) against anyone who can read PostgreSQL: its rows, system columns, commit
timestamps, statement log, and the WAL itself.

The ballot service runs here on a throwaway PostgreSQL cluster of this module's own (initdb on a
spare port; ``wal_compression=off`` so that the WAL holds row data as written; commit timestamps
on; every statement logged with its parameters). Deputies cast
distinct ballots of 8 candidates, each ballot's compact form (``FAB-…``) unique and long enough to
search for in raw bytes; a named vote (记名) beside it shows that the same searches do find a
deputy next to their marks when the procedure puts them together."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from piaojue import processes
from piaojue.teller import new_key, open_share, registration
from shared.auth import Role
from shared.contracts.envelope import Envelope
from shared.contracts.intake import SlateCandidate, SlatePublished
from shared.messaging import declare_topology, new_broker, publish_envelope
from tests.e2e.town import TELLERS, token
from tests.support import PrivatePostgres, eventually

TOWN = "taihu.mimi"
DEPUTIES = [f"MIMI{i:02d}" for i in range(12)]
SEATS, CANDIDATES = 3, 8
NEAR = 256  # bytes: a named ballot's deputy id and marks lie within a few dozen bytes of each other in the WAL


@pytest.fixture(scope="module")
def private_pg():
    """A PostgreSQL cluster of this module's own, removed afterwards whatever happens."""
    options = "-c wal_compression=off -c track_commit_timestamp=on -c log_statement=all -c log_parameter_max_length=-1"
    with PrivatePostgres("piaojue-wal-", options) as pg:
        yield {"url": pg.url, "wal": pg.wal, "log": pg.log}


@pytest.fixture(scope="module")
def ballot(settings, private_pg, tmp_path_factory):
    """The ballot service on the private cluster. It shares this run's vhost: no other ballot
    process runs while this module does (the services are started per module)."""
    own = settings.model_copy(update={"database_url": private_pg["url"], "base_port": settings.base_port + 50})
    procs = {}
    try:
        log = tmp_path_factory.mktemp("private-ballot") / "ballot.log"
        env = {**os.environ, "PIAOJUE_DATABASE_URL": own.database_url, "PIAOJUE_BASE_PORT": str(own.base_port)}
        with open(log, "ab") as out:
            procs["ballot"] = subprocess.Popen([sys.executable, "-m", "services.ballot", "--migrate"], env=env, stdout=out, stderr=out)
        processes.wait_ready(own, procs)
        yield own, log
    finally:
        processes.stop(procs)


class Hall:
    """One township on the private service: slate by event, roster, session, tellers."""

    def __init__(self, settings, client: httpx.AsyncClient) -> None:
        self.settings, self.client, self.keys = settings, client, {t: new_key() for t in TELLERS}
        self.session_id: str | None = None  # deputies vote with this session's credential

    async def call(self, method: str, path: str, role: Role = Role.PRESIDING, sub: str = "chair", **kw) -> dict:
        claims = {"session": self.session_id, "term": 1} if role == Role.DEPUTY else {}
        headers = {"authorization": f"Bearer {token(sub, role, TOWN, **claims)}", "idempotency-key": str(uuid4())}
        response = await self.client.request(method, self.settings.url("ballot") + path, headers=headers, **kw)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def session(self) -> tuple[dict, list[str]]:
        slate = SlatePublished(slate_id=uuid4(), title="密镇候选清单", year=2024, seats=SEATS,
                               candidates=[SlateCandidate(candidate_id=uuid4(), title=f"项目{i}") for i in range(CANDIDATES)])
        broker = new_broker(self.settings)
        await broker.connect()
        try:
            await declare_topology(broker, self.settings)
            await publish_envelope(broker, Envelope(type=slate.TYPE, version=slate.VERSION, jurisdiction=TOWN, correlation_id=uuid4(),
                                                    producer="intake", data=slate.model_dump(mode="json")).model_dump(mode="json"))
        finally:
            await broker.stop()

        async def arrived():
            headers = {"authorization": f"Bearer {token('office', Role.OFFICE, TOWN)}"}
            return (await self.client.get(f"{self.settings.url('ballot')}/slates/{slate.slate_id}", headers=headers)).status_code == 200

        await eventually(arrived, what="the slate in the private ballot service")
        await self.call("PUT", "/terms/1/roster", Role.OFFICE, "office",
                        json={"quota": len(DEPUTIES), "deputies": [{"deputy_id": d, "name": f"代表{d}"} for d in DEPUTIES]})
        session = await self.call("POST", "/sessions", Role.OFFICE, "office", json={"name": "密镇人代会", "year": 2024, "term": 1})
        self.session_id = session["id"]
        await self.call("POST", f"/sessions/{session['id']}/roll-call", Role.OFFICE, "office", json={"present": DEPUTIES})
        for teller, key in self.keys.items():
            await self.call("PUT", "/tellers/me/key", Role.TELLER, teller, json=registration(key))
        await self.call("PUT", f"/sessions/{session['id']}/tellers", json={"tellers": list(TELLERS), "threshold": 2})
        return {**session, "slate_id": str(slate.slate_id)}, [str(c.candidate_id) for c in slate.candidates]

    async def count(self, vote: dict) -> dict:
        await self.call("POST", f"/votes/{vote['id']}/close")
        for teller in TELLERS[:2]:
            mine = await self.call("GET", f"/votes/{vote['id']}/shares/mine", Role.TELLER, teller)
            counted = await self.call("POST", f"/votes/{vote['id']}/shares", Role.TELLER, teller, json=open_share(self.keys[teller], mine))
        return counted


def ballots_for(candidates: list[str]) -> dict[str, tuple[dict[str, str], str]]:
    """Each deputy's marks and their compact form: distinct, mixed, at most SEATS "for"."""
    words = {"F": "for", "A": "against", "B": "abstain"}
    patterns = (p for p in itertools.product("FAB-", repeat=CANDIDATES) if p.count("F") <= SEATS and len(set(p)) == 4
                and p[0] != p[1])
    chosen = list(itertools.islice(patterns, 0, 997 * len(DEPUTIES), 997))  # spread out, not neighbours
    return {d: ({c: words[x] for c, x in zip(candidates, p, strict=True) if x != "-"}, "".join(p))
            for d, p in zip(DEPUTIES, chosen, strict=True)}


def wal_bytes(private_pg) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(private_pg["wal"].iterdir()) if re.fullmatch(r"[0-9A-F]{24}", p.name))


def near(data: bytes, a: bytes, b: bytes, window: int = NEAR) -> bool:
    """Whether ``a`` and ``b`` occur within ``window`` bytes of each other anywhere in ``data``."""
    spots = [m.start() for m in re.finditer(re.escape(b), data)]
    return any(abs(m.start() - s) <= window for m in re.finditer(re.escape(a), data) for s in spots)


async def test_a_cast_writes_nothing_that_reveals_the_marks_and_the_wal_holds_no_deputy_next_to_their_marks(ballot, private_pg):
    own, service_log = ballot
    db = await asyncpg.connect(private_pg["url"])
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            hall = Hall(own, client)
            session, candidates = await hall.session()
            cast = ballots_for(candidates)
            vote = await hall.call("POST", f"/sessions/{session['id']}/votes", json={"slate_id": session["slate_id"]})
            await hall.call("POST", f"/votes/{vote['id']}/open")
            tables = [r[0] for r in await db.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'ballot'"
                                                   " AND table_type = 'BASE TABLE'")]
            written, receipts, sealed_sizes = set(), {}, set()
            for deputy, (marks, compact) in cast.items():
                before = await db.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                receipts[deputy] = (await hall.call("POST", f"/votes/{vote['id']}/ballots", Role.DEPUTY, deputy,
                                                    json={"marks": marks}))["receipt"]
                after = await db.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                # Every row of the schema written by this cast, every column, its system columns and commit time.
                for table in tables:
                    rows = await db.fetch(
                        f"SELECT to_jsonb(t)::text AS columns, xmin::text AS xmin, ctid::text AS ctid,"
                        f" pg_xact_commit_timestamp(xmin)::text AS committed FROM ballot.{table} t"
                        f" WHERE xmin::text::bigint >= $1 AND xmin::text::bigint < $2", before, after)
                    for row in rows:
                        written.add(table)
                        seen = " ".join(str(v) for v in row.values())
                        assert compact not in seen and not any(c in seen for c in candidates), (table, seen)
                        assert not re.search(r'"(for|against|abstain)"', seen), (table, seen)
                    if table == "sealed_ballots":
                        sealed_sizes |= {len(r[0]) for r in await db.fetch(
                            "SELECT sealed FROM ballot.sealed_ballots WHERE xmin::text::bigint >= $1 AND xmin::text::bigint < $2",
                            before, after)}
            # What a cast writes: the deputy's ballot taken, a sealed ballot of the round's one size, the stored answer.
            assert written == {"issued", "sealed_ballots", "idempotency"}
            assert len(sealed_sizes) == 1

            await db.execute("SELECT pg_switch_wal()")
            open_wal = wal_bytes(private_pg)
            assert all(d.encode() in open_wal for d in DEPUTIES)  # the casts are in these bytes
            # While the round is open, no ballot's marks are anywhere in the WAL, in any form.
            assert not [d for d, (_, compact) in cast.items() if compact.encode() in open_wal]

            counted = await hall.count(vote)
            assert (counted["collected"], counted["valid"]) == (len(DEPUTIES), len(DEPUTIES))
            # The named vote (记名) beside it: its deputies' marks lie right next to their ids.
            await hall.call("POST", f"/votes/{vote['id']}/void", json={"reason": "对照组前作废"})
            named = await hall.call("POST", f"/sessions/{session['id']}/votes",
                                    json={"slate_id": session["slate_id"], "rules": {"named": True}, "reason": "对照: 记名表决"})
            await hall.call("POST", f"/votes/{named['id']}/open")
            for deputy, (marks, _) in list(cast.items())[:3]:
                await hall.call("POST", f"/votes/{named['id']}/ballots", Role.DEPUTY, deputy, json={"marks": marks})

        await db.execute("SELECT pg_switch_wal()")
        wal = wal_bytes(private_pg)
        # After the count the opened ballots are in the WAL (the search finds them), never near a deputy's id.
        assert all(compact.encode() in wal for _, compact in cast.values())
        assert not [d for d, (_, compact) in list(cast.items())[3:] if near(wal, d.encode(), compact.encode())]
        assert all(near(wal, d.encode(), compact.encode()) for d, (_, compact) in list(cast.items())[:3])  # the named ones

        # After the count: the plaintext was written by a transaction that wrote no deputy's row; no sealed
        # ballot and no share is left to open.
        plain = await db.fetch("SELECT ballot, xmin::text AS xmin FROM ballot.ballots WHERE vote_id = $1", UUID(vote["id"]))
        assert sorted(r["ballot"] for r in plain) == sorted(compact for _, compact in cast.values())
        issued_xmins = {r[0] for r in await db.fetch("SELECT xmin::text FROM ballot.issued WHERE vote_id = $1", UUID(vote["id"]))}
        assert len({r["xmin"] for r in plain}) == 1 and not {r["xmin"] for r in plain} & issued_xmins
        for table in ("sealed_ballots", "presented_shares"):
            assert await db.fetchval(f"SELECT count(*) FROM ballot.{table} WHERE vote_id = $1", UUID(vote["id"])) == 0
        assert await db.fetchval("SELECT count(*) FROM ballot.round_shares WHERE vote_id = $1 AND sealed IS NOT NULL",
                                 UUID(vote["id"])) == 0
        trackers = {r[0] for r in await db.fetch("SELECT tracker FROM ballot.receipts WHERE vote_id = $1", UUID(vote["id"]))}
        assert trackers == set(receipts.values())
    finally:
        await db.close()

    # The statement log has every cast's parameters (the deputy next to a sealed ballot), never marks;
    # the service's log never a deputy next to marks.
    server_log = private_pg["log"].read_text(errors="replace")
    assert all(d in server_log for d in DEPUTIES[3:])
    assert not [d for d, (_, compact) in list(cast.items())[3:] if compact in server_log]
    for line in service_log.read_text(errors="replace").splitlines():
        if any(d in line for d in DEPUTIES):
            assert not any(c in line for c in candidates), line
            assert not any(compact in line for _, compact in cast.values()), line

