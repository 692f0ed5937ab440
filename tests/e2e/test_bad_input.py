"""Bad input at the API: a clear 4xx with a stable code (RFC 9457), and nothing already recorded changes."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from shared.auth import Role, mint
from tests.e2e.town import Town, token
from tests.support import assert_problem, eventually, row_counts

TOWN = "taihu.xinchang"  # a township of its own, away from the other tests' data


@pytest.fixture
async def api(settings, cluster):
    async with httpx.AsyncClient(timeout=10) as client:
        def call(method, service, path, role=Role.OFFICE, sub="xinchang-office", claims=None, **kw):
            bearer = token(sub, role, TOWN, **(claims or {}))
            return client.request(method, settings.url(service) + path, headers={"authorization": f"Bearer {bearer}",
                                                                                 **kw.pop("headers", {})}, **kw)
        yield call



async def test_a_proposal_without_a_title_is_refused_and_nothing_is_recorded(api):
    before = (await api("GET", "intake", "/proposals")).json()
    response = await api("POST", "intake", "/proposals", json={"year": 2024, "channel": "grid"})
    assert_problem(response, 422, "invalid-request")
    assert "title" in response.json()["detail"]
    assert (await api("GET", "intake", "/proposals")).json() == before


async def test_a_retried_proposal_with_the_same_idempotency_key_is_recorded_once(api):
    key = {"idempotency-key": str(uuid4())}
    body = {"year": 2024, "title": "村道修缮", "channel": "grid"}
    first = await api("POST", "intake", "/proposals", json=body, headers=key)
    again = await api("POST", "intake", "/proposals", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    titles = [p["id"] for p in (await api("GET", "intake", "/proposals")).json()]
    assert titles.count(first.json()["id"]) == 1
    assert_problem(await api("POST", "intake", "/proposals", json={**body, "title": "别的"}, headers=key),
                   422, "idempotency-key-reused")


async def test_a_request_without_a_token_is_refused(settings, cluster):
    async with httpx.AsyncClient() as client:
        assert_problem(await client.get(settings.url("intake") + "/proposals"), 401, "unauthenticated")


async def _slate(api, seats: int = 2, candidates: int = 3) -> dict:
    ids = []
    for i in range(candidates):
        created = await api("POST", "intake", "/proposals", json={"year": 2024, "title": f"新仓项目{i}", "channel": "grid"})
        ids.append(created.json()["id"])
        for stage in ("preliminary_review", "approved_by_party_committee", "candidate"):
            assert (await api("POST", "intake", f"/proposals/{ids[-1]}/screening", json={"to": stage})).status_code == 200
    slate = await api("POST", "intake", "/slates", json={"title": "新仓镇候选清单", "year": 2024, "seats": seats,
                                                          "proposal_ids": ids})
    assert slate.status_code == 201, slate.text
    slate = slate.json()
    await eventually(lambda: _status_is(api("GET", "ballot", f"/slates/{slate['id']}"), 200), what="slate in ballot")
    return slate


async def _status_is(request, status: int) -> bool:
    return (await request).status_code == status


async def test_an_equal_slate_is_refused_unless_allowed(api):
    ids = []
    for i in range(2):
        ids.append((await api("POST", "intake", "/proposals", json={"year": 2024, "title": f"等额{i}",
                                                                    "channel": "grid"})).json()["id"])
    assert_problem(await api("POST", "intake", "/slates", json={"title": "等额", "year": 2024, "seats": 2,
                                                                 "proposal_ids": ids}), 422, "slate-not-competitive")


@pytest.fixture
async def town(settings, cluster):
    async with httpx.AsyncClient(timeout=10) as client:
        yield Town(settings, client, TOWN)


async def test_vote_rules_refuse_bad_ballots_and_keep_what_was_cast(api, town):
    slate = await _slate(api)
    candidates = [c["candidate_id"] for c in slate["candidates"]]
    roster = [{"deputy_id": f"X{i}", "name": f"代表{i}"} for i in range(6)]
    assert (await api("PUT", "ballot", "/terms/18/roster", json={"quota": 7, "deputies": roster})).status_code == 200
    session = (await api("POST", "ballot", "/sessions", json={"name": "新仓镇人代会", "year": 2024, "term": 18})).json()
    await town.tellers(session)
    vote = (await api("POST", "ballot", f"/sessions/{session['id']}/votes", json={"slate_id": slate["id"]})).json()

    # A vote before quorum: 3 of 6 present is below 2/3.
    await api("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": ["X0", "X1", "X2"]})
    assert_problem(await api("POST", "ballot", f"/votes/{vote['id']}/open"), 409, "quorum-not-met")
    assert (await api("GET", "ballot", f"/votes/{vote['id']}")).json()["status"] == "draft"
    credential = {"session": session["id"], "term": 18}  # a deputy votes with the session's credential
    cast_early = await api("POST", "ballot", f"/votes/{vote['id']}/ballots", role=Role.DEPUTY, sub="X0", claims=credential,
                           json={"marks": {candidates[0]: "for"}})
    assert_problem(cast_early, 409, "vote-not-open")

    # Exactly 2/3 (4 of 6) is a quorum. X4 answers the roll call but leaves before the vote opens.
    await api("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": ["X3", "X4"]})
    left = await api("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["X4"]})
    assert (left.json()["present"], left.json()["quorum"]) == (4, True)
    opened = await api("POST", "ballot", f"/votes/{vote['id']}/open")
    assert (opened.status_code, opened.json()["issued"]) == (200, 4)

    def cast(deputy: str, marks: dict):
        return api("POST", "ballot", f"/votes/{vote['id']}/ballots", role=Role.DEPUTY, sub=deputy, claims=credential,
                   json={"marks": marks})

    assert (await cast("X0", {candidates[0]: "for", candidates[1]: "against"})).status_code == 201
    # More "for" marks than seats (3 > 2), a second ballot, a stranger's candidate, an absent deputy.
    assert_problem(await cast("X1", dict.fromkeys(candidates, "for")), 422, "too-many-for-marks")
    assert_problem(await cast("X0", {candidates[1]: "for"}), 409, "already-voted")
    assert_problem(await cast("X2", {str(uuid4()): "for"}), 422, "unknown-candidate")
    assert_problem(await cast("X5", {candidates[0]: "for"}), 403, "not-issued")
    assert_problem(await cast("X4", {candidates[0]: "for"}), 403, "not-issued")  # left before the vote
    assert_problem(await api("POST", "ballot", f"/votes/{vote['id']}/ballots", json={"marks": {}}), 403, "forbidden-role")
    assert (await api("GET", "ballot", f"/votes/{vote['id']}")).json()["cast"] == 1

    # The refused deputy may still vote properly; after close nobody may.
    assert (await cast("X1", {candidates[2]: "for"})).status_code == 201
    result = await town.close(vote)
    assert (result["issued"], result["collected"], result["valid"], result["invalid"]) == (4, 2, 2, 0)
    assert {c["candidate_id"]: c["for_votes"] for c in result["candidates"]} == {
        candidates[0]: 1, candidates[1]: 0, candidates[2]: 1}
    assert_problem(await cast("X2", {candidates[0]: "for"}), 409, "vote-not-open")
    # Too few "for" votes to pass (more than half of 6 seated needed): certification needs a further round.
    assert_problem(await api("POST", "ballot", f"/votes/{vote['id']}/certify", role=Role.PRESIDING),
                   409, "further-round-required")
    assert (await api("GET", "ballot", f"/votes/{vote['id']}")).json()["status"] == "closed"


# ---------------------------------------------------------------- hostile input, one request each

PROPOSAL = {"year": 2024, "title": "村道修缮", "channel": "grid"}
ROSTER = {"quota": 2, "deputies": [{"deputy_id": "X1", "name": "代表一"}]}
SOME = uuid4()  # an id: these requests are refused before any lookup
MB = 1024 * 1024


def _raw(body: str) -> dict:
    """A body sent as written: JSON that a client library would not produce (1e999999, "\\ud800")."""
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


def _claims(sub: str = "xinchang-office", jurisdiction: str = TOWN) -> dict:
    """A correctly signed token whose claims carry what a real one never should."""
    return {"claims": {"sub": sub, "jurisdiction": jurisdiction}}


HOSTILE = {  # what: (service, method, path, request, status, code)
    "2**31 as a year in a query": ("intake", "GET", "/proposals", {"params": {"year": 2**31}}, 422, "invalid-request"),
    "2**40 as a year in a query": ("supervision", "GET", "/projects", {"params": {"year": 2**40}}, 422, "invalid-request"),
    "2**31 as a term in a path": ("ballot", "PUT", "/terms/2147483648/roster", {"json": ROSTER}, 422, "invalid-request"),
    "2**40 as a year in a path": ("scoring", "GET", f"/methods/{2**40}", {}, 422, "invalid-request"),
    "2**31 as a quota": ("ballot", "PUT", "/terms/1/roster", {"json": {**ROSTER, "quota": 2**31}}, 422, "invalid-request"),
    "2**40 beneficiaries": ("intake", "POST", "/proposals", {"json": {**PROPOSAL, "beneficiaries": 2**40}}, 422, "invalid-request"),
    "2**31 as a rating": ("supervision", "POST", f"/projects/{SOME}/inspections",
                          {"json": {"kind": "mid_term", "inspected_on": "2024-06-01", "rating": 2**31}}, 422, "invalid-request"),
    "NUL in a title": ("intake", "POST", "/proposals", {"json": {**PROPOSAL, "title": "村道\u0000修缮"}}, 422, "invalid-characters"),
    "a lone surrogate in a title": ("intake", "POST", "/proposals",
                                    _raw('{"year": 2024, "title": "\\ud800", "channel": "grid"}'), 422, "invalid-characters"),
    "NUL in a deputy's name": ("ballot", "PUT", "/terms/1/roster",
                               {"json": {**ROSTER, "deputies": [{"deputy_id": "X1", "name": "代表\u0000"}]}}, 422, "invalid-characters"),
    "a lone surrogate in a reason": ("ballot", "POST", f"/votes/{SOME}/withdrawals",
                                     _raw(f'{{"candidate_id": "{SOME}", "reason": "\\udfff"}}'), 422, "invalid-characters"),
    "NUL in a path": ("scoring", "GET", "/assessments/taihu.x%00y/2024", {}, 422, "invalid-request"),
    "a lone surrogate in a path": ("scoring", "GET", "/assessments/%ED%A0%80/2024", {}, 422, "invalid-request"),
    "NUL in a token's sub": ("intake", "POST", "/proposals", {"json": PROPOSAL, **_claims(sub="x\u0000")}, 401, "token-claims-invalid"),
    "NUL in a token's jurisdiction": ("intake", "GET", "/proposals", _claims(jurisdiction="taihu\u0000"), 401, "token-claims-invalid"),
    "a lone surrogate in a token's sub": ("ballot", "POST", "/sessions",
                                          {"json": {"name": "x", "year": 2024, "term": 1}, **_claims(sub="\ud800")},
                                          401, "token-claims-invalid"),
    "a 20 MB proposal text": ("intake", "POST", "/proposals", {"json": {**PROPOSAL, "content": "字" * (20 * MB // 3)}},
                              413, "request-too-large"),
    "a 20 MB deputy name": ("ballot", "PUT", "/terms/1/roster",
                            {"json": {**ROSTER, "deputies": [{"deputy_id": "X1", "name": "名" * (20 * MB // 3)}]}},
                            413, "request-too-large"),
    "a 1,000,000-item list": ("ballot", "POST", f"/sessions/{SOME}/roll-call", {"json": {"present": ["X1"] * 1_000_000}},
                              413, "request-too-large"),
    "a 1,000,000-deputy roster": ("ballot", "PUT", "/terms/1/roster",
                                  {"json": {"quota": 1, "deputies": [{"deputy_id": "X1", "name": "x"}] * 1_000_000}},
                                  413, "request-too-large"),
    "1e999999 as a budget": ("intake", "POST", "/proposals",
                             _raw('{"year": 2024, "title": "x", "channel": "grid", "estimated_budget": 1e999999}'),
                             422, "invalid-request"),
    "1e999999 as funds spent": ("supervision", "POST", f"/projects/{SOME}/progress",
                                _raw('{"percent_done": 10, "funds_spent": 1e999999}'), 422, "invalid-request"),
    "0 for a boolean": ("intake", "POST", "/proposals", {"json": {**PROPOSAL, "funding_secured": 0}}, 422, "invalid-request"),
    "0 for a seat": ("ballot", "PUT", "/terms/1/roster", {"json": {**ROSTER, "deputies": [{"deputy_id": "X1", "name": "x",
                                                                                           "seated": 0}]}}, 422, "invalid-request"),
    "a number as text": ("intake", "POST", "/slates", {"json": {"title": "x", "year": 2024, "seats": "7",
                                                                "proposal_ids": [str(SOME)]}}, 422, "invalid-request"),
    "a misspelt field": ("intake", "POST", "/proposals", {"json": {**PROPOSAL, "titel": "x"}}, 422, "invalid-request"),
    "a 10 kB Idempotency-Key": ("intake", "POST", "/proposals", {"json": PROPOSAL, "headers": {"idempotency-key": "k" * 10_000}},
                                422, "invalid-idempotency-key"),
    "a correlation id that is no UUID": ("intake", "POST", "/proposals", {"json": PROPOSAL, "headers": {"x-correlation-id": "x"}},
                                         422, "invalid-correlation-id"),
    "a body that is not UTF-8": ("intake", "POST", "/proposals", {"content": b'{"title": "\xff"}',
                                                                  "headers": {"content-type": "application/json"}},
                                 400, "unreadable-body"),
}


@pytest.mark.parametrize("what", HOSTILE)
async def test_hostile_input_is_a_4xx_problem_that_stores_nothing_and_keeps_the_connection(settings, cluster, what):
    service, method, path, request, status, code = HOSTILE[what]
    request = dict(request)
    claims = request.pop("claims", {"sub": "xinchang-office", "jurisdiction": TOWN})
    token = mint(claims["sub"], Role.OFFICE, claims["jurisdiction"], secret=settings.auth_secret)
    headers = {"authorization": f"Bearer {token}", **request.pop("headers", {})}
    before = await row_counts(settings, service)
    async with httpx.AsyncClient(base_url=settings.url(service), timeout=60, limits=httpx.Limits(max_connections=1)) as client:
        first = await client.get("/health/live")
        response = await client.request(method, path, headers=headers, **request)
        assert_problem(response, status, code)
        after = await client.get("/health/live")
        # The same pooled connection serves the next request: the refusal did not close it.
        assert after.status_code == 200 and _local_port(after) == _local_port(first) == _local_port(response)
    assert await row_counts(settings, service) == before


def _local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("socket").getsockname()[1]
