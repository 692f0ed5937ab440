"""``piaojue users`` on the server: the first administrator printed once, accounts added with the
password from standard input, listed, disabled and reset, each change audited."""

from __future__ import annotations

import asyncio
import io
import json

import asyncpg
import pytest

from piaojue.cli import main


def run(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def audit_actions(settings, username: str) -> list[str]:
    async def fetch():
        conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "identity"})
        try:
            return [r["action"] for r in await conn.fetch("SELECT action FROM audit WHERE entity_id = $1 ORDER BY seq", username)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.mark.usefixtures("settings")
def test_the_first_administrator_is_created_once_with_its_password_printed_once(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "users", "init", "--county", "taihu", "--username", "cli-first-admin")
    assert code == 0 and "cli-first-admin" in out and "password" in out
    code, out, err = run(monkeypatch, capsys, "users", "init", "--county", "taihu", "--username", "cli-second-admin")
    assert code == 0 and "exists already" in err and "password" not in out


def test_users_add_list_disable_and_reset_password(settings, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "users", "add", "cli-clerk", "--role", "office", "--jurisdiction", "taihu.cli",
                       stdin="湖光-山色-2024-cli\n")
    assert code == 0 and "password" not in json.loads(out)  # read from stdin, not echoed back
    code, out, _ = run(monkeypatch, capsys, "users", "list", "--jurisdiction", "taihu.cli")
    assert [a["username"] for a in json.loads(out)] == ["cli-clerk"]
    assert json.loads(out)[0]["grants"] == [{"role": "office", "jurisdiction": "taihu.cli", "unit": "", "term": None,
                                             "deputy_id": None}]
    code, _, err = run(monkeypatch, capsys, "users", "add", "cli-weak", "--role", "office", "--jurisdiction", "taihu.cli",
                       stdin="short\n")
    assert code == 1 and "weak-password" in err
    code, _, err = run(monkeypatch, capsys, "users", "add", "cli-clerk", "--role", "office", "--jurisdiction", "taihu.cli",
                       stdin="湖光-山色-2024-cli\n")
    assert code == 1 and "account-exists" in err
    code, out, _ = run(monkeypatch, capsys, "users", "disable", "cli-clerk")
    assert code == 0 and json.loads(out)["disabled"] is True
    code, out, _ = run(monkeypatch, capsys, "users", "reset-password", "cli-clerk", stdin="\n")  # empty: generated
    assert code == 0 and len(json.loads(out)["password"]) >= 10
    assert audit_actions(settings, "cli-clerk") == ["create", "disable", "reset-password"]
    code, _, err = run(monkeypatch, capsys, "users", "disable", "nobody-at-all")
    assert code == 1 and "account-not-found" in err


def test_keys_generate_prints_a_private_key_for_identity_and_the_public_set_for_the_services(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "keys", "generate")
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    private, public, jwks = (json.loads(line) for line in lines)
    assert "d" in private and "d" not in public and jwks == {"keys": [public]} and public["kid"] == private["kid"]
