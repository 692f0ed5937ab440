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
