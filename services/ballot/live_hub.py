"""The live view's watcher: one per replica, whatever the number of screens.

Each replica keeps one PostgreSQL connection of its own (``application_name`` piaojue-ballot-live)
that LISTENs on ``ballot_live`` (migrations/0004_live.sql: roll call, votes, rounds, shares,
revocations and session changes notify there in their own transaction). A notification marks its
session dirty; each session is read at most once per ``live_read_seconds``, in its own fifth of
that interval, with the other sessions due then in one statement, and each changed state is encoded
once and handed to every client of that session in memory. No client ever causes a query of its own.

Casts notify nobody (NOTIFY takes a cluster-wide lock until commit, and casts are most of the
writes): while a session that has clients here has a vote open, this replica re-reads it every
``live_read_seconds`` anyway, so a count reaches the screens at most that long after its commit,
whichever replica took the cast. Every watched session is re-read every ``live_refresh_seconds``
too, so a notification lost with a dropped connection delays a change by that much at most. While
the database is away, clients keep their stream and their last state (heartbeats go on); once the
connection is back every watched session is re-read.

What is sent is the whole state of a session (counts, never a partial tally), so an event id is
the state's own hash: every replica gives the same id to the same state, and a client that comes
back with ``Last-Event-ID`` gets the current state unless it already has it — nothing in between
can be missed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import Counter, deque
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import Counter as Metric
from prometheus_client import Gauge

from shared.auth import Principal
from shared.db import _init_connection
from shared.settings import Settings

log = structlog.get_logger()
CHANNEL = "ballot_live"
APPLICATION = "piaojue-ballot-live"
CLIENTS = Gauge("piaojue_live_clients", "live-view streams open on this replica")
READS = Metric("piaojue_live_reads_total", "coalesced reads of the live view's sessions")
ENDED = Metric("piaojue_live_ended_total", "live-view streams ended by the service", ["reason"])

# The end of a stream: why, whether reconnecting (with Last-Event-ID) can help, and for people.
REASONS = {
    "session-closed": (False, "会议已闭会 The session is closed"),
    "credential-revoked": (False, "凭证已被撤销 Your credential was revoked"),
    "deputy-absent": (False, "您已被登记为离场 You are marked absent"),
    "token-expired": (True, "登录已过期，请续期后重连 Your sign-in expired: renew it and reconnect"),
    "too-slow": (True, "接收太慢，请重连 Too far behind: reconnect to get the current state"),
    "replica-stopping": (True, "服务重启，请重连 The service is restarting: reconnect"),
}
HEARTBEAT = b": heartbeat\n\n"
SLICES = 5  # each read interval is cut in this many; a session is read in its own (see Hub._reads)

READ = """
SELECT s.id, s.jurisdiction, s.status,
       (SELECT count(*) FROM deputies d WHERE d.jurisdiction = s.jurisdiction AND d.term = s.term AND d.seated) AS seated,
       (SELECT count(*) FROM attendance a JOIN deputies d ON d.jurisdiction = s.jurisdiction AND d.term = s.term
         AND d.deputy_id = a.deputy_id AND d.seated WHERE a.session_id = s.id AND a.present) AS present,
       ARRAY(SELECT a.deputy_id FROM attendance a WHERE a.session_id = s.id AND NOT a.present) AS absent,
       ARRAY(SELECT r.credential_id::text || ' ' || r.reason FROM revoked_credentials r WHERE r.session_id = s.id) AS revoked,
       (SELECT coalesce(json_agg(json_build_object(
            'id', v.id, 'kind', v.kind, 'status', v.status, 'round', v.round, 'result', v.result, 'issued', r.issued,
            'threshold', r.threshold,
            'cast', (SELECT count(*) FROM issued i WHERE i.vote_id = v.id AND i.round = v.round AND i.cast_done),
            'presented', (SELECT count(*) FROM presented_shares p WHERE p.vote_id = v.id AND p.round = v.round
                          AND p.count_key = r.count_key)) ORDER BY v.id), '[]')
          FROM votes v LEFT JOIN rounds r ON r.vote_id = v.id AND r.round = v.round WHERE v.session_id = s.id) AS votes
