"""``piaojue``: the command line of a county deployment."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from shared.settings import SERVICES, get_settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from piaojue.services import migrate_all

    for service, applied in migrate_all(get_settings()).items():
        print(f"{service}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ""))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from piaojue import processes
    from piaojue.services import migrate_all

    settings = get_settings()
    migrate_all(settings)
    procs = processes.start(settings)
    try:
        processes.wait_ready(settings, procs)
        for name in SERVICES:
            print(f"{name:12s} {settings.url(name)}  (docs: {settings.url(name)}/docs)", file=sys.stderr)
        print("piaojue is up; Ctrl-C stops it.", file=sys.stderr)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        failed = [n for n, p in procs.items() if p.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        processes.stop(procs)


def cmd_demo(args: argparse.Namespace) -> int:
    from piaojue.demo import run_demo

    return run_demo(as_json=args.json)


def cmd_token(args: argparse.Namespace) -> int:
    from shared.auth import mint

    print(mint(args.sub, args.role, args.jurisdiction, name=args.name or "", ttl_s=args.days * 86400))
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    from shared.messaging import definitions

    print(json.dumps(definitions(get_settings()), indent=2, ensure_ascii=False))
    return 0


def cmd_asyncapi(args: argparse.Namespace) -> int:
    from shared.asyncapi import document

    print(json.dumps(document(), indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    from shared.auth import Role

    parser = argparse.ArgumentParser(
        prog="piaojue",
        description="票决 piaojue: livelihood projects chosen by deputies' vote. "
        "Settings come from PIAOJUE_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="apply migrations, then run the four services until Ctrl-C")
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("demo", help="replay the Fuyu 2024 vote through the services' HTTP APIs "
                       "(starts the services if they are not running, stops what it started)")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON document")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("migrate", help="create or update every service's PostgreSQL schema")
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("token", help="mint a bearer token for local use")
    p.add_argument("--sub", required=True, help="who: a deputy id, a user name, a unit")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--jurisdiction", required=True, help="e.g. taihu (county) or taihu.fuyu (township)")
    p.add_argument("--name", help="display name")
    p.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    p.set_defaults(fn=cmd_token)

    p = sub.add_parser("topology", help="print the RabbitMQ definitions (exchanges, queues, bindings) as JSON")
    p.set_defaults(fn=cmd_topology)

    p = sub.add_parser("asyncapi", help="print the AsyncAPI document of every event and queue (docs/asyncapi.json)")
    p.set_defaults(fn=cmd_asyncapi)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
