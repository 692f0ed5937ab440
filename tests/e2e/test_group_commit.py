"""Casts that reach a replica together are written together (services/ballot/group_commit.py), and
each keeps its own outcome: in one burst, first ballots, second ballots of the same deputies,
retries of the same request, a deputy who received no ballot and an Idempotency-Key used before for
another vote all get the answers they get alone, and the count holds exactly the ballots accepted."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from uuid import UUID, uuid4

import asyncpg
import httpx

from services.ballot.group_commit import Cast, CastWriter
from shared.auth import Role
from shared.db import create_pool
from tests.e2e.town import Town
from tests.support import eventually

TOWN = "taihu.groupcommit"
DEPUTIES = [f"G{i:02d}" for i in range(40)]


def _groups(metrics: str) -> tuple[float, float]:
    """(statements, casts) of the cast group-commit histogram on one replica."""
    found = dict(re.findall(r"^piaojue_ballot_cast_group_size_(count|sum) ([0-9.e+]+)$", metrics, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


async def test_casts_written_together_keep_each_its_own_outcome(settings, cluster):
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
        town = Town(settings, client, TOWN)
        first_slate = await town.slate(["村道硬化", "路灯", "公厕"], seats=1)
        other_slate = await town.slate(["自来水", "垃圾站", "健身广场"], seats=1)
        session = await town.session(DEPUTIES)
        vote = await town.vote(session, slate_id=first_slate["id"])
        other = await town.vote(session, slate_id=other_slate["id"])
        await town.open(vote)
        await town.open(other)
        marks = {c: "for" if i == 0 else "against" for i, c in enumerate(vote["candidates"])}
        # G00 has used a key for its ballot in the other vote: the same key on this vote is another request.
        reused = str(uuid4())
        other_marks = {c: "abstain" for c in other["candidates"]}
        assert (await town.request("POST", "ballot", f"/votes/{other['id']}/ballots", Role.DEPUTY, "G00",
                                   json={"marks": other_marks}, headers={"idempotency-key": reused})).status_code == 201
        before = _groups((await client.get(f"{settings.url('ballot')}/metrics")).text)

        def cast(deputy: str, key: str):
            return town.request("POST", "ballot", f"/votes/{vote['id']}/ballots", Role.DEPUTY, deputy,
                                json={"marks": marks}, headers={"idempotency-key": key})

        retried = {d: str(uuid4()) for d in DEPUTIES[1:6]}  # the same request twice, at once
        sent = [("reused", "G00", cast("G00", reused)), ("stranger", "X99", cast("X99", str(uuid4())))]
        for d in DEPUTIES[1:]:
            sent.append(("first", d, cast(d, retried.get(d) or str(uuid4()))))
        sent += [("retry", d, cast(d, key)) for d, key in retried.items()]
        sent += [("second", d, cast(d, str(uuid4()))) for d in DEPUTIES[6:12]]  # another ballot, another key
        # Whether casts meet in a statement depends on how fast the replica parses them against how fast a
        # statement commits. So the vote's ballots are held (row locks) until casts wait behind the held
        # statements, which then go together: as at a session's peak, whatever this machine's speed.
        held = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ballot"})
        try:
            lock = held.transaction()
            await lock.start()
            await held.execute("SELECT 1 FROM issued WHERE vote_id = $1 FOR UPDATE", UUID(vote["id"]))
            burst = asyncio.gather(*(call for _, _, call in sent))

            async def together() -> bool:  # in a held statement together, or waiting to go in one together
                metrics = (await client.get(f"{settings.url('ballot')}/metrics")).text
                statements, casts = (now - then for now, then in zip(_groups(metrics), before, strict=True))
                waiting = float(re.search(r"^piaojue_ballot_cast_waiting (\S+)$", metrics, re.M).group(1))
                return casts > statements or waiting >= 10

            await eventually(together, what="casts meeting behind the held statements")
            await lock.rollback()
            answers = await burst
        finally:
            await held.close()
        got = [(kind, deputy, a.status_code, a.headers.get("content-type", "").split(";")[0], a.json().get("code"),
                a.headers.get("idempotent-replayed") == "true") for (kind, deputy, _), a in zip(sent, answers, strict=True)]

        by_kind = Counter((kind, status, code) for kind, _, status, _, code, _ in got)
        print(f"outcomes: {dict(by_kind)}")
        assert by_kind[("reused", 422, "idempotency-key-reused")] == 1
        assert by_kind[("stranger", 403, "not-issued")] == 1
        # A first ballot and its concurrent retry (same key): one of them casts, the other replays its answer.
        for d in retried:
            pair = [a for (kind, deputy, _), a in zip(sent, answers, strict=True) if deputy == d and kind in ("first", "retry")]
            assert [a.status_code for a in pair] == [201, 201], [a.text for a in pair]
            assert pair[0].json() == pair[1].json() and sum(a.headers.get("idempotent-replayed") == "true" for a in pair) == 1
        # Deputies who sent two different ballots at once: exactly one counted, the other refused.
        for d in DEPUTIES[6:12]:
            statuses = sorted(status for kind, deputy, status, *_ in got if deputy == d)
            assert statuses == [201, 409], (d, statuses)
        cast_once = {deputy for _, deputy, status, _, _, replayed in got if status == 201 and not replayed}
        assert cast_once == set(DEPUTIES[1:]), sorted(set(DEPUTIES[1:]) - cast_once)
        assert all(ctype == ("application/json" if status == 201 else "application/problem+json")
                   for _, _, status, ctype, _, _ in got)

        statements, casts = (now - then for now, then in zip(_groups((await client.get(f"{settings.url('ballot')}/metrics")).text),
                                                              before, strict=True))
        print(f"group commit: {casts:.0f} casts in {statements:.0f} statements")
        assert casts >= len(sent) - 1 and statements < casts  # written together, not one statement each

        # The count: the 39 ballots accepted, G00's ballot of this vote not among them (its key was refused).
        assert (await town.ok("GET", "ballot", f"/votes/{vote['id']}"))["cast"] == len(DEPUTIES) - 1
        await town.close(vote)
        result = (await town.ok("GET", "ballot", f"/votes/{vote['id']}"))["result"]
        assert (result["issued"], result["collected"], result["valid"]) == (len(DEPUTIES), len(DEPUTIES) - 1, len(DEPUTIES) - 1)


async def test_one_statement_decides_each_cast_and_a_key_used_before_sends_each_cast_alone(settings, cluster):
    """The group's statement itself, on a group made by hand (a burst decides its groups by timing)."""
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, f"{TOWN}2")
        first_slate = await town.slate(["桥梁", "路灯", "公厕"], seats=1)
        other_slate = await town.slate(["自来水", "垃圾站", "健身广场"], seats=1)
        session = await town.session(DEPUTIES[:16])
        vote, other = await town.vote(session, slate_id=first_slate["id"]), await town.vote(session, slate_id=other_slate["id"])
        await town.open(vote)
        await town.open(other)
        reused = str(uuid4())
        assert (await town.request("POST", "ballot", f"/votes/{other['id']}/ballots", Role.DEPUTY, "G00",
                                   json={"marks": {}}, headers={"idempotency-key": reused})).status_code == 201

    def cast(deputy: str, key: str | None = None) -> Cast:
        return Cast(UUID(vote["id"]), 1, deputy, b"sealed" * 10, None, False, f"{TOWN}2", key, "fingerprint",
                    {"status": "cast"}, uuid4(), UUID(session["id"]))

    async def written(group: list[Cast]) -> list:
        pending = [(c, asyncio.get_running_loop().create_future()) for c in group]
        await writer._write(pending)
        return [done.exception() or done.result() for _, done in pending]

    pool = await create_pool(settings, "ballot")
    try:
        writer = CastWriter(pool)
        # One statement: two deputies take their ballots, a stranger was issued none.
        g01, stranger, g02 = await written([cast("G01"), cast("X99"), cast("G02")])
        assert (g01["taken"], g02["taken"], stranger["taken"], stranger["issued"]) == (True, True, False, False)
        again, = await written([cast("G01")])
        assert (again["taken"], again["issued"]) == (False, True)  # one ballot per deputy and round
        # G00's key was used for its ballot in the other vote: the statement fails as a whole, and each
        # cast is written alone: G03 and G04 are cast, G00 gets the refusal the cast route turns into a 422.
        g03, g00, g04 = await written([cast("G03", str(uuid4())), cast("G00", reused), cast("G04")])
        assert isinstance(g00, asyncpg.UniqueViolationError)
        assert (g03["taken"], g04["taken"]) == (True, True)
        # Two statements (two replicas, say) with the same ten deputies in opposite orders, at once:
        # neither waits for the other crosswise (the rows are locked in one order); each deputy is cast once.
        ten = [f"G{i:02d}" for i in range(6, 16)]
        both = await asyncio.gather(written([cast(d) for d in ten]), written([cast(d) for d in reversed(ten)]))
        assert not [o for o in both[0] + both[1] if isinstance(o, BaseException)]
        taken = Counter(d for group, order in zip(both, (ten, ten[::-1]), strict=True)
                        for d, o in zip(order, group, strict=True) if o["taken"])
        assert taken == Counter(ten)
        cast_now = await pool.fetch("SELECT deputy_id FROM issued WHERE vote_id = $1 AND cast_done ORDER BY 1", UUID(vote["id"]))
        assert [r["deputy_id"] for r in cast_now] == ["G01", "G02", "G03", "G04", *ten]
        assert await pool.fetchval("SELECT count(*) FROM sealed_ballots WHERE vote_id = $1", UUID(vote["id"])) == 14
    finally:
        await pool.close()
