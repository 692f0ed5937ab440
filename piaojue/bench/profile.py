"""Optional profiling of a bench run (``--profile DIR``): py-spy on the replicas, and samples of
what the bench database's backends are doing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from piaojue.bench.infrastructure import NAME


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


