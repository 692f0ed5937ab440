"""The year after the vote, end to end (services as processes): bad input refused with stable codes
and nothing lost; a change of term (换届) mid-year; the county's pull API with ETag and ?since=."""

from __future__ import annotations

import json
import subprocess
import sys

import aio_pika
import httpx
import openpyxl
import pytest

from shared.auth import Role, mint
from shared.messaging import EVENTS_EXCHANGE
from tests.support import assert_problem, certified_result, eventually

TOWN = "taihu.mituo"  # a township of its own
UNIT, OTHER = "弥陀镇城建办", "弥陀镇水利站"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
async def town(settings, cluster):
    """Two voted projects (a certified result through the broker), planned, with groups under term 1."""
    async with httpx.AsyncClient(timeout=10) as client:
        def call(method, service, path, role=Role.OFFICE, sub="mituo-office", jurisdiction=TOWN, **kw):
            token = mint(sub, role, jurisdiction, **({"unit": sub} if role == Role.LEAD_UNIT else {}))  # a unit's token names it
            return client.request(method, settings.url(service) + path,
                                  headers={"authorization": f"Bearer {token}", **kw.pop("headers", {})}, **kw)

        connection = await aio_pika.connect(settings.amqp_url)
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
            event = certified_result(TOWN, chosen=2, candidates=3)
            await exchange.publish(aio_pika.Message(json.dumps(event.model_dump(mode="json")).encode(),
                                                    message_id=str(event.id)), routing_key=event.type)
        finally:
            await connection.close()

        async def created():
            projects = (await call("GET", "supervision", "/projects")).json()
            return projects if len(projects) == 2 else None

        projects = await eventually(created, what="the projects")
        assert (await call("POST", "supervision", "/terms/1/start", json={})).status_code == 200
        for project, unit in zip(projects, (UNIT, OTHER), strict=True):
            assert (await call("PUT", "supervision", f"/projects/{project['id']}/assignment",
                               json={"lead_unit": unit, "budget": 100000, "milestones": [
                                   {"due_on": "2024-06-30", "expected_percent": 50}]})).status_code == 200
            assert (await call("PUT", "supervision", f"/projects/{project['id']}/supervisors",
                               json={"deputies": ["M1", "M2"], "leader": "M1"})).status_code == 200
        yield call, projects


async def test_bad_progress_reports_are_refused_with_stable_codes_and_nothing_is_lost(town):
    call, projects = town
    mine, theirs = projects[0]["id"], projects[1]["id"]

    def report(project, body, sub=UNIT):
        return call("POST", "supervision", f"/projects/{project}/progress", role=Role.LEAD_UNIT, sub=sub, json=body)

    assert_problem(await report(theirs, {"percent_done": 10}), 403, "not-your-project")
    first = await report(mine, {"as_of": "2024-06-30", "percent_done": 50, "funds_spent": 40000})
    assert first.status_code == 201, first.text
    assert_problem(await report(mine, {"as_of": "2024-07-31", "percent_done": 40}), 422, "percent-decreased-without-reason")
    lowered = await report(mine, {"as_of": "2024-07-31", "percent_done": 40, "reason": "验收发现返工"})
    assert lowered.status_code == 201 and lowered.json()["before"]["percent_done"] == 50
    late = await report(mine, {"as_of": "2024-05-31", "percent_done": 45, "reason": "补报五月"})
    assert late.json()["backdated"] is True

    photo = f"/progress/{first.json()['id']}/photos"
    def upload(content, media_type, sub=UNIT):
        return call("POST", "supervision", photo, role=Role.LEAD_UNIT, sub=sub, content=content,
                    headers={"content-type": media_type})
    assert_problem(await upload(b"%PDF-1.7 not a photo", "image/png"), 415, "not-an-image")
    assert_problem(await upload(b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), "image/jpeg"), 413, "photo-too-large")
    assert_problem(await upload(PNG, "image/png", sub=OTHER), 403, "not-your-project")
    stored = await upload(PNG, "image/png")
    assert stored.status_code == 201, stored.text
    fetched = await call("GET", "supervision", f"/photos/{stored.json()['id']}")
    assert (fetched.content, fetched.headers["content-type"]) == (PNG, "image/png")

    detail = (await call("GET", "supervision", f"/projects/{mine}")).json()
    assert [(p["percent_done"], p["backdated"]) for p in detail["progress"]] == [(45, True), (50, False), (40, False)]
    assert [len(p["photos"]) for p in detail["progress"]] == [0, 1, 0]
    board = (await call("GET", "supervision", "/board", params={"year": 2024, "on": "2024-07-31"})).json()
    assert {p["id"]: p["colour"] for p in board["projects"]} == {mine: "yellow", theirs: "red"}  # 40 of 50 planned; none


