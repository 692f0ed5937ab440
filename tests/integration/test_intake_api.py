"""The intake API on the real PostgreSQL and RabbitMQ (the service in-process, its consumers and
outbox relay running): eligibility with reasons, duplicates and merging, the slate's supporters
and notice, the project library, the public tracking lookup, contacts (PIPL), spreadsheets."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import httpx
import openpyxl
import pytest

from services.intake.app import SERVICE
from services.intake.jobs import housekeep_once
from shared.auth import Role, mint
from shared.contracts.ballot import CandidateResult, ResultCertified, RoundCounts
from shared.contracts.envelope import Envelope
from shared.contracts.supervision import InspectionRecorded, ProgressReported, ProjectCompleted, ProjectCreated
from shared.messaging import new_broker, publish_envelope
from shared.service import create_app
from tests.support import assert_problem, connected, eventually

TOWN = "taihu.wangling"  # a township of its own
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
async def intake(settings):
    app = create_app(SERVICE, settings)
    async with app.router.lifespan_context(app):
        await connected(app)
        yield app


class Client:
    def __init__(self, app, settings, client_address: str = "127.0.0.1") -> None:
        self.app, self.settings = app, settings
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client_address, 40000)),
                                      base_url="http://intake")

    def token(self, role: Role = Role.OFFICE, jurisdiction: str = TOWN) -> str:
        return mint(f"{role}-{jurisdiction}", role, jurisdiction, secret=self.settings.auth_secret)

    async def call(self, method: str, path: str, role: Role = Role.OFFICE, jurisdiction: str = TOWN, **kw) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(role, jurisdiction)}", **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)

    async def ok(self, method: str, path: str, **kw):
        response = await self.call(method, path, **kw)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def propose(self, title: str, location: str = "王庄村", jurisdiction: str = TOWN, year: int = 2024, **fields):
        body = {"year": year, "title": title, "channel": "grid", "location": location, **fields}
        return await self.ok("POST", "/proposals", json=body, jurisdiction=jurisdiction)

    async def screen(self, proposal_id, *stages: str):
        for stage in stages:
            await self.ok("POST", f"/proposals/{proposal_id}/screening", json={"to": stage})

    async def candidate(self, title: str, **fields) -> dict:
        created = await self.propose(title, **fields)
        await self.screen(created["id"], "preliminary_review", "approved_by_party_committee", "candidate")
        return created


@pytest.fixture(scope="module")
async def api(intake, settings):
    client = Client(intake, settings)
    await client.ok("PUT", "/places", json={"places": [
        {"name": "王庄村", "aliases": ["王庄"]}, {"name": "马庙村", "aliases": ["马庙"]},
        {"name": "王马公路", "kind": "road", "aliases": ["王马路"], "ends": ["王庄村", "马庙村"]}]})
    yield client
    await client.http.aclose()


async def outbox(intake, event_type: str) -> list[dict]:
    rows = await intake.state.pool.fetch("SELECT body FROM outbox WHERE routing_key = $1 ORDER BY seq", event_type)
    return [r["body"] for r in rows]


# ---------------------------------------------------------------- eligibility with reasons


async def test_an_ineligible_proposal_is_recorded_with_its_reason_and_goes_nowhere_without_an_override(api):
    proposal = await api.propose("镇政府办公楼维修改造", location="镇政府")
    assert [f["rule"] for f in proposal["eligibility"]] == ["office-buildings"]
    assert proposal["stage"] == "submitted" and proposal["code"]
    assert_problem(await api.call("POST", f"/proposals/{proposal['id']}/screening", json={"to": "preliminary_review"}),
                   409, "ineligible")
    # The proposer reads the reason by the code, without signing in.
    tracked = (await api.http.get(f"/public/track/{proposal['code']}")).json()
    assert tracked["eligibility"][0]["reason"].startswith("属于党政机关办公楼")
    # The office may override, only with a reason, and then screening goes on.
    assert_problem(await api.call("POST", f"/proposals/{proposal['id']}/eligibility/overrides",
                                  json={"rule": "office-buildings", "reason": ""}), 422, "invalid-request")
    overridden = await api.ok("POST", f"/proposals/{proposal['id']}/eligibility/overrides",
                              json={"rule": "office-buildings", "reason": "实为村级便民服务室，经县人大同意"})
    assert overridden["eligibility"][0]["overridden"] is True
    await api.screen(proposal["id"], "preliminary_review")
    history = (await api.ok("GET", f"/proposals/{proposal['id']}"))["history_of_decisions"]
    assert [h["to_stage"] for h in history] == ["submitted", "preliminary_review"] and "经县人大同意" in history[0]["reason"]


async def test_a_rejection_without_a_reason_takes_the_failed_rules_reasons(api):
    proposal = await api.propose("为镇直单位更换公务用车")
    rejected = await api.ok("POST", f"/proposals/{proposal['id']}/screening", json={"to": "rejected"})
    assert rejected["stage"] == "rejected" and rejected["rejection_reason"].startswith("楼堂馆所及办公设备")
    tracked = (await api.http.get(f"/public/track/{proposal['code']}")).json()
    assert tracked["stage"] == "rejected" and tracked["rejection_reason"] == rejected["rejection_reason"]


async def test_the_years_rules_are_data_of_the_jurisdiction(api):
    settings = await api.ok("GET", "/settings/2026")
    assert settings["default"] is True
    rules = [*settings["eligibility"]["rules"], {"id": "required", "kind": "required", "label": "必填", "reason": "请填写地点",
                                                  "fields": ["title", "location"]}]
    await api.ok("PUT", "/settings/2026", json={"eligibility": {"rules": rules}, "notice_days": 3})
    proposal = await api.propose("修路", location="", year=2026)
    assert [f["rule"] for f in proposal["eligibility"]] == ["required"]
    other = await api.ok("POST", "/proposals", jurisdiction="taihu.other", json={"year": 2026, "title": "修路", "channel": "grid"})
    assert other["eligibility"] == []  # another township's rules are its own


# ---------------------------------------------------------------- duplicates and merging


async def test_duplicates_are_suggested_and_merged_into_an_item_that_keeps_every_supporter(api, intake):
    item = await api.propose("王庄到马庙的公路需要升级改造", location="王庄村", channel="deputy_forum")
    again = await api.propose("王马路太烂了", location="马庙村", channel="wechat_qq")
    third = await api.propose("王马路坑洼多", location="马庙村")
    assert item["id"] in [d["id"] for d in again["duplicates"]]
    pairs = await api.ok("GET", "/duplicates", params={"year": 2024})
    assert {frozenset((p["a"]["id"], p["b"]["id"])) for p in pairs} >= {frozenset((item["id"], again["id"]))}

    merged = await api.ok("POST", f"/proposals/{item['id']}/merge", json={"proposal_ids": [again["id"], third["id"]]})
    assert merged["supporters"]["count"] == 3
    assert merged["supporters"]["by_channel"] == {"deputy_forum": 1, "wechat_qq": 1, "grid": 1}
    assert merged["supporters"]["by_location"] == {"马庙村": 2, "王庄村": 1}
    [event] = [e for e in await outbox(intake, "intake.proposal.merged") if e["data"]["item_id"] == item["id"]]
    assert event["data"]["supporters"] == 3 and set(event["data"]["merged"]) == {again["id"], third["id"]}
    assert "张" not in json.dumps(event, ensure_ascii=False)

    # The merged proposal's own code follows the item; its proposer is told (intake.notices).
    async def told():
        tracked = (await api.http.get(f"/public/track/{again['code']}")).json()
        return tracked if tracked["notices"] else None
    tracked = await eventually(told, what="the merge notice to the proposer")
    assert tracked["merged_into"]["title"] == item["title"] and tracked["merged_into"]["supporters"] == 3
    assert "合并" in tracked["notices"][0]["text"]

    # Undone while the item is not on a slate: the proposal is back where it was.
    back = await api.ok("POST", f"/proposals/{third['id']}/unmerge", json={"reason": "实为另一条路"})
    assert (back["stage"], back["merged_into"]) == ("submitted", None)
    assert (await api.ok("GET", f"/proposals/{item['id']}"))["supporters"]["count"] == 2


async def test_a_merge_across_jurisdictions_or_of_an_item_on_a_slate_is_refused_with_a_stable_code(api):
    here = await api.propose("王马路修缮")
    there = await api.propose("王马路修缮", jurisdiction="taihu.other")
    county_own = await api.propose("全县农村公路提升", jurisdiction="taihu")  # the county congress's own proposal
    county = dict(role=Role.OFFICE, jurisdiction="taihu")  # the county office sees both townships' proposals
    response = await api.call("POST", f"/proposals/{county_own['id']}/merge", json={"proposal_ids": [here["id"]]}, **county)
    assert_problem(response, 409, "merge-across-jurisdictions")
    # The county does not write into a township's intake; a township does not even see another's proposal.
    assert_problem(await api.call("POST", f"/proposals/{here['id']}/merge", json={"proposal_ids": [there["id"]]}, **county),
                   404, "proposal-not-found")
    assert_problem(await api.call("POST", f"/proposals/{here['id']}/merge", json={"proposal_ids": [there["id"]]}),
                   404, "proposal-not-found")
    assert (await api.ok("GET", f"/proposals/{here['id']}"))["stage"] == "submitted"

    a, b, c = [await api.candidate(f"候选{i}") for i in range(3)]
    duplicate = await api.propose("候选0的重复")
    await api.ok("POST", f"/proposals/{a['id']}/merge", json={"proposal_ids": [duplicate["id"]]})
    await api.ok("POST", "/slates", json={"title": "清单", "year": 2024, "seats": 2, "proposal_ids": [a["id"], b["id"], c["id"]],
                                          "notice_days": 0})
    late = await api.propose("候选0的又一个重复")
    assert_problem(await api.call("POST", f"/proposals/{a['id']}/merge", json={"proposal_ids": [late["id"]]}),
                   409, "already-on-slate")
    assert_problem(await api.call("POST", f"/proposals/{duplicate['id']}/unmerge", json={"reason": "x"}),
                   409, "already-on-slate")


# ---------------------------------------------------------------- the slate: supporters, notice, feasibility


async def test_the_slate_carries_each_candidates_supporters_and_waits_for_its_notice_period(api, intake):
    a, b, c = [await api.candidate(f"公示候选{i}") for i in range(3)]
    await api.ok("PUT", f"/proposals/{a['id']}/feasibility", json={"demand": 90, "buildability": 70, "urgency": 80, "funding": 50})
    await api.ok("POST", f"/proposals/{a['id']}/merge", json={"proposal_ids": [(await api.propose("公示候选0 again"))["id"]]})
    candidates = {p["id"]: p for p in await api.ok("GET", "/candidates", params={"year": 2024})}
    assert candidates[a["id"]]["feasibility"]["weighted"] == 74.5  # a number, as in a command's answer

    slate = await api.ok("POST", "/slates", json={"title": "公示清单", "year": 2024, "seats": 2, "notice_days": 5,
                                                  "proposal_ids": [a["id"], b["id"], c["id"]]})
    assert slate["status"] == "in_notice" and [x["on_slate_supporters"] for x in slate["candidates"]] == [2, 1, 1]
    assert not [e for e in await outbox(intake, "intake.slate.published") if e["data"]["slate_id"] == slate["id"]]
    assert_problem(await api.call("POST", f"/slates/{slate['id']}/send", json={}), 409, "notice-period-running")

    [notice] = slate["notices"]
    objected = await api.ok("POST", f"/notices/{notice['id']}/objections", json={"text": "建议增加路灯", "source": "电话"})
    answered = await api.ok("POST", f"/objections/{objected['objections'][0]['id']}/answer", json={"answer": "已纳入"})
    assert answered["objections"][0]["answer"] == "已纳入"
    assert_problem(await api.call("POST", f"/objections/{objected['objections'][0]['id']}/answer", json={"answer": "again"}),
                   409, "already-answered")

    sent = await api.ok("POST", f"/slates/{slate['id']}/send", json={"override_reason": "县人大常委会同意提前提交"})
    assert sent["status"] == "published" and sent["notice_override"] == "县人大常委会同意提前提交"
    [event] = [e for e in await outbox(intake, "intake.slate.published") if e["data"]["slate_id"] == slate["id"]]
    assert (event["version"], [x["supporters"] for x in event["data"]["candidates"]]) == (1, [2, 1, 1])


# ---------------------------------------------------------------- after the vote: library, projects, tracking


async def certify(settings, slate: dict, chosen: list[str], counts: dict[str, tuple[int, int, int]]) -> None:
    results = [CandidateResult(candidate_id=UUID(c["id"]), title=c["title"], for_votes=counts[c["id"]][0],
                               against=counts[c["id"]][1], abstain=counts[c["id"]][2], passed=c["id"] in chosen,
                               chosen=c["id"] in chosen, rank=None) for c in slate["candidates"]]
    ids = [r.candidate_id for r in results]
    payload = ResultCertified(vote_id=uuid4(), session_id=uuid4(), session_name="人代会", slate_id=UUID(slate["id"]),
                              year=2024, seats=len(chosen), seated=30, present=28, issued=28, collected=28, valid=28,
                              invalid=0, rules={}, candidates=results, certified_at=datetime.now(UTC), certified_by="chair",
                              rounds=[RoundCounts(round=1, candidates=ids, seats=len(chosen), issued=28, collected=28,
                                                  valid=28, invalid=0, void=False)])
    await publish(settings, payload)


async def publish(settings, payload) -> None:
    broker = new_broker(settings)
    await broker.connect()
    try:
        envelope = Envelope(type=payload.TYPE, version=payload.VERSION, jurisdiction=TOWN, correlation_id=uuid4(),
                            producer="test", data=payload.model_dump(mode="json"))
        await publish_envelope(broker, envelope.model_dump(mode="json"))
    finally:
        await broker.stop()


async def test_a_library_candidate_reenters_next_years_intake_with_its_history_and_is_screened_again(api, settings):
    library = await api.candidate("长河大堤加固", estimated_budget=8_000_000, beneficiaries=20_000)
    chosen, other = await api.candidate("村道硬化"), await api.candidate("路灯", estimated_budget=100_000)
    supporter = await api.propose("长河大堤加固 again", channel="letter_hotline")
    await api.ok("POST", f"/proposals/{library['id']}/merge", json={"proposal_ids": [supporter["id"]]})
    slate = await api.ok("POST", "/slates", json={"title": "结转清单", "year": 2024, "seats": 1, "notice_days": 0,
                                                  "proposal_ids": [chosen["id"], library["id"], other["id"]]})
    await certify(settings, slate, [chosen["id"]], {chosen["id"]: (20, 5, 3), library["id"]: (9, 15, 4), other["id"]: (2, 20, 6)})

    async def carried():
        rows = [p for p in await api.ok("GET", "/proposals", params={"year": 2025}) if p["carried_from"] == library["id"]]
        return rows[0] if rows else None
    nxt = await eventually(carried, what="the library item in 2025's intake")
    assert (nxt["stage"], nxt["title"], nxt["supporters"]["count"]) == ("submitted", "长河大堤加固", 2)
    assert nxt["history"]["votes"]["for"] == 9 and nxt["history"]["reason"] and nxt["history"]["from_year"] == 2024
    assert {p["title"] for p in nxt["history"]["proposals"]} == {"长河大堤加固", "长河大堤加固 again"}
    assert nxt["code"] != library["code"]
    await api.screen(nxt["id"], "preliminary_review")  # screened again
    [item] = await api.ok("GET", "/library", params={"year": 2024})
    assert (item["id"], item["carried_to"], item["carried_to_stage"]) == (library["id"], nxt["id"], "preliminary_review")
    tracked = (await api.http.get(f"/public/track/{supporter['code']}")).json()  # the merged supporter follows it too
    assert tracked["outcome"]["disposition"] == "project_library" and tracked["carried_to"]["year"] == 2025

    # A chosen proposal's code shows the project's progress, from supervision's events in any order.
    project = uuid4()
    for percent, as_of in ((100, date(2024, 12, 10)), (45, date(2024, 6, 30))):  # the later report arrives first
        await publish(settings, ProgressReported(report_id=uuid4(), project_id=project, year=2024, as_of=as_of,
                                                 percent_done=percent, funds_spent=None, backdated=False))
    await publish(settings, InspectionRecorded(inspection_id=uuid4(), project_id=project, year=2024, kind="final",
                                               inspected_on=date(2024, 12, 15), ratings=[], term=19))
    await publish(settings, ProjectCompleted(project_id=project, year=2024, completion="completed", accepted_on=date(2024, 12, 20)))
    await publish(settings, ProjectCreated(project_id=project, candidate_id=UUID(chosen["id"]), vote_id=uuid4(), title="村道硬化",
                                           year=2024))

    async def progress():
        tracked = (await api.http.get(f"/public/track/{chosen['code']}")).json()
        done = tracked["project"] and tracked["project"]["completion"] and tracked["project"]["inspections"]
        return tracked if done and tracked["project"]["percent_done"] is not None else None
    tracked = await eventually(progress, what="the project in the lookup")
    assert tracked["outcome"]["chosen"] is True and tracked["project"]["completion"] == "completed"
    assert (tracked["project"]["percent_done"], tracked["project"]["progress_as_of"]) == (100, "2024-12-10")
    assert tracked["project"]["inspections"] == [{"kind": "final", "on": "2024-12-15"}]


async def test_the_lookup_is_public_shows_no_person_and_is_rate_limited(intake, settings, api):
    proposal = await api.propose("王庄村路灯", proposer="张三丰", contact="13912345678")
    stranger = Client(intake, settings, client_address="10.9.8.7")
    second = await intake.state.pool.fetchval("SELECT extract(second FROM now())")
    if second > 45:  # the counters are per minute: start in a fresh one, so the count is the test's own
        await asyncio.sleep(61 - float(second))
    try:
        response = await stranger.http.get(f"/public/track/{proposal['code'].lower().replace('-', '')}")
        assert response.status_code == 200 and response.json()["title"] == "王庄村路灯"
        assert "张三丰" not in response.text and "13912345678" not in response.text and proposal["id"] not in response.text
        assert_problem(await stranger.http.get("/public/track/AAAAA-BBBBB"), 404, "code-not-found")
        assert_problem(await stranger.http.get("/public/track/not-a-code"), 422, "invalid-request")
        for _ in range(28):  # 30 a minute: 2 counted above (a malformed code is refused before counting)
            assert (await stranger.http.get("/public/track/AAAAA-BBBBB")).status_code == 404
        limited = await stranger.http.get(f"/public/track/{proposal['code']}")
        assert_problem(limited, 429, "too-many-lookups")
        assert limited.headers["retry-after"] == "60"
    finally:
        await stranger.http.aclose()


# ---------------------------------------------------------------- contacts (PIPL)


async def test_contacts_are_for_the_office_only_and_erased_after_retention(api, intake):
    recent = await api.propose("马庙村路灯", proposer="李四", contact="13700000000")
    old = await api.propose("马庙村自来水", year=2020, proposer="王五", contact="13600000000")
    assert (await api.ok("GET", f"/proposals/{recent['id']}/contact"))["contact"] == "13700000000"
    assert_problem(await api.call("GET", f"/proposals/{recent['id']}/contact", role=Role.DEPUTY), 403, "forbidden-role")
    assert "李四" not in json.dumps(await api.ok("GET", f"/proposals/{recent['id']}"), ensure_ascii=False)
    audit = await intake.state.pool.fetch("SELECT after FROM audit WHERE entity_id = $1", recent["id"])
    assert audit and "13700000000" not in json.dumps([a["after"] for a in audit])  # audit rows are never erased

    assert await housekeep_once(intake.state.pool, today=date(2022, 1, 1)) >= 1  # 2020 + 365 days has passed
    erased = await api.ok("GET", f"/proposals/{old['id']}/contact")
    assert (erased["proposer"], erased["contact"], erased["erased"]) == ("", "", True)
    assert (await api.ok("GET", f"/proposals/{recent['id']}/contact"))["erased"] is False


# ---------------------------------------------------------------- spreadsheets


def sheet(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(api, data: bytes, dry_run: bool = False, year: int = 2023, **kw) -> httpx.Response:
    return await api.call("POST", "/imports", params={"year": year, "dry_run": str(dry_run).lower()}, content=data,
                          headers={"content-type": XLSX}, **kw)


async def count(api, year: int = 2023) -> int:
    return len(await api.ok("GET", "/proposals", params={"year": year}))


async def test_a_spreadsheet_is_checked_then_imported_whole_and_only_once(api):
    headers = ["项目名称", "地点（村/社区）", "受益人数", "建议人", "联系方式"]
    good = sheet([headers, ["王庄村路灯", "王庄村", 300, "赵六", "135"], ["马庙村自来水", "马庙村", 500, "", ""],
                  ["镇政府办公楼", "镇政府", 10, "", ""]])
    checked = (await upload(api, good, dry_run=True)).json()
    assert (checked["rows"], checked["problems"], checked["ineligible"], checked["created"]) == (3, [], 1, 0)
    assert [p["row"] for p in checked["preview"]] == [2, 3, 4] and await count(api) == 0
    first = await upload(api, good)
    assert first.status_code == 201 and first.json()["created"] == 3
    again = await upload(api, good)
    assert again.status_code == 200 and again.json()["already_imported"] and again.json()["created"] == 0
    assert await count(api) == 3
    template = await api.call("GET", "/imports/template")
    assert template.headers["content-type"] == XLSX and (await upload(api, template.content, dry_run=True)).json()["rows"] == 1

    export = await api.call("GET", "/exports/proposals", params={"year": 2023})
    rows = list(openpyxl.load_workbook(io.BytesIO(export.content)).active.values)
    assert rows[0][:3] == ("查询码", "项目名称", "内容描述") and len(rows) == 4 and "赵六" not in repr(rows)
    assert any("楼堂馆所" in (r[7] or "") for r in rows[1:])
    with_contacts = await api.call("GET", "/exports/proposals", params={"year": 2023, "contacts": "true"})
    assert "赵六" in repr(list(openpyxl.load_workbook(io.BytesIO(with_contacts.content)).active.values))
    assert_problem(await api.call("GET", "/exports/proposals", params={"year": 2023, "contacts": "true"}, role=Role.COUNTY,
                                  jurisdiction="taihu"), 403, "contacts-not-allowed")


@pytest.mark.parametrize(("data", "code"), [
    (b"%PDF-1.4 \x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c", "import-invalid"),
    (sheet([["项目名称", "地点（村/社区）", "受益人数"], ["路灯", "王庄村", "１２３"], ["水", "马庙村", 5]]), "import-invalid"),
    ("项目名称,地点（村/社区）,收集日期\n路灯,王庄村,45292\n".encode("gbk"), "import-invalid"),
    (b"", "file-required"),
])
async def test_bad_files_import_nothing_and_say_why_in_chinese(api, data, code):
    before = await count(api, 2022)
    response = await upload(api, data, year=2022)
    assert_problem(response, 422, code)
    if code == "import-invalid":
        assert response.json()["problems"] and all(p["message"] for p in response.json()["problems"])
    assert await count(api, 2022) == before


async def test_a_file_past_the_size_limit_is_refused_before_it_is_read(api):
    assert_problem(await upload(api, b"x" * (5 * 1024 * 1024 + 1)), 413, "file-too-large")
