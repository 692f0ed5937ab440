"""End to end: the four services as processes, the Fuyu 2024 scenario through their HTTP APIs."""

from __future__ import annotations

import json
from decimal import Decimal

import aio_pika

from piaojue import scenario
from tests.support import depth, equals, eventually

QUEUES = ("intake.results", "supervision.results", "scoring.supervision", "ballot.slates")


async def dead_letters(settings) -> dict[str, int]:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        return {name: await depth(channel, f"{name}.dead") for name in QUEUES}
    finally:
        await connection.close()


async def test_the_fuyu_2024_vote_runs_from_proposals_to_the_township_assessment(settings, cluster):
    dead_before = await dead_letters(settings)
    outcome = await scenario.run(settings)

    # The 7 chosen are the 7 passing candidates with the most "for" votes, from the ballots cast.
    vote = outcome["vote"]
    assert vote == {"seated": 58, "present": 52, "issued": 52, "collected": 52, "valid": 52, "invalid": 0}
    passing = sorted((c for c in outcome["candidates"] if 2 * c["for_votes"] > vote["seated"]),
                     key=lambda c: -c["for_votes"])
    assert len(passing) >= 7
    assert {c["title"] for c in outcome["chosen"]} == {c["title"] for c in passing[:7]}
    assert passing[6]["for_votes"] > (passing[7]["for_votes"] if len(passing) > 7 else 0)

    # The certified result created exactly 7 projects and gave the 3 others a disposition.
    assert outcome["projects_created"] == 7
    assert len(outcome["projects"]) == 7
    assert sorted(d["disposition"] for d in outcome["dispositions"]) == [
        "handed_to_village", "ordinary_works", "project_library"]
    chosen_titles = {c["title"] for c in outcome["chosen"]}
    assert not chosen_titles & {d["title"] for d in outcome["dispositions"]}

    # Supervision ran its course: at least 6 of 7 completed; scoring saw every inspection.
    completed = [p for p in outcome["projects"] if p["completion"] == "completed"]
    assert len(completed) >= 6
    assert all(p["score"] is not None for p in outcome["projects"])
    # The next session's satisfaction rating: the unfinished project is the one rated 不满意.
    assert len(outcome["satisfaction"]) == 7
    unfinished = {p["title"] for p in outcome["projects"] if p["completion"] != "completed"}
    assert {r["title"] for r in outcome["satisfaction"] if r["tier"] == "dissatisfied"} == unfinished
    assessment = outcome["assessment"]
    assert assessment["total_projects"] == 7
    assert Decimal(assessment["completion_rate"]) == (Decimal(len(completed)) / 7).quantize(Decimal("0.0001"))

    # Exactly one assessment event reached the county assessment system's queue.
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        # (the outbox relay publishes it just after the request that made it has answered)
        await eventually(lambda: equals(depth(channel, "county.assessments"), 1), what="the assessment in the county's queue")
        queue = await channel.declare_queue("county.assessments", passive=True)
        message = await queue.get(no_ack=True)
        event = json.loads(message.body)
        assert event["type"] == "scoring.assessment.updated"
        assert event["jurisdiction"] == "taihu.fuyu"
        assert event["data"]["assessment_id"] == outcome["ids"]["assessment"]
        assert Decimal(event["data"]["completion_rate"]) == Decimal(assessment["completion_rate"])
    finally:
        await connection.close()
    assert await dead_letters(settings) == dead_before  # the scenario's events were all handled
