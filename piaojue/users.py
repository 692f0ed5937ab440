"""``piaojue users`` and ``piaojue keys``: accounts and signing keys, for an operator on the server.

The command line works on the identity schema directly (as ``piaojue migrate`` does), through the
same account functions as the HTTP API, and every change is audited with the operator's name.
Passwords are read from standard input, never from the command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from shared.settings import get_settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _password() -> str | None:
    """The first line of standard input (empty: a generated one)."""
    tty = sys.stdin.isatty()
    return (getpass.getpass("password (empty: generate one): ") if tty else sys.stdin.readline().rstrip("\r\n")) or None


async def _run(work) -> Any:
    from shared.db import create_pool, unit_of_work

    pool = await create_pool(get_settings(), "identity", max_size=2)  # after `piaojue migrate`
    try:
        async with unit_of_work(pool, "identity") as uow:
            return await work(uow)
    finally:
        await pool.close()


def _do(work) -> int:
    from shared.http import Problem

    try:
        result = asyncio.run(_run(work))
    except Problem as exc:
        print(f"refused: {exc.code}: {exc.detail or exc.title}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    return 0


def _grant(args: argparse.Namespace):
    from services.identity.domain import Grant

    return Grant(args.role, args.jurisdiction, args.unit or "", args.term, args.deputy_id)


def cmd_add(args: argparse.Namespace) -> int:
    from services.identity import accounts

    password = None if args.machine or args.sso_only else _password()
    return _do(lambda uow: accounts.add(uow, _actor(), None, args.username, args.display_name or args.username,
                                        "machine" if args.machine else "person", password, [_grant(args)], args.oidc_subject))


def cmd_list(args: argparse.Namespace) -> int:
    from services.identity import store

    return _do(lambda uow: store.accounts_within(uow.conn, args.jurisdiction))


def cmd_disable(args: argparse.Namespace) -> int:
    from services.identity import accounts

    return _do(lambda uow: accounts.set_disabled(uow, _actor(), None, args.username, True))


def cmd_reset_password(args: argparse.Namespace) -> int:
    from services.identity import accounts

    password = _password()
    return _do(lambda uow: accounts.reset_password(uow, _actor(), None, args.username, password))


def cmd_init(args: argparse.Namespace) -> int:
    """The first administrator of a fresh install; its password is printed once."""
    from services.identity import accounts, store
    from services.identity.domain import Grant

    async def work(uow):
        if await store.any_admin(uow.conn):
            print("an administrator exists already: nothing done (piaojue users list)", file=sys.stderr)
            return None
        made = await accounts.add(uow, _actor(), None, args.username, "系统管理员 administrator", "person", None,
                                  [Grant("admin", args.county)])
        print(f"first administrator of {args.county}: {made['username']}\n"
              f"password (shown this once; change it: POST /auth/password): {made['password']}")
        return None

    return _do(work)


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from shared import tokens

    private = tokens.generate(args.algorithm)
    public = tokens.public_jwk(private)
    print("# identity only, a secret: PIAOJUE_AUTH_SIGNING_KEY=")
    print(json.dumps(private, separators=(",", ":")))
    print("# the public key, to add to PIAOJUE_AUTH_JWKS of every service ({\"keys\": [...]}):")
    print(json.dumps(public, separators=(",", ":")))
    print("# PIAOJUE_AUTH_JWKS with this key alone:")
    print(json.dumps({"keys": [public]}, separators=(",", ":")))
    return 0


def add_arguments(sub) -> None:
    from services.identity.domain import ROLES

    users = sub.add_parser("users", help="accounts: add, list, disable, reset-password, init (the first administrator)")
    cmds = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = cmds.add_parser("add", help="a new account; its password is read from standard input (empty: generated)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--jurisdiction", required=True, help="e.g. taihu (the county) or taihu.fuyu (a township)")
    p.add_argument("--display-name")
    p.add_argument("--unit", help="lead_unit: its unit (牵头单位)")
    p.add_argument("--term", type=int, help="deputy: the term (届)")
    p.add_argument("--deputy-id", help="deputy: the deputy id on the roster")
    p.add_argument("--machine", action="store_true", help="a machine account (client credentials); its secret is printed once")
    p.add_argument("--oidc-subject", help="'<issuer>|<sub>': signs in through the county's single sign-on")
    p.add_argument("--sso-only", action="store_true", help="no password: single sign-on only")
    p.set_defaults(fn=cmd_add)
    p = cmds.add_parser("list", help="accounts with a role in a jurisdiction (and below)")
    p.add_argument("--jurisdiction", default="", help="default: all")
    p.set_defaults(fn=cmd_list)
    p = cmds.add_parser("disable", help="no more sign-ins; ends the account's refresh tokens")
    p.add_argument("username")
    p.set_defaults(fn=cmd_disable)
    p = cmds.add_parser("reset-password", help="a new password from standard input (empty: generated, printed once); unlocks")
    p.add_argument("username")
    p.set_defaults(fn=cmd_reset_password)
    p = cmds.add_parser("init", help="create the first administrator of a fresh install and print its password once")
    p.add_argument("--county", required=True, help="the county's jurisdiction, e.g. taihu")
    p.add_argument("--username", default="admin")
    p.set_defaults(fn=cmd_init)

    keys = sub.add_parser("keys", help="token signing keys")
    cmds = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = cmds.add_parser("generate", help="a new signing key: the private JWK for identity, the public one for every service")
    p.add_argument("--algorithm", choices=("EdDSA", "ES256"), default="EdDSA")
    p.set_defaults(fn=cmd_keys_generate)
