"""Where a replica's CPU goes: a summary of py-spy's collapsed stacks.

    piaojue bench ballot --deputies 20000 --profile /tmp/prof
    .venv/bin/python tests/bench/pyspy_top.py /tmp/prof/replica*.txt

py-spy (``pip install py-spy``, not a project dependency) records only samples where Python is
running, so shares are of the busy CPU time. Three views: by layer (the package of the innermost
frame that is not the standard library or a C call, i.e. who asked for the work), by function
inclusive (its own time and everything it called), and by function self.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# A frame as py-spy writes it: "function (path/to/file.py:line)".
FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
LAYERS = [  # first match wins; matched against the frame's file path
    ("ballot service", "/services/ballot/"), ("shared (http, db, auth, messaging)", "/shared/"),
    ("asyncpg", "/asyncpg/"), ("pydantic", "/pydantic"), ("fastapi", "/fastapi/"), ("starlette", "/starlette/"),
    ("uvicorn + h11", "/uvicorn/"), ("uvicorn + h11", "/h11/"), ("jwt", "/jwt/"), ("structlog", "/structlog/"),
    ("prometheus_client", "/prometheus_client/"), ("faststream / aio-pika / aiormq", "/faststream/"),
    ("faststream / aio-pika / aiormq", "/aio_pika/"), ("faststream / aio-pika / aiormq", "/aiormq/"),
    ("anyio", "/anyio/"),
]


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for raw in stack.split(";"):
        m = FRAME.match(raw.strip())
        out.append((m["fn"], m["file"]) if m else (raw.strip(), ""))
    return out


def layer(file: str) -> str | None:
    return next((name for name, part in LAYERS if part in file), None)


def summarise(paths: list[Path], top: int = 25) -> str:
    by_layer, inclusive, own = Counter(), Counter(), Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n, fs = int(count), frames(stack)
            total += n
            # Attribute the sample to the innermost frame of a known layer; else the event loop or stdlib.
            by_layer[next((lay for _, f in reversed(fs) if (lay := layer(f))), "asyncio / stdlib / other")] += n
            for key in {f"{fn} ({Path(f).name})" for fn, f in fs}:
                inclusive[key] += n
            fn, f = fs[-1]
            own[f"{fn} ({Path(f).name})"] += n
    if not total:
        return "no samples"

    def table(title: str, counts: Counter) -> list[str]:
        return [f"\n{title}"] + [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(top)]

    return "\n".join([f"{total} samples from {len(paths)} file(s)",
                      *table("by layer (innermost known frame)", by_layer),
                      *table("inclusive (function and all it called)", inclusive),
                      *table("self (innermost frame)", own)])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(summarise([Path(p) for p in sys.argv[1:]]))
