"""The congress the bench plays: townships with their rosters, sessions, tellers, slates (as
events) and open votes; every deputy's ballot as ready-to-send bytes; the raw ceiling (the rows a
cast writes, by plain asyncpg); and the big vote: close, the tellers' shares, certification."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from piaojue.bench.client import Load, Pool, request
from piaojue.bench.infrastructure import cpu_delta, cpu_snapshot

TERM, YEAR, SEATS, CANDIDATES, TOWNSHIP_SIZE = 1, 2025, 7, 10, 50
TELLERS, THRESHOLD = ("JP1", "JP2", "JP3"), 2
CHUNK = 10_000  # the most deputies one roster or roll-call request takes (bounded input)


@dataclass
class Township:
    """One tenant: a roster, a session with its tellers, a slate and an open vote."""

    jurisdiction: str
    deputies: list[str]
    slate_id: UUID = field(default_factory=uuid4)
    candidates: list[UUID] = field(default_factory=lambda: [uuid4() for _ in range(CANDIDATES)])
    session_id: str = ""
    vote_id: str = ""
    round: int = 0

    def token(self, role: str, sub: str | None = None) -> str:
        from shared.auth import mint

        return mint(sub or role, role, self.jurisdiction, ttl_s=86400)

    def marks(self, j: int) -> dict[str, str]:
        """Deputy j's ballot: 5 candidates always "for", then 80 % / 70 % / 20 % for the next three
        (a clear cut-off at seat 7, so the vote is decided), the last two against/abstain/blank.
        At most 7 "for" marks: every ballot is valid."""
        k, c = j % 10, [str(x) for x in self.candidates]
        marks = dict.fromkeys(c[:5], "for")
        marks[c[5]] = "for" if k < 8 else "against"
        marks[c[6]] = "for" if k < 7 else "abstain"
        marks[c[7]] = "for" if k >= 8 else "against"
        marks[c[8]] = "against" if k % 2 else "abstain"
        if k % 3:
            marks[c[9]] = "against"
        return marks

    def compact(self, j: int) -> str:
        from services.ballot.domain.ballots import encode
        from services.ballot.domain.rules import Mark

        return encode({UUID(c): Mark(m) for c, m in self.marks(j).items()}, self.candidates)


def townships(tag: str, deputies: int, size: int = TOWNSHIP_SIZE) -> list[Township]:
    """Townships of ``size`` deputies (the last one smaller if need be), ``deputies`` in all."""
    return [Township(f"bench.{tag}{i:04d}", [f"{tag}{i:04d}-{j:06d}" for j in range(start, min(start + size, deputies))])
            for i, start in enumerate(range(0, deputies, size))]


async def publish_slates(settings: Any, towns: Sequence[Township]) -> None:
    """What intake would send: one ``intake.slate.published`` per township."""
    from shared.contracts.envelope import Envelope
    from shared.contracts.intake import SlateCandidate, SlatePublished
    from shared.messaging import declare_topology, new_broker, publish_envelope

    broker = new_broker(settings)
    await broker.connect()
    try:
        await declare_topology(broker, settings)
        for chunk in range(0, len(towns), 200):  # confirms come back in parallel within a chunk
            envelopes = []
            for t in towns[chunk:chunk + 200]:
                slate = SlatePublished(slate_id=t.slate_id, title=f"{t.jurisdiction} {YEAR} 民生实事候选项目", year=YEAR,
                                       seats=SEATS, candidates=[SlateCandidate(candidate_id=c, title=f"候选项目{n + 1}")
                                                                for n, c in enumerate(t.candidates)])
                envelopes.append(Envelope(type=slate.TYPE, version=slate.VERSION, jurisdiction=t.jurisdiction,
                                          correlation_id=uuid4(), producer="intake", data=slate.model_dump(mode="json")))
            await asyncio.gather(*(publish_envelope(broker, e.model_dump(mode="json")) for e in envelopes))
    finally:
        await broker.stop()


def teller_keys() -> dict[str, dict[str, str]]:
    """The tellers' keys of the run (one set, registered in every township)."""
    from piaojue.teller import new_key

    return {t: new_key() for t in TELLERS}


