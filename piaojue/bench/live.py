"""``piaojue bench live``: one ballot replica, C live-view clients over S sessions, while ballots
are cast into those sessions' open votes at a fixed rate. On a database and vhost of its own
(``piaojue_bench_live``), on ports from ``PIAOJUE_BASE_PORT + 50``.

  setup    S townships (roster, session, tellers, slate, an open vote), deputies enough for the casts
  baseline rate x seconds ballots, open loop, into S other sessions' votes of the same shape, nobody
           following: what this machine gives the casts alone, in this run (skipped with
           --clients 0, which is that run alone)
  connect  C clients (deputies' devices, each its own voting credential) in a separate process
  cast     as many ballots into the followed sessions' votes, while every client follows its session
  measure  live-view queries/s: the live connections' (application_name piaojue-ballot-live)
           statements counted in pg_stat_activity (each new query_start, sampled every 10 ms); update
           latency: from each cast's answer (its commit is just before) to the first event showing a
           count that includes it, at every client of its session; cast latency; the replica's RSS;
           CPU per process (the screens' replica, the cast replicas, the clients' process)

The last line printed is one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from piaojue.bench.client import NET_ERRORS, Pool
from piaojue.bench.infrastructure import code_version, cpu_delta, cpu_snapshot, drop_infra, fresh_infra, start_replicas
from piaojue.bench.scenario import TERM, cast_requests, publish_slates, set_up_all, teller_keys, townships

NAME = "piaojue_bench_live"
APPLICATION = "piaojue-ballot-live"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=5000, help="live-view clients (default 5000; 0: the same run without them)")
    p.add_argument("--sessions", type=int, default=50, help="sessions they follow, one open vote each (default 50)")
    p.add_argument("--rate", type=float, default=1000, help="ballots/s cast meanwhile (default 1000)")
    p.add_argument("--seconds", type=float, default=20, help="length of the casting phase (default 20)")
    p.add_argument("--cast-replicas", type=int, default=0,
                   help="other ballot replicas that take the casts, as a load balancer spreads them while the one "
                        "replica holds every screen (default 0: the casts go to the screens' replica too)")
    p.add_argument("--keep-db", action="store_true", help=f"keep the {NAME} database afterwards")


def rss_mb(pid: int) -> tuple[float | None, float | None]:
    """(VmRSS, VmHWM) of a process, in MB."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5]] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out.get("VmRSS"), out.get("VmHWM")


