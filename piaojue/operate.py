"""``piaojue audit``, ``piaojue status`` and ``piaojue dead-letters``: what an operator runs on the server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import asyncpg

from shared import audit, tokens
from shared.settings import SERVICES, get_settings


def _services(given: list[str] | None) -> list[str]:
    return given or list(SERVICES)


# ---------------------------------------------------------------- audit


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = get_settings()
    path = Path(args.anchors) if args.anchors else Path(settings.audit_anchor_file) if settings.audit_anchor_file else None
    anchors, keys = [], None
    if path is not None:
        if not path.exists():
            print(f"no anchor file at {path}", file=sys.stderr)
            return 2
        anchors = audit.read_anchors(path)
        try:
            keys = audit.public_keys(settings.audit_public_keys, settings.audit_signing_key)
        except tokens.KeyError_ as exc:
            print(f"cannot read the audit keys: {exc}", file=sys.stderr)
            return 2
        if not keys:
            print("anchors given but no key to check them: set PIAOJUE_AUDIT_PUBLIC_KEYS", file=sys.stderr)
            return 2

    async def run() -> list[audit.Report]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return [await audit.verify(conn, s, anchors, keys) for s in _services(args.service)]
        finally:
            await conn.close()

    reports = asyncio.run(run())
    for r in reports:
        if r.ok:
            anchored = f", {r.anchors_checked} anchor(s) match" if path else ", no anchors checked (a recomputed or cut chain needs them)"
            print(f"{r.service:12s} ok: {r.rows} rows, head row {r.last_seq}"
                  f"{' ' + r.last_hash.hex()[:16] if r.last_hash else ''}{anchored}")
        else:
            print(f"{r.service:12s} BROKEN: {r.first}")
            for more in r.findings[1:]:
                print(f"{'':12s}   also: {more}")
    return 0 if all(r.ok for r in reports) else 1


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    settings = get_settings()
    out = args.anchors or settings.audit_anchor_file
    if not settings.audit_signing_key or not out:
        print("set PIAOJUE_AUDIT_SIGNING_KEY (an Ed25519 private JWK: piaojue keys generate) and --anchors FILE "
              "or PIAOJUE_AUDIT_ANCHOR_FILE", file=sys.stderr)
        return 2
    key = audit.signing_key(settings.audit_signing_key)

    async def run() -> list[dict]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return [await audit.anchor(conn, key, s) for s in _services(args.service)]
        finally:
            await conn.close()

    anchors = asyncio.run(run())
    audit.append_anchors(Path(out), anchors)
    for a in anchors:
        print(f"{a['service']:12s} anchored row {a['seq']} {(a['hash'] or '')[:16]} in {out}")
    return 0


# ---------------------------------------------------------------- status and dead letters


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60:02d}s"


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _owner(queue: str) -> str:
    owner = queue.split(".")[0]
    return owner if owner in SERVICES else f"{owner} (external)"


async def _status(settings) -> dict:
    import aio_pika

    from shared import operations

    status: dict = {"at": operations.now(), "outbox": [], "queues": [], "broker": None, "database": None}
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=5)
        try:
            status["outbox"] = [await operations.outbox_lag(conn, s) for s in SERVICES]
        finally:
            await conn.close()
    except Exception as exc:
        status["database"] = f"unreachable: {type(exc).__name__}: {exc}"
    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=5)
    except Exception as exc:
        status["broker"] = f"unreachable: {type(exc).__name__}: {exc}"
        return status
    try:
        status["queues"] = await operations.queue_states(connection)
    finally:
        await connection.close()
    return status


def cmd_status(args: argparse.Namespace) -> int:
    from shared import operations

    status = asyncio.run(_status(get_settings()))
    if args.json:
        print(operations.as_json(status))
        return 0 if not (status["broker"] or status["database"]) else 1
    print(f"piaojue status  {status['at']}")
    print()
    if status["database"]:
        print(f"database {status['database']}")
    else:
        print(f"{'service':12s} {'outbox unpublished':>18s}  oldest")
        for lag in status["outbox"]:
            print(f"{lag.service:12s} {lag.unpublished:>18d}  {_age(lag.oldest_seconds)}")
    print()
    if status["broker"]:
        print(f"broker {status['broker']}  (events wait in the outboxes above)")
        return 1
    print(f"{'consumer':22s} {'queue':28s} {'ready':>6s} {'consumers':>9s} {'dead':>5s}  last dead letter")
    for q in sorted(status["queues"], key=lambda q: (_owner(q.queue), q.queue)):
        missing = q.ready is None
        last = _one_line(f"{q.last_dead.dead_at or ''} {q.last_dead.type or ''}: {q.last_dead.reason}") if q.last_dead else "-"
        print(f"{_owner(q.queue):22s} {q.queue:28s} {'missing' if missing else q.ready:>6} "
              f"{'' if missing else q.consumers:>9} {'' if q.dead is None else q.dead:>5}  {last}")
    return 1 if status["database"] else 0


def _dead_letters(args: argparse.Namespace):
    import aio_pika

    from shared import operations

    async def run():
        connection = await aio_pika.connect(get_settings().amqp_url, timeout=10)
        try:
            if args.action == "list":
                return await operations.read_dead(connection, args.queue, limit=args.limit)
            return await operations.replay(connection, args.queue, set(args.id) if args.id else None)
        finally:
            await connection.close()

    return asyncio.run(run())


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from shared import operations

    letters = _dead_letters(args)
    if args.json:
        print(operations.as_json(letters))
        return 0
    if args.action == "list":
        print(f"{args.queue}.dead: {len(letters)} dead letter(s)")
        for d in letters:
            replayed = f"  (replayed {d.replayed}×)" if d.replayed else ""
            print(f"{d.id}  {d.type}  {d.dead_at or ''}{replayed}\n    reason: {d.reason}\n    body:   {d.body[:300]}")
    else:
        print(f"{len(letters)} dead letter(s) re-published to {args.queue}" + (":" if letters else ""))
        for d in letters:
            print(f"{d.id}  {d.type}  (was: {d.reason})")
        if args.id and len(letters) < len(set(args.id)):
            print(f"not found in {args.queue}.dead: {', '.join(sorted(set(args.id) - {d.id for d in letters}))}", file=sys.stderr)
            return 1
    return 0


def add_arguments(sub) -> None:
    p = sub.add_parser("audit", help="the audit trail's hash chains: verify them, anchor their heads")
    cmds = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = cmds.add_parser("verify", help="walk each service's chain and check it against the signed anchors; "
                        "prints the first broken link (exit 1)")
    p.add_argument("--service", action="append", help=f"one of {', '.join(SERVICES)} (repeatable; default all)")
    p.add_argument("--anchors", help="the anchor file (default PIAOJUE_AUDIT_ANCHOR_FILE)")
    p.set_defaults(fn=cmd_audit_verify)
    p = cmds.add_parser("anchor", help="sign each service's chain head and append it to the anchor file")
    p.add_argument("--service", action="append", help="repeatable; default all")
    p.add_argument("--anchors", help="the anchor file (default PIAOJUE_AUDIT_ANCHOR_FILE)")
    p.set_defaults(fn=cmd_audit_anchor)

    p = sub.add_parser("status", help="per service: outbox lag; per queue: depth, consumers, dead letters and the last reason")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("dead-letters", help="show a queue's dead letters, or re-publish them to it after a fix")
    p.add_argument("action", choices=("list", "replay"))
    p.add_argument("queue", help="the consumer queue, e.g. supervision.results (its dead letters are in <queue>.dead)")
    p.add_argument("--id", action="append", help="replay only this event id (repeatable; default: all)")
    p.add_argument("--limit", type=int, default=100, help="list at most this many (default 100)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_dead_letters)