async def set_up(pool: Pool, t: Township, keys: dict[str, dict[str, str]], slate_wait_s: float = 120) -> None:
    from piaojue.teller import registration

    office, chair = t.token("office"), t.token("presiding")
    for start in range(0, len(t.deputies), CHUNK):
        await pool.call("PUT", f"/terms/{TERM}/roster", office, {"quota": len(t.deputies), "deputies": [
            {"deputy_id": d, "name": f"代表{d}"} for d in t.deputies[start:start + CHUNK]]})
    session = await pool.call("POST", "/sessions", office, {"name": f"{t.jurisdiction} 人民代表大会", "year": YEAR, "term": TERM})
    t.session_id = session["id"]
    for start in range(0, len(t.deputies), CHUNK):
        await pool.call("POST", f"/sessions/{t.session_id}/roll-call", office, {"present": t.deputies[start:start + CHUNK]})
    for teller, key in keys.items():
        await pool.call("PUT", "/tellers/me/key", t.token("teller", teller), registration(key))
    await pool.call("PUT", f"/sessions/{t.session_id}/tellers", chair, {"tellers": list(TELLERS), "threshold": THRESHOLD})
    # The slate arrives by event, on whichever replica consumes it: wait until the API sees it.
    deadline = time.monotonic() + slate_wait_s
    while True:
        conn = await pool.idle.get()
        try:
            status, _ = await conn.send(request("GET", f"/slates/{t.slate_id}", office))
        finally:
            pool.idle.put_nowait(conn)
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"slate {t.slate_id} of {t.jurisdiction} not received after {slate_wait_s}s")
        await asyncio.sleep(0.1)
    vote = await pool.call("POST", f"/sessions/{t.session_id}/votes", office, {"slate_id": str(t.slate_id)})
    t.vote_id = vote["id"]
    opened = await pool.call("POST", f"/votes/{t.vote_id}/open", chair)
    t.round = opened.get("round", 1)


async def set_up_all(pool: Pool, towns: Sequence[Township], keys: dict[str, dict[str, str]],
                     parallel: int = 16) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(t: Township) -> None:
        async with gate:
            await set_up(pool, t, keys)

    await asyncio.gather(*(one(t) for t in towns))


