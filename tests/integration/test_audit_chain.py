"""The audit trail shows an edit: each service's rows are hash-chained, the head is anchored
outside the database with a signature, and ``piaojue audit verify`` finds the first broken link.

Each test chains a throwaway schema of its own (the shared plumbing only), so that what it
tampers with is no service's real trail."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from uuid import uuid4

import asyncpg
import pytest

from shared import audit, tokens
from shared.db import create_pool, migrate, unit_of_work
from shared.settings import get_settings
from tests.support import eventually, run_cli

KEY = tokens.generate("EdDSA")


@pytest.fixture
async def chains(settings, tmp_path):
    """Make schemas with the plumbing only; dropped afterwards."""
    made: list[str] = []

    async def make() -> tuple[str, asyncpg.Pool]:
        schema = f"audit_{uuid4().hex[:8]}"
        (tmp_path / "none").mkdir(exist_ok=True)
        await asyncio.to_thread(migrate, settings, schema, tmp_path / "none")
        made.append(schema)
        return schema, await create_pool(settings, schema, max_size=10)

    pools: list[asyncpg.Pool] = []

    async def factory():
        schema, pool = await make()
        pools.append(pool)
        return schema, pool

    yield factory
    for pool in pools:
        await pool.close()
    conn = await asyncpg.connect(settings.database_url)
    try:
        for schema in made:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


async def record(pool, schema: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        async with unit_of_work(pool, schema) as uow:
            await uow.audit("taihu.fuyu", "office", "update", "project", i,
                            before={"title": f"旧标题{i}", "budget": 1_200_000}, after={"title": f"新标题{i}", "budget": 1.5e6,
                                                                                       "note": "line\nbreak \"quoted\""})


@dataclass
class Ran:
    returncode: int
    stdout: str


@pytest.fixture
def audit_key(monkeypatch):
    """The audit signing key in this process's settings, for ``piaojue audit`` run in-process."""
    monkeypatch.setenv("PIAOJUE_AUDIT_SIGNING_KEY", json.dumps(KEY))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()  # the next reader, after the variable is gone, reads the settings afresh


async def piaojue(*args: str) -> Ran:
    return Ran(*await run_cli(*args))


# An attacker with SQL recomputing the chain from a row onwards: the canonical content (a JSON
# array of the columns, shared/audit.py) written in SQL, then sha256 over the previous hash and it.
RECOMPUTE = """
DO $$ DECLARE r record; prev bytea; BEGIN
  SELECT hash INTO prev FROM audit WHERE seq < {start} ORDER BY seq DESC LIMIT 1;
  FOR r IN SELECT * FROM audit WHERE seq >= {start} ORDER BY seq LOOP
    UPDATE audit SET prev_hash = prev, hash = sha256(prev || convert_to('[' || r.seq || ','
        || to_json(to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text || ','
        || to_json(r.jurisdiction)::text || ',' || to_json(r.actor)::text || ',' || to_json(r.action)::text || ','
        || to_json(r.entity)::text || ',' || to_json(r.entity_id)::text || ','
        || coalesce(to_json(r.before::text)::text, 'null') || ',' || coalesce(to_json(r.after::text)::text, 'null') || ']',
        'UTF8'))
      WHERE seq = r.seq RETURNING hash INTO prev;
  END LOOP;
  UPDATE audit_head SET hash = prev;
END $$;
"""


async def test_an_edited_deleted_truncated_or_recomputed_audit_chain_is_found_by_verify(chains, tmp_path, audit_key):
    anchors = tmp_path / "anchors.jsonl"
    schemas = {}
    for case in ("edit", "delete", "truncate", "recompute"):
        schema, pool = await chains()
        await record(pool, schema, 8)  # rows 1–8, then anchored
        schemas[case] = (schema, pool)
    args = [a for s, _ in schemas.values() for a in ("--service", s)]
    anchored = await piaojue("audit", "anchor", "--anchors", str(anchors), *args)
    assert anchored.returncode == 0, anchored.stdout
    for schema, pool in schemas.values():
        await record(pool, schema, 2, start=8)  # rows 9–10, after the anchor

    intact = await piaojue("audit", "verify", "--anchors", str(anchors), *args)
    assert intact.returncode == 0, intact.stdout
    assert intact.stdout.count(" ok: 10 rows") == 4 and intact.stdout.count("1 anchor(s) match") == 4

    edit, delete, truncate, recompute = (pool for _, pool in schemas.values())
    await edit.execute("""UPDATE audit SET after = jsonb_set(after, '{budget}', '9000000') WHERE seq = 3""")
    await delete.execute("DELETE FROM audit WHERE seq = 5")
    # The end cut off, and the head row moved back with it: only the anchor remembers row 8.
    await truncate.execute("DELETE FROM audit WHERE seq > 6")
    await truncate.execute("UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit WHERE seq = 6)")
    await recompute.execute("""UPDATE audit SET after = jsonb_set(after, '{budget}', '9000000') WHERE seq = 3""")
    await recompute.execute(RECOMPUTE.format(start=3))

    # Recomputed with SQL, the chain holds together by itself; it is the anchor that shows it.
    async with recompute.acquire() as conn:
        alone = await audit.verify(conn, schemas["recompute"][0])
    assert alone.ok, alone.findings

    found = await piaojue("audit", "verify", "--anchors", str(anchors), *args)
    print(found.stdout)
    assert found.returncode == 1
    lines = {s: next(line for line in found.stdout.splitlines() if line.startswith(s)) for s, _ in schemas.values()}
    assert "BROKEN: edited at row 3" in lines[schemas["edit"][0]]
    assert "BROKEN: broken-link at row 6" in lines[schemas["delete"][0]]
    assert "BROKEN: cut at row 8" in lines[schemas["truncate"][0]] and "rows at the end were removed" in lines[schemas["truncate"][0]]
    assert "BROKEN: rewritten at row 8" in lines[schemas["recompute"][0]]


