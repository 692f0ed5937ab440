"""Who may call what, over every endpoint of the five services' OpenAPI documents: a row per
endpoint (a new endpoint without one fails the test). For each, with tokens of every role:
no token → 401; a role not in the row → 403 (the hall display: 401 where its credential is not
for that service); a role in the row, in its own jurisdiction → past authorisation; a write that
belongs to a township's congress → refused from a sibling township and from the county scope;
the county's writes → refused from another county; a read of one township's object → refused
from a sibling."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import httpx
import pytest

from piaojue.services import all_services
from shared.auth import Role, mint
from shared.service import create_app
from tests.e2e.town import Town
from tests.support import eventually

TOWN, SIBLING, COUNTY, OTHER_COUNTY = "taihu.juzhen", "taihu.xiangling", "taihu", "wangjiang"
HOME_COUNTY = "juzhenxian"  # where the county's writes are tried with an empty body: a county no other test uses
PUBLIC, READ, CREATE, TOWNSHIP, COUNTY_WRITE = "public", "read", "create", "township", "county"
ANY = frozenset(r for r in Role if r is not Role.DISPLAY)
O, PR, D, TE, L, C, A = Role.OFFICE, Role.PRESIDING, Role.DEPUTY, Role.TELLER, Role.LEAD_UNIT, Role.COUNTY, Role.ADMIN  # noqa: E741 (short names keep the table readable)
DISPLAY = frozenset({Role.DISPLAY})
DAY = "2024-06-01"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

# (service, method, path) → (kind, roles allowed, a valid body). Reads that take the hall display say so.
ROWS: dict[tuple[str, str, str], tuple[str, frozenset[Role], Any]] = {
    ("intake", "POST", "/proposals"): (CREATE, frozenset({O, D, Role.RESIDENT}), {"year": 2024, "title": "矩阵", "channel": "grid"}),
    ("intake", "GET", "/proposals"): (READ, ANY, None),
    ("intake", "GET", "/proposals/{proposal_id}"): (READ, ANY, None),
    ("intake", "POST", "/proposals/{proposal_id}/screening"): (TOWNSHIP, frozenset({O}), {"to": "preliminary_review"}),
    ("intake", "POST", "/slates"): (TOWNSHIP, frozenset({O}), "slate"),
    ("intake", "GET", "/slates/{slate_id}"): (READ, ANY, None),
    ("intake", "GET", "/slates"): (READ, ANY, None),
    ("intake", "GET", "/candidates"): (READ, ANY, None),
    ("intake", "GET", "/proposals/{proposal_id}/duplicates"): (READ, ANY, None),
    ("intake", "GET", "/duplicates"): (READ, frozenset({O}), None),
    ("intake", "GET", "/proposals/{proposal_id}/contact"): (TOWNSHIP, frozenset({O}), None),  # PIPL: its own office only
    ("intake", "POST", "/proposals/{proposal_id}/eligibility/overrides"): (TOWNSHIP, frozenset({O}),
                                                                          {"rule": "office-buildings", "reason": "矩阵"}),
    ("intake", "PUT", "/proposals/{proposal_id}/feasibility"): (TOWNSHIP, frozenset({O}),
                                                                {"demand": 1, "buildability": 1, "urgency": 1, "funding": 1}),
    ("intake", "POST", "/proposals/{proposal_id}/merge"): (TOWNSHIP, frozenset({O}), {"proposal_ids": [str(uuid4())]}),
    ("intake", "POST", "/proposals/{proposal_id}/unmerge"): (TOWNSHIP, frozenset({O}), {"reason": "矩阵"}),
    ("intake", "POST", "/slates/{slate_id}/send"): (TOWNSHIP, frozenset({O}), {}),
    ("intake", "POST", "/slates/{slate_id}/result-notice"): (TOWNSHIP, frozenset({O}), {"days": 3}),
    ("intake", "POST", "/notices/{notice_id}/objections"): (TOWNSHIP, frozenset({O}), {"text": "矩阵意见"}),
    ("intake", "POST", "/objections/{objection_id}/answer"): (TOWNSHIP, frozenset({O}), {"answer": "矩阵答复"}),
    ("intake", "GET", "/settings/{year}"): (READ, ANY, None),
    ("intake", "PUT", "/settings/{year}"): (CREATE, frozenset({O}), {"notice_days": 0}),
    ("intake", "GET", "/places"): (READ, ANY, None),
    ("intake", "PUT", "/places"): (CREATE, frozenset({O}), {"places": []}),
    ("intake", "GET", "/imports/template"): (READ, ANY, None),
    ("intake", "POST", "/imports"): (CREATE, frozenset({O}), b"not a spreadsheet"),
    ("intake", "GET", "/exports/proposals"): (READ, ANY, None),
    ("intake", "GET", "/library"): (READ, ANY, None),
    ("intake", "GET", "/public/track/{code}"): (PUBLIC, ANY, None),  # public by design: rate-limited, no person shown
    ("ballot", "PUT", "/terms/{term}/roster"): (CREATE, frozenset({O}), {"quota": 1, "deputies": [{"deputy_id": "M1", "name": "代表"}]}),
    ("ballot", "POST", "/sessions"): (CREATE, frozenset({O}), {"name": "会议", "year": 2024, "term": 1}),
    ("ballot", "GET", "/sessions/{session_id}"): (READ, ANY | DISPLAY, None),
    ("ballot", "POST", "/sessions/{session_id}/roll-call"): (TOWNSHIP, frozenset({O}), {"present": []}),
    ("ballot", "GET", "/slates/{slate_id}"): (READ, ANY | DISPLAY, None),
    ("ballot", "POST", "/sessions/{session_id}/votes"): (TOWNSHIP, frozenset({O, PR}), "vote"),
    ("ballot", "POST", "/votes/{vote_id}/withdrawals"): (TOWNSHIP, frozenset({O, PR}), {"candidate_id": str(uuid4()), "reason": "撤回"}),
    ("ballot", "POST", "/terms/{term}/roster/changes"): (CREATE, frozenset({O, PR}), {"deputy_id": "M9", "seated": True, "reason": "补选"}),
    ("ballot", "POST", "/sessions/{session_id}/close"): (TOWNSHIP, frozenset({O, PR}), None),
    ("ballot", "PUT", "/sessions/{session_id}/tellers"): (TOWNSHIP, frozenset({O, PR}), {"tellers": ["T1"], "threshold": 1}),
    ("ballot", "PUT", "/tellers/me/key"): (CREATE, frozenset({TE}), {"public_key": "A" * 43 + "=", "suite": "x25519-hkdf-sha256-aes128gcm"}),
    ("ballot", "POST", "/votes/{vote_id}/rounds/current/void"): (TOWNSHIP, frozenset({PR}), {"reason": "矩阵", "rerun": "paper"}),
    ("ballot", "POST", "/votes/{vote_id}/void"): (TOWNSHIP, frozenset({PR}), {"reason": "矩阵"}),
    ("ballot", "GET", "/votes/{vote_id}/shares/mine"): (TOWNSHIP, frozenset({TE}), None),
    ("ballot", "POST", "/votes/{vote_id}/shares"): (TOWNSHIP, frozenset({TE}), {"share": "AAAA"}),
    ("ballot", "GET", "/votes/{vote_id}/publication/ballots"): (READ, frozenset({TE, PR, C}), None),
    ("ballot", "GET", "/votes/{vote_id}/receipts/{tracker}"): (READ, ANY | DISPLAY, None),
    ("ballot", "POST", "/votes/{vote_id}/open"): (TOWNSHIP, frozenset({O, PR}), None),
    ("ballot", "POST", "/votes/{vote_id}/ballots"): (TOWNSHIP, frozenset({D}), {"marks": {}}),
    ("ballot", "POST", "/votes/{vote_id}/paper-ballots"): (TOWNSHIP, frozenset({TE}), {"marks": {}}),
    ("ballot", "PUT", "/votes/{vote_id}/paper-totals"): (TOWNSHIP, frozenset({TE}), {"collected": 0, "counts": {}}),
    ("ballot", "POST", "/votes/{vote_id}/close"): (TOWNSHIP, frozenset({O, PR}), None),
    ("ballot", "GET", "/votes/{vote_id}"): (READ, ANY | DISPLAY, None),
    ("ballot", "POST", "/votes/{vote_id}/certify"): (TOWNSHIP, frozenset({PR}), None),
    ("ballot", "GET", "/votes/{vote_id}/publication"): (READ, ANY | DISPLAY, None),
    ("ballot", "GET", "/sessions/{session_id}/live"): (READ, ANY | DISPLAY, None),
    # the lists the pages find their way with (services/ballot/listing.py)
    ("ballot", "GET", "/sessions"): (READ, ANY | DISPLAY, None),
    ("ballot", "GET", "/sessions/{session_id}/deputies"): (READ, ANY, None),
    ("ballot", "GET", "/terms/{term}/roster"): (READ, ANY, None),
    ("ballot", "GET", "/slates"): (READ, ANY, None),
    ("ballot", "GET", "/votes/{vote_id}/ballot-paper"): (READ, ANY, None),
    ("supervision", "GET", "/projects"): (READ, ANY, None),
    ("supervision", "GET", "/projects/{project_id}"): (READ, ANY, None),
    ("supervision", "PUT", "/projects/{project_id}/assignment"): (TOWNSHIP, frozenset({O}), {"lead_unit": "镇交通办"}),
    ("supervision", "POST", "/projects/{project_id}/progress"): (TOWNSHIP, frozenset({L, O}), {"percent_done": 10}),
    ("supervision", "POST", "/projects/{project_id}/inspections"): (TOWNSHIP, frozenset({O, D}),
                                                                   {"kind": "mid_term", "inspected_on": DAY}),
    ("supervision", "PUT", "/projects/{project_id}/completion"): (TOWNSHIP, frozenset({O}), {"completion": "completed"}),
    ("supervision", "PUT", "/projects/{project_id}/supervisors"): (TOWNSHIP, frozenset({O}), {"deputies": ["M1"]}),
    ("supervision", "POST", "/progress/{report_id}/photos"): (TOWNSHIP, frozenset({L, O}), PNG),
    ("supervision", "GET", "/photos/{photo_id}"): (READ, ANY, None),
    ("supervision", "GET", "/board"): (READ, ANY, None),
    ("supervision", "PUT", "/settings/board"): (CREATE, frozenset({O, C}), {"red_below": 30, "yellow_below": 90}),
    ("supervision", "GET", "/rectifications"): (READ, ANY, None),
    ("supervision", "POST", "/rectifications/{item_id}/actions"): (TOWNSHIP, frozenset({L, D, O}), {"action": "respond", "text": "已整改"}),
    ("supervision", "GET", "/ledgers.xlsx"): (READ, ANY, None),
    ("supervision", "POST", "/plan/{year}/activities"): (CREATE, frozenset({O}), {"kind": "look_back", "title": "回头看", "scheduled_on": DAY}),
    ("supervision", "GET", "/plan/{year}"): (READ, ANY, None),
    ("supervision", "POST", "/activities/{activity_id}/actions"): (TOWNSHIP, frozenset({O}), {"action": "cancel", "reason": "改期"}),
    ("supervision", "POST", "/terms/{term}/start"): (CREATE, frozenset({O}), {}),
    ("scoring", "PUT", "/methods/{year}"): (COUNTY_WRITE, frozenset({C}), {}),
    ("scoring", "GET", "/methods/{year}"): (READ, ANY, None),
    ("scoring", "GET", "/projects"): (READ, ANY, None),
    ("scoring", "POST", "/assessments"): (COUNTY_WRITE, frozenset({C}), {"jurisdiction": TOWN, "year": 2024}),
    ("scoring", "GET", "/assessments"): (READ, ANY, None),
    ("scoring", "GET", "/assessments/{jurisdiction}/{year}"): (READ, ANY, None),
    ("scoring", "GET", "/assessments/{jurisdiction}/{year}/versions"): (READ, ANY, None),
    ("scoring", "GET", "/methods/{year}/versions"): (READ, ANY, None),
    ("scoring", "GET", "/assessments.xlsx"): (READ, ANY, None),
    ("scoring", "GET", "/county/changes"): (READ, ANY, None),
    ("scoring", "GET", "/webhooks/subscribers"): (COUNTY_WRITE, frozenset({C}), None),
    ("scoring", "POST", "/webhooks/subscribers"): (COUNTY_WRITE, frozenset({C}), {"name": "矩阵", "url": "http://127.0.0.1:9/x",
                                                                                 "secret": "s" * 32}),
    ("scoring", "GET", "/webhooks/deliveries"): (COUNTY_WRITE, frozenset({C}), None),
    ("scoring", "POST", "/webhooks/deliveries/{delivery_id}/redeliver"): (COUNTY_WRITE, frozenset({C}), None),
    ("identity", "POST", "/auth/sign-in"): (PUBLIC, ANY, None),
    ("identity", "POST", "/auth/refresh"): (PUBLIC, ANY, None),
    ("identity", "POST", "/auth/sign-out"): (PUBLIC, ANY, None),
    ("identity", "POST", "/auth/password"): (PUBLIC, ANY, None),
    ("identity", "POST", "/oauth/token"): (PUBLIC, ANY, None),
    ("identity", "GET", "/.well-known/jwks.json"): (PUBLIC, ANY, None),
    ("identity", "GET", "/auth/oidc/start"): (PUBLIC, ANY, None),
    ("identity", "GET", "/auth/oidc/callback"): (PUBLIC, ANY, None),
    ("identity", "POST", "/checkin"): (PUBLIC, ANY, None),
    ("identity", "GET", "/me"): (READ, ANY, None),
    ("identity", "GET", "/accounts"): (COUNTY_WRITE, frozenset({A}), None),
    ("identity", "POST", "/accounts"): (COUNTY_WRITE, frozenset({A}), "account"),
    ("identity", "GET", "/accounts/{username}"): (COUNTY_WRITE, frozenset({A}), None),
    ("identity", "PUT", "/accounts/{username}/grants"): (COUNTY_WRITE, frozenset({A}), {"grants": [{"role": "teller", "jurisdiction": TOWN}]}),
    ("identity", "POST", "/accounts/{username}/disable"): (COUNTY_WRITE, frozenset({A}), None),
    ("identity", "POST", "/accounts/{username}/enable"): (COUNTY_WRITE, frozenset({A}), None),
    ("identity", "POST", "/accounts/{username}/password"): (COUNTY_WRITE, frozenset({A}), {}),
    ("identity", "GET", "/sessions/{session_id}/checkin-code"): (TOWNSHIP, frozenset({O}), None),
    ("identity", "GET", "/sessions/{session_id}/credentials"): (TOWNSHIP, frozenset({O}), None),
    ("identity", "POST", "/sessions/{session_id}/credentials/{deputy_id}/revoke"): (TOWNSHIP, frozenset({O}), {"reason": "遗失"}),
    ("identity", "POST", "/sessions/{session_id}/tablets"): (TOWNSHIP, frozenset({O}), {"deputy_id": "M9", "device_key": "t" * 43}),
    ("identity", "DELETE", "/terms/{term}/deputies/{deputy_id}/personal-code"): (TOWNSHIP, frozenset({O}), None),
    ("identity", "POST", "/sessions/{session_id}/display"): (TOWNSHIP, frozenset({O}), None),
    ("identity", "POST", "/sessions/{session_id}/display/{credential_id}/revoke"): (TOWNSHIP, frozenset({O}), {"reason": "撤走"}),
}


def endpoints() -> set[tuple[str, str, str]]:
    found = set()
    for service in all_services():
        for path, methods in create_app(service).openapi()["paths"].items():
            if not path.startswith(("/health", "/metrics")):
                found |= {(service.name, method.upper(), path) for method in methods}
    return found


def test_every_endpoint_has_a_row():
    found = endpoints()
    assert found - set(ROWS) == set(), "add a row for each new endpoint: who may call it, and where"
    assert set(ROWS) - found == set(), "a row for an endpoint that is gone"


@pytest.fixture(scope="module")
async def objects(settings, cluster) -> dict[str, Any]:
    """One of each object in TOWN: a proposal, two slates (one voted on), a session, a certified vote,
    a project, an account, a deputy with a personal code."""
    async with httpx.AsyncClient(timeout=30) as client:
        town = Town(settings, client, TOWN)
        slate = await town.slate(["矩阵甲", "矩阵乙"], seats=1)
        spare = await town.slate(["矩阵丙", "矩阵丁"], seats=1)
        session = await town.session(["M1", "M2", "M3"])
        vote = await town.vote(session, slate_id=slate["id"])
        await town.open(vote)
        candidate = vote["subjects"][0]["id"]
        await town.cast_all(vote, {d: {candidate: "for"} for d in ("M1", "M2", "M3")})
        await town.close(vote)
        assert (await town.certify(vote)).status_code == 200
        project = await eventually(lambda: _first_project(town, vote["id"]), what="the project in supervision")
        # The year after the vote: a lead unit, a progress report with a photo, a finding to rectify, a planned activity.
        await town.ok("PUT", "supervision", f"/projects/{project['id']}/assignment", json={"lead_unit": "镇交通办"})
        report = await town.ok("POST", "supervision", f"/projects/{project['id']}/progress", Role.LEAD_UNIT, "镇交通办",
                               json={"percent_done": 10, "as_of": DAY})
        photo = await town.ok("POST", "supervision", f"/progress/{report['id']}/photos", Role.LEAD_UNIT, "镇交通办", content=PNG)
        await town.ok("POST", "supervision", f"/projects/{project['id']}/inspections", json={
            "kind": "concentrated_inspection", "inspected_on": DAY, "findings": [{"problem": "路面破损"}]})
        item = (await town.ok("GET", "supervision", "/rectifications"))["items"][0]
        activity = await town.ok("POST", "supervision", "/plan/2024/activities",
                                 json={"kind": "look_back", "title": "回头看", "scheduled_on": DAY})
        proposal = (await town.ok("GET", "intake", "/proposals"))[0]
        # A slate under public notice (公示), with an objection recorded.
        noticed = [await town.ok("POST", "intake", "/proposals", json={"year": 2024, "title": f"矩阵公示{i}", "channel": "grid"})
                   for i in range(2)]
        for p in noticed:
            for stage in ("preliminary_review", "approved_by_party_committee", "candidate"):
                await town.ok("POST", "intake", f"/proposals/{p['id']}/screening", json={"to": stage})
        in_notice = await town.ok("POST", "intake", "/slates", json={"title": "矩阵公示清单", "year": 2024, "seats": 1,
                                                                     "notice_days": 3, "proposal_ids": [p["id"] for p in noticed]})
        notice = in_notice["notices"][0]
        objection = (await town.ok("POST", "intake", f"/notices/{notice['id']}/objections", json={"text": "意见"}))["objections"][0]
        admin = {"authorization": f"Bearer {mint('county-admin', A, COUNTY)}"}
        account = await client.post(settings.url("identity") + "/accounts", headers=admin, json={
            "username": "juzhen-matrix", "display_name": "矩阵", "grants": [{"role": "office", "jurisdiction": TOWN}]})
        assert account.status_code == 201, account.text
        await eventually(lambda: _ok(client, settings.url("identity") + f"/sessions/{session['id']}/checkin-code",
                                     town.token("office", O)), what="identity to learn of the session")
        return {"proposal_id": proposal["id"], "slate_id": slate["id"], "spare_slate": spare, "session_id": session["id"],
                "vote_id": vote["id"], "project_id": project["id"], "username": "juzhen-matrix", "term": 1,
                "deputy_id": "M1", "year": 2024, "jurisdiction": TOWN, "report_id": report["id"], "photo_id": photo["id"],
                "item_id": item["id"], "activity_id": activity["id"], "delivery_id": str(uuid4()),
                "notice_id": notice["id"], "objection_id": objection["id"], "tracker": "0" * 64,
                "credential_id": str(uuid4())}


async def _first_project(town: Town, vote_id: str):
    projects = await town.ok("GET", "supervision", "/projects")
    return next((p for p in projects if p["vote_id"] == vote_id), None)


async def _ok(client, url, token) -> bool:
    return (await client.get(url, headers={"authorization": f"Bearer {token}"})).status_code == 200


def token(service: str, role: Role, jurisdiction: str, session: str | None) -> str:
    claims: dict[str, Any] = {}
    if session and (role is Role.DISPLAY or (role is Role.DEPUTY and service == "ballot")):
        claims = {"session": session, "term": 1}  # a session's credential (the ballot service's only)
    if role is Role.LEAD_UNIT:
        claims = {"unit": "镇交通办"}
    return mint(f"matrix-{role}", role, jurisdiction, **claims)


OBJECT_PARAMS = ("{proposal_id}", "{slate_id}", "{session_id}", "{vote_id}", "{project_id}", "{jurisdiction}", "{username}",
                 "{report_id}", "{photo_id}", "{item_id}", "{activity_id}", "{notice_id}", "{objection_id}")
PAST_AUTHORISATION = set(range(200, 600)) - {401, 403, 500}


def names_a_town_object(path: str, body: Any) -> bool:
    return any(p in path for p in OBJECT_PARAMS) or (not isinstance(body, bytes) and TOWN in json.dumps(body, ensure_ascii=False))


def body_of(spec: Any, objects: dict[str, Any]) -> Any:
    if spec == "slate":
        return {"title": "矩阵清单", "year": 2024, "seats": 1, "allow_equal": True,
                "proposal_ids": [objects["proposal_id"]]}
    if spec == "vote":
        return {"slate_id": objects["spare_slate"]["id"]}
    if spec == "account":
        return {"username": f"matrix-{uuid4().hex[:6]}", "display_name": "矩阵", "grants": [{"role": "office", "jurisdiction": TOWN}]}
    return spec


async def call(client, settings, service, method, path, values, auth: str | None, body: Any) -> int:
    url = settings.url(service) + path.format(**values)
    headers = {"authorization": f"Bearer {auth}"} if auth else {}
    kwargs = {} if body is None else {"content": body} if isinstance(body, bytes) else {"json": body}
    async with client.stream(method, url, headers=headers, **kwargs) as response:  # the live view never ends: status only
        return response.status_code


async def test_who_may_call_what_where(settings, cluster, objects):
    missing = {k: v for k, v in objects.items() if k != "spare_slate"}
    unknown = {**missing, **{k: str(uuid4()) for k in ("proposal_id", "slate_id", "session_id", "vote_id", "project_id", "report_id",
                                                        "photo_id", "item_id", "activity_id", "notice_id", "objection_id")},
               "username": "nobody-matrix", "deputy_id": "M404"}
    wrong: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for (service, method, path), (kind, allowed, spec) in sorted(ROWS.items()):
            if kind == PUBLIC:
                continue
            where = f"{method} {service}{path}"
            home = HOME_COUNTY if kind == COUNTY_WRITE else TOWN

            def expect(status: int, ok: set[int], what: str) -> None:
                if status not in ok:
                    wanted = "past authorisation" if ok is PAST_AUTHORISATION else sorted(ok)
                    wrong.append(f"{where}: {what} gave {status}, expected {wanted}")  # noqa: B023

            expect(await call(client, settings, service, method, path, missing, None, None), {401}, "no token")
            for role in Role:
                if role in allowed:
                    continue
                status = await call(client, settings, service, method, path, missing,
                                    token(service, role, home, objects["session_id"]), body_of(spec, objects))
                refused = {401, 403} if role is Role.DISPLAY else {403}
                expect(status, refused, f"role {role}")
            for role in allowed:
                # Its own jurisdiction, an object that does not exist (or an empty body): past authorisation.
                status = await call(client, settings, service, method, path, unknown,
                                    token(service, role, home, objects["session_id"]), {} if spec is not None else None)
                expect(status, PAST_AUTHORISATION, f"role {role} at {home}")
                body = body_of(spec, objects)
                if kind == TOWNSHIP:
                    for outsider in (SIBLING, COUNTY):
                        status = await call(client, settings, service, method, path, missing,
                                            token(service, role, outsider, str(uuid4())), body)
                        expect(status, {403, 404}, f"role {role} from {outsider}")
                elif kind == COUNTY_WRITE and names_a_town_object(path, body):
                    status = await call(client, settings, service, method, path, missing,
                                        token(service, role, OTHER_COUNTY, None), body)
                    expect(status, {403, 404}, f"role {role} from {OTHER_COUNTY}")
                elif kind == READ and names_a_town_object(path, None) and role is not Role.DISPLAY:
                    status = await call(client, settings, service, method, path, missing, token(service, role, SIBLING, None), None)
                    expect(status, {403, 404}, f"role {role} from {SIBLING}")
    assert not wrong, "\n".join(wrong)
