"""The vote's rules through the running services: further rounds, shortfall, paper mode,
withdrawal, publication and recount, satisfaction ratings."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from services.ballot.recount import recount
from shared.auth import Role
from tests.e2e.town import Town, ballots_from
from tests.support import assert_problem, equals, eventually

SEVEN = [f"X{i}" for i in range(7)]


@pytest.fixture
async def client(cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def ids(slate) -> list[str]:
    return [c["candidate_id"] for c in slate["candidates"]]



async def test_a_tie_at_the_cut_off_and_a_tied_run_off_go_to_further_rounds_until_decided(settings, client, tmp_path):
    town = Town(settings, client, "taihu.tie")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    session = await town.session(SEVEN)
    vote = await town.vote(session, slate_id=slate["id"])

    # Round 1: 甲 6, 乙 4, 丙 4 — all pass (more than 3.5 of 7); 乙 and 丙 tie for the last seat.
    await town.open(vote)
    await town.cast_all(vote, ballots_from({a: SEVEN[:6], b: ["X0", "X1", "X2", "X6"], c: ["X3", "X4", "X5", "X6"]}, SEVEN, [a, b, c]))
    first = await town.close(vote)
    assert (first["finished"], first["chosen"], first["next_candidates"], first["next_seats"]) == (False, [a], [b, c], 1)
    assert first["note"] == "tie at the cut-off"
    assert_problem(await town.certify(vote), 409, "further-round-required")

    # Round 2 among the tied, for one seat: 3 to 3 and one abstention — neither passes.
    opened = await town.open(vote)
    assert (opened["round"], opened["candidates"], opened["seats"]) == (2, [b, c], 1)
    assert_problem(await town.cast(vote, "X0", {a: "for"}), 422, "unknown-candidate")  # 甲 is not on this round's ballot
    ballots = ballots_from({b: SEVEN[:3], c: SEVEN[3:6]}, SEVEN[:6], [b, c]) | {"X6": {b: "abstain", c: "abstain"}}
    await town.cast_all(vote, ballots)
    second = await town.close(vote)
    assert (second["finished"], second["chosen"], second["next_candidates"]) == (False, [a], [b, c])

    # Round 3 decides.
    await town.open(vote)
    receipts = await town.cast_all(vote, ballots_from({b: SEVEN[:5], c: SEVEN[5:]}, SEVEN, [b, c]))
    third = await town.close(vote)
    assert (third["finished"], third["chosen"]) == (True, [a, b])
    assert [r["round"] for r in third["rounds"]] == [1, 2, 3]
    assert [(r["collected"], r["valid"]) for r in third["rounds"]] == [(7, 7), (7, 7), (7, 7)]
    certified = await town.certify(vote)
    assert certified.status_code == 200
    assert [x["candidate_id"] for x in certified.json()["candidates"] if x["chosen"]] == [a, b]

    # Anyone can recount from the publication; a deputy finds their receipt among those counted.
    publication = await town.ok("GET", "ballot", f"/votes/{vote['id']}/publication")
    assert [len(r["ballots"]) for r in publication["rounds"]] == [7, 7, 7]
    checked = recount(publication, receipts["X0"])
    assert checked.matches and checked.chosen == [a, b] and checked.receipt_found
    assert recount(publication, "not-a-receipt").receipt_found is False
    path = tmp_path / "publication.json"
    path.write_text(json.dumps(publication, ensure_ascii=False))
    cli = subprocess.run([sys.executable, "-m", "piaojue.cli", "ballot", "recount", str(path)], capture_output=True, text=True)
    assert cli.returncode == 0 and "MATCH" in cli.stdout, cli.stdout + cli.stderr
    # A tampered publication does not recount to the certified result.
    first_ballot = publication["rounds"][2]["ballots"][0]  # one "for" and one "against": swap them
    publication["rounds"][2]["ballots"][0] = {b: first_ballot[c], c: first_ballot[b]}
    path.write_text(json.dumps(publication, ensure_ascii=False))
    cli = subprocess.run([sys.executable, "-m", "piaojue.cli", "ballot", "recount", str(path)], capture_output=True, text=True)
    assert cli.returncode == 1 and "MISMATCH" in cli.stdout


async def test_a_shortfall_is_accepted_when_the_rules_say_so(settings, client):
    town = Town(settings, client, "taihu.fewer")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    deputies = SEVEN[:5]
    session = await town.session(deputies)
    vote = await town.vote(session, slate_id=slate["id"], rules={"shortfall": "accept_fewer"})
    await town.open(vote)
    await town.cast_all(vote, ballots_from({a: deputies, b: deputies[:2], c: deputies[2:3]}, deputies, [a, b, c]))
    result = await town.close(vote)
    assert (result["finished"], result["chosen"]) == (True, [a])
    assert "fewer accepted" in result["note"]
    assert (await town.certify(vote)).status_code == 200


async def test_paper_ballots_one_by_one_or_by_totals_give_the_same_result_as_electronic(settings, client):
    town = Town(settings, client, "taihu.paper")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    session = await town.session(SEVEN)
    six = ballots_from({a: SEVEN[:5], b: SEVEN[:4], c: ["X4", "X5"]}, SEVEN[:6], [a, b, c])
    six["X5"][b] = "abstain"
    over_marked = {a: "for", b: "for", c: "for"}  # more "for" marks than seats: invalid, still collected

    electronic = await town.vote(session, slate_id=slate["id"])
    await town.open(electronic)
    await town.cast_all(electronic, six)
    by_machine = await town.close(electronic)

    one_by_one = await town.vote(session, slate_id=slate["id"], mode="paper")
    await town.open(one_by_one)
    assert_problem(await town.cast(one_by_one, "X0", six["X0"]), 409, "paper-vote")
    for marks in [*six.values(), over_marked]:
        entered = await town.ok("POST", "ballot", f"/votes/{one_by_one['id']}/paper-ballots", Role.TELLER, "teller-1",
                                json={"marks": marks})
        assert entered["valid"] == (marks is not over_marked)
    by_hand = await town.close(one_by_one)

    totals = await town.vote(session, slate_id=slate["id"], mode="paper")
    await town.open(totals)
    counts = {cid: {m: sum(1 for marks in six.values() if marks[cid] == m) for m in ("for", "against", "abstain")}
              for cid in (a, b, c)}
    bad = {**counts, a: {"for": 7, "against": 0, "abstain": 0}}  # more marks than the 6 valid ballots
    assert_problem(await town.request("PUT", "ballot", f"/votes/{totals['id']}/paper-totals", Role.TELLER, "teller-1",
                                      json={"collected": 7, "invalid": 1, "counts": bad}), 422, "inconsistent-totals")
    await town.ok("PUT", "ballot", f"/votes/{totals['id']}/paper-totals", Role.TELLER, "teller-1",
                  json={"collected": 7, "invalid": 1, "counts": counts})
    by_totals = await town.close(totals)

    def outcome(result):
        return result["chosen"], [(x["candidate_id"], x["for_votes"], x["against"], x["abstain"]) for x in result["candidates"]]

    assert outcome(by_hand) == outcome(by_totals) == outcome(by_machine)
    assert (by_machine["collected"], by_machine["invalid"]) == (6, 0)
    assert (by_hand["collected"], by_hand["invalid"]) == (by_totals["collected"], by_totals["invalid"]) == (7, 1)
    # One slate, one decision.
    assert (await town.certify(by_hand | {"id": one_by_one["id"]})).status_code == 200
    assert_problem(await town.certify(totals), 409, "slate-already-decided")


async def test_more_paper_ballots_collected_than_issued_voids_the_round_and_it_is_run_again(settings, client):
    town = Town(settings, client, "taihu.void")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    session = await town.session(SEVEN)
    vote = await town.vote(session, slate_id=slate["id"], mode="paper")
    await town.open(vote)
    ballot = {a: "for", b: "for", c: "against"}
    for _ in range(8):  # 8 collected, 7 issued
        await town.ok("POST", "ballot", f"/votes/{vote['id']}/paper-ballots", Role.TELLER, "teller", json={"marks": ballot})
    void = await town.close(vote)
    assert void["rounds"][0]["void"] and not void["finished"]
    assert (void["next_candidates"], void["next_seats"]) == ([a, b, c], 2)
    assert_problem(await town.certify(vote), 409, "round-void")
    again = await town.open(vote)
    assert again["round"] == 2
    for _ in range(7):
        await town.ok("POST", "ballot", f"/votes/{vote['id']}/paper-ballots", Role.TELLER, "teller", json={"marks": ballot})
    result = await town.close(vote)
    assert (result["finished"], result["chosen"]) == (True, [a, b])
    assert (await town.certify(vote)).status_code == 200


async def test_a_candidate_can_be_withdrawn_before_the_vote_opens_but_not_after(settings, client):
    town = Town(settings, client, "taihu.withdraw")
    slate = await town.slate(["甲", "乙", "丙", "丁"], seats=2)
    a, b, c, d = ids(slate)
    session = await town.session(SEVEN)
    vote = await town.vote(session, slate_id=slate["id"])
    withdrawn = await town.ok("POST", "ballot", f"/votes/{vote['id']}/withdrawals", json={"candidate_id": d, "reason": "已另行安排资金"})
    assert [x["id"] for x in withdrawn["candidates"]] == [a, b, c]
    opened = await town.open(vote)
    assert opened["candidates"] == [a, b, c]
    assert_problem(await town.request("POST", "ballot", f"/votes/{vote['id']}/withdrawals",
                                      json={"candidate_id": c, "reason": "迟到的撤回"}), 409, "vote-already-open")
    assert_problem(await town.cast(vote, "X0", {d: "for"}), 422, "unknown-candidate")
    assert (await town.ok("GET", "ballot", f"/votes/{vote['id']}"))["subjects"] == withdrawn["candidates"]


async def test_a_satisfaction_rating_sends_a_dissatisfying_project_to_rectification_and_counts_in_its_score(settings, client):
    town = Town(settings, client, "taihu.rating")
    deputies = SEVEN[:5]
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    session = await town.session(deputies)
    selection = await town.vote(session, slate_id=slate["id"])
    await town.open(selection)
    await town.cast_all(selection, ballots_from({a: deputies, b: deputies}, deputies, [a, b, c]))
    await town.close(selection)
    assert (await town.certify(selection)).status_code == 200

    async def projects():
        found = await town.ok("GET", "supervision", "/projects", params={"year": 2024})
        return found if len(found) == 2 else None

    by_title = {p["title"]: p["id"] for p in await eventually(projects, what="projects in supervision")}

    async def rating_vote():  # the projects reach the ballot service as events, not necessarily together
        response = await town.request("POST", "ballot", f"/sessions/{session['id']}/votes", json={"kind": "satisfaction"})
        return response.json() if response.status_code == 201 and len(response.json()["subjects"]) == 2 else None

    rating = await eventually(rating_vote, what="the projects to reach the ballot service")
    p, q = by_title["甲"], by_title["乙"]
    await town.open(rating)
    assert_problem(await town.cast(rating, "X0", {p: "for"}), 422, "mark-not-allowed")
    marks = {"X0": ("satisfied", "satisfied"), "X1": ("satisfied", "basically_satisfied"), "X2": ("satisfied", "dissatisfied"),
             "X3": ("satisfied", "dissatisfied"), "X4": ("basically_satisfied", "dissatisfied")}
    await town.cast_all(rating, {d: {p: m[0], q: m[1]} for d, m in marks.items()})
    result = await town.close(rating)
    tiers = {r["project_id"]: (r["tier"], r["tier_label"], r["rate"]) for r in result["ratings"]}
    assert tiers == {p: ("satisfied", "满意", 1.0), q: ("dissatisfied", "不满意", 0.4)}
    assert (await town.certify(rating)).status_code == 200

    async def rectification():
        project = await town.ok("GET", "supervision", f"/projects/{q}")
        return project["rectifications"]

    items = await eventually(rectification, what="a rectification item for the 不满意 project")
    assert len(items) == 1 and items[0]["status"] == "open" and "不满意" in items[0]["problem"]
    assert (await town.ok("GET", "supervision", f"/projects/{p}"))["rectifications"] == []

    async def scores():
        found = {s["id"]: s["score"] for s in await town.ok("GET", "scoring", "/projects", params={"year": 2024})}
        return found if found.get(p) is not None and found.get(q) is not None else None

    assert await eventually(scores, what="scores from the rating") == {p: 100.0, q: 40.0}


async def test_a_ballot_in_flight_when_the_round_closes_is_counted(settings, client):
    """The close waits for a ballot already being recorded, so that no ballot is stored uncounted."""
    import asyncio

    import asyncpg

    town = Town(settings, client, "taihu.race")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    session = await town.session(SEVEN)
    vote = await town.vote(session, slate_id=slate["id"])
    await town.open(vote)
    await town.cast_all(vote, {"X0": {a: "for", b: "for", c: "against"}})
    db = await asyncpg.connect(settings.database_url)
    watch = await asyncpg.connect(settings.database_url)  # pg_stat_activity is frozen within a transaction: poll outside it
    waiting = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'piaojue-ballot'"
               " AND wait_event_type = 'Lock' AND datname = current_database()")
    try:
        # Hold the second ballot in flight: it has found the vote open, but cannot take its ballot yet.
        blocker = db.transaction()
        await blocker.start()
        await db.execute("SELECT 1 FROM ballot.issued WHERE vote_id = $1 AND deputy_id = 'X1' FOR UPDATE", vote["id"])
        cast = asyncio.create_task(town.cast(vote, "X1", {a: "for", b: "against", c: "for"}))
        await eventually(lambda: equals(watch.fetchval(waiting), 1), what="the ballot to be in flight")
        close = asyncio.create_task(town.close(vote))
        await eventually(lambda: equals(watch.fetchval(waiting), 2), what="the close to wait")
        await blocker.rollback()
        assert (await cast).status_code == 201
        result = await close
    finally:
        await db.close()
        await watch.close()
    assert (result["collected"], result["valid"]) == (2, 2)
    assert {x["candidate_id"]: x["for_votes"] for x in result["candidates"]} == {a: 2, b: 1, c: 1}

