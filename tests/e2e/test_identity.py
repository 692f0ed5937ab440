"""Who is who, end to end (the five services as processes): accounts and sign-in, lock-out,
machine accounts, tokens the services refuse, and a deputy's voting credential from check-in
to the next session."""

from __future__ import annotations

import base64
import json
import os
import time
from uuid import UUID, uuid4

import asyncpg
import httpx
import jwt
import pytest

from shared import tokens
from shared.auth import Role, mint
from tests.e2e.town import Town
from tests.support import assert_problem, eventually

TOWN = "taihu.shenfen"  # a township of its own
PASSWORD = "湖畔-稻香-2024-春"
GET_WITH_AUTH = {"intake": "/proposals", "ballot": f"/slates/{uuid4()}", "supervision": "/projects",
                 "scoring": "/projects", "identity": "/me"}


@pytest.fixture
async def http(settings, cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def identity(settings, path: str) -> str:
    return settings.url("identity") + path


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


ADMIN = bearer(mint("county-admin", Role.ADMIN, "taihu"))


async def add_account(http, settings, username: str, grants: list[dict], **extra) -> dict:
    body = {"username": username, "display_name": f"测试{username}", "grants": grants, **extra}
    response = await http.post(identity(settings, "/accounts"), json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def sign_in(http, settings, username: str, password: str, **extra) -> httpx.Response:
    return await http.post(identity(settings, "/auth/sign-in"), json={"username": username, "password": password, **extra})


async def audit(settings, action: str, entity_id: str) -> list[dict]:
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "identity"})
    try:
        return [dict(r) for r in await conn.fetch("SELECT actor, action, after FROM audit WHERE action = $1 AND entity_id = $2",
                                                  action, entity_id)]
    finally:
        await conn.close()


# ---------------------------------------------------------------- accounts and sign-in


async def test_a_person_signs_in_refreshes_switches_role_and_signs_out(settings, http):
    await add_account(http, settings, "shenfen-clerk", [{"role": "office", "jurisdiction": TOWN},
                                                        {"role": "presiding", "jurisdiction": TOWN}], password=PASSWORD)
    assert_problem(await sign_in(http, settings, "shenfen-clerk", "not-the-password"), 401, "sign-in-failed")
    assert_problem(await sign_in(http, settings, "nobody-here", PASSWORD), 401, "sign-in-failed")  # the same answer

    signed = await sign_in(http, settings, "shenfen-clerk", PASSWORD)
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["grant"]["role"] == "office" and len(body["grants"]) == 2
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.access_token_seconds == body["expires_in"]  # minutes, not days
    assert (claims["sub"], claims["role"], claims["jurisdiction"]) == ("shenfen-clerk", "office", TOWN)
    # The identity service's token is good at the other services (they verify with the public key).
    assert (await http.get(settings.url("intake") + "/proposals", headers=bearer(body["access_token"]))).status_code == 200

    # A refresh token is good once; using it again ends the whole sign-in.
    renewed = await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": body["refresh_token"]})
    assert renewed.status_code == 200 and renewed.json()["refresh_token"] != body["refresh_token"]
    again = await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": body["refresh_token"]})
    assert_problem(again, 401, "refresh-token-reused")
    assert_problem(await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": renewed.json()["refresh_token"]}),
                   401, "refresh-token-invalid")

    # One person, several roles: a refresh switches to another of them.
    fresh = (await sign_in(http, settings, "shenfen-clerk", PASSWORD)).json()
    chair = await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": fresh["refresh_token"], "role": "presiding"})
    assert chair.status_code == 200 and jwt.decode(chair.json()["access_token"], options={"verify_signature": False})["role"] == "presiding"
    stranger = await http.post(identity(settings, "/auth/refresh"),
                               json={"refresh_token": chair.json()["refresh_token"], "role": "county"})
    assert_problem(stranger, 403, "no-such-grant")
    out = await http.post(identity(settings, "/auth/sign-out"), json={"refresh_token": chair.json()["refresh_token"]})
    assert out.status_code == 204
    assert_problem(await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": chair.json()["refresh_token"]}),
                   401, "refresh-token-invalid")

    # Every sign-in and every failure is audited.
    assert len(await audit(settings, "sign-in", "shenfen-clerk")) == 2
    assert len(await audit(settings, "sign-in-failed", "shenfen-clerk")) == 1
    assert len(await audit(settings, "sign-in-failed", "nobody-here")) == 1


