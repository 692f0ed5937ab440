"""The tellers' page (监票人/计票人): their sessions and votes; paper ballots entered one by one
or by totals, with the ballots issued beside those collected (发出/收回); their key, and their
share of a sealed round's key presented at the close.

A teller's key pair is made on the teller's own device (``piaojue ballot teller-key FILE``):
the page registers only its public half. At the close the teller gives the page either the key
file (or its text), with which the page opens the sealed share in memory for this one request
and presents it (the key is neither stored nor logged), or the share already opened on the
teller's own device (``piaojue ballot present-share … --print-only``). The ballot service checks
every share against its commitment; the counting, the check of issued against collected and the
void of a round that collected more than it issued are its rules, shown here in its words."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, UploadFile

from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import ServiceRefused, Services
from web.session import Visitor
from web.ui import render

router = APIRouter(prefix="/tellers")
TELLER = signed_in(Role.TELLER)
KEY_MAX = 4096  # a key file is a few hundred bytes
LABELS = {"for": "赞成", "against": "反对", "abstain": "弃权",
          "satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


class Calls:
    """This page's calls to the ballot service."""

    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token, self.me = who.token, who.sub

    async def my_sessions(self) -> list[dict[str, Any]]:
        """The sessions that name the caller among their tellers, with their votes."""
        mine = []
        for brief in await self.services.call("GET", "ballot", "/sessions", self.token):
            session = await self.services.call("GET", "ballot", f"/sessions/{brief['id']}", self.token)
            if self.me in session.get("tellers", []):
                mine.append({**brief, "threshold": session.get("threshold"), "tellers": session["tellers"]})
        return mine

    async def vote(self, vote_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "ballot", f"/votes/{vote_id}", self.token)

    async def paper(self, vote_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "ballot", f"/votes/{vote_id}/ballot-paper", self.token)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self.services.call("GET", "ballot", f"/sessions/{session_id}", self.token)

    async def register_key(self, public_key: str, suite: str, key: str) -> dict[str, Any]:
        return await self.services.call("PUT", "ballot", "/tellers/me/key", self.token,
                                        {"public_key": public_key, "suite": suite}, key=key)

    async def enter_ballot(self, vote_id: UUID, marks: dict[str, str], key: str) -> dict[str, Any]:
        return await self.services.call("POST", "ballot", f"/votes/{vote_id}/paper-ballots", self.token, {"marks": marks}, key=key)

    async def enter_totals(self, vote_id: UUID, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self.services.call("PUT", "ballot", f"/votes/{vote_id}/paper-totals", self.token, body, key=key)

    async def my_share(self, vote_id: UUID) -> dict[str, Any]:
        return await self.services.call("GET", "ballot", f"/votes/{vote_id}/shares/mine", self.token)

    async def present(self, vote_id: UUID, share: str, key: str) -> dict[str, Any]:
        response = await self.services.response("POST", "ballot", f"/votes/{vote_id}/shares", self.token, {"share": share}, key=key)
        if response.status_code >= 400:
            from web.client import refused

            raise refused(response)
        return response.json()


async def _text(form: FormData, file_field: str, text_field: str) -> str:
    """What the teller gave: an uploaded file's text, else the pasted text."""
    upload = form.get(file_field)
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(KEY_MAX + 1)
        return raw.decode("utf-8", errors="replace") if len(raw) <= KEY_MAX else ""
    return str(form.get(text_field) or "").strip()[:KEY_MAX]


def _key_file(text: str) -> dict[str, str] | None:
    """A key file of ``piaojue ballot teller-key``, or None."""
    try:
        key = json.loads(text)
    except ValueError:
        return None
    if isinstance(key, dict) and all(isinstance(key.get(k), str) for k in ("suite", "public_key")):
        return key
    return None


@router.get("")
async def home(request: Request, who: Visitor = Depends(TELLER)):
    sessions = await Calls(request, who).my_sessions()
    return render(request, "tellers.html", {"sessions": sessions, "key": str(uuid4())})


@router.post("/key")
async def register_key(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(TELLER)):
    """登记公钥: the public half of the teller's key (the file's or pasted); nothing else is kept."""
    text = await _text(form, "key_file", "public_key")
    key = _key_file(text)
    public_key, suite = (key["public_key"], key["suite"]) if key else (text, str(form.get("suite") or "x25519-hkdf-sha256-aes128gcm"))
    if not public_key:
        return render(request, "tellers.html", {"sessions": [], "key": str(uuid4()), "error": "请选择密钥文件或粘贴公钥。"}, status=422)
    answer = await Calls(request, who).register_key(public_key, suite, str(form.get("key") or uuid4()))
    return render(request, "tellers.html", {"sessions": await Calls(request, who).my_sessions(), "key": str(uuid4()),
                                            "registered": answer})


async def _vote_page(request: Request, who: Visitor, vote_id: UUID, status: int = 200, **extra: Any):
    calls = Calls(request, who)
    vote = await calls.vote(vote_id)
    session = await calls.session(str(vote["session_id"]))
    paper = await calls.paper(vote_id) if vote["status"] == "open" and vote["mode"] == "paper" else None
    share = None
    if vote["status"] == "awaiting_shares":
        try:
            share = await calls.my_share(vote_id)
        except ServiceRefused as exc:
            share = {"refused": exc.message}
    return render(request, "tellers_vote.html", {"vote": vote, "session": session, "paper": paper, "share": share,
                                                 "labels": LABELS, "key": str(uuid4()), **extra}, status=status)


@router.get("/votes/{vote_id}")
async def vote(vote_id: UUID, request: Request, presented: int = 0, needed: int = 0, who: Visitor = Depends(TELLER)):
    return await _vote_page(request, who, vote_id, presented=presented, needed=needed)


async def _refused_here(request: Request, who: Visitor, vote_id: UUID, exc: ServiceRefused):
    """The ballot service's refusal, in its words, on the teller's page (the form stays at hand)."""
    return await _vote_page(request, who, vote_id, status=exc.status if exc.status < 500 else 502,
                            error=exc.message, detail=exc.detail)


@router.post("/votes/{vote_id}/ballot")
async def enter_ballot(vote_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                       who: Visitor = Depends(TELLER)):
    """逐张录入: one collected paper ballot; an over-marked one is recorded invalid by the service."""
    marks = {k[2:]: str(v) for k, v in form.items() if k.startswith("m.") and len(k) < 80 and str(v)}
    try:
        entered = await Calls(request, who).enter_ballot(vote_id, marks, str(form.get("key") or uuid4()))
    except ServiceRefused as exc:
        return await _refused_here(request, who, vote_id, exc)
    return await _vote_page(request, who, vote_id, one=entered)


@router.post("/votes/{vote_id}/totals")
async def enter_totals(vote_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                       who: Visitor = Depends(TELLER)):
    """按总数录入: ballots collected and invalid, and each candidate's for/against/abstain."""

    def number(name: str) -> int | None:
        raw = str(form.get(name) or "0").strip()
        return int(raw) if raw.isdigit() and len(raw) < 7 else None

    paper = await Calls(request, who).paper(vote_id)
    counts = {c["id"]: {m: number(f"{m}.{c['id']}") for m in ("for", "against", "abstain")} for c in paper["candidates"]}
    collected, invalid = number("collected"), number("invalid")
    if collected is None or invalid is None or any(n is None for c in counts.values() for n in c.values()):
        return await _vote_page(request, who, vote_id, status=422, error="请填写非负整数。")
    try:
        totals = await Calls(request, who).enter_totals(vote_id, {"collected": collected, "invalid": invalid, "counts": counts},
                                                        str(form.get("key") or uuid4()))
    except ServiceRefused as exc:
        return await _refused_here(request, who, vote_id, exc)
    return await _vote_page(request, who, vote_id, totals=totals)


@router.post("/votes/{vote_id}/share")
async def present_share(vote_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                        who: Visitor = Depends(TELLER)):
    """出示密钥份额: opened here with the teller's key file for this request only, or already
    opened on the teller's own device; the ballot service checks it against its commitment."""
    from piaojue.teller import open_share

    calls = Calls(request, who)
    given = await _text(form, "key_file", "key_text")
    key = _key_file(given)
    if key is not None:
        try:
            share = open_share(key, await calls.my_share(vote_id))["share"]
        except (KeyError, ValueError, TypeError):
            return await _vote_page(request, who, vote_id, status=422, error="密钥文件无法开启您的份额：请确认是登记过的那个文件。")
        except ServiceRefused:
            raise
        except Exception:  # noqa: BLE001 (a wrong key fails inside the cipher with its own exception)
            return await _vote_page(request, who, vote_id, status=422, error="密钥文件无法开启您的份额：请确认是登记过的那个文件。")
    elif given:
        share = given  # opened on the teller's own device
    else:
        return await _vote_page(request, who, vote_id, status=422, error="请选择密钥文件，或粘贴已开启的份额。")
    try:
        progress = await calls.present(vote_id, share, str(form.get("key") or uuid4()))
    except ServiceRefused as exc:
        return await _refused_here(request, who, vote_id, exc)
    return RedirectResponse(f"/tellers/votes/{vote_id}?presented={progress.get('presented', '')}&needed={progress.get('needed', '')}",
                            status_code=303)
