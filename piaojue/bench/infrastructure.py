"""The bench's infrastructure: its own database and vhost, the ballot replicas, and what the
processes on the machine use (CPU per group, peak memory)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

NAME = "piaojue_bench"  # the database and the vhost
BASE_PORT = 18700  # replica i serves on BASE_PORT + 10 * i + 2 (the ballot offset)


def _stat(pid: int) -> tuple[str, float] | None:
    """(command name, CPU seconds used) of a process, or None once it has gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return raw[raw.index("(") + 1:raw.rindex(")")], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _other_database(pid: int, name: str = NAME) -> bool:
    """A PostgreSQL backend serving another database ("postgres: 15/main: user db host(port) ...")."""
    with contextlib.suppress(OSError):
        cmd = Path(f"/proc/{pid}/cmdline").read_text()
        return "(" in cmd and f" {name} " not in cmd
    return False


def cpu_snapshot(replicas: Sequence[int] | Mapping[int, str], database: str = NAME) -> dict[Any, tuple[str, float]]:
    """CPU seconds so far per process, grouped: the replicas (or the groups ``replicas`` names, per
    pid), this process, PostgreSQL (the bench database's backends and the server's own processes),
    RabbitMQ; and under ``machine`` all CPU time on the machine, so that anything else (other
    databases' backends, a test suite, the kernel's loopback networking) shows up as ``other``."""
    named = replicas if isinstance(replicas, Mapping) else dict.fromkeys(replicas, "replicas")
    procs: dict[Any, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or (stat := _stat(int(entry.name))) is None:
            continue
        pid, (comm, cpu) = int(entry.name), stat
        if pid in named:
            procs[pid] = (named[pid], cpu)
        elif pid == os.getpid():
            procs[pid] = ("bench", cpu)
        elif comm.startswith("postgres") and not _other_database(pid, database):
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


def fresh_infra(base: Any, name: str = NAME) -> Any:
    """Drop and create the bench database and vhost (``name``); migrate. Returns the bench's settings."""
    import psycopg

    from piaojue.services import migrate_all

    with psycopg.connect(_with_path(base.database_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    rabbitmqctl("delete_vhost", name, check=False)  # left over by a run that was killed
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, urlsplit(base.amqp_url).username or "guest", ".*", ".*", ".*")
    settings = base.model_copy(update={
        "database_url": _with_path(base.database_url, f"/{name}"), "amqp_url": _with_path(base.amqp_url, f"/{name}"),
    })
    migrate_all(settings)
    return settings


def drop_infra(base: Any, keep_db: bool, name: str = NAME) -> None:
    import psycopg

    rabbitmqctl("delete_vhost", name, check=False)
    if not keep_db:
        with psycopg.connect(_with_path(base.database_url, "/postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_replicas(settings: Any, count: int, log_dir: Path, base_port: int = BASE_PORT,
                   extra_env: dict[str, str] | None = None) -> list[tuple[int, subprocess.Popen]]:
    from piaojue import processes

    replicas: list[tuple[int, subprocess.Popen]] = []
    try:
        for i in range(count):
            own = settings.model_copy(update={"base_port": base_port + 10 * i})
            (log_dir / f"replica{i}").mkdir(parents=True, exist_ok=True)
            # Tokens: the development issuer's key (or this environment's PIAOJUE_AUTH_*), which the replicas inherit.
            env = {"PIAOJUE_DATABASE_URL": own.database_url, "PIAOJUE_AMQP_URL": own.amqp_url,
                   "PIAOJUE_BASE_PORT": str(own.base_port), **(extra_env or {})}
            procs = processes.start(own, ["ballot"], env=env, log_dir=log_dir / f"replica{i}")
            replicas.append((own.port("ballot"), procs["ballot"]))
            processes.wait_ready(own, procs, broker=True)
    except BaseException:
        processes.stop({str(i): p for i, (_, p) in enumerate(replicas)})
        raise
    return replicas




def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the counting workers of a replica)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = Path(f"/proc/{entry.name}/stat").read_text()
                children.setdefault(int(raw[raw.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def code_version() -> str:
    """The commit the replicas run, "+dirty" if services/ or shared/ have uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "services", "shared"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
