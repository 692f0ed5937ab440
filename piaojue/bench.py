"""``piaojue bench ballot``: how fast the ballot service takes a congress's ballots.

Everything runs on this machine, on a database and a RabbitMQ vhost of its own (both named
``piaojue_bench``), against R ballot replicas started here and stopped at the end:

  setup       townships, rosters, sessions, roll calls, slates (as events), votes: HTTP, not timed
  burst       all N ballots through the HTTP API, closed loop at a bounded concurrency
  rate        cast latency at a fixed offered rate (open loop, 1,000/s by default)
  raw         the rows a cast writes, by plain asyncpg in one statement per ballot (the ceiling)
  big vote    one vote of N ballots: close → certified over HTTP, and the pure tally in-process

The last line printed is one JSON object. The code lives here rather than in tests/bench/
because the ``piaojue`` console script cannot import ``tests``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

NAME = "piaojue_bench"  # the database and the vhost
BASE_PORT = 18700  # replica i serves on BASE_PORT + 10 * i + 2 (the ballot offset)
TERM, YEAR, SEATS, CANDIDATES, TOWNSHIP_SIZE = 1, 2025, 7, 10, 50


# ---------------------------------------------------------------- a minimal HTTP/1.1 client
# The load generator shares 2 cores with PostgreSQL, RabbitMQ and the replicas, so it must cost
# little: measured here, httpx.AsyncClient took ~0.8 ms of CPU per POST, this client ~25 µs.
# Requests are pre-built bytes; a response is read by its Content-Length (the services always
# send one) and only its status is looked at.


class ProtocolError(Exception):
    pass


class Conn:
    """One keep-alive connection to 127.0.0.1:port, one request at a time; reconnects lazily."""

    IDLE_S = 4.0  # uvicorn drops a keep-alive connection idle for 5 s: reconnect before that

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.used > self.IDLE_S:
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        try:
            self.writer.write(raw)
            await self.writer.drain()
            head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise ProtocolError("response without Content-Length")
            body = await self.reader.readexactly(int(head[at + 17:head.index(b"\r\n", at + 2)]))
        except BaseException:
            self.close()  # a half-read response (timeout, cancel) would desynchronise the stream
            raise
        if b"\r\nconnection: close" in head:
            self.close()
        self.used = time.monotonic()
        return int(head[9:12]), body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def request(method: str, path: str, token: str, body: Any = None, key: str | None = None) -> bytes:
    data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
             f"Content-Length: {len(data)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    if key:
        lines.append(f"Idempotency-Key: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


NET_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ProtocolError)


class Pool:
    """Idle connections spread round-robin over the replicas' ports."""

    def __init__(self, ports: Sequence[int], size: int) -> None:
        self.conns = [Conn(ports[i % len(ports)]) for i in range(size)]
        self.idle: asyncio.Queue[Conn] = asyncio.Queue()
        for conn in self.conns:
            self.idle.put_nowait(conn)

    async def call(self, method: str, path: str, token: str, body: Any = None, expect: Iterable[int] = (200, 201),
                   timeout: float = 120) -> Any:
        """One JSON call for the setup; anything but ``expect`` is an error."""
        conn = await self.idle.get()
        try:
            async with asyncio.timeout(timeout):
                status, data = await conn.send(request(method, path, token, body, key=uuid4().hex))
        finally:
            self.idle.put_nowait(conn)
        if status not in expect:
            raise RuntimeError(f"{method} {path} → {status}: {data[:500].decode(errors='replace')}")
        return json.loads(data) if data else None

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