async def test_the_rectification_loop_refuses_the_unit_verifying_its_own_item(town):
    call, projects = town
    mine = projects[0]["id"]
    assert_problem(await call("POST", "supervision", f"/projects/{mine}/inspections", role=Role.DEPUTY, sub="M1",
                              json={"kind": "mid_term", "inspected_on": "2024-07-15",
                                    "ratings": [{"deputy": "M1", "rating": 80}]}), 403, "group-assessment")
    inspection = await call("POST", "supervision", f"/projects/{mine}/inspections", role=Role.DEPUTY, sub="M1",
                            json={"kind": "concentrated_inspection", "inspected_on": "2024-05-10", "deputies": ["M1", "M2"],
                                  "findings": [{"problem": "排水沟堵塞", "due_on": "2024-06-10"}]})
    assert inspection.status_code == 201, inspection.text
    item = inspection.json()["rectifications"][0]["id"]

    def step(action, text=None, role=Role.DEPUTY, sub="M1"):
        return call("POST", "supervision", f"/rectifications/{item}/actions", role=role, sub=sub,
                    json={"action": action, "text": text})

    assert_problem(await step("respond", role=Role.LEAD_UNIT, sub=UNIT), 422, "evidence-required")
    assert (await step("respond", "已疏通", role=Role.LEAD_UNIT, sub=UNIT)).status_code == 200
    assert_problem(await step("verify", role=Role.LEAD_UNIT, sub=UNIT), 403, "cannot-verify-own")
    assert_problem(await step("verify", sub="M9"), 403, "not-in-supervision-group")
    assert (await step("send_back", "仍有积水")).json()["status"] == "sent_back"
    assert_problem(await step("verify"), 409, "rectification-wrong-state")
    listed = (await call("GET", "supervision", "/rectifications", params={"on": "2024-07-01"})).json()
    assert [i["id"] for i in listed["overdue"]] == [item]
    ledgers = await call("GET", "supervision", "/ledgers.xlsx", params={"year": 2024})
    assert ledgers.status_code == 200 and ledgers.content[:2] == b"PK"


async def test_a_change_of_term_keeps_projects_and_history_and_hands_over_the_groups(town):
    call, projects = town
    theirs = projects[1]["id"]
    inspection = await call("POST", "supervision", f"/projects/{theirs}/inspections", role=Role.DEPUTY, sub="M2",
                            json={"kind": "on_site_questioning", "inspected_on": "2024-03-01",
                                  "findings": [{"problem": "进度滞后", "due_on": "2024-04-01"}]})
    item = inspection.json()["rectifications"][0]["id"]
    responded = await call("POST", "supervision", f"/rectifications/{item}/actions", role=Role.LEAD_UNIT, sub=OTHER,
                           json={"action": "respond", "text": "已加派人手"})
    assert responded.status_code == 200
    assert_problem(await call("POST", "supervision", "/terms/1/start", json={}), 409, "term-not-newer")
    handover = await call("POST", "supervision", "/terms/2/start",
                          json={"groups": [{"project_id": theirs, "deputies": ["N1", "N2"], "leader": "N1"}]})
    assert handover.json() == {"jurisdiction": TOWN, "term": 2, "previous": 1, "groups": 1}

    # The old term's deputy no longer verifies; the new term's does.
    def verify(sub):
        return call("POST", "supervision", f"/rectifications/{item}/actions", role=Role.DEPUTY, sub=sub,
                    json={"action": "verify", "text": "核实"})
    assert_problem(await verify("M2"), 403, "not-in-supervision-group")
    assert (await verify("N1")).json()["status"] == "closed"

    detail = (await call("GET", "supervision", f"/projects/{theirs}")).json()
    assert {(g["term"], g["deputy"]) for g in detail["supervisors"]} == {(1, "M1"), (1, "M2"), (2, "N1"), (2, "N2")}
    assert detail["inspections"][0]["term"] == 1
    history = next(i for i in (await call("GET", "supervision", "/rectifications")).json()["items"] if i["id"] == item)["history"]
    assert [(a["action"], a["actor"], a["term"]) for a in history] == [("open", "M2", 1), ("respond", OTHER, 1), ("verify", "N1", 2)]


async def test_the_county_pulls_changes_with_etag_and_since(town, tmp_path):
    call, _ = town
    county = {"role": Role.COUNTY, "sub": "taihu-kaohe", "jurisdiction": "taihu"}
    published = await call("POST", "scoring", "/assessments", json={"jurisdiction": TOWN, "year": 2024}, **county)
    assert published.status_code == 201, published.text
    first = await call("GET", "scoring", "/county/changes", params={"year": 2024}, **county)
    mine = [c for c in first.json()["changes"] if c["jurisdiction"] == TOWN]
    method = (await call("GET", "scoring", "/methods/2024", **county)).json()
    assert [c["version"] for c in mine] == [1] and mine[0]["method_version"] == method["label"]
    etag = first.headers["etag"]
    again = await call("GET", "scoring", "/county/changes", params={"year": 2024}, headers={"if-none-match": etag}, **county)
    assert again.status_code == 304
    cursor = first.json()["next"]
    assert (await call("GET", "scoring", "/county/changes", params={"year": 2024, "since": cursor}, **county)).json()["changes"] == []

    await call("POST", "scoring", "/assessments", json={"jurisdiction": TOWN, "year": 2024}, **county)
    changed = await call("GET", "scoring", "/county/changes", params={"year": 2024}, headers={"if-none-match": etag}, **county)
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    newer = (await call("GET", "scoring", "/county/changes", params={"year": 2024, "since": cursor}, **county)).json()
    assert [(c["jurisdiction"], c["version"]) for c in newer["changes"]] == [(TOWN, 2)]
    # A township sees only itself; a method with a negative weight is refused and changes nothing.
    assert_problem(await call("GET", "scoring", "/assessments/taihu.fuyu/2024"), 403, "out-of-jurisdiction")
    assert_problem(await call("PUT", "scoring", "/methods/2024", json={"weights": {"final": -1, "mid_term": 2}}, **county),
                   422, "invalid-request")
    assert (await call("GET", "scoring", "/methods/2024", **county)).json() == method


    # piaojue export assessments: the county's ranking sheet.
    out = tmp_path / "assessments.xlsx"
    subprocess.run([sys.executable, "-m", "piaojue.cli", "export", "assessments", "--year", "2024", "--out", str(out)],
                   check=True, capture_output=True, timeout=60)
    sheet = openpyxl.load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("名次", "乡镇", "版本") and (TOWN, 2) in {(r[1], r[2]) for r in rows[1:]}
