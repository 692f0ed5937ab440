"""The counting workers: one process per core, started when a large sealed round closes and
stopped once it is counted. They are children of the service process and die with it (Linux
PR_SET_PDEATHSIG), so a replica that is killed leaves none behind. Standard library only: a
worker imports this module and the sealing module, nothing of the web stack."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

_pool: ProcessPoolExecutor | None = None
_users = 0


def die_with_parent() -> None:
    """Worker initializer: ask the kernel to kill this worker when its parent dies."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def acquire() -> ProcessPoolExecutor:
    """The workers, started if need be (spawn: a clean interpreter each, no copy of the service)."""
    global _pool, _users
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=os.cpu_count() or 2, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=die_with_parent)
        for _ in range(os.cpu_count() or 2):
            _pool.submit(int)  # start them now, while the tellers come
    _users += 1
    return _pool


def release() -> None:
    global _pool, _users
    _users -= 1
    if _users <= 0 and _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool, _users = None, 0
