"""End to end: the four services as processes, the Fuyu 2024 scenario through their HTTP APIs."""

from __future__ import annotations

import json
from decimal import Decimal

import aio_pika

from piaojue import scenario
from tests.support import depth

QUEUES = ("intake.results", "supervision.results", "scoring.supervision", "ballot.slates")


async def dead_letters(settings) -> dict[str, int]:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        return {name: await depth(channel, f"{name}.dead") for name in QUEUES}
    finally:
        await connection.close()


async def test_the_fuyu_2024_vote_runs_from_proposals_to_the_township_assessment(settings, cluster, receiver):
    dead_before = await dead_letters(settings)
    outcome = await scenario.run(settings, receiver=receiver.url, receiver_secret=receiver.secret)

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

    # Intake: duplicates merged with their supporters, one proposal turned away with the rule's
    # reason, a grid worker's sheet imported, and the library project carried into 2025.
    intake = outcome["intake"]
    assert intake["imported_rows"] == 5 and intake["proposals_received"] == sum(intake["by_channel"].values())
    on_slate = {c["title"]: c["supporters"] for c in intake["supporters_on_slate"]}
    assert len(on_slate) == 10 and on_slate["王马公路升级改造"] == 4
    assert {m["title"]: m["supporters"] for m in intake["merged_items"]}.items() <= on_slate.items()
    assert [(i["stage"], i["rules"]) for i in intake["ineligible"]] == [("rejected", ["office-buildings"])]
    library = next(d["title"] for d in outcome["dispositions"] if d["disposition"] == "project_library")
    [carried] = intake["carried_to_next_year"]
    assert (carried["title"], carried["year"], carried["stage"]) == (library, 2025, "preliminary_review")
    assert carried["votes"]["for"] == next(c["for_votes"] for c in outcome["candidates"] if c["title"] == library)

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

    # The county corrected its method after publishing: a second version, under the method's second version.
    assert (assessment["version"], assessment["method_version"]) == (2, "taihu/2024/v2")
    assert assessment["first_version"]["method_version"] == "taihu/2024/v1"
    assert assessment["recalculated_by_correction"]
    # The inspection finding left unverified past its due date costs points under the method.
    assert assessment["overdue_rectifications"] == 1
    assert Decimal(assessment["rectification_deduction"]) == Decimal("1.0")

    # Fuyu's versions reached the county assessment system's queue, one event each, in order.
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue("county.assessments", passive=True)
        events = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            events.append(json.loads(message.body))
        fuyu = [e for e in events if e["jurisdiction"] == "taihu.fuyu"]
        assert [e["data"]["version"] for e in fuyu] == [1, 2]
        assert all(e["type"] == "scoring.assessment.updated" and e["version"] == 2 for e in fuyu)
        assert fuyu[-1]["data"]["assessment_id"] == outcome["ids"]["assessment"]
        assert Decimal(fuyu[-1]["data"]["completion_rate"]) == Decimal(assessment["completion_rate"])
    finally:
        await connection.close()

    # The year after the vote: the plan, inspections, the rectification loop and the board.
    supervision = outcome["supervision"]
    assert supervision["plan_activities"]["total"] == 7 and supervision["plan_activities"]["upcoming"] == 1
    assert supervision["inspections"] == 7 * 2 + 1
    unsatisfied = sum(r["tier"] == "dissatisfied" for r in outcome["satisfaction"])
    assert supervision["rectifications"] == {"opened": 2 + unsatisfied, "responded": 3, "sent_back": 1, "verified": 1,
                                             "overdue": 1}
    assert supervision["board"] == {"blue": len(completed), "yellow": 7 - len(completed)}

    # The county ranks three townships; every version reached the receiver, signature verified.
    ranking = outcome["county"]["ranking"]
    townships = {"taihu.fuyu", "taihu.jinxi", "taihu.xuqiao"}  # (other tests' townships may rank beside them)
    assert townships <= {r["jurisdiction"] for r in ranking}
    assert [r["rank"] for r in ranking] == sorted(r["rank"] for r in ranking)
    assert [Decimal(r["net_points"]) for r in ranking] == sorted((Decimal(r["net_points"]) for r in ranking), reverse=True)
    deliveries = outcome["county"]["webhook_deliveries"]
    assert deliveries["delivered"] == deliveries["verified_and_stored"]
    queued = {f"{e['jurisdiction']} v{e['data']['version']}" for e in events if e["jurisdiction"] in townships}
    assert queued == {v for v in deliveries["versions"] if v.split()[0] in townships}  # queue and webhooks agree
    assert await dead_letters(settings) == dead_before  # the scenario's events were all handled
