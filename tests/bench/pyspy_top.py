"""Where a replica's CPU goes: a summary of py-spy's collapsed stacks.

    piaojue bench ballot --deputies 20000 --profile /tmp/prof
    .venv/bin/python tests/bench/pyspy_top.py /tmp/prof/replica*.txt

py-spy (``pip install py-spy``, not a project dependency) records only samples where Python is
running, but it does not tell an idle worker thread from a busy one: ``--profile`` records with
``--gil`` (only the thread holding the GIL), so shares are of the Python CPU time of the replica
(one core at most). Four views: by cause (see CAUSES), by the frame that decided the cause, by
function inclusive (its own time and everything it called), and by function self.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# A frame as py-spy writes it: "function (path/to/file.py:line)" (record with --full-filenames).
FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
# What a sample is spent on: walking from the innermost frame outwards, the first frame whose file
# matches decides. So json.loads called by FastAPI's body parsing counts as "request parsing",
# an asyncpg call made by the ballot code counts as asyncpg, and anyio's task groups and cancel
# scopes count for whoever uses them (Starlette's BaseHTTPMiddleware, its thread pool).
CAUSES = [
    ("asyncpg (protocol, pool)", ("/asyncpg/",)),
    ("sync dependency run in a thread (anyio.to_thread)", ("/anyio/to_thread.py", "/starlette/concurrency.py", "/threading.py",
                                                           "/queue.py")),
    ("JWT", ("/jwt/",)),
    ("structlog", ("/structlog/",)),
    ("prometheus_client", ("/prometheus_client/",)),
    ("ballot service code", ("/services/ballot/",)),
    ("shared code (http, db, auth)", ("/shared/",)),
    ("request parsing and validation (fastapi.dependencies, pydantic)", ("/fastapi/dependencies/", "/pydantic")),
    ("@app.middleware: starlette BaseHTTPMiddleware (task group, memory streams)", ("/starlette/middleware/base.py",)),
    ("fastapi / starlette (routing, responses, other middleware)", ("/fastapi/", "/starlette/")),
    ("uvicorn + h11 (HTTP protocol)", ("/uvicorn/protocols/", "/h11/")),
    ("faststream / aio-pika / aiormq", ("/faststream/", "/aio_pika/", "/aiormq/")),
]
ANYIO = "anyio task runner (no caller on the stack)"
REST = "asyncio event loop / stdlib only"


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for raw in stack.split(";"):
        m = FRAME.match(raw.strip())
        out.append((m["fn"], m["file"]) if m else (raw.strip(), ""))
    return out


def cause(fs: list[tuple[str, str]]) -> tuple[str, str]:
    """(the cause, the frame that decided it)."""
    # Below the callback the loop is running (Handle._run) is only the process's bootstrap
    # (python -m services.ballot → uvicorn → asyncio): it must not claim the sample.
    runs = [i for i, (fn, file) in enumerate(fs) if fn == "Handle._run" and file.endswith("asyncio/events.py")]
    if not runs:
        return REST, ""
    fs = fs[runs[-1] + 1:]
    for fn, file in reversed(fs):
        for name, parts in CAUSES:
            if any(part in file for part in parts):
                return name, f"{fn} ({Path(file).name})"
    return (ANYIO if any("/anyio/" in file for _, file in fs) else REST), ""


def summarise(paths: list[Path], top: int = 25) -> str:
    by_cause, deciding, inclusive, own = Counter(), Counter(), Counter(), Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n, fs = int(count), frames(stack)
            total += n
            name, frame = cause(fs)
            by_cause[name] += n
            deciding[f"{frame or '-'}  [{name.split(' (')[0]}]"] += n
            for key in {f"{fn} ({Path(f).name})" for fn, f in fs}:
                inclusive[key] += n
            fn, f = fs[-1]
            own[f"{fn} ({Path(f).name})"] += n
    if not total:
        return "no samples"

    def table(title: str, counts: Counter) -> list[str]:
        return [f"\n{title}"] + [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(top)]

    return "\n".join([f"{total} samples from {len(paths)} file(s)",
                      *table("by cause (innermost frame of a known kind)", by_cause),
                      *table("by the frame that decided the cause", deciding),
                      *table("inclusive (function and all it called)", inclusive),
                      *table("self (innermost frame)", own)])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(summarise([Path(p) for p in sys.argv[1:]]))
