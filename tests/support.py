"""Helpers the integration and end-to-end tests share."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from shared.contracts.ballot import CandidateResult, ResultCertified, RoundCounts
from shared.contracts.envelope import Envelope


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 30, what: str = "condition") -> Any:
    """Wait for ``probe`` to return something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def certified_result(jurisdiction: str = "taihu.ceshi", chosen: int = 7, candidates: int = 10,
                     event_id: UUID | None = None, vote_id: UUID | None = None) -> Envelope:
    """A ``ballot.result.certified`` envelope as the ballot service would send it."""
    results = [
        CandidateResult(candidate_id=uuid4(), title=f"候选项目{i + 1}", for_votes=50 - i, against=i, abstain=2,
                        passed=i < chosen, chosen=i < chosen, rank=i + 1 if i < chosen else None)
        for i in range(candidates)
    ]
    payload = ResultCertified(
        vote_id=vote_id or uuid4(), session_id=uuid4(), session_name="测试镇人民代表大会", slate_id=uuid4(), year=2024,
        seats=chosen, seated=58, present=52, issued=52, collected=52, valid=52, invalid=0, rules={},
        candidates=results, certified_at=datetime.now(UTC), certified_by="presiding",
        rounds=[RoundCounts(round=1, candidates=[c.candidate_id for c in results], seats=chosen, issued=52, collected=52,
                            valid=52, invalid=0, void=False)],
    )
    return Envelope(id=event_id or uuid4(), type=payload.TYPE, version=payload.VERSION, jurisdiction=jurisdiction,
                    correlation_id=uuid4(), producer="ballot", data=payload.model_dump(mode="json"))


async def depth(channel, queue: str) -> int:
    """Messages ready on a queue (passive declare: the queue must exist)."""
    declared = await channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count


def assert_problem(response, status: int, code: str) -> None:
    """An RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["title"]


async def equals(awaitable, expected) -> bool:
    return await awaitable == expected


async def run_cli(*args: str) -> tuple[int, str]:
    """``piaojue ARGS`` in this process (a thread of its own: the command runs its own event loop),
    its exit code and what it printed; quicker than a process for a test that calls it often."""
    import contextlib
    import io

    from piaojue.cli import main

    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return main(list(args))

    code = await asyncio.to_thread(run)
    return code, out.getvalue()


# Written by a service's own background work (scoring's webhook sender retries on its own clock).
BACKGROUND_TABLES = ("webhook_deliveries", "webhook_attempts")


async def row_counts(settings, schema: str) -> dict[str, int]:
    """How many rows each table of a service's schema holds: what a refused request must not change."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1 AND NOT tablename = ANY($2)",
                                  schema, list(BACKGROUND_TABLES))
        return {t["tablename"]: await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{t["tablename"]}"') for t in tables}
    finally:
        await conn.close()


class Receiver:
    """``piaojue county-receiver`` in a process of its own, with the secret of its subscription."""

    def __init__(self, settings, store) -> None:
        import os
        import secrets
        import subprocess
        import sys

        self.secret = secrets.token_urlsafe(32)
        self.port = settings.base_port + 9
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "piaojue.cli", "county-receiver", "--port", str(self.port), "--store", str(store)],
            env={**os.environ, "PIAOJUE_COUNTY_WEBHOOK_SECRET": self.secret})

    def wait_ready(self, timeout: float = 30) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the county receiver did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        from piaojue import processes

        processes.stop({"receiver": self.proc})


# ---------------------------------------------------------------- faults of the test's own


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    from pathlib import Path

    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    assert found, f"no {name} under /usr/lib/postgresql/*/bin"
    return str(found[-1])


def _as_postgres(*cmd: str) -> None:
    import subprocess

    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=120)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl on a spare port in a temporary
    folder), never the machine's: a test may stop and restart it. ``with`` removes it whatever happens."""

    def __init__(self, prefix: str = "piaojue-pg-", options: str = "") -> None:
        import shutil
        import tempfile
        from pathlib import Path

        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        shutil.chown(self.root, "postgres")
        self.data, self.port, self.log = self.root / "data", free_port(), self.root / "server.log"
        self.wal = self.data / "pg_wal"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/piaojue"
        self.options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
                        f" -c fsync=off {options}")
        self.running = False

    def __enter__(self) -> PrivatePostgres:
        import subprocess

        try:
            _as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            self.start()
            subprocess.run([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc",
                            "CREATE DATABASE piaojue"], check=True, capture_output=True, timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self) -> None:
        _as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", self.options, "-w", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def __exit__(self, *exc) -> None:
        import shutil

        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class TcpProxy:
    """A TCP proxy of the test's own between the services and the machine's RabbitMQ, in a thread of
    its own (so a blocking test does not stall it): ``cut()`` closes every connection and refuses new
    ones, ``hang()`` keeps them open but forwards nothing either way (a broker that never answers),
    ``restore()`` forwards again. The machine's RabbitMQ is never stopped."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "forward"
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tcp-proxy")
        self._thread.start()
        self._call(self._listen())

    def url(self, amqp_url: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(amqp_url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def _call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.close()
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pair = (writer, upstream)
        self._pairs.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    while self.mode == "hang":  # hold the bytes: the other side waits for an answer
                        await asyncio.sleep(0.05)
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                for w in pair:
                    w.close()
                self._pairs.discard(pair)

        await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, writer))

    async def _cut(self) -> None:
        self.mode = "cut"
        if self._server is not None:
            self._server.close()
            self._server = None
        for pair in list(self._pairs):
            for w in pair:
                w.transport.abort()
        self._pairs.clear()

    async def _restore(self) -> None:
        self.mode = "forward"
        if self._server is None:
            await self._listen()

    def cut(self) -> None:
        self._call(self._cut())

    def hang(self) -> None:
        self.mode = "hang"

    def restore(self) -> None:
        self._call(self._restore())

    def close(self) -> None:
        try:
            self._call(self._cut())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


async def connected(app, timeout: float = 30) -> None:
    """Wait for an in-process service's broker link (made in the background) to be up: its topology
    declared and its consumers subscribed."""

    async def up() -> bool:
        return app.state.link.connected

    await eventually(up, timeout=timeout, what="the service's broker connection")


@contextlib.asynccontextmanager
async def running(service, settings):
    """A service in-process (HTTP app, consumers, relay), its broker link up."""
    from shared.service import create_app

    app = create_app(service, settings)
    async with app.router.lifespan_context(app):
        await connected(app)
        yield app
