from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from piaojue import processes
from shared.settings import SERVICES


class Cluster:
    """The four services as separate processes, on this run's database and vhost."""

    def __init__(self, settings, log_dir: Path) -> None:
        self.settings, self.log_dir = settings, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, *names: str) -> None:
        started = processes.start(self.settings, names or SERVICES, env=dict(os.environ), log_dir=self.log_dir)
        self.procs.update(started)
        processes.wait_ready(self.settings, started)

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        processes.stop(self.procs)

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster(settings, tmp_path_factory):
    """Started per module and stopped after it, so no other test's messages are taken by it."""
    cluster = Cluster(settings, tmp_path_factory.mktemp("service-logs"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class Receiver:
    """``piaojue county-receiver`` in a process of its own, with the secret of its subscription."""

    def __init__(self, settings, store: Path) -> None:
        import secrets
        import sys

        self.secret = secrets.token_urlsafe(32)
        self.port = settings.base_port + 9
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "piaojue.cli", "county-receiver", "--port", str(self.port), "--store", str(store)],
            env={**os.environ, "PIAOJUE_COUNTY_WEBHOOK_SECRET": self.secret})

    def wait_ready(self, timeout: float = 30) -> None:
        import time

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
        processes.stop({"receiver": self.proc})


@pytest.fixture(scope="module")
def receiver(settings, tmp_path_factory):
    receiver = Receiver(settings, tmp_path_factory.mktemp("county") / "received.sqlite3")
    try:
        receiver.wait_ready()
        yield receiver
    finally:
        receiver.stop()