async def test_repeated_failures_lock_the_account_until_the_time_passes_or_a_reset(settings, http):
    await add_account(http, settings, "shenfen-lock", [{"role": "teller", "jurisdiction": TOWN}], password=PASSWORD)
    for _ in range(settings.signin_max_failures):
        assert_problem(await sign_in(http, settings, "shenfen-lock", "wrong-password-1"), 401, "sign-in-failed")
    locked = await sign_in(http, settings, "shenfen-lock", PASSWORD)  # even the right password
    assert_problem(locked, 429, "account-locked")
    assert 0 < int(locked.headers["retry-after"]) <= settings.signin_lockout_seconds + 1
    # An administrator of the county resets the password: unlocked, the old one gone.
    reset = await http.post(identity(settings, "/accounts/shenfen-lock/password"), json={}, headers=ADMIN)
    assert reset.status_code == 200 and reset.json()["password"]
    assert_problem(await sign_in(http, settings, "shenfen-lock", PASSWORD), 401, "sign-in-failed")
    assert (await sign_in(http, settings, "shenfen-lock", reset.json()["password"])).status_code == 200
    # Disabled: no sign-in at all.
    assert (await http.post(identity(settings, "/accounts/shenfen-lock/disable"), headers=ADMIN)).json()["disabled"] is True
    assert_problem(await sign_in(http, settings, "shenfen-lock", reset.json()["password"]), 403, "account-disabled")
    assert [a["action"] for a in await audit(settings, "disable", "shenfen-lock")] == ["disable"]


async def test_accounts_are_managed_by_the_county_and_a_generated_password_is_shown_once(settings, http):
    made = await add_account(http, settings, "shenfen-unit", [{"role": "lead_unit", "jurisdiction": TOWN, "unit": "镇交通办"}])
    assert made["password"] and made["grants"][0]["unit"] == "镇交通办"
    listed = (await http.get(identity(settings, "/accounts"), headers=ADMIN)).json()
    assert "password" not in json.dumps(listed) and "hash" not in json.dumps(listed)
    token = (await sign_in(http, settings, "shenfen-unit", made["password"])).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["unit"] == "镇交通办"  # it reports on its own projects only
    # Not an administrator, a township's office, or another county's administrator.
    for who in (mint("x", Role.OFFICE, TOWN), mint("x", Role.ADMIN, "wangjiang")):
        response = await http.get(identity(settings, "/accounts/shenfen-unit"), headers=bearer(who))
        assert response.status_code in (403, 404), response.text
    # A single sign-on account has no password to sign in with.
    await add_account(http, settings, "shenfen-sso", [{"role": "office", "jurisdiction": TOWN}], oidc_subject="https://sso|li")
    assert_problem(await sign_in(http, settings, "shenfen-sso", "any-password-at-all"), 401, "sign-in-failed")
    assert_problem(await http.post(identity(settings, "/accounts"), headers=ADMIN, json={
        "username": "shenfen-boss", "display_name": "x", "grants": [{"role": "admin", "jurisdiction": TOWN}]}), 422, "county-role")


async def test_a_machine_account_gets_a_client_credentials_token(settings, http):
    machine = await add_account(http, settings, "county-kaohe-system", [{"role": "county", "jurisdiction": "taihu"}],
                                kind="machine")
    secret = machine["client_secret"]
    basic = {"authorization": "Basic " + base64.b64encode(f"county-kaohe-system:{secret}".encode()).decode(),
             "content-type": "application/x-www-form-urlencoded"}
    got = await http.post(identity(settings, "/oauth/token"), content="grant_type=client_credentials", headers=basic)
    assert got.status_code == 200, got.text
    assert "refresh_token" not in got.json()
    view = await http.get(settings.url("scoring") + "/assessments", params={"year": 2024}, headers=bearer(got.json()["access_token"]))
    assert view.status_code == 200, view.text
    form = f"grant_type=client_credentials&client_id=county-kaohe-system&client_secret={secret}x"
    assert_problem(await http.post(identity(settings, "/oauth/token"), content=form,
                                   headers={"content-type": "application/x-www-form-urlencoded"}), 401, "sign-in-failed")
    assert_problem(await http.post(identity(settings, "/oauth/token"), content="grant_type=password", headers=basic),
                   400, "unsupported-grant-type")
    # A machine does not sign in as a person.
    assert_problem(await sign_in(http, settings, "county-kaohe-system", secret), 401, "sign-in-failed")


