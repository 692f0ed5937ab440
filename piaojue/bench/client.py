"""The load client: a minimal HTTP/1.1 client and the closed- and open-loop load phases.

The load generator shares 2 cores with PostgreSQL, RabbitMQ and the replicas, so it must cost
little: measured here, httpx.AsyncClient took ~0.8 ms of CPU per POST, this client ~25 µs.
Requests are pre-built bytes; a response is read by its Content-Length (the services always
send one) and only its status is looked at."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4


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