def run(args: argparse.Namespace) -> int:
    from piaojue import processes
    from shared.settings import get_settings

    if min(args.sessions, args.rate, args.seconds) <= 0 or args.clients < 0 or args.cast_replicas < 0:
        print("--sessions, --rate and --seconds must be positive (--clients 0: the same run without screens)", file=sys.stderr)
        return 2
    base = get_settings()
    load_before = os.getloadavg()
    code = code_version()
    settings = fresh_infra(base, NAME)
    log_dir = Path(tempfile.mkdtemp(prefix="piaojue-bench-live-"))
    replicas: list = []
    try:
        replicas = start_replicas(settings, 1 + args.cast_replicas, log_dir, base_port=base.base_port + 50)
        report = asyncio.run(_measure(args, settings, replicas[0], log_dir, replicas[1:]))
    finally:
        processes.stop({str(i): p for i, (_, p) in enumerate(replicas)})
        drop_infra(base, args.keep_db, NAME)
    report.update(code=code, load_before=[round(x, 2) for x in load_before],
                  load_after=[round(x, 2) for x in os.getloadavg()], logs=str(log_dir),
                  measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _print(report)
    return 0


async def _measure(args: argparse.Namespace, settings: Any, replica: tuple[int, subprocess.Popen], log_dir: Path,
                   casters: list[tuple[int, subprocess.Popen]]) -> dict[str, Any]:
    """The screens all on ``replica``; the casts on it too, or spread over the ``casters``. With
    clients, as many casts are first made into sessions nobody follows (the baseline: what the
    machine does for the casts alone in this run), then into the followed ones."""
    from shared.auth import mint

    port, proc = replica
    casts = round(args.rate * args.seconds)
    per_session = max(-(-args.clients // args.sessions), -(-casts // args.sessions))
    towns = townships("live", per_session * args.sessions, size=per_session)
    # The baseline's casts go to sessions of their own, of the same shape: the followed ones then
    # hold exactly what a run without the baseline would.
    unwatched = townships("base", per_session * args.sessions, size=per_session) if args.clients else []
    pool = Pool([port], 64)
    casting = Pool([p for p, _ in casters], 64) if casters else pool
    report: dict[str, Any] = {"clients": args.clients, "sessions": args.sessions, "rate": args.rate, "seconds": args.seconds,
                              "cast_replicas": len(casters)}
    # CPU per process: the replica that holds the screens (and, without casters, takes the casts too)
    groups = {proc.pid: "screens_replica" if casters else "replica", **{c.pid: "cast_replicas" for _, c in casters}}
    try:
        started = time.perf_counter()
        await publish_slates(settings, towns + unwatched)
        await set_up_all(pool, towns + unwatched, teller_keys())
        report["setup_s"] = round(time.perf_counter() - started, 1)
        print(f"setup: {len(towns + unwatched)} sessions of {per_session} deputies in {report['setup_s']} s", file=sys.stderr)
        index = {t.vote_id: i for i, t in enumerate(towns + unwatched)}

        if args.clients:  # the baseline: as many casts, into the other sessions, nobody following
            base = await _cast_phase(casting, cast_requests(unwatched)[:casts], index, args, settings, groups)
            report.update(cast_p50_ms_no_clients=base["cast_p50_ms"], cast_p99_ms_no_clients=base["cast_p99_ms"],
                          cpu_no_clients=base["cpu"])
            print(f"baseline without clients: cast p50 {base['cast_p50_ms']} ms, p99 {base['cast_p99_ms']} ms", file=sys.stderr)

        # The screens: deputies' devices, each with its own voting credential, spread over the sessions.
        clients = [[i % len(towns), towns[i % len(towns)].session_id,
                    mint(towns[i % len(towns)].deputies[i // len(towns)], "deputy", towns[i % len(towns)].jurisdiction,
                         ttl_s=86400, session=towns[i % len(towns)].session_id, term=TERM)] for i in range(args.clients)]
        out = log_dir / "clients.json"
        screens = await asyncio.create_subprocess_exec(sys.executable, "-m", "piaojue.bench.live_client", str(port), str(out),
                                                       stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        groups[screens.pid] = "screens_client"
        screens.stdin.write(json.dumps(clients).encode() + b"\n")
        await screens.stdin.drain()
        started = time.perf_counter()
        line = (await asyncio.wait_for(screens.stdout.readline(), 300)).decode().strip()
        report["connect_s"] = round(time.perf_counter() - started, 1)
        report["connected"] = int(line.split()[-1]) if line.startswith("connected") else 0
        print(f"clients: {line} in {report['connect_s']} s", file=sys.stderr)
        report["rss_idle_clients_mb"] = rss_mb(proc.pid)[0]

        # Casting, while the clients follow and the live connections' statements are counted.
        measured = await _cast_phase(casting, cast_requests(towns)[:casts], index, args, settings, groups)
        report.update(cast_p50_ms=measured["cast_p50_ms"], cast_p99_ms=measured["cast_p99_ms"], cast_ok=measured["cast_ok"],
                      cast_phase_s=measured["seconds"], cpu=measured["cpu"], live_queries=measured["queries"],
                      db_queries_per_s_live=measured["queries_per_s"])
        report["rss_mb"], report["peak_rss_mb"] = rss_mb(proc.pid)
        screens.terminate()
        await asyncio.wait_for(screens.wait(), 120)
        seen = json.loads(out.read_text())
    finally:
        pool.close()
        if casting is not pool:
            casting.close()
    updates = _update_latencies(seen["series"], measured["answered"])
    report.update(
        update_p50_ms=_pct(updates, 0.5), update_p99_ms=_pct(updates, 0.99), update_max_ms=_pct(updates, 1.0),
        update_samples=len(updates), clients_ready=seen["ready"], clients_lost=seen["lost"], client_errors=seen["errors"],
        streams_ended=seen["ended"], updates_per_client_per_s=round(
            sum(len(s) - 1 for _, s in seen["series"]) / max(len(seen["series"]), 1) / (measured["seconds"] + 2), 2))
    return report


async def _cast_phase(pool: Pool, reqs: list[bytes], index: dict[str, int], args: argparse.Namespace, settings: Any,
                      groups: dict[int, str]) -> dict[str, Any]:
    """``reqs`` cast at ``args.rate``, open loop, while the live connections' statements are counted;
    then 2 s for the last counts to reach the clients."""
    stop = asyncio.Event()
    sampler = asyncio.create_task(_count_queries(settings.database_url, stop))
    cpu0, started = cpu_snapshot(groups, NAME), time.perf_counter()
    latencies, answered = await _paced(pool, reqs, index, args.rate, args.seconds + 60)
    seconds = round(time.perf_counter() - started, 2)
    await asyncio.sleep(2)  # the last counts reach the clients
    stop.set()
    queries, sampled_s = await sampler
    lat = sorted(latencies)
    return {"cast_p50_ms": _pct(lat, 0.5), "cast_p99_ms": _pct(lat, 0.99), "cast_ok": len(lat), "seconds": seconds,
            "cpu": cpu_delta(cpu0, cpu_snapshot(groups, NAME), seconds + 2, max(len(lat), 1)), "answered": answered,
            "queries": queries, "queries_per_s": round(queries / sampled_s, 1) if sampled_s else None}


async def _paced(pool: Pool, reqs: list[bytes], index: dict[str, int], rate: float, limit_s: float):
    """Open loop at ``rate``: each ballot due at start + i/rate; latency from its due time. Returns the
    latencies and, per session, when each accepted cast's answer arrived (time.monotonic)."""
    answered: dict[int, list[float]] = {}
    latencies: list[float] = []
    tasks = set()
    start = time.monotonic() + 0.05

    async def one(raw: bytes, due: float) -> None:
        session = index[raw.split(b"/", 3)[2].decode()]
        conn = await pool.idle.get()
        try:
            async with asyncio.timeout(30):
                status, _ = await conn.send(raw)
            if status == 201:
                now = time.monotonic()
                latencies.append(now - due)
                answered.setdefault(session, []).append(now)
        except NET_ERRORS:
            pass
        finally:
            pool.idle.put_nowait(conn)

    for i, raw in enumerate(reqs):
        due = start + i / rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(raw, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=limit_s)
    return latencies, answered


def _update_latencies(series: list, answered: dict[int, list[float]]) -> list[float]:
    """For every client and every cast of its session: from the cast's answer (the k-th answer for
    the k-th count after the one the client connected with: casts commit in about the order they
    are answered) to the event that first showed that count or more."""
    out: list[float] = []
    times = {s: sorted(t) for s, t in answered.items()}
    for session, points in series:
        answers, done = times.get(session, []), 0
        before = points[0][1] if points else 0  # the count when the client connected (the baseline's casts)
        for t, count in points[1:]:
            count = min(count - before, len(answers))
            while done < count:
                out.append(max(0.0, t - answers[done]))
                done += 1
    out.sort()
    return out


async def _count_queries(database_url: str, stop: asyncio.Event) -> tuple[int, float]:
    """Statements run by the live view's connections: each new (pid, query_start) seen in
    pg_stat_activity, sampled every 10 ms (the live view runs a few a second)."""
    import asyncpg

    conn = await asyncpg.connect(database_url, server_settings={"application_name": "piaojue-bench-sampler"})
    seen: set[tuple[int, Any]] = set()
    sql = "SELECT pid, query_start FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"
    try:
        first = {(r["pid"], r["query_start"]) for r in await conn.fetch(sql, APPLICATION)}
        started = time.monotonic()
        while not stop.is_set():
            seen.update((r["pid"], r["query_start"]) for r in await conn.fetch(sql, APPLICATION))
            await asyncio.sleep(0.01)
        return len(seen - first), time.monotonic() - started
    finally:
        await conn.close()


def _pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else None


def _print(report: dict[str, Any]) -> None:
    print(f"\npiaojue bench live — {report['clients']} clients over {report['sessions']} sessions on one replica"
          f"{' (casts through ' + str(report['cast_replicas']) + ' other)' if report['cast_replicas'] else ' (casts too)'}, "
          f"{report['rate']:.0f} ballots/s for {report['seconds']} s, code {report['code']} "
          f"(load average before {report['load_before']}, after {report['load_after']})")
    print(f"  setup {report['setup_s']} s; {report['connected']} clients connected in {report['connect_s']} s "
          f"(replica RSS then {report['rss_idle_clients_mb']} MB)")
    print(f"  casts      {report['cast_ok']} accepted  p50 {report['cast_p50_ms']} ms  p99 {report['cast_p99_ms']} ms"
          + (f"  (as many casts with nobody following, this run: p50 {report['cast_p50_ms_no_clients']} ms  "
             f"p99 {report['cast_p99_ms_no_clients']} ms)" if "cast_p99_ms_no_clients" in report else ""))
    print(f"  updates    {report['update_samples']} (cast, client) pairs  p50 {report['update_p50_ms']} ms  "
          f"p99 {report['update_p99_ms']} ms  max {report['update_max_ms']} ms; "
          f"{report['updates_per_client_per_s']} count changes/s per client")
    print(f"  database   {report['live_queries']} statements by the live view = {report['db_queries_per_s_live']}/s")
    print(f"  replica    RSS {report['rss_mb']} MB with the clients (peak {report['peak_rss_mb']} MB)")
    print("  CPU        " + ", ".join(f"{k} {v['cores']} cores" for k, v in report["cpu"].items()))
    if "cpu_no_clients" in report:
        print("  without    " + ", ".join(f"{k} {v['cores']} cores" for k, v in report["cpu_no_clients"].items()))
    print(f"  clients    ready {report['clients_ready']}, lost {report['clients_lost']}, errors {report['client_errors']}, "
          f"ended {report['streams_ended']}; logs {report['logs']}")
    keys = ("clients", "sessions", "db_queries_per_s_live", "update_p99_ms", "cast_p99_ms", "rss_mb", "update_p50_ms",
            "cast_p50_ms", "cast_p99_ms_no_clients", "cast_replicas", "peak_rss_mb", "connected", "rate", "seconds", "code",
            "load_before", "load_after", "measured_at")
    print(json.dumps({k: report[k] for k in keys if k in report}))
