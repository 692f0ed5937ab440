"""The vote through the running services, end to end: sealed rounds opened by the tellers' shares,
further rounds, publication, receipts and recount, paper mode, voiding, procedure departures, the
session's life, a ballot in flight at close, satisfaction ratings. The vote's rules themselves are
unit tests on the aggregate (tests/unit/test_vote_aggregate.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from piaojue.teller import open_share
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

    # Who sees what: the public notice (tallies, trackers, commitments) for everyone in the township;
    # the anonymised ballots for tellers, the presiding officer and the county, not for a deputy.
    notice = await town.ok("GET", "ballot", f"/votes/{vote['id']}/publication", Role.DEPUTY, "X0")
    assert [len(r["trackers"]) for r in notice["rounds"]] == [7, 7, 7] and "ballots" not in notice["rounds"][0]
    assert_problem(await town.request("GET", "ballot", f"/votes/{vote['id']}/publication/ballots", Role.DEPUTY, "X0"),
                   403, "forbidden-role")
    publication = await town.ok("GET", "ballot", f"/votes/{vote['id']}/publication/ballots", Role.TELLER, "T1")
    assert [len(r["ballots"]) for r in publication["rounds"]] == [7, 7, 7]
    # Each deputy checks their own receipt; the public notice alone recounts to the chain of rounds.
    checked = await town.ok("GET", "ballot", f"/votes/{vote['id']}/receipts/{receipts['X0']}", Role.DEPUTY, "X0")
    assert (checked["counted"], checked["round"]) == (True, 3)
    assert_problem(await town.request("GET", "ballot", f"/votes/{vote['id']}/receipts/{'0' * 64}", Role.DEPUTY, "X0"),
                   404, "receipt-not-found")
    public = recount(notice, receipts["X0"])
    assert public.matches and not public.ballots_checked and public.receipt_found
    full = recount(publication, receipts["X0"])
    assert full.matches and full.ballots_checked and full.chosen == [a, b] and full.receipt_found
    path = tmp_path / "publication.json"
    path.write_text(json.dumps(publication, ensure_ascii=False))
    cli = subprocess.run([sys.executable, "-m", "piaojue.cli", "ballot", "recount", str(path), "--receipt", receipts["X3"]],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and "MATCH" in cli.stdout and "counted" in cli.stdout, cli.stdout + cli.stderr
    # A tampered publication does not recount to the certified result.
    first_ballot = publication["rounds"][2]["ballots"][0]  # one "for" and one "against": swap them
    publication["rounds"][2]["ballots"][0] = first_ballot[::-1]
    path.write_text(json.dumps(publication, ensure_ascii=False))
    cli = subprocess.run([sys.executable, "-m", "piaojue.cli", "ballot", "recount", str(path)], capture_output=True, text=True)
    assert cli.returncode == 1 and "MISMATCH" in cli.stdout


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
    # A slate that went to a vote gets a new one only once that vote is void.
    assert_problem(await town.request("POST", "ballot", f"/sessions/{session['id']}/votes",
                                      json={"slate_id": slate["id"], "mode": "paper"}), 409, "slate-already-voted")
    await town.ok("POST", "ballot", f"/votes/{electronic['id']}/void", Role.PRESIDING, "chair", json={"reason": "对照纸质票"})

    one_by_one = await town.vote(session, slate_id=slate["id"], mode="paper")
    await town.open(one_by_one)
    assert_problem(await town.cast(one_by_one, "X0", six["X0"]), 409, "paper-vote")
    for marks in [*six.values(), over_marked]:
        entered = await town.ok("POST", "ballot", f"/votes/{one_by_one['id']}/paper-ballots", Role.TELLER, "teller-1",
                                json={"marks": marks})
        assert entered["valid"] == (marks is not over_marked)
    by_hand = await town.close(one_by_one)
    await town.ok("POST", "ballot", f"/votes/{one_by_one['id']}/void", Role.PRESIDING, "chair", json={"reason": "对照汇总"})

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
    assert (await town.certify(totals)).status_code == 200
    assert_problem(await town.certify(one_by_one), 409, "vote-not-closed")  # void


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



async def test_wrong_missing_or_foreign_shares_leave_the_round_uncounted_and_a_void_round_is_run_again_on_paper(settings, client):
    town = Town(settings, client, "taihu.shares")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    a, b, c = ids(slate)
    session = await town.session(SEVEN)
    vote = await town.vote(session, slate_id=slate["id"])
    opened = await town.open(vote)
    assert (opened["sealed"], opened["tellers"], opened["threshold"]) == (True, ["T1", "T2", "T3"], 2)
    await town.cast_all(vote, ballots_from({a: SEVEN[:5], b: SEVEN[2:]}, SEVEN[:5], [a, b, c]))
    assert_problem(await town.present_share(vote, "T1"), 409, "vote-not-awaiting_shares")  # not before the close
    closed = await town.ok("POST", "ballot", f"/votes/{vote['id']}/close", Role.PRESIDING, "chair")
    assert (closed["status"], closed["needed"]) == ("awaiting_shares", 2) and "chosen" not in closed

    shares = f"/votes/{vote['id']}/shares"
    t2 = open_share(town.teller_keys["T2"], await town.ok("GET", "ballot", f"{shares}/mine", Role.TELLER, "T2"))
    assert_problem(await town.request("POST", "ballot", shares, Role.TELLER, "T1", json=t2), 422, "wrong-share")
    assert_problem(await town.request("POST", "ballot", shares, Role.TELLER, "T1", json={"share": "AAAA"}), 422, "wrong-share")
    assert_problem(await town.request("POST", "ballot", shares, Role.TELLER, "T9", json=t2), 403, "not-a-teller")
    assert_problem(await town.request("POST", "ballot", shares, Role.DEPUTY, "X0", json=t2), 403, "forbidden-role")
    first = await town.present_share(vote, "T1")
    assert (first.status_code, first.json()["presented"], first.json()["needed"]) == (202, 1, 2)
    assert (await town.present_share(vote, "T1")).json()["presented"] == 1  # the same teller twice is one share
    still = await town.ok("GET", "ballot", f"/votes/{vote['id']}")
    assert still["status"] == "awaiting_shares" and still["result"] is None
    assert_problem(await town.certify(vote), 409, "vote-not-closed")

    # The second teller never comes: the presiding officer voids the round, with the reason, and it is run on paper.
    assert_problem(await town.request("POST", "ballot", f"/votes/{vote['id']}/rounds/current/void", json={"reason": "x"}),
                   403, "forbidden-role")
    voided = await town.ok("POST", "ballot", f"/votes/{vote['id']}/rounds/current/void", Role.PRESIDING, "chair",
                           json={"reason": "监票人未能到场", "rerun": "paper"})
    assert (voided["status"], voided["mode"], voided["result"]["rounds"][0]["void_reason"]) == ("closed", "paper", "监票人未能到场")
    rerun = await town.open(vote)
    assert (rerun["round"], rerun["mode"], rerun["sealed"]) == (2, "paper", False)
    for marks in ballots_from({a: SEVEN[:6], b: SEVEN[:5]}, SEVEN, [a, b, c]).values():
        await town.ok("POST", "ballot", f"/votes/{vote['id']}/paper-ballots", Role.TELLER, "T1", json={"marks": marks})
    result = await town.close(vote)
    assert (result["finished"], result["chosen"], [r["void"] for r in result["rounds"]]) == (True, [a, b], [True, False])
    assert (await town.certify(vote)).status_code == 200


async def test_departures_need_the_presiding_role_and_a_reason_and_the_roster_is_frozen_while_a_session_is_open(settings, client):
    town = Town(settings, client, "taihu.procedure")
    slate = await town.slate(["甲", "乙", "丙"], seats=2)
    session = await town.session(SEVEN[:6])
    named = {"slate_id": slate["id"], "rules": {"named": True}}
    assert_problem(await town.request("POST", "ballot", f"/sessions/{session['id']}/votes", json=named),
                   403, "departure-needs-presiding")
    assert_problem(await town.request("POST", "ballot", f"/sessions/{session['id']}/votes", Role.PRESIDING, "chair", json=named),
                   422, "departure-reason-required")
    vote = await town.ok("POST", "ballot", f"/sessions/{session['id']}/votes", Role.PRESIDING, "chair",
                         json={**named, "reason": "主席团决定记名表决"})
    shown = await town.ok("GET", "ballot", f"/votes/{vote['id']}", Role.DEPUTY, "X0")  # on every deputy's ballot
    assert [(d["what"], d["reason"], d["by"]) for d in shown["departures"]] == [("named", "主席团决定记名表决", "chair")]

    # The roster is frozen while the session is open; a status change is decided now, effective next session.
    roster = {"quota": 7, "deputies": [{"deputy_id": "X6", "name": "代表X6"}]}
    assert_problem(await town.request("PUT", "ballot", "/terms/1/roster", json=roster), 409, "roster-frozen")
    await town.ok("POST", "ballot", "/terms/1/roster/changes", Role.PRESIDING, "chair",
                  json={"deputy_id": "X6", "name": "代表X6", "seated": True, "reason": "补选"})
    assert_problem(await town.request("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": ["X6"]}),
                   422, "not-on-roster")
    await town.open(vote)
    assert_problem(await town.request("POST", "ballot", f"/sessions/{session['id']}/close", Role.PRESIDING, "chair"),
                   409, "votes-in-progress")
    await town.close(vote)
    closed = await town.ok("POST", "ballot", f"/sessions/{session['id']}/close", Role.PRESIDING, "chair")
    assert closed["status"] == "closed"
    assert_problem(await town.request("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": ["X0"]}),
                   409, "session-closed")
    following = await town.ok("POST", "ballot", "/sessions", json={"name": "下次会议", "year": 2024, "term": 1})
    assert (following["seated"], following["roster_changes_applied"]) == (7, [{"deputy_id": "X6", "seated": True, "reason": "补选"}])
