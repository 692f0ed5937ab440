"""``piaojue bench live``'s screens: thousands of server-sent-event clients in a process of their own.

Run as ``python -m piaojue.bench.live_client PORT OUT`` with one JSON line on stdin: a list of
[session index, token]. It opens every stream (a few hundred a second, so as not to overflow the
replica's accept queue), prints ``connected N`` once all have their first state, and records per
client when each new cast count arrived (``time.monotonic()``, which every process on the machine
shares). On SIGTERM it writes {"series": [[session, [[t, cast], ...]], ...], "errors": {...},
"ended": {...}} to OUT and exits.

Cheap on purpose (the machine has two cores for everything): asyncio protocols, no HTTP library;
a state's JSON is parsed once per distinct event id, whatever the number of clients that get it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import Counter
from typing import Any

CONNECT_PER_S = 400


class Stream(asyncio.Protocol):
    def __init__(self, run: Run, index: int, request: bytes) -> None:
        self.run, self.index, self.request = run, index, request
        self.buffer = b""
        self.started = False
        self.last = -1
        self.series: list[tuple[float, int]] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.started:
            if b"\r\n\r\n" not in self.buffer:
                return
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                self.run.errors[head[9:12].decode(errors="replace")] += 1
                self.transport.close()
                return
            self.started = True
        *events, self.buffer = self.buffer.split(b"\n\n")
        for event in events:
            at = event.find(b"id: ")
            if at >= 0:
                count = self.run.count(event[at + 4:at + 20], event)
                if count != self.last:
                    if self.last < 0:
                        self.run.ready += 1
                    self.last = count
                    self.series.append((now, count))
            elif b"event: end" in event:
                reason = event[event.find(b'"reason": "') + 11:].split(b'"', 1)[0].decode(errors="replace")
                self.run.ended[reason] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost += 1


class Run:
    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self.errors: Counter = Counter()
        self.ended: Counter = Counter()
        self.ready = 0
        self.lost = 0

    def count(self, event_id: bytes, event: bytes) -> int:
        """Ballots cast so far in the session's open vote(s), from the state this id names."""
        if (known := self.counts.get(event_id)) is None:
            state = json.loads(event[event.find(b"data: ") + 6:])
            known = self.counts[event_id] = sum(v["cast"] or 0 for v in state["votes"])
        return known


async def main(port: int, out: str) -> None:
    clients: list[list[Any]] = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    run, streams = Run(), []
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    started = time.monotonic()
    for i, (session_index, session_id, token) in enumerate(clients):
        request = (f"GET /sessions/{session_id}/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
        stream = Stream(run, session_index, request)
        try:
            await loop.create_connection(lambda s=stream: s, "127.0.0.1", port)
            streams.append(stream)
        except OSError as exc:
            run.errors[type(exc).__name__] += 1
        if (ahead := started + (i + 1) / CONNECT_PER_S - time.monotonic()) > 0:
            await asyncio.sleep(ahead)
    deadline = time.monotonic() + 60
    while run.ready + sum(run.errors.values()) < len(clients) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print(f"connected {run.ready}", flush=True)
    await stop.wait()
    with open(out, "w") as f:
        json.dump({"series": [[s.index, s.series] for s in streams], "errors": run.errors, "ended": run.ended,
                   "lost": run.lost, "ready": run.ready}, f)
    for s in streams:
        if s.transport is not None:
            s.transport.close()


if __name__ == "__main__":
    try:
        from uvloop import new_event_loop as loop_factory
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main(int(sys.argv[1]), sys.argv[2]))
