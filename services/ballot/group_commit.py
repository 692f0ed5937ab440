"""Group commit of casts (合并提交): the casts that reach a replica together are written together.

At a session's peak each replica has several casts in flight. Written one statement and one commit
each, PostgreSQL woke, committed and flushed the WAL once per ballot, and the replica paid a round
trip per ballot: together more CPU than the rest of the cast. Here one statement runs at a time per
replica; the casts that arrive meanwhile wait and go in the next statement, all of them in one. A
lone cast is written at once, so a quiet hall waits no longer than before; casts waiting behind a
statement slower than ``SLOW`` (a checkpoint, say) go in a second one, so one slow statement does
not hold a replica's casts.

Each cast keeps its own outcome (``store.CAST``'s columns, per cast), its own checks and its own
refusals. One deputy appears at most once in a statement (a second cast of the same deputy waits
for the next one), so that the statement's rows never meet, and the casts go in one order, so that
two statements (of this replica or another) do not wait for each other crosswise.
If the statement fails as a whole on an Idempotency-Key used before for another request, every cast
of it is written again alone, where that refusal belongs to its own cast only."""

from __future__ import annotations

import asyncio
import json
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from prometheus_client import Gauge, Histogram

from services.ballot import store

IN_FLIGHT = 2  # statements running at once per replica, at most: the second only behind a slow first
SLOW = 0.005  # seconds casts wait behind a running statement before they go in a statement of their own
MOST = 64  # casts in one statement
WAITING = Gauge("piaojue_ballot_cast_waiting", "Casts waiting for a statement to take them (group commit)")
GROUP_SIZE = Histogram("piaojue_ballot_cast_group_size", "Casts written together by one statement (group commit)",
                       buckets=(1, 2, 4, 8, 16, 32, 64))


class Cast(NamedTuple):
    """What a cast writes: ``store.CAST``'s parameters, in its order."""

    vote_id: UUID
    round: int
    deputy_id: str
    sealed: bytes  # the sealed ballot (b"" for a named vote)
    ballot: str | None  # the plain ballot, for a named vote (记名) only
    named: bool
    jurisdiction: str
    key: str | None  # Idempotency-Key
    fingerprint: str
    answer: dict[str, Any]  # stored for a retry with the same key
    credential: UUID
    session: UUID


# store.CAST for many casts: the same checks, one row of outcome per cast (n: its place in the arrays).
CASTS = """
WITH input AS (SELECT * FROM unnest($1::int[], $2::uuid[], $3::int[], $4::text[], $5::bytea[], $6::text[], $7::bool[],
                                    $8::text[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::uuid[])
               AS i(n, vote_id, round, deputy_id, sealed, ballot, named, jurisdiction, key, fingerprint, answer,
                    credential, session_id)),
     vote AS (SELECT i.n FROM input i JOIN votes v ON v.id = i.vote_id AND v.round = i.round AND v.status = 'open'
                     AND v.mode = 'electronic' AND v.jurisdiction = i.jurisdiction FOR KEY SHARE OF v),
     revoked AS (SELECT i.n FROM input i JOIN revoked_credentials r ON r.credential_id = i.credential),
     present AS (SELECT i.n FROM input i JOIN attendance a ON a.session_id = i.session_id AND a.deputy_id = i.deputy_id
                 AND a.present),
     taken AS (UPDATE issued s SET cast_done = true FROM input i
               WHERE (s.vote_id, s.round, s.deputy_id) = (i.vote_id, i.round, i.deputy_id) AND NOT s.cast_done
                 AND i.n IN (SELECT n FROM vote) AND i.n NOT IN (SELECT n FROM revoked) AND i.n IN (SELECT n FROM present)
               RETURNING i.*),
     secret AS (INSERT INTO sealed_ballots (vote_id, round, sealed) SELECT vote_id, round, sealed FROM taken WHERE NOT named),
     named AS (INSERT INTO named_ballots (vote_id, round, deputy_id, ballot) SELECT vote_id, round, deputy_id, ballot
               FROM taken WHERE named),
     answer AS (INSERT INTO idempotency (principal, key, fingerprint, status, body)
                SELECT deputy_id, key, fingerprint, 201, answer::jsonb FROM taken WHERE key IS NOT NULL)
SELECT i.n, i.n IN (SELECT n FROM vote) AS open, i.n IN (SELECT n FROM taken) AS taken,
       i.n IN (SELECT n FROM taken) OR EXISTS (SELECT 1 FROM issued s WHERE (s.vote_id, s.round, s.deputy_id)
                                                = (i.vote_id, i.round, i.deputy_id)) AS issued,
       i.n IN (SELECT n FROM revoked) AS revoked, i.n IN (SELECT n FROM present) AS present
FROM input i
"""


