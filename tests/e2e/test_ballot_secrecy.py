"""Secret ballot (无记名投票), shown on a real database after a real vote: the service knows who
voted and what was cast, and nothing — columns, rows, row order, transaction ids, old row
versions, logs, stored answers, events — links the two."""

from __future__ import annotations

import itertools
import json

import asyncpg
import httpx
import pytest

from tests.e2e.town import Town

DEPUTIES = [f"S{i:02d}" for i in range(20)]


@pytest.fixture
async def client(cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def test_nothing_links_a_deputy_to_the_choices_on_their_ballot(settings, cluster, client):
    town = Town(settings, client, "taihu.mimi")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    candidates = [c["candidate_id"] for c in slate["candidates"]]
    session = await town.session(DEPUTIES)
    # One round whatever the counts, so that the result can be certified.
    vote = await town.vote(session, slate_id=slate["id"], rules={"passing_basis": "ranking", "max_rounds": 1})
    await town.open(vote)
    # Every deputy casts a different ballot, in a known order.
    choices = [m for m in itertools.product(("for", "against", "abstain"), repeat=3) if m.count("for") <= 2]
    cast = {d: dict(zip(candidates, choices[i], strict=True)) for i, d in enumerate(DEPUTIES)}
    receipts = await town.cast_all(vote, cast)
    await town.close(vote)
    assert (await town.certify(vote)).status_code == 200

    db = await asyncpg.connect(settings.database_url)
    await db.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)
    try:
        # The schema: a ballot row has no deputy, no time, no ordered id.
        columns = {t: {r["column_name"] for r in await db.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ballot' AND table_name = $1", t)}
            for t in ("ballots", "receipts", "issued")}
        assert columns == {"ballots": {"id", "vote_id", "round", "marks"}, "receipts": {"vote_id", "round", "hash"},
                           "issued": {"vote_id", "round", "deputy_id", "cast_done"}}
        assert await db.fetchval("SELECT column_default FROM information_schema.columns WHERE table_schema = 'ballot'"
                                 " AND table_name = 'ballots' AND column_name = 'id'") == "gen_random_uuid()"

        # The rows: all the ballots are there; the record of who voted says nothing of how.
        rows = await db.fetch("SELECT marks, xmin::text AS xmin, ctid::text AS ctid FROM ballot.ballots WHERE vote_id = $1",
                              vote["id"])
        assert sorted(json.dumps(r["marks"], sort_keys=True) for r in rows) == sorted(
            json.dumps(m, sort_keys=True) for m in cast.values())
        issued = await db.fetch("SELECT deputy_id, cast_done, xmin::text AS xmin FROM ballot.issued WHERE vote_id = $1", vote["id"])
        assert sorted(r["deputy_id"] for r in issued if r["cast_done"]) == DEPUTIES
        hashes = await db.fetch("SELECT hash, xmin::text AS xmin FROM ballot.receipts WHERE vote_id = $1", vote["id"])
        assert len(hashes) == len(DEPUTIES)
        # No transaction id ties a ballot to a cast: ballots and receipts were rewritten by the close,
        # together, in a transaction that wrote no `issued` row.
        assert len({r["xmin"] for r in rows} | {r["xmin"] for r in hashes}) == 1
        assert not {r["xmin"] for r in rows} & {r["xmin"] for r in issued}
        # No physical order ties them either: the stored order is not the order of casting.
        in_storage = [r["marks"] for r in sorted(rows, key=lambda r: tuple(map(int, r["ctid"].strip("()").split(","))))]
        assert in_storage != list(cast.values())
        # And no old row version is left behind on disk for anyone to read.
        await db.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        pages = await db.fetchval("SELECT pg_relation_size('ballot.ballots') / current_setting('block_size')::int")
        versions = [r["t_xmin"] for page in range(pages) for r in await db.fetch(
            "SELECT t_xmin::text FROM heap_page_items(get_raw_page('ballot.ballots', $1)) WHERE t_data IS NOT NULL", page)]
        live = await db.fetchval("SELECT count(*) FROM ballot.ballots")
        assert len(versions) == live, "dead row versions of ballots remain on disk"

        # What the service kept of the deputies' requests holds neither choices nor receipts.
        stored = await db.fetch("SELECT principal, body FROM ballot.idempotency WHERE principal = ANY($1::text[])", DEPUTIES)
        assert len(stored) == len(DEPUTIES)
        for row in stored:
            assert row["body"]["receipt"] is None and not set(row["body"]) & {"marks", *candidates}
        assert await db.fetchval("SELECT count(*) FROM ballot.audit WHERE actor = ANY($1::text[])", DEPUTIES) == 0
        # The certified result names no deputy.
        event = await db.fetchval("SELECT body::text FROM ballot.outbox WHERE routing_key = 'ballot.result.certified'"
                                  " AND body->'data'->>'vote_id' = $1", vote["id"])
        assert not any(d in event for d in DEPUTIES)
    finally:
        await db.close()

    # The logs never carry a deputy next to a choice or a receipt.
    log = cluster.log("ballot")
    for line in log.splitlines():
        if any(d in line for d in DEPUTIES):
            assert not any(c in line for c in candidates), line
            assert not any(code in line for code in receipts.values()), line
    assert not any(code in log for code in receipts.values())


async def test_a_named_vote_records_who_cast_which_ballot_only_when_its_rules_say_so(settings, client):
    town = Town(settings, client, "taihu.jiming")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = (x["candidate_id"] for x in slate["candidates"])
    deputies = DEPUTIES[:5]
    session = await town.session(deputies)
    vote = await town.vote(session, slate_id=slate["id"], rules={"named": True})
    await town.open(vote)
    await town.cast_all(vote, {d: {a: "for", b: "against", c: "abstain"} for d in deputies})
    result = await town.close(vote)
    assert result["candidates"][0]["for_votes"] == 5
    db = await asyncpg.connect(settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM ballot.ballots WHERE vote_id = $1", vote["id"]) == 0
        named = await db.fetch("SELECT deputy_id FROM ballot.named_ballots WHERE vote_id = $1", vote["id"])
        assert sorted(r["deputy_id"] for r in named) == deputies
    finally:
        await db.close()
