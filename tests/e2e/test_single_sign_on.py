"""Single sign-on (OIDC) instead of passwords, against a locally started provider
(oidc-provider-mock), and the per-address sign-in limit, on an identity process of their own."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from oidc_provider_mock import run_server_in_thread

from piaojue import processes
from shared.auth import Role, mint
from tests.support import assert_problem

TOWN = "taihu.danyang"


@pytest.fixture(scope="module")
def provider():
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def sso_identity(settings, provider, tmp_path_factory):
    """Identity configured with the provider (plain HTTP allowed for this local test only) and a
    low per-address limit of failed sign-ins."""
    own = settings.model_copy(update={"base_port": settings.base_port + 50})
    env = {**os.environ, "PIAOJUE_BASE_PORT": str(own.base_port), "PIAOJUE_OIDC_ISSUER": provider,
           "PIAOJUE_OIDC_CLIENT_ID": "piaojue-county", "PIAOJUE_OIDC_CLIENT_SECRET": "local-test-secret",
           "AUTHLIB_INSECURE_TRANSPORT": "1", "PIAOJUE_SIGNIN_ADDRESS_FAILURES": "3"}
    procs = processes.start(own, ["identity"], env=env, log_dir=tmp_path_factory.mktemp("sso-identity"))
    try:
        processes.wait_ready(own, procs, broker=True)
        yield own.url("identity")
    finally:
        processes.stop(procs)


async def sso(client: httpx.AsyncClient, identity: str, subject: str) -> httpx.Response:
    """The browser's way: to the provider, the person chosen there, back to identity's callback."""
    start = await client.get(identity + "/auth/oidc/start")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    chosen = await client.post(authorize, data={"sub": subject})
    assert chosen.status_code == 302, chosen.text
    back = chosen.headers["location"]
    assert back.startswith(identity + "/auth/oidc/callback") and parse_qs(urlsplit(back).query)["code"]
    return await client.get(back)


async def test_a_linked_account_signs_in_through_the_countys_provider(sso_identity, provider):
    admin = {"authorization": f"Bearer {mint('county-admin', Role.ADMIN, 'taihu')}"}
    async with httpx.AsyncClient(timeout=30) as client:
        made = await client.post(sso_identity + "/accounts", headers=admin, json={
            "username": "danyang-zhang", "display_name": "张主任", "oidc_subject": f"{provider}|zhang@danyang",
            "grants": [{"role": "office", "jurisdiction": TOWN}]})
        assert made.status_code == 201 and "password" not in made.json()  # single sign-on only
        signed = await sso(client, sso_identity, "zhang@danyang")
        assert signed.status_code == 200, signed.text
        claims = jwt.decode(signed.json()["access_token"], options={"verify_signature": False})
        assert (claims["sub"], claims["role"], claims["jurisdiction"]) == ("danyang-zhang", "office", TOWN)
        assert signed.json()["refresh_token"]
        assert_problem(await sso(client, sso_identity, "stranger@danyang"), 403, "sso-no-account")
        # A callback that did not start here (or is replayed) is refused.
        assert_problem(await client.get(sso_identity + "/auth/oidc/callback", params={"code": "x", "state": "forged"}),
                       400, "sso-state-invalid")


async def test_failed_sign_ins_from_one_address_are_capped(sso_identity):
    async with httpx.AsyncClient(timeout=30) as client:
        codes = []
        for i in range(4):
            response = await client.post(sso_identity + "/auth/sign-in", json={"username": f"guess-{i}", "password": "guess-guess"})
            codes.append(response.json()["code"])
        assert codes[-1] == "too-many-attempts" and set(codes) <= {"sign-in-failed", "too-many-attempts"}
        assert int(response.headers["retry-after"]) > 0
