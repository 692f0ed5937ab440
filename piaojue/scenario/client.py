"""The scenario's way to the services: a thin HTTP client, one token per actor, and the year's
shared state that one stage leaves for the next."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx

from shared.auth import Role, mint
from shared.settings import Settings


class ScenarioError(RuntimeError):
    pass


class AlreadyPlayed(ScenarioError):
    pass


@dataclass
class Api:
    """One base URL per service, a token per actor, problems raised as errors."""

    settings: Settings
    client: httpx.AsyncClient
    town: str
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, sub: str, role: Role, jurisdiction: str | None = None, **claims: Any) -> str:
        """The one place the scenario gets its tokens: from the development issuer, with the claims
        identity would give (a lead unit names its unit; a deputy's voting credential its session and term)."""
        jurisdiction = jurisdiction or self.town
        if role == Role.LEAD_UNIT:
            claims.setdefault("unit", sub)
        key = f"{sub}/{role}/{jurisdiction}/{sorted(claims.items())}"
        if key not in self.tokens:
            self.tokens[key] = mint(sub, role, jurisdiction, **claims)
        return self.tokens[key]

    async def request(self, method: str, service: str, path: str, who: str, json: Any = None,
                      params: dict | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {who}"}
        if method in ("POST", "PUT"):  # safe to retry: the service answers a repeat with the first answer
            headers["idempotency-key"] = str(uuid4())
        return await self.client.request(method, self.settings.url(service) + path, json=json, params=params,
                                         headers=headers)

    async def call(self, method: str, service: str, path: str, who: str, json: Any = None,
                   params: dict | None = None) -> Any:
        response = await self.request(method, service, path, who, json, params)
        if response.status_code >= 400:
            raise ScenarioError(f"{method} {service}{path}: {response.status_code} {response.text}")
        return response.json()

    async def upload(self, service: str, path: str, who: str, content: bytes, media_type: str) -> Any:
        response = await self.client.post(self.settings.url(service) + path, content=content,
                                          headers={"authorization": f"Bearer {who}", "content-type": media_type,
                                                   "idempotency-key": str(uuid4())})
        if response.status_code >= 400:
            raise ScenarioError(f"POST {service}{path}: {response.status_code} {response.text}")
        return response.json()

    async def ok(self, service: str, path: str, who: str) -> bool:
        return (await self.request("GET", service, path, who)).status_code == 200


async def wait_for(what: str, probe: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    """Poll until ``probe`` returns something truthy: events take their time through the broker."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


Progress = Callable[[str, Any], None]


@dataclass
class Year:
    """One township's year as the stages play it: each stage reads what earlier ones left here,
    adds its own, and puts what it reports into ``outcome`` (the ``demo --json`` document)."""

    api: Api
    progress: Progress
    outcome: dict[str, Any] = field(default_factory=dict)
    slate: dict[str, Any] = field(default_factory=dict)
    vote: dict[str, Any] = field(default_factory=dict)
    certified: dict[str, Any] = field(default_factory=dict)
    present: list[str] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    supervised: list[dict[str, Any]] = field(default_factory=list)
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    receiver: str | None = None  # the county's webhook receiver, if one runs (piaojue county-receiver)
    receiver_secret: str | None = None
    rng: random.Random = field(default_factory=random.Random)  # the deputies' draws, seeded by the ballot stage
    teller_keys: dict[str, dict[str, str]] = field(default_factory=dict)  # each teller's own key (on their device)

    def token(self, sub: str, role: Role, jurisdiction: str | None = None, **claims: Any) -> str:
        return self.api.token(sub, role, jurisdiction, **claims)

    async def tellers(self, session: dict[str, Any]) -> None:
        await set_tellers(self.api, self.chair, session, self.teller_keys)

    async def close(self, vote: dict[str, Any]) -> dict[str, Any]:
        return await close_vote(self.api, self.chair, vote, self.teller_keys)

    @property
    def office(self) -> str:  # 人大办
        return self.token("fuyu-office", Role.OFFICE)

    @property
    def chair(self) -> str:  # 主席团: presides and certifies
        return self.token("fuyu-presidium", Role.PRESIDING)

    @property
    def county_jurisdiction(self) -> str:  # the township's county: taihu for taihu.fuyu
        return self.api.town.rsplit(".", 1)[0]

    @property
    def county(self) -> str:  # 县考核
        return self.token(f"{self.county_jurisdiction}-kaohe", Role.COUNTY, self.county_jurisdiction)


async def set_tellers(api: Api, chair: str, session: dict[str, Any], keys: dict[str, dict[str, str]]) -> None:
    """The session's tellers (监票人): each makes a key on their own device (kept in ``keys``) and
    registers its public half; the presidium names them, any 2 of 3 to open a sealed round."""
    from piaojue.scenario.fuyu import TELLERS, THRESHOLD
    from piaojue.teller import new_key, registration

    for teller in TELLERS:
        if teller not in keys:
            keys[teller] = new_key()
            await api.call("PUT", "ballot", "/tellers/me/key", api.token(teller, Role.TELLER), registration(keys[teller]))
    await api.call("PUT", "ballot", f"/sessions/{session['id']}/tellers", chair, {"tellers": list(TELLERS), "threshold": THRESHOLD})


async def close_vote(api: Api, chair: str, vote: dict[str, Any], keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Close the round; the first k tellers open their shares on their devices and present them."""
    from piaojue.scenario.fuyu import TELLERS, THRESHOLD
    from piaojue.teller import open_share

    closed = await api.call("POST", "ballot", f"/votes/{vote['id']}/close", chair)
    for teller in TELLERS[:THRESHOLD] if closed["status"] == "awaiting_shares" else ():
        who = api.token(teller, Role.TELLER)
        mine = await api.call("GET", "ballot", f"/votes/{vote['id']}/shares/mine", who)
        closed = await api.call("POST", "ballot", f"/votes/{vote['id']}/shares", who, open_share(keys[teller], mine))
    return closed