async def test_concurrent_writers_extend_one_chain_and_never_fork_it(chains):
    schema, pool = await chains()

    async def writer(i: int) -> None:
        async with unit_of_work(pool, schema) as uow:
            await uow.audit("taihu.fuyu", f"writer{i}", "create", "thing", i, after={"n": i})
            await asyncio.sleep(0.01)  # other writers start meanwhile
            await uow.audit("taihu.fuyu", f"writer{i}", "update", "thing", i, after={"n": i + 1})

    await asyncio.gather(*(writer(i) for i in range(30)))
    async with pool.acquire() as conn:
        report = await audit.verify(conn, schema)
        forks = await conn.fetchval("SELECT count(*) - count(DISTINCT prev_hash) FROM audit")
    assert report.ok and report.rows == 60, report.findings
    assert forks == 0


async def test_a_forged_or_foreign_anchor_is_reported(chains, tmp_path):
    schema, pool = await chains()
    await record(pool, schema, 3)
    key = audit.signing_key(json.dumps(KEY))
    async with pool.acquire() as conn:
        good = await audit.anchor(conn, key, schema)
        other = await audit.anchor(conn, audit.signing_key(json.dumps(tokens.generate("EdDSA"))), schema)
        forged = {**good, "seq": 2}
        path = tmp_path / "anchors.jsonl"
        audit.append_anchors(path, [good, other, forged])
        report = await audit.verify(conn, schema, audit.read_anchors(path), audit.public_keys("", json.dumps(KEY)))
    assert [f.kind for f in report.findings] == ["bad-anchor", "bad-anchor"], report.findings
    assert report.anchors_checked == 3


async def test_rows_written_before_the_chain_are_chained_once_by_migrate(chains, settings, tmp_path):
    schema, pool = await chains()
    await pool.execute("UPDATE audit_head SET seq = 0, hash = NULL")
    for i in range(3):  # as an older version wrote them
        await pool.execute("INSERT INTO audit (jurisdiction, actor, action, entity, entity_id, after) VALUES ('taihu', 'a', 'b', 'c', $1, $2)",
                           str(i), {"i": i})
    await asyncio.to_thread(migrate, settings, schema, tmp_path / "none")
    await record(pool, schema, 2)
    async with pool.acquire() as conn:
        report = await audit.verify(conn, schema)
    assert report.ok and report.rows == 5, report.findings


async def test_each_service_anchors_its_chain_head_at_intervals_when_it_moved(chains, tmp_path):
    schema, pool = await chains()
    path, key = tmp_path / "anchors.jsonl", audit.signing_key(json.dumps(KEY))
    job = asyncio.create_task(audit.run_anchoring(pool, schema, key, path, every=0.05))
    try:
        await record(pool, schema, 2)

        async def anchored(seq: int):
            return path.exists() and any(a["seq"] == seq for a in audit.read_anchors(path))

        await eventually(lambda: anchored(2), what="the head anchored")
        await record(pool, schema, 1, start=2)
        await eventually(lambda: anchored(3), what="the moved head anchored")
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    lines = audit.read_anchors(path)
    seqs = [a["seq"] for a in lines]
    assert seqs == sorted(set(seqs)) and seqs[-1] == 3  # once per move of the head, not once per interval
    async with pool.acquire() as conn:
        assert (await audit.verify(conn, schema, lines, audit.public_keys("", json.dumps(KEY)))).ok