async def test_the_online_proposal_form_gets_its_resident_token_from_identity_not_from_the_front(settings, http):
    """The pages' public form submits as the front's machine account (role resident), through
    client credentials: a production front signs nothing; without the account it says the form is not open."""
    from web.auth import resident_token
    from web.client import ServiceRefused, Services

    town = "taihu.webform"
    machine = await add_account(http, settings, "web-online-form", [{"role": "resident", "jurisdiction": town}], kind="machine")
    front = Services(settings.model_copy(update={"web_client_id": "web-online-form",
                                                 "web_client_secret": machine["client_secret"]}), http)
    token = await resident_token(front, town)
    assert await resident_token(front, town) == token  # kept until shortly before it expires
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["role"], claims["jurisdiction"]) == ("web-online-form", "resident", town)
    body = {"year": 2025, "title": "村口路灯不亮", "channel": "online", "location": "村口"}
    created = await http.post(settings.url("intake") + "/proposals", json=body, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert_problem(await http.post(settings.url("intake") + "/proposals", json={**body, "channel": "grid"}, headers=bearer(token)),
                   422, "channel-not-allowed")
    with pytest.raises(ServiceRefused) as refused:  # a township the account does not serve
        await resident_token(front, "taihu.fuyu")
    assert (refused.value.status, refused.value.code) == (403, "no-such-grant")
    production = Services(settings.model_copy(update={"env": "production"}), http)
    with pytest.raises(ServiceRefused) as closed:
        await resident_token(production, town)
    assert (closed.value.status, closed.value.code) == (503, "online-form-unavailable")


# ---------------------------------------------------------------- tokens every service refuses


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    base = tokens.token_claims("x", "office", TOWN, 900, "piaojue-identity")
    key = tokens.signing_key(tokens.generate())  # not this run's key
    return {
        "token-expired": mint("x", Role.OFFICE, TOWN, ttl_s=-120),
        "token-claims-invalid": tokens.sign({k: v for k, v in base.items() if k != "exp"},
                                            tokens.signing_key(os.environ["PIAOJUE_AUTH_SIGNING_KEY"])),
        "token-algorithm-refused": jwt.encode(base | {"iat": now}, "piaojue-local-development-secret", algorithm="HS256"),
        "token-signature-invalid": tokens.sign(base, key),
        "token-malformed": "not.a.token",
    }


@pytest.mark.parametrize("code", ["token-expired", "token-claims-invalid", "token-algorithm-refused",
                                  "token-signature-invalid", "token-malformed"])
async def test_every_service_refuses_a_bad_token_with_a_stable_code(settings, http, code):
    token = _bad_tokens()[code]
    for service, path in GET_WITH_AUTH.items():
        assert_problem(await http.get(settings.url(service) + path, headers=bearer(token)), 401, code)


async def test_garbage_or_oversized_tokens_and_credentials_get_401_or_422_never_500(settings, http):
    for junk in ("Bearer", "Bearer " + "A" * 20_000, "Bearer \u00e9\u00e9".encode("latin-1"), "Basic abc", "Bearer a.b.c.d", "Bearer ..",
                 "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6WzFdfQ.e30.AA"):
        for service, path in GET_WITH_AUTH.items():
            response = await http.get(settings.url(service) + path, headers={"authorization": junk})
            assert response.status_code == 401, (service, junk[:30], response.text)  # never 500
    refresh = await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": "rt_" + "x" * 60})
    assert_problem(refresh, 401, "refresh-token-invalid")
    assert (await http.post(identity(settings, "/auth/refresh"), json={"refresh_token": "x" * 5000})).status_code == 422
    for body in ("\x00" * 50, "grant_type=client_credentials&" + "a=b&" * 2000, "%ff%fe=%00"):
        response = await http.post(identity(settings, "/oauth/token"), content=body,
                                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code in (400, 401), response.text
    basic = await http.post(identity(settings, "/oauth/token"), content="grant_type=client_credentials",
                            headers={"authorization": "Basic !!!not-base64", "content-type": "application/x-www-form-urlencoded"})
    assert_problem(basic, 401, "invalid-client")
    checkin = {"code": "ZZZZ-ZZZZ", "deputy_id": "D1", "personal_code": "123456", "device_key": "k" * 43}
    assert_problem(await http.post(identity(settings, "/checkin"), json=checkin), 404, "unknown-checkin-code")
    for bad in ({"device_key": "short"}, {"personal_code": "12ab"}, {"code": "x" * 500}, {"deputy_id": "D 1"}):
        assert (await http.post(identity(settings, "/checkin"), json=checkin | bad)).status_code == 422


async def test_nul_or_lone_surrogates_in_a_name_or_password_are_422(settings, http):
    for username, password in (("bad\x00name", PASSWORD), ("shenfen-clerk", "pass\x00word-long"), ("shenfen\ud800", PASSWORD),
                               ("shenfen-clerk", "pass\udfffword-long")):
        raw = json.dumps({"username": username, "password": password})  # ensure_ascii: a lone surrogate travels as \\udXXX
        response = await http.post(identity(settings, "/auth/sign-in"), content=raw, headers={"content-type": "application/json"})
        assert_problem(response, 422, "invalid-characters")
    created = await http.post(identity(settings, "/accounts"), headers={**ADMIN, "content-type": "application/json"},
                              content=json.dumps({"username": "x", "display_name": "坏\ud800", "grants": [
                                  {"role": "office", "jurisdiction": TOWN}]}))
    assert_problem(created, 422, "invalid-characters")
    assert (await sign_in(http, settings, "a" * 65, PASSWORD)).status_code == 422
    assert (await sign_in(http, settings, "shenfen-clerk", "p" * 257)).status_code == 422


# ---------------------------------------------------------------- a deputy's voting credential


def device() -> str:
    return base64.urlsafe_b64encode(uuid4().bytes + uuid4().bytes).decode().rstrip("=")  # what a phone makes and keeps


async def test_a_deputys_voting_credential_from_check_in_to_the_next_session(settings, http):
    town = Town(settings, http, TOWN)
    deputies = ["S1", "S2", "S3", "S4", "S5"]
    slate = await town.slate(["村道", "路灯", "公厕"], seats=1)
    roster = [{"deputy_id": d, "name": f"代表{d}"} for d in deputies]
    await town.ok("PUT", "ballot", "/terms/3/roster", json={"quota": 5, "deputies": roster})
    session = await town.ok("POST", "ballot", "/sessions", json={"name": "神墩乡人代会", "year": 2024, "term": 3})
    office = bearer(town.token("office", Role.OFFICE))

    async def code_of(session_id):
        response = await http.get(identity(settings, f"/sessions/{session_id}/checkin-code"), headers=office)
        return response.json()["code"] if response.status_code == 200 else None

    # The office shows (and prints) the session's check-in code: the only thing it gets.
    code = await eventually(lambda: code_of(session["id"]), what="identity to learn of the session")

    def check_in(deputy, key, personal="246810", code=code):
        return http.post(identity(settings, "/checkin"),
                         json={"code": code, "deputy_id": deputy, "personal_code": personal, "device_key": key})

    phone = {d: device() for d in deputies}
    assert_problem(await check_in("S1", phone["S1"]), 409, "not-present")  # before the office confirms presence
    await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": deputies})

    async def checked_in(deputy, key, code=code):
        response = await check_in(deputy, key, code=code)
        return response.json() if response.status_code == 201 else None

    s1 = await eventually(lambda: checked_in("S1", phone["S1"]), what="identity to learn of the roll call")
    claims = jwt.decode(s1["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["jurisdiction"], claims["term"], claims["session"]) == ("S1", TOWN, 3, session["id"])
    assert claims["aud"] == tokens.SESSION_AUDIENCE and claims["cid"] == s1["credential_id"]
    # The same phone again (a reload) gets the same credential; another device is refused.
    assert (await check_in("S1", phone["S1"])).json()["credential_id"] == s1["credential_id"]
    assert_problem(await check_in("S1", device()), 409, "credential-bound-to-another-device")
    assert_problem(await check_in("S1", phone["S1"], personal="999999"), 401, "wrong-personal-code")
    # The credential votes in this session's ballot service and nowhere else.
    assert_problem(await http.get(settings.url("intake") + "/proposals", headers=bearer(s1["access_token"])), 401,
                   "token-claims-invalid")

    # A seat tablet the office binds for S4 (recorded), taken up with S4's own personal code.
    tablet = device()
    bound = await http.post(identity(settings, f"/sessions/{session['id']}/tablets"), headers=office,
                            json={"deputy_id": "S4", "device_key": tablet})
    assert bound.status_code == 201 and bound.json()["bound_by"] == "office"
    assert_problem(await check_in("S4", phone["S4"]), 409, "credential-bound-to-another-device")
    s4 = (await check_in("S4", tablet, personal="135790")).json()
    creds = {(c["deputy_id"], c["status"]): c for c in
             (await http.get(identity(settings, f"/sessions/{session['id']}/credentials"), headers=office)).json()}
    assert creds[("S4", "active")]["tablet"] and creds[("S4", "active")]["bound_by"] == "office"
    assert "access_token" not in json.dumps(list(creds.values()), default=str)  # the office never holds a usable credential

    s2, s3, s5 = [(await check_in(d, phone[d])).json() for d in ("S2", "S3", "S5")]
    await town.tellers(session)  # 监票人: their shares open the sealed round
    vote = await town.vote(session, slate_id=slate["id"])
    await town.open(vote)
    candidates = [c["id"] for c in vote["subjects"]]

    def cast(credential, marks=None):
        return http.post(settings.url("ballot") + f"/votes/{vote['id']}/ballots", headers=bearer(credential),
                         json={"marks": marks or {candidates[0]: "for"}})

    assert (await cast(s1["access_token"])).status_code == 201
    assert (await cast(s4["access_token"])).status_code == 201

    # Revoked by the office (a lost phone): refused from then on; the deputy checks in again on a new phone.
    revoked = await http.post(identity(settings, f"/sessions/{session['id']}/credentials/S2/revoke"), headers=office,
                              json={"reason": "手机遗失"})
    assert revoked.status_code == 200, revoked.text

    async def known_revoked():  # the ballot service learns it from identity's event
        conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ballot"})
        try:
            return await conn.fetchval("SELECT true FROM revoked_credentials WHERE credential_id = $1", UUID(s2["credential_id"]))
        finally:
            await conn.close()

    await eventually(known_revoked, what="ballot to learn of the revocation")
    assert_problem(await cast(s2["access_token"]), 403, "credential-revoked")
    new_phone = device()
    s2_again = (await check_in("S2", new_phone)).json()
    assert s2_again["credential_id"] != s2["credential_id"]
    assert (await cast(s2_again["access_token"])).status_code == 201

    # Leaving (离场) ends it: no ballot, and no new credential while away.
    await town.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"absent": ["S3"]})
    assert_problem(await cast(s3["access_token"]), 403, "deputy-left")

    async def left():
        response = await check_in("S3", phone["S3"])
        return response.status_code == 409 and response.json()["code"] == "not-present"

    await eventually(left, what="identity to end S3's credential")

    # A county-scope token whose subject is a township deputy's id cannot cast that deputy's ballot.
    for fake in (mint("S5", Role.DEPUTY, "taihu", session=session["id"], term=3),
                 mint("S5", Role.DEPUTY, "taihu", term=3),
                 mint("S5", Role.DEPUTY, "taihu.xiangling", session=session["id"], term=3)):
        response = await cast(fake)
        assert response.status_code in (403, 404), response.text
    assert (await cast(s5["access_token"])).status_code == 201  # S5's own credential still casts once
    await town.close(vote)
    await town.ok("POST", "ballot", f"/sessions/{session['id']}/close", Role.PRESIDING, "chair")  # 闭会

    # Useless in the next session: the old credential, and a check-in with the old code.
    nxt = await town.ok("POST", "ballot", "/sessions", json={"name": "神墩乡人代会第二次会议", "year": 2025, "term": 3})
    await town.ok("POST", "ballot", f"/sessions/{nxt['id']}/roll-call", json={"present": deputies})
    await town.tellers(nxt)
    vote2 = await town.vote(nxt, slate_id=(await town.slate(["桥", "渠", "站"], seats=1))["id"])
    await town.open(vote2)
    response = await http.post(settings.url("ballot") + f"/votes/{vote2['id']}/ballots", headers=bearer(s1["access_token"]),
                               json={"marks": {vote2["subjects"][0]["id"]: "for"}})
    assert_problem(response, 403, "credential-for-another-session")
    new_code = await eventually(lambda: code_of(nxt["id"]), what="the next session's code")
    assert new_code != code
    s1_next = await eventually(lambda: checked_in("S1", phone["S1"], new_code), what="S1 checks in to the next session")
    assert s1_next["session_id"] == nxt["id"] and s1_next["credential_id"] != s1["credential_id"]

    # Every check-in, refusal and revocation is audited.
    assert await audit(settings, "revoke", s2["credential_id"])