def cast_requests(towns: Sequence[Township]) -> list[bytes]:
    """Every deputy's ballot as ready-to-send bytes, interleaved across townships (they all vote
    at once). Each carries an Idempotency-Key, as a voting terminal that retries would send."""
    from shared.auth import mint

    bodies = {t.jurisdiction: [json.dumps({"marks": t.marks(k)}) for k in range(10)] for t in towns}
    out = []
    for j in range(max(len(t.deputies) for t in towns)):
        for t in towns:
            if j < len(t.deputies):
                # the deputy's voting credential for the session (identity issues it at check-in)
                token = mint(t.deputies[j], "deputy", t.jurisdiction, ttl_s=86400, session=t.session_id, term=TERM)
                body = bodies[t.jurisdiction][j % 10].encode()
                out.append(f"POST /votes/{t.vote_id}/ballots HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Authorization: Bearer {token}\r\nIdempotency-Key: {uuid4().hex}\r\n"
                           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


# ---------------------------------------------------------------- the raw ceiling

# The rows ``POST /votes/{id}/ballots`` writes: the deputy's issued ballot taken, the sealed ballot,
# the idempotency answer with the tracker. One statement, so one round trip and one commit per
# ballot (a ballot must be durable before the deputy is told it counted): the most PostgreSQL does.
CEILING = """
WITH taken AS (UPDATE issued SET cast_done = true
               WHERE vote_id = $1 AND round = $2 AND deputy_id = $3 AND NOT cast_done RETURNING vote_id, round),
     b AS (INSERT INTO sealed_ballots (vote_id, round, sealed) SELECT vote_id, round, $4 FROM taken),
     i AS (INSERT INTO idempotency (principal, key, fingerprint, status, body) SELECT $3, $5, $6, 201, $7::jsonb FROM taken)
SELECT count(*) FROM taken"""


async def seal_all(database_url: str, t: Township) -> list[bytes]:
    """Every deputy's ballot of a township sealed to its round's public key, as the service would
    (for the big vote, filled straight into the database)."""
    import asyncpg

    from services.ballot.domain import sealing

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ballot"})
    try:
        key = await conn.fetchrow("SELECT suite, public_key FROM rounds WHERE vote_id = $1 AND round = $2", UUID(t.vote_id), t.round)
    finally:
        await conn.close()
    suite, info = sealing.suite(key["suite"]), sealing.round_info(t.vote_id, t.round)
    patterns = [t.compact(k).encode() for k in range(10)]
    return [suite.seal(key["public_key"], patterns[j % 10], info) for j in range(len(t.deputies))]


async def raw_casts(database_url: str, towns: Sequence[Township], concurrency: int, limit_s: float,
                    pids: Sequence[int] = (), sealed: dict[str, list[bytes]] | None = None) -> Load:
    """Every deputy's ballot written straight to PostgreSQL by ``concurrency`` asyncpg connections:
    ``sealed`` ballots if given (the big vote, to be opened), else random bytes of a sealed ballot's size."""
    import asyncpg

    from services.ballot.domain.ballots import tracker

    jobs = [(t, j) for j in range(max(len(t.deputies) for t in towns)) for t in towns if j < len(t.deputies)]
    load, todo = Load(len(jobs)), iter(jobs)
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency,
                                     server_settings={"search_path": "ballot", "application_name": "piaojue-bench-raw"},
                                     command_timeout=30)
    size = 16 + 32 + CANDIDATES  # HPKE X25519/AES-128-GCM: enc, tag, one byte per candidate

    async def worker() -> None:
        async with pool.acquire() as conn:
            for t, j in todo:
                started = time.perf_counter()
                if started > deadline:
                    break
                blob = sealed[t.jurisdiction][j] if sealed else os.urandom(size)
                answer = json.dumps({"vote_id": t.vote_id, "round": t.round, "status": "cast", "receipt": tracker(blob)})
                taken = await conn.fetchval(CEILING, UUID(t.vote_id), t.round, t.deputies[j], blob, uuid4().hex,
                                            "bench-fingerprint", answer)
                load.record(201 if taken else 409, time.perf_counter() - started, b"no ballot issued")

    try:
        # Measured with the pool open: its backends' CPU is gone once they exit.
        cpu0, started = cpu_snapshot(pids), time.perf_counter()
        deadline = started + limit_s
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - started
        load.cpu = cpu_delta(cpu0, cpu_snapshot(pids), load.seconds, load.ok)
    finally:
        await pool.close()
    return load


# ---------------------------------------------------------------- the big vote: close → shares → certified


async def count_cast(database_url: str, towns: Sequence[Township]) -> tuple[int, int]:
    """(issued ballots marked cast, sealed ballots) over these townships' votes: what the service stored."""
    import asyncpg

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ballot"}, command_timeout=300)
    try:
        ids = [UUID(t.vote_id) for t in towns]
        return (await conn.fetchval("SELECT count(*) FROM issued WHERE vote_id = ANY($1) AND cast_done", ids),
                await conn.fetchval("SELECT count(*) FROM sealed_ballots WHERE vote_id = ANY($1)", ids))
    finally:
        await conn.close()