FROM sessions s WHERE s.id = ANY($1::uuid[])
"""


def public_state(row: asyncpg.Record) -> dict[str, Any]:
    """What every screen may see: present, and per vote its status, round, issued and cast so far;
    the tellers' shares while a sealed round awaits them; a round's counts only once it is closed
    (no partial tally is ever part of the state)."""
    votes = []
    for v in row["votes"]:
        entry = {"id": v["id"], "kind": v["kind"], "status": v["status"], "round": v["round"], "issued": v["issued"],
                 "cast": v["cast"]}
        if v["status"] == "awaiting_shares":
            entry["shares"] = {"presented": v["presented"], "needed": v["threshold"]}
        if v["status"] in ("closed", "certified") and v["result"]:
            r = v["result"]
            entry["result"] = {k: r[k] for k in ("issued", "collected", "valid", "invalid")} | {
                "chosen": r.get("chosen"), "finished": r["finished"]}
        votes.append(entry)
    return {"session_id": str(row["id"]), "status": row["status"], "seated": row["seated"], "present": row["present"],
            "votes": votes}


def state_event(state: dict[str, Any]) -> tuple[str, bytes]:
    data = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
    event_id = hashlib.blake2b(data, digest_size=8).hexdigest()
    return event_id, b"id: %s\nevent: state\ndata: %s\n\n" % (event_id.encode(), data)


def end_event(reason: str) -> bytes:
    reconnect, message = REASONS[reason]
    data = json.dumps({"reason": reason, "reconnect": reconnect, "message": message}, ensure_ascii=False)
    return f"event: end\ndata: {data}\n\n".encode()


class Client:
    """One open stream: what is waiting to be sent to it (bounded), and why it ends, once it does."""

    __slots__ = ("who", "watched", "caller", "pending", "limit", "waiter", "ending", "expiry")

    def __init__(self, who: Principal, watched: Watched, caller: str, limit: int) -> None:
        self.who, self.watched, self.caller, self.limit = who, watched, caller, limit
        self.pending: deque[bytes] = deque()
        self.waiter: asyncio.Future | None = None
        self.ending: str | None = None  # a key of REASONS, or "" when the client went away
        self.expiry: asyncio.TimerHandle | None = None  # the token's end

    def push(self, message: bytes) -> None:
        if self.ending is not None:
            return
        if len(self.pending) >= self.limit:  # not reading: stop holding events for it
            self.pending.clear()
            self.end("too-slow")
            return
        self.pending.append(message)
        self._wake()

    def end(self, reason: str) -> None:
        if self.ending is None:
            self.ending = reason
            if reason:
                ENDED.labels(reason).inc()
            self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self) -> bytes | None:
        """What to send next (everything waiting, in one write); None once the stream is to end."""
        while not self.pending and self.ending is None:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        if self.pending:  # a closed session's last state comes before its end
            out = b"".join(self.pending)
            self.pending.clear()
            return out
        return None

    def revoked_by(self, absent: frozenset[str], revoked: dict[str, str]) -> str | None:
        who = self.who
        if who.credential is not None and (reason := revoked.get(str(who.credential))):
            return "deputy-absent" if reason == "left" else "credential-revoked"
        if who.role == "deputy" and who.session is not None and who.sub in absent:
            return "deputy-absent"
        return None


class Watched:
    """A session this replica watches: its last state, encoded once, and its clients."""

    def __init__(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.clients: set[Client] = set()
        self.ready = asyncio.Event()  # the first read is in
        self.missing = False
        self.jurisdiction, self.status = "", ""
        self.event_id, self.message = "", b""
        self.absent: frozenset[str] = frozenset()
        self.revoked: dict[str, str] = {}
        self.vote_ids: set[str] = set()
        self.casting = False  # a vote is open: its count changes without a notification
        self.slot = session_id.int % SLICES  # its slice of each read interval
        self.last_sent = self.idle_since = time.monotonic()


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions: dict[UUID, Watched] = {}
        self.votes: dict[str, UUID] = {}  # vote id → its (watched) session
        self.dirty: set[UUID] = set()
        self.callers: Counter[str] = Counter()
        self.conn: asyncpg.Connection | None = None
        self.wake = asyncio.Event()
        self.stopping = False

    # ------------------------------------------------------------ clients

    async def join(self, who: Principal, session_id: UUID, caller: str) -> Client:
        """A client of the session, once its state is known. Raises LookupError: no such session in
        the caller's scope; TimeoutError: the database has been away since this replica started
        watching it; OverflowError: the caller has its streams already."""
        if who.session is not None and who.session != session_id:  # a session's credential sees that session only
            raise LookupError(session_id)
        if self.callers[caller] >= self.settings.live_streams_per_caller:
            raise OverflowError(caller)
        w = self.sessions.get(session_id)
        if w is None:
            w = self.sessions[session_id] = Watched(session_id)
            self.mark(session_id)
        if not w.ready.is_set():
            await asyncio.wait_for(w.ready.wait(), 10)
        if w.missing or not who.sees(w.jurisdiction):
            raise LookupError(session_id)
        if self.callers[caller] >= self.settings.live_streams_per_caller:  # others of the same caller got in meanwhile
            raise OverflowError(caller)
        client = Client(who, w, caller, self.settings.live_queue)
        w.clients.add(client)
        if w.casting:
            self.wake.set()  # the reads poll it from now on
        self.callers[caller] += 1
        CLIENTS.inc()
        if who.expires_at is not None:
            loop = asyncio.get_running_loop()
            client.expiry = loop.call_at(loop.time() + who.expires_at - time.time(), client.end, "token-expired")
        return client

    def leave(self, client: Client) -> None:
        w = client.watched
        if client.expiry is not None:
            client.expiry.cancel()
        if client in w.clients:
            w.clients.discard(client)
            CLIENTS.dec()
            self.callers[client.caller] -= 1
            if self.callers[client.caller] <= 0:
                del self.callers[client.caller]
            if not w.clients:
                w.idle_since = time.monotonic()

    def mark(self, session_id: UUID) -> None:
        self.dirty.add(session_id)
        self.wake.set()

    def stop(self) -> None:
        """The replica is stopping: every stream ends, saying so (clients reconnect elsewhere)."""
        self.stopping = True
        for w in self.sessions.values():
            for client in w.clients:
                client.end("replica-stopping")

    # ------------------------------------------------------------ database

    def _notified(self, conn: asyncpg.Connection, pid: int, channel: str, payload: str) -> None:
        for token in payload.split():
            kind, key = token[:1], token[1:]
            if kind == "s":
                with contextlib.suppress(ValueError):
                    if (session_id := UUID(key)) in self.sessions:
                        self.mark(session_id)
            elif kind == "v" and (session_id := self.votes.get(key)) is not None:
                self.mark(session_id)
            elif kind == "t":
                for w in self.sessions.values():
                    if w.jurisdiction == key:
                        self.mark(w.session_id)

    async def _connection(self) -> None:
        """Keep the LISTEN connection up; after each (re)connection, re-read every watched session."""
        delay = 0.2
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self.settings.database_url, timeout=5, server_settings={
                    "search_path": "ballot", "application_name": APPLICATION})
                await _init_connection(conn)
                conn.add_termination_listener(lambda _, lost=lost: lost.set())  # this connection's own event
                await conn.add_listener(CHANNEL, self._notified)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("live view: no database connection; retrying", error=str(exc), retry_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.conn, delay = conn, 0.2
            log.info("live view: listening", sessions=len(self.sessions))
            self.dirty |= set(self.sessions)
            self.wake.set()
            try:
                await lost.wait()
            finally:
                self.conn = None
                conn.terminate()
            log.warning("live view: database connection lost; clients keep their last state")

    def _polled(self) -> set[UUID]:
        """Sessions whose counts change without notifying: an open vote, and clients here."""
        return {i for i, w in self.sessions.items() if w.casting and w.clients}

    async def _reads(self) -> None:
        """Each session is read at most once per ``live_read_seconds``, in its own slice of that
        interval (``SLICES``): the sessions due in a slice, dirty or polled, in one statement. The
        screens' updates are then spread over the interval instead of all written at once, which
        would take the CPU from the casts for that moment. A session not read yet goes first."""
        tick = self.settings.live_read_seconds / SLICES
        slot, next_tick = 0, time.monotonic()
        while True:
            self.dirty &= self.sessions.keys()  # a session forgotten meanwhile is not read
            polled = self._polled()
            if not self.dirty and not polled:
                self.wake.clear()
                await self.wake.wait()
                next_tick = time.monotonic()
                continue
            conn = self.conn
            if conn is None:  # reconnecting: it wakes us again
                self.wake.clear()
                await self.wake.wait()
                continue
            slot = (slot + 1) % SLICES
            due = {i for i in self.dirty | polled if (w := self.sessions[i]).slot == slot or not w.ready.is_set()}
            self.dirty -= due
            next_tick = max(next_tick + tick, time.monotonic())  # on the beat, unless a slice ran over it
            if due:
                try:
                    rows = await conn.fetch(READ, list(due), timeout=10)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                    log.warning("live view: read failed", error=str(exc))
                    self.dirty |= due
                    if not conn.is_closed():
                        conn.terminate()  # the connection task reconnects
                    continue
                READS.inc()
                found = {row["id"]: row for row in rows}
                for session_id in due:
                    if (w := self.sessions.get(session_id)) is not None:
                        self._apply(w, found.get(session_id))
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    def _apply(self, w: Watched, row: asyncpg.Record | None) -> None:
        if row is None:  # no such session: the clients waiting for it are told so
            w.missing = True
            w.ready.set()
            self.sessions.pop(w.session_id, None)
            return
        w.jurisdiction, w.status = row["jurisdiction"], row["status"]
        for vote_id in w.vote_ids:
            self.votes.pop(vote_id, None)
        w.vote_ids = {v["id"] for v in row["votes"]}
        w.casting = any(v["status"] == "open" for v in row["votes"])
        self.votes.update(dict.fromkeys(w.vote_ids, w.session_id))
        event_id, message = state_event(public_state(row))
        if event_id != w.event_id:
            w.event_id, w.message, w.last_sent = event_id, message, time.monotonic()
            for client in w.clients:
                client.push(message)
        absent, revoked = frozenset(row["absent"]), dict(r.split(" ", 1) for r in row["revoked"])
        if absent != w.absent or revoked != w.revoked:
            w.absent, w.revoked = absent, revoked
            for client in w.clients:
                if reason := client.revoked_by(absent, revoked):
                    client.end(reason)
        if w.status == "closed":
            for client in w.clients:
                client.end("session-closed")
        w.ready.set()

    # ------------------------------------------------------------ housekeeping

    async def _housekeeping(self) -> None:
        """Twice a second: idle streams get a heartbeat, sessions
        nobody has watched for a while are forgotten, and now and then everything is re-read."""
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for session_id, w in list(self.sessions.items()):
                if w.clients and now - w.last_sent >= self.settings.live_heartbeat_seconds:
                    w.last_sent = now
                    for client in w.clients:
                        client.push(HEARTBEAT)
                elif not w.clients and w.ready.is_set() and now - w.idle_since > 30:
                    del self.sessions[session_id]
                    for vote_id in w.vote_ids:
                        self.votes.pop(vote_id, None)
            if now - refreshed >= self.settings.live_refresh_seconds:
                refreshed = now
                self.dirty |= set(self.sessions)
                self.wake.set()

    async def run(self) -> None:
        tasks = [asyncio.create_task(job(), name=f"live-{job.__name__}")
                 for job in (self._connection, self._reads, self._housekeeping)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if self.conn is not None:
                await self.conn.close()