@dataclass
class Load:
    """What one load phase saw: latencies of the 2xx answers, every status and error."""

    offered: int
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    samples: dict[int, str] = field(default_factory=dict)  # one body per non-2xx status
    seconds: float = 0.0
    cpu: dict[str, Any] = field(default_factory=dict)  # see cpu_delta

    def record(self, status: int, latency: float, body: bytes) -> None:
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.latencies.append(latency)
        elif status not in self.samples:
            self.samples[status] = body[:300].decode(errors="replace")

    @property
    def ok(self) -> int:
        return len(self.latencies)

    def pct(self, q: float) -> float | None:
        lat = sorted(self.latencies)
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None

    def summary(self) -> dict[str, Any]:
        return {"offered": self.offered, "ok": self.ok, "seconds": round(self.seconds, 2),
                "per_s": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
                "p50_ms": self.pct(0.50), "p99_ms": self.pct(0.99), "max_ms": self.pct(1.0),
                "statuses": dict(self.statuses), "errors": dict(self.errors), "samples": self.samples, "cpu": self.cpu}


async def closed_loop(pool: Pool, reqs: Sequence[bytes], concurrency: int, limit_s: float, timeout_s: float) -> Load:
    """``concurrency`` workers, each on its own connection, send the next request as soon as the
    previous answer is in: the most the service sustains at that concurrency. Workers pull from
    one shared iterator, so a slower replica simply takes fewer requests."""
    load, todo = Load(len(reqs)), iter(reqs)
    deadline = time.perf_counter() + limit_s

    async def worker() -> None:
        conn = await pool.idle.get()
        try:
            for raw in todo:
                started = time.perf_counter()
                if started > deadline:
                    break
                try:
                    async with asyncio.timeout(timeout_s):
                        status, body = await conn.send(raw)
                except NET_ERRORS as exc:
                    load.errors[type(exc).__name__] += 1
                    continue
                load.record(status, time.perf_counter() - started, body)
        finally:
            pool.idle.put_nowait(conn)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(pool.conns)))))
    load.seconds = time.perf_counter() - started
    return load


