"""Start and stop the five services, and the web front (``web``), as separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from shared.settings import SERVICES, Settings

WEB = "web"  # the pages, on the base port
EVERYTHING = (*SERVICES, WEB)


def ready(settings: Settings, service: str, broker: bool = False) -> bool:
    """Ready to serve (its database answers); with ``broker``, also connected to the broker with its
    consumers subscribed (the readiness body reports it; it is not needed to serve)."""
    try:
        response = httpx.get(f"{settings.url(service)}/health/ready", timeout=1)
        return response.status_code == 200 and (not broker or response.json().get("reported", {}).get("broker", True))
    except (httpx.HTTPError, ValueError):
        return False


def start(settings: Settings, services: Iterable[str] = SERVICES, env: dict[str, str] | None = None,
          log_dir: Path | None = None) -> dict[str, subprocess.Popen]:
    """Start each service (``python -m services.<name>``, or ``python -m web``); logs go to ``log_dir`` or inherit stdout."""
    procs = {}
    for name in services:
        out = open(log_dir / f"{name}.log", "ab") if log_dir else None  # noqa: SIM115 (closed with the process)
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", WEB if name == WEB else f"services.{name}"], env={**os.environ, **(env or {})}, stdout=out, stderr=out
        )
    return procs


def wait_ready(settings: Settings, procs: dict[str, subprocess.Popen], timeout: float = 60, broker: bool = False) -> None:
    deadline = time.monotonic() + timeout
    pending = set(procs)
    while pending:
        for name in list(pending):
            if procs[name].poll() is not None:
                raise RuntimeError(f"service {name} exited with code {procs[name].returncode}")
            if ready(settings, name, broker):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(sorted(pending))}")
        time.sleep(0.1)


def stop(procs: dict[str, subprocess.Popen], timeout: float = 10) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
