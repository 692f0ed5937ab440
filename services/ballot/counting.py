"""Counting a sealed round (开箱计票), after its close.

The replica that closes the round makes a *counting key* in its memory and keeps only its public
half in the database. A teller's share, presented to any replica, is checked against its
commitment and stored sealed to that counting key, so that no share is ever stored in the clear.
This replica watches for k of them; then, in one transaction, it opens the shares, rebuilds the
round key in memory, opens every sealed ballot on all cores (worker processes for a large round, ``workers.py``),
shuffles them, stores the plaintext and the trackers apart from any deputy, deletes the sealed
rows and records the count. If this replica is gone before k shares arrive (a restart, a scale
down), the presiding officer closes again on any replica: a new counting key, tellers present again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from uuid import UUID

import structlog

from services.ballot import store, workers
from services.ballot.domain import ballots, sealing
from services.ballot.domain.vote import Kind, Ratings, Status, Vote
from shared.db import unit_of_work

log = structlog.get_logger()

PARALLEL_FROM = 2_000  # ballots: below this, opening in-process is faster than handing out the work
BATCH = 2_500  # sealed ballots read and handed to a worker at a time
POLL_S = 0.05

_keys: dict[tuple[UUID, int], bytes] = {}  # this process's counting keys: (vote, round) → private
_tasks: set[asyncio.Task] = set()


def counting_key(vote_id: UUID, round_: int, suite_name: str) -> bytes:
    """A fresh counting key for the round, kept in this process; its public half is returned."""
    private, public = sealing.suite(suite_name).keypair()
    _keys[(vote_id, round_)] = private
    return public


def watch(pool, vote_id: UUID, round_: int, public: bytes, ballots_cast: int) -> None:
    """Count the round here once k shares are presented (to any replica)."""
    task = asyncio.create_task(_watch(pool, vote_id, round_, public, ballots_cast >= PARALLEL_FROM),
                               name=f"count-{vote_id}-{round_}")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _watch(pool, vote_id: UUID, round_: int, public: bytes, large: bool) -> None:
    executor = workers.acquire() if large else None  # started while the tellers come
    try:
        waited = 0.0
        while True:
            row = await pool.fetchrow(
                """SELECT v.status, r.count_key, r.threshold,
                          (SELECT count(*) FROM presented_shares p WHERE p.vote_id = r.vote_id AND p.round = r.round
                           AND p.count_key = r.count_key) AS presented
                   FROM votes v JOIN rounds r ON r.vote_id = v.id AND r.round = $2 WHERE v.id = $1""", vote_id, round_)
            if row is None or row["status"] != Status.AWAITING_SHARES or row["count_key"] != public:
                return
            if row["presented"] >= row["threshold"]:
                await count(pool, vote_id, round_, public, executor)
                return
            await asyncio.sleep(POLL_S if waited < 600 else 1.0)
            waited += POLL_S
    except Exception:
        log.exception("counting failed", vote_id=str(vote_id), round=round_)
    finally:
        _keys.pop((vote_id, round_), None)
        if executor is not None:
            workers.release()


async def count(pool, vote_id: UUID, round_: int, public: bytes, executor: ProcessPoolExecutor | None = None) -> None:
    started = time.perf_counter()
    async with unit_of_work(pool, "ballot") as uow:
        conn = uow.conn
        vote = await store.load_vote(conn, None, vote_id, lock="FOR UPDATE")
        key = await store.round_key(conn, vote_id, round_)
        if vote.status is not Status.AWAITING_SHARES or vote.current.number != round_ or key["count_key"] != public:
            return
        info = sealing.round_info(vote_id, round_)
        chosen, shares = sealing.suite(key["suite"]), []
        for teller_id, sealed in await store.shares_presented(conn, vote_id, round_, public):
            share = await store.teller_share(conn, vote_id, round_, teller_id)
            shares.append((share.index, chosen.open(_keys[(vote_id, round_)], sealed, sealing.presented_info(info, teller_id))))
        private = sealing.recover_private_key(key["suite"], key["public_key"], shares[:key["threshold"]], info)
        opening = time.perf_counter()
        trackers, plain = await _open_all(conn, key["suite"], private, info, vote_id, round_, executor)
        del private
        open_ms, n = 1000 * (time.perf_counter() - opening), len(plain)
        unopened = await _record(uow, vote, trackers, plain)
    log.info("round counted", vote_id=str(vote_id), round=round_, ballots=n, unopened=unopened, open_ms=round(open_ms, 1),
             count_ms=round(1000 * (time.perf_counter() - started), 1), workers=(os.cpu_count() or 2) if executor is not None else 0)


async def _open_all(conn, suite_name: str, private: bytes, info: bytes, vote_id: UUID, round_: int,
                    executor: ProcessPoolExecutor | None) -> tuple[list[str], list[str | None]]:
    """Every sealed ballot of the round, read in batches and opened as they come (on the workers, one
    per core, for a large round): the trackers, and the ballots (None: did not open) in the same
    order. Each distinct ballot is kept once: a large round has few patterns, so 100,000 ballots
    cost their trackers and a list, not 100,000 strings and pairs (the replica's peak memory)."""
    loop = asyncio.get_running_loop()
    trackers: list[str] = []
    plain: list[str | None] = []
    patterns: dict[str, str] = {}

    def keep(part: list[tuple[str, str | None]]) -> None:
        for tracker, ballot in part:
            trackers.append(tracker)
            plain.append(None if ballot is None else patterns.setdefault(ballot, ballot))

    def start(batch: list[bytes]) -> asyncio.Future:
        if executor is not None:
            return loop.run_in_executor(executor, sealing.open_batch, suite_name, private, info, batch)
        done = loop.create_future()
        done.set_result(sealing.open_batch(suite_name, private, info, batch))
        return done

    pending: list[asyncio.Future] = []
    batch: list[bytes] = []
    in_flight = 2 * (os.cpu_count() or 2) if executor is not None else 0
    async for row in conn.cursor("SELECT sealed FROM sealed_ballots WHERE vote_id = $1 AND round = $2", vote_id, round_,
                                 prefetch=BATCH):
        batch.append(row[0])
        if len(batch) == BATCH:
            pending.append(start(batch))
            batch = []
        while pending and (pending[0].done() or len(pending) > in_flight):  # a few batches out at a time:
            keep(await pending.pop(0))  # reading ahead of the workers would hold every sealed ballot in memory
    if batch:
        pending.append(start(batch))
    for part in pending:
        keep(await part)
    return trackers, plain


async def _record(uow, vote: Vote, trackers: list[str], plain: list[str | None]) -> int:
    """Shuffle, store unlinked, delete the sealed rows, count. Returns how many did not open. The
    lists are the caller's, sorted and shuffled in place rather than copied."""
    conn, round_ = uow.conn, vote.current
    candidates = [UUID(c) for c in round_.candidates]
    trackers.sort()
    for i, b in enumerate(plain):
        if not ballots.readable(b, len(candidates), vote.kind):
            plain[i] = None
    secrets.SystemRandom().shuffle(plain)
    await conn.copy_records_to_table("ballots", records=((vote.id, round_.number, b) for b in plain),
                                     columns=["vote_id", "round", "ballot"])
    await conn.copy_records_to_table("receipts", records=((vote.id, round_.number, t) for t in trackers),
                                     columns=["vote_id", "round", "tracker"])
    salt = secrets.token_hex(16)
    await conn.execute("UPDATE rounds SET salt = $3, commitment = $4 WHERE vote_id = $1 AND round = $2", vote.id, round_.number,
                       salt, ballots.commitment(vote.id, round_.number, salt, trackers, plain))
    await store.discard_sealed(conn, vote.id, round_.number)
    unopened = sum(1 for b in plain if b is None)
    if vote.kind is Kind.SATISFACTION:
        collected, _, counts = ballots.tally_ratings_compact(plain, candidates)
        counted: Ratings | object = Ratings(collected, counts)
    else:
        counted = ballots.tally_compact(plain, candidates, round_.seats, vote.rules)
    vote.record_opened(counted, unopened)
    await store.save_vote(conn, vote)
    await uow.audit(vote.jurisdiction, "tellers", "count", "vote", vote.id, after={"round": round_.number, "unopened": unopened})
    if unopened:
        log.warning("sealed ballots did not open: counted invalid", vote_id=str(vote.id), round=round_.number, unopened=unopened)
    return unopened


async def wait_counted(pool, vote_id: UUID, round_: int, timeout: float = 120) -> bool:
    """For the k-th teller's request: wait until the counting process has counted the round."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while await pool.fetchval("SELECT status FROM votes WHERE id = $1 AND round = $2", vote_id, round_) \
                    == Status.AWAITING_SHARES:
                await asyncio.sleep(POLL_S / 2)
            return True
    return False
