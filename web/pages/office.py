"""The township office (人大办): proposals with filters and paging, screening with reasons, the
slate with its competitive margin (差额), dispositions, the roster, sessions, roll call and the
set-up of votes. Every decision is the services': the pages send it and show their answer."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from services.intake.domain.screening import CHANNEL_LABELS, REJECTABLE, SCREENING, STAGE_LABELS, Stage
from shared.auth import Role
from web.auth import checked_form, signed_in
from web.client import ServiceRefused, Services
from web.pages import xlsx
from web.session import Visitor
from web.ui import pages, problem_page, render

router = APIRouter(prefix="/office")
OFFICE = signed_in(Role.OFFICE)
PAGE_SIZE = 20
# The process's own names (intake's domain), for the filters and the screening buttons.
STAGES = {str(k): v for k, v in STAGE_LABELS.items()}
CHANNELS = {str(k): v for k, v in CHANNEL_LABELS.items()}


class Calls:
    """This page's calls to intake and ballot."""

    def __init__(self, request: Request, who: Visitor) -> None:
        self.services: Services = request.app.state.services
        self.token = who.token

    def _(self, method: str, service: str, path: str, json: Any = None, params: dict | None = None, key: str | None = None):
        return self.services.call(method, service, path, self.token, json, params, key)

    async def proposals(self, year: int | None) -> list[dict[str, Any]]:
        return await self._("GET", "intake", "/proposals", params={"year": year})

    async def proposal(self, proposal_id: UUID) -> dict[str, Any]:
        return await self._("GET", "intake", f"/proposals/{proposal_id}")

    async def submit(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._("POST", "intake", "/proposals", body, key=key)

    async def screen(self, proposal_id: UUID, to: str, reason: str, key: str) -> dict[str, Any]:
        return await self._("POST", "intake", f"/proposals/{proposal_id}/screening", {"to": to, "reason": reason}, key=key)

    async def publish_slate(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._("POST", "intake", "/slates", body, key=key)

    async def send_slate(self, slate_id: UUID, override_reason: str, key: str) -> dict[str, Any]:
        """A slate under public notice (公示) goes to the ballot: after the notice, or before with a reason."""
        return await self._("POST", "intake", f"/slates/{slate_id}/send", {"override_reason": override_reason}, key=key)

    async def intake_slates(self) -> list[dict[str, Any]]:
        return await self._("GET", "intake", "/slates")

    async def slate(self, slate_id: UUID) -> dict[str, Any]:
        return await self._("GET", "intake", f"/slates/{slate_id}")

    async def slates(self) -> list[dict[str, Any]]:
        return await self._("GET", "ballot", "/slates")

    async def roster(self, term: int) -> dict[str, Any] | None:
        try:
            return await self._("GET", "ballot", f"/terms/{term}/roster")
        except ServiceRefused as exc:
            if exc.code == "roster-not-found":
                return None
            raise

    async def put_roster(self, term: int, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._("PUT", "ballot", f"/terms/{term}/roster", body, key=key)

    async def sessions(self) -> list[dict[str, Any]]:
        return await self._("GET", "ballot", "/sessions")

    async def session(self, session_id: UUID) -> dict[str, Any]:
        return await self._("GET", "ballot", f"/sessions/{session_id}")

    async def create_session(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._("POST", "ballot", "/sessions", body, key=key)

    async def deputies(self, session_id: UUID) -> list[dict[str, Any]]:
        return await self._("GET", "ballot", f"/sessions/{session_id}/deputies")

    async def roll_call(self, session_id: UUID, present: list[str], absent: list[str], key: str) -> dict[str, Any]:
        return await self._("POST", "ballot", f"/sessions/{session_id}/roll-call", {"present": present, "absent": absent}, key=key)

    async def checkin_code(self, session_id: UUID) -> dict[str, Any] | None:
        """The session's check-in code (签到码) for the hall and the sheets; None until identity knows the session."""
        try:
            return await self._("GET", "identity", f"/sessions/{session_id}/checkin-code")
        except ServiceRefused as exc:
            if exc.status == 404:
                return None
            raise

    async def credentials(self, session_id: UUID) -> list[dict[str, Any]]:
        """Who checked in, on what, and in what state: never a usable credential."""
        try:
            return await self._("GET", "identity", f"/sessions/{session_id}/credentials")
        except ServiceRefused as exc:
            if exc.status == 404:
                return []
            raise

    async def revoke(self, session_id: UUID, deputy_id: str, reason: str, key: str) -> dict[str, Any]:
        return await self._("POST", "identity", f"/sessions/{session_id}/credentials/{deputy_id}/revoke", {"reason": reason}, key=key)

    async def revoke_display(self, session_id: UUID, credential_id: UUID, reason: str, key: str) -> dict[str, Any]:
        return await self._("POST", "identity", f"/sessions/{session_id}/display/{credential_id}/revoke", {"reason": reason}, key=key)

    async def bind_tablet(self, session_id: UUID, deputy_id: str, device_key: str, key: str) -> dict[str, Any]:
        return await self._("POST", "identity", f"/sessions/{session_id}/tablets", {"deputy_id": deputy_id, "device_key": device_key},
                            key=key)

    async def reset_personal_code(self, term: int, deputy_id: str) -> None:
        await self._("DELETE", "identity", f"/terms/{term}/deputies/{deputy_id}/personal-code")

    async def create_vote(self, session_id: UUID, body: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._("POST", "ballot", f"/sessions/{session_id}/votes", body, key=key)


def _key(form: FormData) -> str:
    key = str(form.get("key") or "")
    return key if 0 < len(key) <= 64 else str(uuid4())


def _year(value: str) -> int | None:
    year = _int(value)
    return year if year and 2000 <= year <= 2100 else None


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------- proposals


def _filtered(proposals: list[dict[str, Any]], stage: str, channel: str, q: str) -> list[dict[str, Any]]:
    q = q.strip()
    return [p for p in proposals if (not stage or p["stage"] == stage) and (not channel or p["channel"] == channel)
            and (not q or q in p["title"] or q in (p.get("content") or "") or q in (p.get("location") or ""))]


@router.get("/proposals")
async def proposals(request: Request, year: str = "", stage: str = "", channel: str = "", q: str = "",
                    page: str = "1", who: Visitor = Depends(OFFICE)):
    year_ = _year(year)
    shown = _filtered(await Calls(request, who).proposals(year_), stage, channel, q[:100])
    paging = pages(len(shown), _int(page, 1) or 1, PAGE_SIZE)
    context = {"proposals": shown[paging["start"]:paging["end"]], "paging": paging, "stages": STAGES, "channels": CHANNELS,
               "f": {"year": year_ or "", "stage": stage, "channel": channel, "q": q[:100]}}
    template = "office_proposals_table.html" if request.headers.get("hx-request") else "office_proposals.html"
    return render(request, template, context)


@router.get("/proposals.xlsx")
async def export_proposals(request: Request, year: str = "", stage: str = "", channel: str = "", q: str = "",
                           who: Visitor = Depends(OFFICE)):
    year = _year(year)
    shown = _filtered(await Calls(request, who).proposals(year), stage, channel, q[:100])
    headers = ["年度", "标题", "来源渠道", "地点", "类别", "估算投资(元)", "受益人数", "阶段", "处置"]
    return xlsx.download(f"提案-{year or '全部'}.xlsx", "提案", headers,
                         [[p["year"], p["title"], CHANNELS.get(p["channel"], p["channel"]), p.get("location"), p.get("category"),
                           float(p["estimated_budget"]) if p.get("estimated_budget") is not None else None, p.get("beneficiaries"),
                           STAGES.get(p["stage"], p["stage"]), p.get("disposition") or ""] for p in shown])


@router.get("/proposals/new")
async def new_proposal(request: Request, who: Visitor = Depends(OFFICE)):
    return render(request, "office_proposal_new.html", {"channels": CHANNELS, "key": str(uuid4()), "v": {}})


@router.post("/proposals")
async def enter_proposal(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(OFFICE)):
    """录入: a clerk enters a proposal from a grid worker's notebook or a letter."""
    from web.pages.propose import proposal_body

    body, error = proposal_body(form, channel=str(form.get("channel", "")))
    if error:
        return render(request, "office_proposal_new.html", {"channels": CHANNELS, "key": _key(form), "v": dict(form), "error": error},
                      status=422)
    created = await Calls(request, who).submit(body, _key(form))
    return RedirectResponse(f"/office/proposals/{created['id']}", status_code=303)


@router.get("/proposals/{proposal_id}")
async def proposal(proposal_id: UUID, request: Request, who: Visitor = Depends(OFFICE)):
    p = await Calls(request, who).proposal(proposal_id)
    stage = Stage(p["stage"])
    return render(request, "office_proposal.html", {
        "p": p, "stages": STAGES, "key": str(uuid4()),
        "next": [s.value for s in SCREENING.get(stage, set())], "rejectable": stage in REJECTABLE})


@router.post("/proposals/{proposal_id}/screening")
async def screen(proposal_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                 who: Visitor = Depends(OFFICE)):
    to, reason = str(form.get("to", "")), str(form.get("reason", "")).strip()[:2000]
    await Calls(request, who).screen(proposal_id, to, reason, _key(form))
    return RedirectResponse(f"/office/proposals/{proposal_id}", status_code=303)


# ---------------------------------------------------------------- slates


@router.get("/slates")
async def slates(request: Request, who: Visitor = Depends(OFFICE)):
    return render(request, "office_slates.html", {"slates": await Calls(request, who).intake_slates()})


@router.get("/slates/new")
async def new_slate(request: Request, year: str = "", who: Visitor = Depends(OFFICE)):
    candidates = [p for p in await Calls(request, who).proposals(_year(year)) if p["stage"] == "candidate"]
    return render(request, "office_slate_new.html", {"candidates": candidates, "key": str(uuid4()), "chosen": set(), "v": {}})


@router.post("/slates")
async def publish_slate(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(OFFICE)):
    calls = Calls(request, who)
    ids = [str(i) for i in form.getlist("proposal")][:500]
    body = {"title": str(form.get("title", "")).strip()[:200], "year": _int(form.get("year"), 0),
            "seats": _int(form.get("seats"), 0), "proposal_ids": ids}
    if str(form.get("notice_days") or "").strip():
        body["notice_days"] = _int(form.get("notice_days"), 0)
    try:
        slate = await calls.publish_slate(body, _key(form))
    except ServiceRefused as exc:  # e.g. not competitive (差额): show the form again with the reason
        candidates = [p for p in await calls.proposals(None) if p["stage"] == "candidate"]
        return render(request, "office_slate_new.html", {"candidates": candidates, "key": str(uuid4()), "chosen": set(ids),
                                                         "v": body, "error": exc.message, "detail": exc.detail}, status=422)
    return RedirectResponse(f"/office/slates/{slate['id']}", status_code=303)


@router.get("/slates/{slate_id}")
async def slate(slate_id: UUID, request: Request, who: Visitor = Depends(OFFICE)):
    """The slate as printed (A4), and after the vote each candidate's outcome and disposition (分类处置)."""
    return render(request, "office_slate.html", {"slate": await Calls(request, who).slate(slate_id), "stages": STAGES,
                                                 "key": str(uuid4())})


@router.post("/slates/{slate_id}/send")
async def send_slate(slate_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                     who: Visitor = Depends(OFFICE)):
    await Calls(request, who).send_slate(slate_id, str(form.get("override_reason", "")).strip()[:2000], _key(form))
    return RedirectResponse(f"/office/slates/{slate_id}", status_code=303)


# ---------------------------------------------------------------- roster, sessions, roll call, votes


@router.get("/roster")
async def roster(request: Request, term: str = "1", who: Visitor = Depends(OFFICE)):
    term_ = min(max(_int(term, 1) or 1, 1), 99)
    return render(request, "office_roster.html", {"term": term_, "roster": await Calls(request, who).roster(term_), "key": str(uuid4())})


@router.post("/roster")
async def save_roster(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(OFFICE)):
    term, quota = _int(form.get("term"), 0), _int(form.get("quota"), 0)
    deputies, bad = [], []
    for n, line in enumerate(str(form.get("deputies", "")).splitlines()[:10_000], 1):
        parts = line.replace("\u3000", " ").split(None, 1)
        if not parts:
            continue
        if len(parts) < 2:
            bad.append(n)
            continue
        vacant = parts[1].endswith("（出缺）")
        deputies.append({"deputy_id": parts[0], "name": parts[1].removesuffix("（出缺）").strip(), "seated": not vacant})
    if bad or not deputies:
        return problem_page(request, "每行一位：代表编号 姓名", f"{bad}" if bad else "", status=422)
    await Calls(request, who).put_roster(term, {"quota": quota, "deputies": deputies}, _key(form))
    return RedirectResponse(f"/office/roster?term={term}", status_code=303)


@router.get("/sessions")
async def sessions(request: Request, who: Visitor = Depends(OFFICE)):
    return render(request, "office_sessions.html", {"sessions": await Calls(request, who).sessions(), "key": str(uuid4())})


@router.post("/sessions")
async def create_session(request: Request, form: Annotated[FormData, Depends(checked_form)], who: Visitor = Depends(OFFICE)):
    body = {"name": str(form.get("name", "")).strip()[:200], "year": _int(form.get("year"), 0), "term": _int(form.get("term"), 0)}
    session = await Calls(request, who).create_session(body, _key(form))
    return RedirectResponse(f"/office/sessions/{session['id']}", status_code=303)


@router.get("/sessions/{session_id}")
async def session(session_id: UUID, request: Request, tablet: str = "", reset: str = "", who: Visitor = Depends(OFFICE)):
    calls = Calls(request, who)
    s = await calls.session(session_id)
    listed = next((x for x in await calls.sessions() if x["id"] == str(session_id)), {"votes": []})
    credentials = await calls.credentials(session_id)
    return render(request, "office_session.html", {
        "s": s, "votes": listed["votes"], "deputies": await calls.deputies(session_id), "slates": await calls.slates(),
        "key": str(uuid4()), "checkin": await calls.checkin_code(session_id), "displays": [c for c in credentials if c["kind"] == "display"],
        "credentials": [c for c in credentials if c["kind"] != "display"],
        "base": str(request.base_url).rstrip("/"), "tablet": tablet[:64], "reset": reset[:64]})


@router.post("/sessions/{session_id}/credentials/{deputy_id}/revoke")
async def revoke(session_id: UUID, deputy_id: str, request: Request, form: Annotated[FormData, Depends(checked_form)],
                 who: Visitor = Depends(OFFICE)):
    """撤销: a lost phone, a device the deputy does not recognise; the deputy may check in again."""
    reason = str(form.get("reason", "")).strip()[:2000] or "人大办撤销"
    await Calls(request, who).revoke(session_id, deputy_id[:64], reason, _key(form))
    return RedirectResponse(f"/office/sessions/{session_id}#credentials", status_code=303)


@router.post("/sessions/{session_id}/display/{credential_id}/revoke")
async def revoke_display(session_id: UUID, credential_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                         who: Visitor = Depends(OFFICE)):
    """撤销大屏凭证: a screen left on, a hall PC taken away; its stream ends and it shows no more.
    Turning a screen on again (本机用作大屏) gives a new credential."""
    reason = str(form.get("reason", "")).strip()[:2000] or "人大办撤销大屏凭证"
    try:
        await Calls(request, who).revoke_display(session_id, credential_id, reason, _key(form))
    except ServiceRefused as exc:
        return problem_page(request, exc.message, exc.detail, status=exc.status if exc.status < 500 else 502)
    return RedirectResponse(f"/office/sessions/{session_id}#displays", status_code=303)


@router.post("/sessions/{session_id}/tablet")
async def bind_tablet(session_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                      who: Visitor = Depends(OFFICE)):
    """座席平板: on the seat's tablet, the office binds this browser (its own device key) to a
    deputy without a phone, recorded at identity; the office signs out and the deputy checks in
    here with their personal code. No other device can then check in for that deputy."""
    from web.auth import DEVICE, device_key, set_device

    deputy_id = str(form.get("deputy_id", "")).strip()[:64]
    device = device_key(request) or secrets.token_urlsafe(32)
    calls = Calls(request, who)
    try:
        await calls.bind_tablet(session_id, deputy_id, device, _key(form))
    except ServiceRefused as exc:
        return problem_page(request, exc.message, exc.detail, status=exc.status if exc.status < 500 else 502)
    response = RedirectResponse(f"/office/sessions/{session_id}?tablet={quote(deputy_id)}#credentials", status_code=303)
    if request.cookies.get(DEVICE) != device:
        set_device(response, device)
    return response


@router.post("/sessions/{session_id}/personal-code")
async def reset_personal_code(session_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                              who: Visitor = Depends(OFFICE)):
    """重置个人码: a deputy forgot it (or it locked); they set a new one at their next check-in."""
    calls = Calls(request, who)
    s = await calls.session(session_id)
    deputy_id = str(form.get("deputy_id", "")).strip()[:64]
    try:
        await calls.reset_personal_code(s["term"], deputy_id)
    except ServiceRefused as exc:
        return problem_page(request, exc.message, exc.detail, status=exc.status if exc.status < 500 else 502)
    return RedirectResponse(f"/office/sessions/{session_id}?reset={quote(deputy_id)}#credentials", status_code=303)


@router.get("/sessions/{session_id}/sheet")
async def check_in_sheet(session_id: UUID, request: Request, who: Visitor = Depends(OFFICE)):
    """签到表: printable (A4), a line per seated deputy to sign."""
    calls = Calls(request, who)
    return render(request, "office_sheet.html", {"s": await calls.session(session_id), "deputies": await calls.deputies(session_id),
                                                 "checkin": await calls.checkin_code(session_id), "base": str(request.base_url).rstrip("/")})


@router.post("/sessions/{session_id}/roll-call")
async def roll_call(session_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                    who: Visitor = Depends(OFFICE)):
    calls = Calls(request, who)
    present = {str(d) for d in form.getlist("present")}
    everyone = [d["deputy_id"] for d in await calls.deputies(session_id)]
    await calls.roll_call(session_id, [d for d in everyone if d in present], [d for d in everyone if d not in present], _key(form))
    return RedirectResponse(f"/office/sessions/{session_id}", status_code=303)


@router.post("/sessions/{session_id}/votes")
async def create_vote(session_id: UUID, request: Request, form: Annotated[FormData, Depends(checked_form)],
                      who: Visitor = Depends(OFFICE)):
    kind = "satisfaction" if form.get("kind") == "satisfaction" else "selection"
    rules = {"passing_basis": str(form.get("passing_basis") or "seated")}
    body: dict[str, Any] = {"kind": kind, "mode": "paper" if form.get("mode") == "paper" else "electronic", "rules": rules}
    if kind == "selection":
        body["slate_id"] = str(form.get("slate_id", ""))
    await Calls(request, who).create_vote(session_id, body, _key(form))
    return RedirectResponse(f"/office/sessions/{session_id}", status_code=303)
