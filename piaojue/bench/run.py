"""``piaojue bench ballot``: the run. Phases, on a database and vhost of its own against R ballot
replicas started here and stopped at the end:

  setup       townships, rosters, sessions, tellers, roll calls, slates (as events), votes: HTTP, not timed
  burst       all N ballots through the HTTP API (sealed by the service), closed loop at a bounded concurrency
  rate        cast latency at a fixed offered rate (open loop, 1,000/s by default)
  raw         the rows a cast writes, by plain asyncpg in one statement per ballot (the ceiling)
  big vote    one vote of N sealed ballots: close, the tellers' shares, and from the k-th share to
              certified over HTTP (the sealed ballots opened on every core); the pure tally in-process

The last line printed is one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from piaojue.bench.client import Pool, closed_loop, open_loop
from piaojue.bench.infrastructure import (
    NAME,
    code_version,
    cpu_delta,
    cpu_snapshot,
    drop_infra,
    fresh_infra,
    peak_rss_mb,
    start_replicas,
)
from piaojue.bench.profile import profiling
from piaojue.bench.scenario import (
    cast_requests,
    close_and_certify,
    count_cast,
    counted_log,
    publish_slates,
    pure_tally,
    raw_casts,
    seal_all,
    set_up,
    set_up_all,
    teller_keys,
    townships,
    unseal_reference,
)


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
        workers: dict[int, float] = {}
        report = asyncio.run(_measure(args, settings, replicas, workers, log_dir))
        report["busy_before_cores"], report["code"] = busy_cores, code
        report["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        report["peak_rss_mb"] = {**{f"replica{i}": peak_rss_mb(p.pid) for i, (_, p) in enumerate(replicas)},
                                 "bench": peak_rss_mb()}
        # The counting workers (spawned children of a replica, while they ran): the largest of them per replica.
        report["peak_rss_workers_mb"] = {f"replica{i}": workers.get(p.pid) for i, (_, p) in enumerate(replicas)}
    finally:
        processes.stop({str(i): p for i, (_, p) in enumerate(replicas)})
        drop_infra(base, args.keep_db)
    report["logs"] = str(log_dir)
    _print(report)
    return 0


async def _measure(args: argparse.Namespace, settings: Any, replicas: list[tuple[int, subprocess.Popen]],
                   workers: dict[int, float], log_dir: Path) -> dict[str, Any]:
    ports, pids = [port for port, _ in replicas], [p.pid for _, p in replicas]
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
        keys = teller_keys()
        await set_up_all(pool, [*burst, *paced, *ceiling], keys)
        await set_up(pool, big, keys)
        burst_reqs, paced_reqs = cast_requests(burst), cast_requests(paced)
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
        fill = await raw_casts(db, [big], raw_conns, args.limit, sealed={big.jurisdiction: await seal_all(db, big)})
        async with profiling(args.profile, "close", pids, db, report):
            closing = await close_and_certify(pool, big, keys, pids, workers)
        counted = counted_log(log_dir)
        unseal = {"unseal_per_s": round(counted["ballots"] / counted["open_ms"] * 1000) if counted.get("open_ms") else None,
                  "unseal_workers": counted.get("workers"), "unseal_us_one_core": unseal_reference()}
        report["big_vote"] = {"ballots": fill.ok, "fill_per_s": fill.summary()["per_s"], **closing, **counted, **unseal,
                              **await pure_tally(db, big)}
    finally:
        pool.close()
    b, r, v = report["burst"], report["raw"], report["big_vote"]
    report.update(ballots_per_s=b["per_s"], cast_p50_ms=report["rate"]["p50_ms"], cast_p99_ms=report["rate"]["p99_ms"],
                  burst_p50_ms=b["p50_ms"], burst_p99_ms=b["p99_ms"], burst_seconds=b["seconds"],
                  within_a_minute=b["ok"] == n and b["seconds"] <= 60, tally_ms=v["tally_ms"], unseal_per_s=v["unseal_per_s"],
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
        f"  big vote    {v['ballots']} sealed ballots (filled at {v['fill_per_s']}/s): close {v['close_ms']} ms "
        f"({v['status_at_close']}); from the k-th share: count {v['count_ms']} ms + certify {v['certify_ms']} ms = "
        f"{v['close_to_certified_ms']} ms; chosen {v['chosen']}, {v['status']}",
        f"              opened {v['ballots']} in {v['open_ms']} ms = {v['unseal_per_s']}/s on {v['unseal_workers']} worker(s) "
        f"(one core here: {v['unseal_us_one_core']} µs a ballot); counted in {v['count_ms']} ms inside the replica",
        f"              pure tally + decide {v['tally_ms']} ms (reading + decoding the rows {v['load_ms']} ms)",
        "  peak RSS    " + ", ".join(f"{k} {mb} MB" for k, mb in report["peak_rss_mb"].items())
        + "  (replicas after setup: " + ", ".join(f"{mb} MB" for mb in report["peak_rss_after_setup_mb"].values())
        + "; counting workers: " + ", ".join(f"{k} {mb} MB" for k, mb in report["peak_rss_workers_mb"].items()) + ")",
        f"  logs        {report['logs']}",
    ]
    lines += [f"  sample {status}: {body}" for status, body in {**b["samples"], **rate["samples"]}.items()]
    for label, samples in report.get("db_samples", {}).items():
        lines.append(f"  pg_stat_activity of the bench database during the {label}, share of busy-backend samples:")
        lines += [f"    {pct:5.1f}%  {state}" for state, pct in samples["by_state_pct"].items()]
        lines.append("  most seen (state, wait, query, samples):")
        lines += [f"    {row}" for row in samples["top"]]
    print("\n".join(lines))
    keys = ("ballots_per_s", "cast_p50_ms", "cast_p99_ms", "tally_ms", "close_to_certified_ms", "unseal_per_s",
            "raw_ceiling_per_s", "ratio", "peak_rss_mb", "peak_rss_workers_mb", "deputies", "replicas", "concurrency",
            "burst_seconds", "burst_p50_ms", "burst_p99_ms", "within_a_minute", "raw_connections", "busy_before_cores", "code",
            "measured_at")
    print(json.dumps({k: report[k] for k in keys}))
