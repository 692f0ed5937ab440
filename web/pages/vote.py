"""The deputy's voting page (phone first): the ballot, a check of it, the cast, the receipt.

A cast carries an Idempotency-Key made when the deputy checks the ballot and kept in the page:
a double click, or a retry after the connection dropped, sends the same key, and the ballot
service answers it with the first answer, so the page can say whether the ballot was recorded
(the receipt code itself is shown only once: the service does not keep it)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import ServiceDown, ServiceRefused, Services, refused
from web.session import Visitor
from web.ui import render as _render

router = APIRouter()
DEPUTY = signed_in(Role.DEPUTY)
LABELS = {"for": "赞成", "against": "反对", "abstain": "弃权",
          "satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


class Calls:
    """This page's calls to the ballot service."""

    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.request, self.who, self.token = request, who, who.token

    async def votes(self) -> list[dict[str, Any]]:
        """The votes of the deputy's session (a voting credential lists its own session only)."""
        sessions = await self.services.call("GET", "ballot", "/sessions", self.token)
        return [{**v, "session": s["name"]} for s in sessions for v in s["votes"]]

    async def certified_votes(self) -> list[dict[str, Any]]:
        """Votes whose receipts can be checked: certified (the deputy's receipt is their ballot's tracker)."""
        return [v for v in await self.votes() if v["status"] == "certified"]

    async def receipt(self, vote_id: str, tracker: str) -> dict[str, Any]:
        return await self.services.call("GET", "ballot", f"/votes/{vote_id}/receipts/{tracker}", self.token)

    async def paper(self, vote_id: UUID) -> dict[str, Any]:
        """The ballot of the current round: candidates, choices, the 'for' limit (the service's rule)."""
        return await self.services.call("GET", "ballot", f"/votes/{vote_id}/ballot-paper", self.token)

    async def cast(self, vote_id: UUID, session_id: str, marks: dict[str, str], key: str):
        # the deputy's page session is identity's voting credential for this session (签到 on this phone)
        return await self.services.response("POST", "ballot", f"/votes/{vote_id}/ballots", self.token, {"marks": marks}, key=key)


def render(request: Request, template: str, context: dict[str, Any], status: int = 200):
    """Every voting page is light: no htmx, only its own small script (phones on a slow connection)."""
    return _render(request, template, context, status=status, light=True)


def _marks(form: FormData, paper: dict[str, Any]) -> dict[str, str]:
    marks = {}
    for c in paper["candidates"]:
        value = form.get(f"m.{c['id']}")
        if isinstance(value, str) and value in paper["choices"]:
            marks[c["id"]] = value
    return marks


@router.get("/vote")
async def my_votes(request: Request, who: Visitor = Depends(DEPUTY)):
    votes = await Calls(request, who).votes()
    return render(request, "vote_list.html", {
        "votes": [v for v in votes if v["status"] == "open" and v["mode"] == "electronic"],
        "certified": [v for v in votes if v["status"] == "certified"]})


@router.get("/vote/receipt")
async def receipt_page(request: Request, who: Visitor = Depends(DEPUTY)):
    """核对回执: after certification, the deputy checks that their ballot was among those counted.
    A form (POST), so that the receipt code never sits in an address or the browser's history."""
    return render(request, "vote_receipt.html", {"votes": await Calls(request, who).certified_votes()})


@router.post("/vote/receipt")
async def check_receipt(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(DEPUTY)):
    import re

    calls = Calls(request, who)
    votes = await calls.certified_votes()
    vote_id, tracker = str(form.get("vote_id", "")), str(form.get("tracker", "")).strip().lower()
    context: dict[str, Any] = {"votes": votes, "vote_id": vote_id, "tracker": tracker[:64]}
    if not re.fullmatch(r"[0-9a-f]{64}", tracker) or vote_id not in {v["id"] for v in votes}:
        return render(request, "vote_receipt.html", {**context, "error": "请选择表决，并完整输入 64 位回执码。"}, status=422)
    try:
        context["found"] = await calls.receipt(vote_id, tracker)
    except ServiceRefused as exc:
        if exc.status != 404:
            raise
        context["missing"] = True
    return render(request, "vote_receipt.html", context)


@router.get("/vote/{vote_id}")
async def ballot(vote_id: UUID, request: Request, who: Visitor = Depends(DEPUTY)):
    return await _ballot_page(request, who, vote_id, {})


async def _ballot_page(request: Request, who: Visitor, vote_id: UUID, marks: dict[str, str], error: str = "",
                       status: int = 200):
    paper = await Calls(request, who).paper(vote_id)
    if paper["status"] != "open":
        return render(request, "vote_closed.html", {"paper": paper}, status=409)
    return render(request, "vote.html", {"paper": paper, "marks": marks, "labels": LABELS, "error": error}, status=status)


@router.post("/vote/{vote_id}/edit")
async def edit(vote_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
               who: Visitor = Depends(DEPUTY)):
    paper = await Calls(request, who).paper(vote_id)
    return await _ballot_page(request, who, vote_id, _marks(form, paper))


@router.post("/vote/{vote_id}/check")
async def check(vote_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                who: Visitor = Depends(DEPUTY)):
    """The deputy reads the ballot back before casting; the 'for' limit is checked here too
    (the page's script checks it as marks are made)."""
    paper = await Calls(request, who).paper(vote_id)
    marks = _marks(form, paper)
    if paper["max_for"] is not None and sum(m == "for" for m in marks.values()) > paper["max_for"]:
        return await _ballot_page(request, who, vote_id, marks, error="over", status=422)
    if paper["status"] != "open":
        return render(request, "vote_closed.html", {"paper": paper}, status=409)
    return render(request, "vote_confirm.html", {"paper": paper, "marks": marks, "labels": LABELS, "key": str(uuid4())})


@router.post("/vote/{vote_id}/cast")
async def cast(vote_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
               who: Visitor = Depends(DEPUTY)):
    calls = Calls(request, who)
    key = str(form.get("key", ""))
    try:
        UUID(key)
    except ValueError:
        key = str(uuid4())
    raw = {k[2:]: str(v) for k, v in form.items() if k.startswith("m.") and len(k) < 80}
    unsure = {"vote_id": vote_id, "marks": raw, "key": key}
    try:
        paper = await calls.paper(vote_id)
        response = await calls.cast(vote_id, str(paper["session_id"]), raw, key)
    except ServiceDown:
        return render(request, "vote_unsure.html", unsure, status=503)
    except ServiceRefused as exc:
        if exc.status == 503:  # the ballot service's database is away for a moment: same as a lost connection
            return render(request, "vote_unsure.html", unsure, status=503)
        raise
    if response.status_code == 503:  # not recorded, or not known to be: re-sent with the same key, counted once
        return render(request, "vote_unsure.html", unsure, status=503)
    if response.status_code == 201:
        body = response.json()
        replayed = response.headers.get("idempotent-replayed") == "true" or not body.get("receipt")
        return render(request, "vote_done.html", {"receipt": None if replayed else body["receipt"], "round": body["round"]})
    problem = refused(response)
    if problem.code == "already-voted":
        return render(request, "vote_done.html", {"already": True}, status=409)
    if problem.code == "too-many-for-marks":
        return await _ballot_page(request, who, vote_id, raw, error="over", status=422)
    raise problem