async def open_loop(pool: Pool, reqs: Sequence[bytes], rate: float, limit_s: float, timeout_s: float) -> Load:
    """Request i is due at start + i/rate whether or not earlier answers are in. Latency runs
    from the due time, so waiting for a free connection counts (no coordinated omission).
    Everything still unanswered at ``limit_s`` is cancelled and counted as an error."""
    load, tasks = Load(len(reqs)), set()
    start = time.perf_counter() + 0.05
    deadline = start + limit_s

    async def one(raw: bytes, due: float) -> None:
        conn = await pool.idle.get()
        try:
            async with asyncio.timeout(timeout_s):
                status, body = await conn.send(raw)
            load.record(status, time.perf_counter() - due, body)
        except NET_ERRORS as exc:
            load.errors[type(exc).__name__] += 1
        finally:
            pool.idle.put_nowait(conn)

    for i, raw in enumerate(reqs):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(raw, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _, late = await asyncio.wait(set(tasks), timeout=max(0.0, deadline - time.perf_counter()))
        for task in late:
            task.cancel()
        if late:
            load.errors["unanswered_at_deadline"] += len(late)
        await asyncio.gather(*late, return_exceptions=True)
    load.seconds = time.perf_counter() - start
    return load


# ---------------------------------------------------------------- processes: CPU and memory


def _stat(pid: int) -> tuple[str, float] | None:
    """(command name, CPU seconds used) of a process, or None once it has gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return raw[raw.index("(") + 1:raw.rindex(")")], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _other_database(pid: int) -> bool:
    """A PostgreSQL backend serving another database ("postgres: 15/main: user db host(port) ...")."""
    with contextlib.suppress(OSError):
        cmd = Path(f"/proc/{pid}/cmdline").read_text()
        return "(" in cmd and f" {NAME} " not in cmd
    return False


def cpu_snapshot(replicas: Sequence[int]) -> dict[Any, tuple[str, float]]:
    """CPU seconds so far per process, grouped: the replicas, this process, PostgreSQL (the bench
    database's backends and the server's own processes), RabbitMQ; and under ``machine`` all CPU
    time on the machine, so that anything else (other databases' backends, a test suite, the
    kernel's loopback networking) shows up as ``other``."""
    procs: dict[Any, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or (stat := _stat(int(entry.name))) is None:
            continue
        pid, (comm, cpu) = int(entry.name), stat
        if pid in replicas:
            procs[pid] = ("replicas", cpu)
        elif pid == os.getpid():
            procs[pid] = ("bench", cpu)
        elif comm.startswith("postgres") and not _other_database(pid):
            procs[pid] = ("postgres", cpu)
        elif comm.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
            procs[pid] = ("rabbitmq", cpu)
    busy = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    procs["machine"] = ("machine", (sum(busy) - busy[3] - busy[4]) / os.sysconf("SC_CLK_TCK"))  # minus idle, iowait
    return procs


def cpu_delta(before: dict[Any, tuple[str, float]], after: dict[Any, tuple[str, float]], seconds: float,
              ballots: int) -> dict[str, Any]:
    """Cores busy per group over a phase, and CPU milliseconds per ballot. Per process, so that a
    backend exiting meanwhile takes nothing away (what it used in the phase is lost, though)."""
    used: Counter = Counter()
    for key, (group, cpu) in after.items():
        used[group] += cpu - before.get(key, (group, 0.0))[1]
    used["other"] = max(0.0, used.pop("machine") - sum(used.values()))
    return {k: {"cores": round(v / seconds, 2), "ms_per_ballot": round(1000 * v / max(ballots, 1), 3)}
            for k, v in sorted(used.items())}


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """VmHWM: the most resident memory the process ever had."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


# ---------------------------------------------------------------- database, vhost, replicas


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=120)


def fresh_infra(base: Any) -> Any:
    """Drop and create the bench database and vhost; migrate. Returns the bench's settings."""
    import psycopg

    from piaojue.services import migrate_all

    with psycopg.connect(_with_path(base.database_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{NAME}"')
    rabbitmqctl("delete_vhost", NAME, check=False)  # left over by a run that was killed
    rabbitmqctl("add_vhost", NAME)
    rabbitmqctl("set_permissions", "-p", NAME, urlsplit(base.amqp_url).username or "guest", ".*", ".*", ".*")
    settings = base.model_copy(update={
        "database_url": _with_path(base.database_url, f"/{NAME}"), "amqp_url": _with_path(base.amqp_url, f"/{NAME}"),
    })
    migrate_all(settings)
    return settings


def drop_infra(base: Any, keep_db: bool) -> None:
    import psycopg

    rabbitmqctl("delete_vhost", NAME, check=False)
    if not keep_db:
        with psycopg.connect(_with_path(base.database_url, "/postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


def start_replicas(settings: Any, count: int, log_dir: Path) -> list[tuple[int, subprocess.Popen]]:
    from piaojue import processes

    replicas: list[tuple[int, subprocess.Popen]] = []
    try:
        for i in range(count):
            own = settings.model_copy(update={"base_port": BASE_PORT + 10 * i})
            (log_dir / f"replica{i}").mkdir(parents=True, exist_ok=True)
            # Tokens: the development issuer's key (or this environment's PIAOJUE_AUTH_*), which the replicas inherit.
            env = {"PIAOJUE_DATABASE_URL": own.database_url, "PIAOJUE_AMQP_URL": own.amqp_url,
                   "PIAOJUE_BASE_PORT": str(own.base_port)}
            procs = processes.start(own, ["ballot"], env=env, log_dir=log_dir / f"replica{i}")
            replicas.append((own.port("ballot"), procs["ballot"]))
            processes.wait_ready(own, procs)
    except BaseException:
        processes.stop({str(i): p for i, (_, p) in enumerate(replicas)})
        raise
    return replicas


# ---------------------------------------------------------------- the congress: townships and votes


@dataclass
class Township:
    """One tenant: a roster, a session, a slate and an open vote."""

    jurisdiction: str
    deputies: list[str]
    slate_id: UUID = field(default_factory=uuid4)
    candidates: list[UUID] = field(default_factory=lambda: [uuid4() for _ in range(CANDIDATES)])
    session_id: str = ""
    vote_id: str = ""
    round: int = 0

    def token(self, role: str, secret: str) -> str:
        from shared.auth import mint

        return mint(role, role, self.jurisdiction, ttl_s=86400, secret=secret)

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


async def set_up(pool: Pool, t: Township, secret: str, slate_wait_s: float = 120) -> None:
    office, chair = t.token("office", secret=secret), t.token("presiding", secret=secret)
    await pool.call("PUT", f"/terms/{TERM}/roster", office,
                    {"quota": len(t.deputies), "deputies": [{"deputy_id": d, "name": f"代表{d}"} for d in t.deputies]})
    session = await pool.call("POST", "/sessions", office, {"name": f"{t.jurisdiction} 人民代表大会", "year": YEAR, "term": TERM})
    t.session_id = session["id"]
    await pool.call("POST", f"/sessions/{t.session_id}/roll-call", office, {"present": t.deputies})
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


async def set_up_all(pool: Pool, towns: Sequence[Township], secret: str, parallel: int = 16) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(t: Township) -> None:
        async with gate:
            await set_up(pool, t, secret)

    await asyncio.gather(*(one(t) for t in towns))


def cast_requests(towns: Sequence[Township], secret: str) -> list[bytes]:
    """Every deputy's ballot as ready-to-send bytes, interleaved across townships (they all vote
    at once). Each carries an Idempotency-Key, as a voting terminal that retries would send."""
    from shared.auth import mint

    bodies = {t.jurisdiction: [json.dumps({"marks": t.marks(k)}) for k in range(10)] for t in towns}
    out = []
    for j in range(max(len(t.deputies) for t in towns)):
        for t in towns:
            if j < len(t.deputies):
                token = mint(t.deputies[j], "deputy", t.jurisdiction, ttl_s=86400, session=t.session_id, term=TERM)  # voting credential
                body = bodies[t.jurisdiction][j % 10].encode()
                out.append(f"POST /votes/{t.vote_id}/ballots HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Authorization: Bearer {token}\r\nIdempotency-Key: {uuid4().hex}\r\n"
                           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


# ---------------------------------------------------------------- the raw ceiling

# The rows ``POST /votes/{id}/ballots`` writes: the deputy's issued ballot taken, the marks, the
# receipt hash, the idempotency answer. One statement, so one round trip and one commit per ballot
# (a ballot must be durable before the deputy is told it counted): the most PostgreSQL does here.
CEILING = """
WITH taken AS (UPDATE issued SET cast_done = true
               WHERE vote_id = $1 AND round = $2 AND deputy_id = $3 AND NOT cast_done RETURNING vote_id, round),
     b AS (INSERT INTO ballots (vote_id, round, marks) SELECT vote_id, round, $4::jsonb FROM taken),
     r AS (INSERT INTO receipts (vote_id, round, hash) SELECT vote_id, round, $5 FROM taken),
     i AS (INSERT INTO idempotency (principal, key, fingerprint, status, body) SELECT $3, $6, $7, 201, $8::jsonb FROM taken)
SELECT count(*) FROM taken"""


async def raw_casts(database_url: str, towns: Sequence[Township], concurrency: int, limit_s: float,
                    pids: Sequence[int] = ()) -> Load:
    """Every deputy's ballot written straight to PostgreSQL by ``concurrency`` asyncpg connections."""
    import asyncpg

    jobs = [(t, j) for j in range(max(len(t.deputies) for t in towns)) for t in towns if j < len(t.deputies)]
    load, todo = Load(len(jobs)), iter(jobs)
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency,
                                     server_settings={"search_path": "ballot", "application_name": "piaojue-bench-raw"},
                                     command_timeout=30)
    bodies = {t.jurisdiction: [json.dumps(t.marks(k)) for k in range(10)] for t in towns}

    async def worker() -> None:
        async with pool.acquire() as conn:
            for t, j in todo:
                started = time.perf_counter()
                if started > deadline:
                    break
                vote_id, deputy = UUID(t.vote_id), t.deputies[j]
                args = (bodies[t.jurisdiction][j % 10], hashlib.sha256(secrets.token_hex(8).encode()).hexdigest(), uuid4().hex,
                        hashlib.sha256(f"POST/votes/{vote_id}/ballots".encode()).hexdigest(),
                        json.dumps({"vote_id": t.vote_id, "round": t.round, "status": "cast", "receipt": None}))
                taken = await conn.fetchval(CEILING, vote_id, t.round, deputy, *args)
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


# ---------------------------------------------------------------- the big vote: close → certified, tally


async def count_cast(database_url: str, towns: Sequence[Township]) -> tuple[int, int]:
    """(issued ballots marked cast, ballot rows) over these townships' votes: what the service stored."""
    import asyncpg

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ballot"}, command_timeout=300)
    try:
        ids = [UUID(t.vote_id) for t in towns]
        return (await conn.fetchval("SELECT count(*) FROM issued WHERE vote_id = ANY($1) AND cast_done", ids),
                await conn.fetchval("SELECT count(*) FROM ballots WHERE vote_id = ANY($1)", ids))
    finally:
        await conn.close()


async def close_and_certify(pool: Pool, t: Township, secret: str) -> dict[str, Any]:
    chair = t.token("presiding", secret=secret)
    started = time.perf_counter()
    closed = await pool.call("POST", f"/votes/{t.vote_id}/close", chair, timeout=600)
    mid = time.perf_counter()
    certified = await pool.call("POST", f"/votes/{t.vote_id}/certify", chair, timeout=600)
    done = time.perf_counter()
    return {"close_ms": round(1000 * (mid - started), 1), "certify_ms": round(1000 * (done - mid), 1),
            "close_to_certified_ms": round(1000 * (done - started), 1),
            "collected": closed.get("collected"), "chosen": len(certified.get("chosen") or []),
            "status": certified.get("status")}


async def pure_tally(database_url: str, t: Township) -> dict[str, Any]:
    """``domain.tally`` + ``domain.decide`` over the vote's stored ballots, in this process. Reading
    and decoding the rows is timed apart: ``tally_ms`` is the pure counting."""
    import asyncpg

    from services.ballot import domain

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ballot"}, command_timeout=300)
    try:
        started = time.perf_counter()
        rows = await conn.fetch("SELECT marks::text FROM ballots WHERE vote_id = $1", UUID(t.vote_id))
        ballots = [{UUID(c): domain.Mark(m) for c, m in json.loads(r[0]).items()} for r in rows]
        loaded = time.perf_counter()
    finally:
        await conn.close()
    rules = domain.VoteRules()
    counted = domain.tally(ballots, t.candidates, SEATS, rules)
    outcome = domain.decide(counted, SEATS, len(t.deputies), len(t.deputies), rules)
    done = time.perf_counter()
    return {"tally_ms": round(1000 * (done - loaded), 1), "load_ms": round(1000 * (loaded - started), 1),
            "ballots": counted.collected, "decided": outcome.decided, "chosen": len(outcome.chosen)}


# ---------------------------------------------------------------- profiling (optional)


def start_pyspy(pids: Sequence[int], out: Path) -> list[subprocess.Popen]:
    """py-spy on each replica, as collapsed stacks (see tests/bench/pyspy_top.py); SIGINT ends
    the recording and writes the file. Only the thread holding the GIL is sampled: py-spy counts
    the idle threads of FastAPI's thread pool as busy otherwise."""
    exe = Path(sys.executable).with_name("py-spy")
    return [subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", "100", "--gil", "--format", "raw",
                              "--full-filenames", "--output", str(out / f"replica{i}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, pid in enumerate(pids)]


def stop_pyspy(profilers: Sequence[subprocess.Popen]) -> None:
    for p in profilers:
        p.send_signal(signal.SIGINT)
    for p in profilers:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def sample_db(database_url: str, stop: asyncio.Event, every_s: float = 0.02) -> Counter:
    """What the bench database's backends are doing, sampled: (state, wait event, query head)."""
    import asyncpg

    seen: Counter = Counter()
    conn = await asyncpg.connect(database_url, command_timeout=10)
    try:
        while not stop.is_set():
            for r in await conn.fetch(
                "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, left(query, 60) AS query"
                " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle'", NAME):
                seen[(r["state"], r["wait"], r["query"])] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await conn.close()
    return seen


@contextlib.asynccontextmanager
async def profiling(out: Path | None, label: str, pids: Sequence[int], database_url: str, report: dict[str, Any]):
    """With ``--profile``: py-spy on the replicas into ``out/label/`` and pg_stat_activity samples
    into ``report["db_samples"][label]``, for the duration of the block."""
    if out is None:
        yield
        return
    (out / label).mkdir(parents=True, exist_ok=True)
    profilers, stop = start_pyspy(pids, out / label), asyncio.Event()
    sampler = asyncio.create_task(sample_db(database_url, stop))
    try:
        yield
    finally:
        stop.set()
        stop_pyspy(profilers)
        seen = await sampler
    states: Counter = Counter()
    for (state, wait, _), count in seen.items():
        states[f"{state} / {wait}"] += count
    total = sum(seen.values()) or 1
    report.setdefault("db_samples", {})[label] = {
        "by_state_pct": {k: round(100 * v / total, 1) for k, v in states.most_common()},
        "top": [(*k, v) for k, v in seen.most_common(12)]}


# ---------------------------------------------------------------- the run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deputies", type=int, default=100_000,
                   help="ballots in the burst (townships of 50) and deputies in the one big vote (default 100000)")
    p.add_argument("--replicas", type=int, default=2, help="ballot service processes (default 2)")
    # 16 = 8 per default pair of replicas, under each one's 10 database connections: measured here,
    # more in flight only queues inside the replicas and costs more CPU per ballot (64: -15 % ballots/s).
    p.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight in the burst (default 16)")
    p.add_argument("--rate", type=float, default=1000, help="offered ballots/s of the fixed-rate phase (default 1000)")
    p.add_argument("--rate-seconds", type=float, default=10, help="length of the fixed-rate phase (default 10)")
    p.add_argument("--limit", type=float, default=600, help="seconds a load phase may take at most (default 600)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="py-spy the replicas during the burst and the big close into DIR/burst, DIR/close, and sample "
                   "pg_stat_activity (needs py-spy in the venv)")
    p.add_argument("--keep-db", action="store_true", help=f"keep the {NAME} database afterwards")


def code_version() -> str:
    """The commit the replicas run, "+dirty" if services/ or shared/ have uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "services", "shared"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run(args: argparse.Namespace) -> int:
    from piaojue import processes
    from shared.settings import get_settings

    base = get_settings()
    if min(args.deputies, args.replicas, args.concurrency, args.rate, args.rate_seconds) <= 0:
        print("--deputies, --replicas, --concurrency, --rate and --rate-seconds must be positive", file=sys.stderr)
        return 2
    # Other work on the machine skews every figure: say so up front (it also shows as "other" CPU).
    before = cpu_snapshot(())
    time.sleep(1)
    busy = cpu_delta(before, cpu_snapshot(()), 1.0, 1)
    busy_cores = round(sum(c["cores"] for c in busy.values()), 2)
    if busy_cores > 0.2:
        print(f"warning: the machine is already busy ({busy_cores} cores in use before the bench starts)", file=sys.stderr)
    code = code_version()  # now: what the replicas about to start will import
    settings = fresh_infra(base)
    log_dir = Path(tempfile.mkdtemp(prefix="piaojue-bench-"))
    replicas: list[tuple[int, subprocess.Popen]] = []
    try:
        replicas = start_replicas(settings, args.replicas, log_dir)
        report = asyncio.run(_measure(args, settings, replicas))
        report["busy_before_cores"], report["code"] = busy_cores, code
        report["peak_rss_mb"] = {**{f"replica{i}": peak_rss_mb(p.pid) for i, (_, p) in enumerate(replicas)},
                                 "bench": peak_rss_mb()}
    finally:
        processes.stop({str(i): p for i, (_, p) in enumerate(replicas)})
        drop_infra(base, args.keep_db)
    report["logs"] = str(log_dir)
    _print(report)
    return 0


async def _measure(args: argparse.Namespace, settings: Any, replicas: list[tuple[int, subprocess.Popen]]) -> dict[str, Any]:
    secret, ports, pids = settings.auth_secret, [port for port, _ in replicas], [p.pid for _, p in replicas]
    n, db = args.deputies, settings.database_url
    burst, paced = townships("t", n), townships("r", max(1, round(args.rate * args.rate_seconds)))
    ceiling = townships("c", n)
    big = townships("big", n, size=n)[0]
    report: dict[str, Any] = {"deputies": n, "replicas": args.replicas, "concurrency": args.concurrency}
    pool = Pool(ports, max(args.concurrency, 16))
    try:
        # -- setup, not timed as casting
        started = time.perf_counter()
        await publish_slates(settings, [*burst, *paced, *ceiling, big])
        await set_up_all(pool, [*burst, *paced, *ceiling], secret)
        await set_up(pool, big, secret)
        burst_reqs, paced_reqs = cast_requests(burst, secret), cast_requests(paced, secret)
        report["setup_s"] = round(time.perf_counter() - started, 1)
        # The big roster, roll call and opening (N rows each) go through one replica: its peak so far.
        report["peak_rss_after_setup_mb"] = {f"replica{i}": peak_rss_mb(pid) for i, pid in enumerate(pids)}
        print(f"setup: {len(burst) + len(paced) + len(ceiling) + 1} townships in {report['setup_s']} s", file=sys.stderr)

        # -- burst: every ballot at once, closed loop
        async with profiling(args.profile, "burst", pids, db, report):
            cpu0 = cpu_snapshot(pids)
            load = await closed_loop(pool, burst_reqs, args.concurrency, args.limit, timeout_s=30)
            load.cpu = cpu_delta(cpu0, cpu_snapshot(pids), load.seconds, load.ok)
        report["burst"] = {**load.summary(), "stored": dict(zip(("issued_cast", "ballot_rows"), await count_cast(db, burst),
                                                                strict=True))}
        print(f"burst: {load.ok} ballots in {load.seconds:.1f} s", file=sys.stderr)

        # -- a fixed offered rate, open loop
        load = await open_loop(pool, paced_reqs, args.rate, args.rate_seconds + 60, timeout_s=30)
        report["rate"] = {"offered_per_s": args.rate, **load.summary()}
        print(f"rate: {load.ok} ballots offered at {args.rate:.0f}/s", file=sys.stderr)

        # -- the same rows without HTTP, at the same concurrency at the database: the replicas' pools
        # hold at most R x db_pool_max connections, whatever the number of requests in flight.
        report["raw_connections"] = raw_conns = min(args.concurrency, args.replicas * settings.db_pool_max)
        load = await raw_casts(db, ceiling, raw_conns, args.limit, pids=pids)
        report["raw"] = load.summary()
        print(f"raw: {load.ok} ballots in {load.seconds:.1f} s", file=sys.stderr)

        # -- one vote of n ballots, filled straight into the database: what is measured is the close
        fill = await raw_casts(db, [big], raw_conns, args.limit)
        async with profiling(args.profile, "close", pids, db, report):
            closing = await close_and_certify(pool, big, secret)
        report["big_vote"] = {"ballots": fill.ok, "fill_per_s": fill.summary()["per_s"], **closing,
                              **await pure_tally(db, big)}
    finally:
        pool.close()
    b, r, v = report["burst"], report["raw"], report["big_vote"]
    report.update(ballots_per_s=b["per_s"], cast_p50_ms=report["rate"]["p50_ms"], cast_p99_ms=report["rate"]["p99_ms"],
                  burst_p50_ms=b["p50_ms"], burst_p99_ms=b["p99_ms"], burst_seconds=b["seconds"],
                  within_a_minute=b["ok"] == n and b["seconds"] <= 60, tally_ms=v["tally_ms"],
                  close_to_certified_ms=v["close_to_certified_ms"], raw_ceiling_per_s=r["per_s"],
                  ratio=round(b["per_s"] / r["per_s"], 3) if r["per_s"] else None)
    return report


def _cpu(load: dict[str, Any]) -> str:
    return "CPU " + ", ".join(f"{k} {c['cores']} cores {c['ms_per_ballot']} ms/ballot" for k, c in load["cpu"].items())


def _print(report: dict[str, Any]) -> None:
    b, rate, v = report["burst"], report["rate"], report["big_vote"]
    lines = [
        f"\npiaojue bench ballot — {report['deputies']} deputies, {report['replicas']} replica(s), "
        f"concurrency {report['concurrency']}, code {report['code']} (setup {report['setup_s']} s; machine busy before start: "
        f"{report['busy_before_cores']} cores)",
        f"  burst       {b['ok']}/{b['offered']} ballots in {b['seconds']} s = {b['per_s']}/s"
        f"  p50 {b['p50_ms']} ms  p99 {b['p99_ms']} ms  max {b['max_ms']} ms"
        f"  ({'within' if report['within_a_minute'] else 'NOT within'} a minute)",
        f"              stored {b['stored']}  statuses {b['statuses']}  errors {b['errors']}",
        f"              {_cpu(b)}",
        f"  rate        offered {rate['offered_per_s']:.0f}/s, {rate['offered']} ballots: {rate['ok']} ok at {rate['per_s']}/s"
        f"  p50 {rate['p50_ms']} ms  p99 {rate['p99_ms']} ms  max {rate['max_ms']} ms  errors {rate['errors']}",
    ]
    r = report["raw"]
    lines += [
        f"  raw         {r['ok']} ballots in {r['seconds']} s = {r['per_s']}/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
        f"  statuses {r['statuses']}  ({report['raw_connections']} connections: --concurrency, at most the replicas' pools)",
        f"              {_cpu(r)}",
        f"  ratio       HTTP / raw ceiling = {report['ratio']}",
        f"  big vote    {v['ballots']} ballots (filled at {v['fill_per_s']}/s): close {v['close_ms']} ms + certify "
        f"{v['certify_ms']} ms = {v['close_to_certified_ms']} ms; chosen {v['chosen']}, {v['status']}",
        f"              pure tally + decide {v['tally_ms']} ms (reading + decoding the rows {v['load_ms']} ms)",
        "  peak RSS    " + ", ".join(f"{k} {mb} MB" for k, mb in report["peak_rss_mb"].items())
        + "  (replicas after setup: " + ", ".join(f"{mb} MB" for mb in report["peak_rss_after_setup_mb"].values()) + ")",
        f"  logs        {report['logs']}",
    ]
    lines += [f"  sample {status}: {body}" for status, body in {**b["samples"], **rate["samples"]}.items()]
    for label, samples in report.get("db_samples", {}).items():
        lines.append(f"  pg_stat_activity of the bench database during the {label}, share of busy-backend samples:")
        lines += [f"    {pct:5.1f}%  {state}" for state, pct in samples["by_state_pct"].items()]
        lines.append("  most seen (state, wait, query, samples):")
        lines += [f"    {row}" for row in samples["top"]]
    print("\n".join(lines))
    keys = ("ballots_per_s", "cast_p50_ms", "cast_p99_ms", "tally_ms", "close_to_certified_ms", "raw_ceiling_per_s", "ratio",
            "peak_rss_mb", "deputies", "replicas", "concurrency", "burst_seconds", "burst_p50_ms", "burst_p99_ms",
            "within_a_minute", "raw_connections", "busy_before_cores", "code")
    print(json.dumps({k: report[k] for k in keys}))
