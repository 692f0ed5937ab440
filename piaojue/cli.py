"""``piaojue``: the command line of a county deployment."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

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
    procs = processes.start(settings, processes.EVERYTHING)
    try:
        processes.wait_ready(settings, procs)
        print(f"{'web 页面':12s} {settings.url('web')}/", file=sys.stderr)
        for name in SERVICES:
            print(f"{name:12s} {settings.url(name)}  (docs: {settings.url(name)}/docs)", file=sys.stderr)
        print("piaojue is up; Ctrl-C stops it.", file=sys.stderr)
        for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job starts with it ignored
            signal.signal(sig, _interrupt)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        failed = [n for n, p in procs.items() if p.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        processes.stop(procs)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    from piaojue.demo import run_demo

    return run_demo(as_json=args.json, town=args.jurisdiction)


def cmd_token(args: argparse.Namespace) -> int:
    """A DEVELOPMENT tool: people sign in through the identity service, machines use client credentials."""
    from shared.auth import mint

    if get_settings().env == "production":
        print("piaojue token is a development tool and refuses to run in production mode: people sign in "
              "(POST /auth/sign-in), machines use client credentials (POST /oauth/token)", file=sys.stderr)
        return 2
    print("development token, signed with this machine's development issuer key (not for a real deployment)", file=sys.stderr)
    claims = {k: v for k, v in (("term", args.term), ("session", args.session), ("unit", args.unit)) if v is not None}
    print(mint(args.sub, args.role, args.jurisdiction, name=args.name or "", ttl_s=args.days * 86400, **claims))
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    from shared.messaging import definitions

    print(json.dumps(definitions(get_settings()), indent=2, ensure_ascii=False))
    return 0


def cmd_recount(args: argparse.Namespace) -> int:
    """Recount a certified vote from its publication: a file, or the endpoint's URL."""
    import httpx

    from services.ballot.recount import recount

    if args.source.startswith(("http://", "https://")):
        headers = {"authorization": f"Bearer {args.token}"} if args.token else {}
        response = httpx.get(args.source, headers=headers, timeout=60)
        if response.status_code != 200:
            print(f"cannot read the publication: {response.status_code} {response.text}", file=sys.stderr)
            return 2
        publication = response.json()
        with_ballots = httpx.get(args.source.rstrip("/") + "/ballots", headers=headers, timeout=60)
        if with_ballots.status_code == 200:  # tellers, the presiding officer, the county: a full recount
            publication = with_ballots.json()
    else:
        with open(args.source, encoding="utf-8") as f:
            publication = json.load(f)
    result = recount(publication, args.receipt)
    titles = {s["id"]: s["title"] for s in publication["subjects"]}
    if result.matches:
        what = "the published ballots give" if result.ballots_checked else "the published tallies and trackers agree with"
        print(f"MATCH 一致: {what} the certified result ({len(publication['rounds'])} round(s)).")
        for cid in result.chosen:
            print(f"  入选 {titles.get(cid, cid)}")
    else:
        print("MISMATCH 不一致:")
        for difference in result.differences:
            print(f"  {difference}")
    if result.receipt_found is not None:
        print("your receipt is among the ballots counted 您的选票已计入" if result.receipt_found
              else "your receipt is NOT among the published receipts 未找到您的回执")
    return 0 if result.matches and result.receipt_found is not False else 1


def cmd_teller_key(args: argparse.Namespace) -> int:
    """A teller's key pair: the private half stays in FILE; the public half is registered."""
    from piaojue.teller import write_key

    try:
        key = write_key(args.file, args.suite)
    except FileExistsError:
        print(f"{args.file} exists: a teller keeps their key; choose another file", file=sys.stderr)
        return 2
    print(f"private key written to {args.file} (keep it; it opens your share of each round's key)")
    print(f"public key  {key['public_key']}  ({key['suite']})")
    print(f"fingerprint {key['fingerprint']}  (compare with the one the session shows for you)")
    if args.register:
        return _teller_call("PUT", f"{args.register.rstrip('/')}/tellers/me/key", args.token,
                            {"public_key": key["public_key"], "suite": key["suite"]})
    return 0


def cmd_present_share(args: argparse.Namespace) -> int:
    """Open my sealed share of the round's key with my key file, and present it."""
    import httpx

    from piaojue.teller import open_share

    key = json.loads(args.key.read_text())
    base = f"{args.url.rstrip('/')}/votes/{args.vote}"
    mine = httpx.get(f"{base}/shares/mine", headers={"authorization": f"Bearer {args.token}"}, timeout=30)
    if mine.status_code != 200:
        print(f"cannot fetch your share: {mine.status_code} {mine.text}", file=sys.stderr)
        return 1
    opened = open_share(key, mine.json())
    if args.print_only:  # for the tellers' page: the opened share, to paste there; the key never leaves this device
        print(opened["share"])
        return 0
    return _teller_call("POST", f"{base}/shares", args.token, opened, timeout=180)


