"""A township of its own for an end-to-end test: its tokens, its roster, its slates."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from piaojue.teller import new_key, open_share, registration
from shared.auth import Role, mint
from tests.support import eventually

TELLERS = ("T1", "T2", "T3")  # 监票人 of every test session: any 2 of them open a sealed round


def token(sub: str, role: Role, jurisdiction: str, **claims) -> str:
    """The one place the end-to-end tests get a token, from the development issuer with the claims
    identity would give: a deputy's voting credential names its session and term, a lead unit its unit."""
    if role == Role.LEAD_UNIT:
        claims.setdefault("unit", sub)
    return mint(sub, role, jurisdiction, **claims)


class Town:
    def __init__(self, settings, client: httpx.AsyncClient, jurisdiction: str) -> None:
        self.settings, self.client, self.jurisdiction = settings, client, jurisdiction
        self.teller_keys: dict[str, dict[str, str]] = {}
        self.session_id: str | None = None  # the last session this town set up: its deputies' credentials are for it
        self.term: int | None = None

    def token(self, sub: str, role: Role, **claims) -> str:
        """A deputy's token is the voting credential for the town's last session."""
        if role == Role.DEPUTY and self.session_id and "session" not in claims:
            claims.update(session=self.session_id, term=self.term)
        return token(sub, role, self.jurisdiction, **claims)

    async def request(self, method: str, service: str, path: str, role: Role = Role.OFFICE, sub: str = "office",
                      **kw) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(sub, role)}", **kw.pop("headers", {})}
        response = await self.client.request(method, self.settings.url(service) + path, headers=headers, **kw)
        if (method, service, path, response.status_code) == ("POST", "ballot", "/sessions", 201):
            self.session_id, self.term = response.json()["id"], response.json()["term"]
        return response

    async def ok(self, method: str, service: str, path: str, role: Role = Role.OFFICE, sub: str = "office",
                 **kw) -> Any:
        response = await self.request(method, service, path, role, sub, **kw)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def slate(self, titles: list[str], seats: int, year: int = 2024) -> dict[str, Any]:
        """Proposals screened into a published slate that has reached the ballot service."""
        ids = []
        for title in titles:
            proposal = await self.ok("POST", "intake", "/proposals", json={"year": year, "title": title, "channel": "grid"})
            for stage in ("preliminary_review", "approved_by_party_committee", "candidate"):
                await self.ok("POST", "intake", f"/proposals/{proposal['id']}/screening", json={"to": stage})
            ids.append(proposal["id"])
        slate = await self.ok("POST", "intake", "/slates", json={"title": f"{self.jurisdiction} 候选清单 {uuid4().hex[:4]}",
                                                                  "year": year, "seats": seats, "proposal_ids": ids})

        async def arrived():
            return (await self.request("GET", "ballot", f"/slates/{slate['id']}")).status_code == 200

        await eventually(arrived, what="the slate to reach the ballot service")
        return slate

    async def session(self, deputies: list[str], term: int = 1, year: int = 2024, threshold: int = 2) -> dict[str, Any]:
        """A session with ``deputies`` seated and all present, and its tellers (k = ``threshold``)."""
        roster = [{"deputy_id": d, "name": f"代表{d}"} for d in deputies]
        await self.ok("PUT", "ballot", f"/terms/{term}/roster", json={"quota": len(deputies), "deputies": roster})
        session = await self.ok("POST", "ballot", "/sessions", json={"name": f"{self.jurisdiction} 人代会", "year": year,
                                                                       "term": term})
        await self.ok("POST", "ballot", f"/sessions/{session['id']}/roll-call", json={"present": deputies})
        await self.tellers(session, threshold=threshold)
        return session

    async def tellers(self, session: dict, tellers: tuple[str, ...] = TELLERS, threshold: int = 2) -> dict[str, Any]:
        """Each teller makes a key and registers its public half; the session names them, k of n."""
        for teller in tellers:
            if teller not in self.teller_keys:
                self.teller_keys[teller] = new_key()
                await self.ok("PUT", "ballot", "/tellers/me/key", Role.TELLER, teller, json=registration(self.teller_keys[teller]))
        return await self.ok("PUT", "ballot", f"/sessions/{session['id']}/tellers", Role.PRESIDING, "chair",
                             json={"tellers": list(tellers), "threshold": threshold})

    async def present_share(self, vote: dict, teller: str) -> httpx.Response:
        """What ``piaojue ballot present-share`` does for one teller."""
        mine = await self.ok("GET", "ballot", f"/votes/{vote['id']}/shares/mine", Role.TELLER, teller)
        return await self.request("POST", "ballot", f"/votes/{vote['id']}/shares", Role.TELLER, teller,
                                  json=open_share(self.teller_keys[teller], mine), headers={"idempotency-key": str(uuid4())})

    async def vote(self, session: dict, **body) -> dict[str, Any]:
        return await self.ok("POST", "ballot", f"/sessions/{session['id']}/votes", json=body)

    async def cast(self, vote: dict, deputy: str, marks: dict[str, str]) -> httpx.Response:
        return await self.request("POST", "ballot", f"/votes/{vote['id']}/ballots", Role.DEPUTY, deputy,
                                  json={"marks": marks}, headers={"idempotency-key": str(uuid4())})

    async def cast_all(self, vote: dict, ballots: dict[str, dict[str, str]]) -> dict[str, str]:
        """Cast each deputy's ballot; returns each deputy's receipt code."""
        receipts = {}
        for deputy, marks in ballots.items():
            response = await self.cast(vote, deputy, marks)
            assert response.status_code == 201, response.text
            receipts[deputy] = response.json()["receipt"]
        return receipts

    async def open(self, vote: dict) -> dict[str, Any]:
        return await self.ok("POST", "ballot", f"/votes/{vote['id']}/open", Role.PRESIDING, "chair")

    async def close(self, vote: dict, shares: int = 2) -> dict[str, Any]:
        """Close the round; a sealed one is then opened by the first ``shares`` tellers' shares."""
        closed = await self.ok("POST", "ballot", f"/votes/{vote['id']}/close", Role.PRESIDING, "chair")
        if closed["status"] != "awaiting_shares":
            return closed
        for teller in TELLERS[:shares]:
            presented = await self.present_share(vote, teller)
            assert presented.status_code in (200, 202), presented.text
        return presented.json()

    async def certify(self, vote: dict) -> httpx.Response:
        return await self.request("POST", "ballot", f"/votes/{vote['id']}/certify", Role.PRESIDING, "chair")


def ballots_from(columns: dict[str, list[str]], deputies: list[str], candidates: list[str]) -> dict[str, dict[str, str]]:
    """Ballots from a table: for each candidate, who marks 'for'; everyone else marks 'against'."""
    return {d: {c: ("for" if d in columns.get(c, []) else "against") for c in candidates} for d in deputies}
