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
        processes.wait_ready(self.settings, started, broker=True)  # consumers subscribed too

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
    try:
        cluster.start()  # inside the try: a service that fails to start must not leave the others running
        yield cluster
    finally:
        cluster.stop()