async def workers_peak(pids: Sequence[int], stop: asyncio.Event, peaks: dict[int, float]) -> None:
    """The largest VmHWM seen among each replica's child processes (its counting workers) while they run."""
    from piaojue.bench.infrastructure import descendants, peak_rss_mb

    while not stop.is_set():
        for pid in pids:
            for child in descendants(pid):
                peaks[pid] = max(peaks.get(pid, 0.0), peak_rss_mb(child) or 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def close_and_certify(pool: Pool, t: Township, keys: dict[str, dict[str, str]], pids: Sequence[int] = (),
                            peaks: dict[int, float] | None = None) -> dict[str, Any]:
    """Close; the first teller presents a share; the k-th share is timed to the count, then certify:
    ``close_to_certified_ms`` runs from the k-th share to the certification's answer. Meanwhile the
    replicas' counting workers are watched for their memory (``peaks``)."""
    from piaojue.teller import open_share

    stop = asyncio.Event()
    watcher = asyncio.create_task(workers_peak(pids, stop, peaks if peaks is not None else {}))

    chair = t.token("presiding")
    started = time.perf_counter()
    closed = await pool.call("POST", f"/votes/{t.vote_id}/close", chair, timeout=600)
    close_ms = 1000 * (time.perf_counter() - started)
    bodies = []
    for teller in TELLERS[:THRESHOLD]:
        who = t.token("teller", teller)
        bodies.append((who, open_share(keys[teller], await pool.call("GET", f"/votes/{t.vote_id}/shares/mine", who))))
    await pool.call("POST", f"/votes/{t.vote_id}/shares", bodies[0][0], bodies[0][1], expect=(202,))
    kth = time.perf_counter()
    counted = await pool.call("POST", f"/votes/{t.vote_id}/shares", bodies[-1][0], bodies[-1][1], timeout=600)
    mid = time.perf_counter()
    certified = await pool.call("POST", f"/votes/{t.vote_id}/certify", chair, timeout=600)
    done = time.perf_counter()
    stop.set()
    await watcher
    return {"close_ms": round(close_ms, 1), "status_at_close": closed.get("status"), "count_ms": round(1000 * (mid - kth), 1),
            "certify_ms": round(1000 * (done - mid), 1), "close_to_certified_ms": round(1000 * (done - kth), 1),
            "collected": counted.get("collected"), "chosen": len(certified.get("chosen") or []), "status": certified.get("status")}


def counted_log(log_dir: Path) -> dict[str, Any]:
    """What the counting replica logged of the big count: ballots, and how long opening them took."""
    best: dict[str, Any] = {}
    for path in log_dir.glob("replica*/ballot.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"round counted"' in line:
                entry = json.loads(line)
                if entry.get("ballots", 0) >= best.get("ballots", 0):
                    best = entry
    return {k: best.get(k) for k in ("ballots", "unopened", "open_ms", "count_ms", "workers")}


def unseal_reference(n: int = 2_000) -> float:
    """µs to open one sealed ballot on one core, in this process: the reference for the service's rate."""
    from services.ballot.domain import sealing

    suite = sealing.suite()
    private, public = suite.keypair()
    blobs = [suite.seal(public, b"FFFFFFAAB-", b"bench") for _ in range(n)]
    started = time.perf_counter()
    sealing.open_batch(suite.name, private, b"bench", blobs)
    return round(1e6 * (time.perf_counter() - started) / n, 1)


async def pure_tally(database_url: str, t: Township) -> dict[str, Any]:
    """``tally_compact`` + ``decide`` over the vote's opened ballots, in this process. Reading the rows
    is timed apart: ``tally_ms`` is the pure counting."""
    import asyncpg

    from services.ballot.domain import ballots, rules

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ballot"}, command_timeout=300)
    try:
        started = time.perf_counter()
        plain = [r[0] for r in await conn.fetch("SELECT ballot FROM ballots WHERE vote_id = $1", UUID(t.vote_id))]
        loaded = time.perf_counter()
    finally:
        await conn.close()
    vote_rules = rules.VoteRules()
    counted = ballots.tally_compact(plain, t.candidates, SEATS, vote_rules)
    outcome = rules.decide(counted, SEATS, len(t.deputies), len(t.deputies), vote_rules)
    done = time.perf_counter()
    return {"tally_ms": round(1000 * (done - loaded), 1), "load_ms": round(1000 * (loaded - started), 1),
            "ballots": counted.collected, "decided": outcome.decided, "chosen": len(outcome.chosen)}