def _teller_call(method: str, url: str, token: str, body: dict, timeout: float = 30) -> int:
    import uuid

    import httpx

    response = httpx.request(method, url, json=body, timeout=timeout,
                             headers={"authorization": f"Bearer {token}", "idempotency-key": str(uuid.uuid4())})
    print(f"{response.status_code} {response.text}")
    return 0 if response.status_code < 300 else 1


def cmd_asyncapi(args: argparse.Namespace) -> int:
    from shared.asyncapi import document

    print(json.dumps(document(), indent=2, ensure_ascii=False))
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from pathlib import Path

    from piaojue.services import openapi_documents

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in openapi_documents().items():
        (out / f"{name}.json").write_text(openapi_text(doc), encoding="utf-8")
        print(f"{out / name}.json: {len(doc['paths'])} paths", file=sys.stderr)
    return 0


def openapi_text(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def cmd_screenshots(args: argparse.Namespace) -> int:
    from pathlib import Path

    from piaojue.screenshots import take

    written = take(Path(args.dir), args.jurisdiction)
    print(f"{len(written)} screenshots in {args.dir}")
    return 0


def cmd_county_receiver(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from piaojue.county_receiver import serve

    secret = args.secret or os.environ.get("PIAOJUE_COUNTY_WEBHOOK_SECRET")
    if not secret:
        print("give the subscriber's secret: --secret or PIAOJUE_COUNTY_WEBHOOK_SECRET", file=sys.stderr)
        return 2
    serve(secret, Path(args.store), args.host, args.port, args.tolerance)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """The county's ranking sheet, from the scoring service's API."""
    import httpx

    from shared.auth import Role, mint

    settings = get_settings()
    token = args.token or mint("county-export", Role.COUNTY, args.jurisdiction, ttl_s=600)
    response = httpx.get(f"{settings.url('scoring')}/assessments.xlsx", params={"year": args.year},
                         headers={"authorization": f"Bearer {token}"}, timeout=60)
    if response.status_code != 200:
        print(f"cannot read the ranking: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(response.content)
    print(f"wrote {args.out} ({len(response.content)} bytes)", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from piaojue.bench import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    from shared.auth import Role

    parser = argparse.ArgumentParser(
        prog="piaojue",
        description="票决 piaojue: livelihood projects chosen by deputies' vote. "
        "Settings come from PIAOJUE_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="apply migrations, then run the five services and the web pages until Ctrl-C")
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("demo", help="replay the Fuyu 2024 vote through the services' HTTP APIs "
                       "(starts the services if they are not running, stops what it started)")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON document")
    p.add_argument("--jurisdiction", default="taihu.fuyu",
                   help="the township to replay it in, under the county taihu (default taihu.fuyu); running services "
                        "that already hold its 2024 projects need another one")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("screenshots", help="render every page for the demo town at phone and desktop sizes to PNG files "
                       "(Debian's chromium; starts what it needs unless everything is running)")
    p.add_argument("dir", help="where to write the PNG files")
    p.add_argument("--jurisdiction", default="taihu.fuyu", help="the demo township (default taihu.fuyu)")
    p.set_defaults(fn=cmd_screenshots)

    p = sub.add_parser("migrate", help="create or update every service's PostgreSQL schema")
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("token", help="DEVELOPMENT ONLY: sign a bearer token with the development issuer key")
    p.add_argument("--sub", required=True, help="who: a deputy id, a user name, a unit")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--jurisdiction", required=True, help="e.g. taihu (county) or taihu.fuyu (township)")
    p.add_argument("--name", help="display name")
    p.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    p.add_argument("--term", type=int, help="a deputy's term (届)")
    p.add_argument("--session", help="a deputy's voting credential (or the display's): the session id")
    p.add_argument("--unit", help="a lead unit's unit (牵头单位)")
    p.set_defaults(fn=cmd_token)

    from piaojue.users import add_arguments as add_user_arguments

    add_user_arguments(sub)

    from piaojue.operate import add_arguments as add_operate_arguments

    add_operate_arguments(sub)

    p = sub.add_parser("topology", help="print the RabbitMQ definitions (exchanges, queues, bindings) as JSON")
    p.set_defaults(fn=cmd_topology)

    ballot = sub.add_parser("ballot", help="ballot tools").add_subparsers(dest="ballot_command", required=True, metavar="TOOL")
    p = ballot.add_parser("recount", help="recount a certified vote from its publication and say whether it matches")
    p.add_argument("source", help="a publication file (JSON), or the URL of GET /votes/{id}/publication")
    p.add_argument("--token", help="bearer token, when SOURCE is a URL")
    p.add_argument("--receipt", help="your receipt (tracker): check that your ballot was counted")
    p.set_defaults(fn=cmd_recount)
    p = ballot.add_parser("teller-key", help="a teller (监票人) makes their key pair; the private key stays in FILE")
    p.add_argument("file", type=Path, help="where to keep the private key (created, never overwritten)")
    p.add_argument("--suite", default="x25519-hkdf-sha256-aes128gcm",
                   help="cipher suite: x25519-hkdf-sha256-aes128gcm (default) or sm2-sm3-sm4 (pip install 'piaojue[gm]')")
    p.add_argument("--register", metavar="URL", help="register the public key with the ballot service at URL")
    p.add_argument("--token", help="your teller token, with --register")
    p.set_defaults(fn=cmd_teller_key)
    p = ballot.add_parser("present-share", help="a teller opens their share of a closed round's key and presents it")
    p.add_argument("url", help="the ballot service, e.g. http://127.0.0.1:8102")
    p.add_argument("--vote", required=True, help="the vote's id")
    p.add_argument("--key", required=True, type=Path, help="your key file (piaojue ballot teller-key)")
    p.add_argument("--token", required=True, help="your teller token")
    p.add_argument("--print-only", action="store_true",
                   help="only print the opened share (to paste on the tellers' page); present nothing")
    p.set_defaults(fn=cmd_present_share)

    p = sub.add_parser("county-receiver", help="reference receiver of the signed assessment webhooks (县考核): verifies, "
                       "stores each version, refuses replays and bad signatures")
    p.add_argument("--port", type=int, default=8190)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--secret", help="the subscriber's secret (or PIAOJUE_COUNTY_WEBHOOK_SECRET)")
    p.add_argument("--store", default="county-receiver.sqlite3", help="SQLite file of the versions received")
    p.add_argument("--tolerance", type=int, default=300, help="seconds a timestamp may be off (default 300)")
    p.set_defaults(fn=cmd_county_receiver)

    export = sub.add_parser("export", help="spreadsheets").add_subparsers(dest="export_command", required=True, metavar="WHAT")
    p = export.add_parser("assessments", help="the county's ranking sheet of township assessments (xlsx)")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--out", required=True, help="the .xlsx file to write")
    p.add_argument("--jurisdiction", default="taihu", help="the county (default taihu)")
    p.add_argument("--token", help="a county token (default: minted locally with PIAOJUE_AUTH_SECRET)")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("asyncapi", help="print the AsyncAPI document of every event and queue (docs/asyncapi.json)")
    p.set_defaults(fn=cmd_asyncapi)

    p = sub.add_parser("openapi", help="write each service's OpenAPI document into docs/openapi/<service>.json")
    p.add_argument("--out", default="docs/openapi", help="the folder to write them to (default docs/openapi)")
    p.set_defaults(fn=cmd_openapi)

    from piaojue.bench import add_arguments as add_bench_arguments

    p = sub.add_parser("bench", help="benchmarks on this machine, on a database and vhost of their own (piaojue_bench)")
    benches = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    p = benches.add_parser("ballot", help="cast a congress's ballots through R ballot replicas: throughput, latency, "
                           "tally, close → certified, memory, and the raw asyncpg ceiling; last line JSON")
    add_bench_arguments(p)
    p.set_defaults(fn=cmd_bench)
    from piaojue.bench import live as live_bench

    p = benches.add_parser("live", help="C live-view clients (default 5,000) over S sessions on one ballot replica while "
                           "1,000 ballots/s are cast: the live view's database queries/s, update and cast p99, RSS; last line JSON")
    live_bench.add_arguments(p)
    p.set_defaults(fn=live_bench.run)
    from piaojue import intake_bench

    p = benches.add_parser("duplicates", help="the intake duplicate detector on the labelled set: precision and recall "
                           "on the tune and held-out halves, beside text-only baselines")
    intake_bench.add_duplicates_arguments(p)
    p.set_defaults(fn=intake_bench.run_duplicates)
    p = benches.add_parser("intake", help="import a grid worker's spreadsheet of N rows (default 5,000) through the intake "
                           "API, beside reading the file alone and a tenth of the rows; last line JSON")
    intake_bench.add_import_arguments(p)
    p.set_defaults(fn=intake_bench.run_import)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