class CastWriter:
    """One per replica (``writer(app)``): ``await write(cast)`` → the cast's outcome row."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.waiting: list[tuple[Cast, asyncio.Future]] = []
        self.running = 0
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task] = set()

    async def write(self, cast: Cast) -> asyncpg.Record:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((cast, done))
        self._schedule()
        WAITING.set(len(self.waiting))
        return await done

    def _schedule(self) -> None:
        """The waiting casts go at once if no statement is running; behind a running one, they go
        together when it ends, or in a statement of their own if it is slow (``SLOW``)."""
        if self.waiting and self.running == 0:
            self._next()
        if self.waiting and self.running < IN_FLIGHT and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(SLOW, self._overtake)

    def _overtake(self) -> None:
        self.timer = None
        if self.waiting and self.running < IN_FLIGHT:
            self._next()
        self._schedule()

    def _next(self) -> None:
        batch, deputies, later = [], set(), []
        for cast, done in self.waiting:
            if len(batch) < MOST and cast.deputy_id not in deputies:
                batch.append((cast, done))
                deputies.add(cast.deputy_id)
            else:
                later.append((cast, done))
        self.waiting = later
        WAITING.set(len(later))
        self.running += 1
        task = asyncio.create_task(self._write(batch), name="cast-group-commit")
        self.tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self.tasks.discard)

    async def _write(self, batch: list[tuple[Cast, asyncio.Future]]) -> None:
        GROUP_SIZE.observe(len(batch))
        try:
            try:
                outcomes = await self._together([cast for cast, _ in batch])
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                # A key used before for another request, or (should the locking order ever fail) a
                # deadlock: the statement changed nothing, and each cast is written alone.
                outcomes = await asyncio.gather(*(self._alone(cast) for cast, _ in batch), return_exceptions=True)
        except BaseException as exc:  # the database away, say: every cast of the statement is told
            outcomes = [exc] * len(batch)
        finally:
            self.running -= 1
            self._schedule()
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if done.done():  # its request is gone (the client hung up); the cast stands, as it would alone
                continue
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    async def _together(self, given: list[Cast]) -> list[asyncpg.Record]:
        if len(given) == 1:
            return [await self._alone(given[0])]
        # In one order (vote, round, deputy): two statements with the same deputies take their rows in the
        # same order, so they do not wait for each other crosswise (a deadlock would still fall back above).
        order = sorted(range(len(given)), key=lambda k: (given[k].vote_id, given[k].round, given[k].deputy_id))
        columns = list(zip(*(given[k] for k in order), strict=True))
        columns[9] = [json.dumps(a, ensure_ascii=False) for a in columns[9]]  # the answers, as jsonb text
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(CASTS, order, *columns)  # n: each cast's place in ``given``
        return sorted(rows, key=lambda r: r["n"])

    async def _alone(self, cast: Cast) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            return await conn.fetchrow(store.CAST, *cast)


def writer(app: Any) -> CastWriter:
    if (found := getattr(app.state, "cast_writer", None)) is None or found.pool is not app.state.pool:
        found = app.state.cast_writer = CastWriter(app.state.pool)
    return found
