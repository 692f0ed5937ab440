"""HTTP routes of check-in (签到): deputies' voting credentials for one session, made on their
own device, and the hall display's read-only credential.

The office shows the session's check-in code in the hall (and prints it on the sheets: the
only thing it prints). A deputy's device sends the code, the deputy id, the deputy's personal
code and a key the device made (kept on the device); once the office has confirmed the deputy
present (roll call, in the ballot service), the device gets the credential, bound to that
device. The office never holds a usable credential; a seat tablet it binds for a deputy without
a phone is recorded, and still needs the deputy's personal code."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.identity import domain, issuer, store
from services.identity.accounts import refused
from services.identity.domain import Outcome, Status
from services.identity.hashing import digest, hash_secret, verify_secret
from shared.auth import Principal, Role, require
from shared.contracts.identity import CredentialRevoked
from shared.db import UnitOfWork, unit_of_work
from shared.fields import Identifier, Reason, TermParam, text
from shared.http import Problem, command, problems

router = APIRouter(tags=["identity 签到"])
OFFICE = require(Role.OFFICE, own=True)

CheckinCode = text(20, pattern=r"^[A-Za-z0-9-]+$")
PersonalCode = text(12, min_length=4, pattern=r"^[0-9]+$")  # digits, typed on a phone
DeviceKey = text(256, min_length=32, pattern=r"^[A-Za-z0-9_-]+$")  # random, made and kept by the device


class CheckInIn(BaseModel):
    code: CheckinCode  # type: ignore[valid-type]
    deputy_id: Identifier
    personal_code: PersonalCode  # type: ignore[valid-type]
    device_key: DeviceKey


class TabletIn(BaseModel):
    deputy_id: Identifier
    device_key: DeviceKey


class RevokeIn(BaseModel):
    reason: Reason


@router.post("/checkin", status_code=201, responses=problems(401, 404, 409, 423))
async def check_in(body: CheckInIn, request: Request) -> dict[str, Any]:
    """签到 on the deputy's own device: the voting credential for this session, bound to the
    device. The same device again gets a fresh copy; another device is refused."""
    settings = request.app.state.settings
    device = digest(body.device_key)
    problem, answer = None, None
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        conn = uow.conn
        session = await store.session_by_code(conn, body.code)
        if session is None:
            raise Problem(404, "unknown-checkin-code", "签到码无效 Unknown check-in code",
                          "check the code shown in the hall; it is valid for its session only")
        juris, term, actor = session["jurisdiction"], session["term"], f"deputy:{body.deputy_id}"
        code_row = await store.personal_code(conn, juris, term, body.deputy_id)
        matches = None if code_row is None else await verify_secret(code_row["code_hash"], body.personal_code)
        try:
            domain.check_personal_code(code_row["failures"] if code_row else 0, matches, settings.signin_max_failures)
            live = await store.live_credential(conn, session["id"], body.deputy_id)
            outcome = domain.check_in(store.as_live(live), device, await store.present(conn, session["id"], body.deputy_id))
        except domain.Refused as exc:
            if exc.code == "wrong-personal-code":
                await conn.execute("UPDATE personal_codes SET failures = failures + 1 WHERE jurisdiction = $1 AND term = $2"
                                   " AND deputy_id = $3", juris, term, body.deputy_id)
            await uow.audit(juris, actor, "check-in-refused", "session", session["id"], after={"reason": exc.code})
            problem = refused(exc)
        else:
            if code_row is None:  # the deputy's first check-in of the term: this code becomes theirs
                await conn.execute("INSERT INTO personal_codes (jurisdiction, term, deputy_id, code_hash) VALUES ($1, $2, $3, $4)"
                                   " ON CONFLICT DO NOTHING", juris, term, body.deputy_id, await hash_secret(body.personal_code, code=True))
            elif code_row["failures"]:
                await conn.execute("UPDATE personal_codes SET failures = 0 WHERE jurisdiction = $1 AND term = $2"
                                   " AND deputy_id = $3", juris, term, body.deputy_id)
            seconds = settings.session_credential_seconds
            if outcome is Outcome.NEW:
                try:
                    async with conn.transaction():  # a concurrent check-in from another device took it first
                        live = await store.new_credential(conn, session["id"], body.deputy_id, device, Status.ACTIVE, seconds)
                except asyncpg.UniqueViolationError:
                    problem = refused(domain.Refused("credential-bound-to-another-device", "bound to another device", 409))
            elif outcome is Outcome.ACTIVATE:
                live = await store.activate(conn, live["id"], seconds)
            if problem is None:
                await uow.audit(juris, actor, "check-in", "session", session["id"],
                                after={"deputy_id": body.deputy_id, "credential": str(live["id"]), "outcome": outcome,
                                       "tablet": live["tablet"], "address": request.client.host if request.client else "-"})
                left = store.expires_in(live)
                answer = {"access_token": issuer.voting_credential(settings, body.deputy_id, juris, term, session["id"],
                                                                   live["id"], left),
                          "token_type": "Bearer", "expires_in": left, "credential_id": live["id"],
                          "session_id": session["id"], "session_name": session["name"], "jurisdiction": juris, "term": term}
    if problem:
        raise problem
    return answer


@router.get("/sessions/{session_id}/checkin-code", responses=problems(403, 404))
async def checkin_code(session_id: UUID, request: Request, who: Principal = Depends(OFFICE)) -> dict[str, Any]:
    """The code to show in the hall and print on the check-in sheets (the only thing printed)."""
    async with request.app.state.pool.acquire() as conn:
        session = await store.session_of_office(conn, session_id, who.jurisdiction)
    return {"session_id": session_id, "name": session["name"], "term": session["term"], "code": session["checkin_code"]}


@router.get("/sessions/{session_id}/credentials", responses=problems(403, 404))
async def credentials(session_id: UUID, request: Request, who: Principal = Depends(OFFICE)) -> list[dict[str, Any]]:
    """Who has checked in and on what (phone or seat tablet), and the hall displays turned on
    (``kind`` display, no deputy; ``bound_by`` the office account): never a usable credential."""
    async with request.app.state.pool.acquire() as conn:
        await store.session_of_office(conn, session_id, who.jurisdiction)
        rows = await conn.fetch("SELECT id, kind, deputy_id, status, tablet, bound_by, created_at, activated_at, ended_at, reason"
                                " FROM credentials WHERE session_id = $1 ORDER BY kind DESC, deputy_id, created_at", session_id)
    return [dict(r) for r in rows]


async def end_live_credential(uow: UnitOfWork, session, deputy_id: str, status: Status, reason: str, actor: str):
    ended = await store.end_credential(uow.conn, session["id"], deputy_id, status, reason)
    if ended is not None:
        await uow.emit(CredentialRevoked(credential_id=ended["id"], session_id=session["id"], term=session["term"],
                                         deputy_id=deputy_id, reason=status.value if status is Status.REVOKED else "left"),
                       session["jurisdiction"])
        await uow.audit(session["jurisdiction"], actor, "revoke" if status is Status.REVOKED else "end", "credential",
                        ended["id"], after={"deputy_id": deputy_id, "reason": reason})
    return ended


@router.post("/sessions/{session_id}/credentials/{deputy_id}/revoke", responses=problems(403, 404))
async def revoke(session_id: UUID, deputy_id: Identifier, body: RevokeIn, request: Request, who: Principal = Depends(OFFICE)):
    """The office revokes a deputy's credential (a lost phone, a device the deputy does not
    recognise): the ballot service refuses it from then on; the deputy may check in again."""

    async def act(uow: UnitOfWork):
        session = await store.session_of_office(uow.conn, session_id, who.jurisdiction)
        ended = await end_live_credential(uow, session, deputy_id, Status.REVOKED, body.reason, who.sub)
        if ended is None:
            raise Problem(404, "credential-not-found", "该代表无有效凭证 No live credential", f"{deputy_id} has none in this session")
        return {"credential_id": ended["id"], "deputy_id": deputy_id, "status": ended["status"]}

    return await command(request, who.sub, act)


@router.post("/sessions/{session_id}/tablets", status_code=201, responses=problems(403, 404, 409))
async def bind_tablet(session_id: UUID, body: TabletIn, request: Request, who: Principal = Depends(OFFICE)):
    """A seat tablet for a deputy without a phone, bound by the office (recorded): the deputy then
    checks in on it with their personal code; no other device can."""

    async def act(uow: UnitOfWork):
        session = await store.session_of_office(uow.conn, session_id, who.jurisdiction)
        if await store.live_credential(uow.conn, session_id, body.deputy_id):
            raise Problem(409, "credential-bound-to-another-device", "该代表已有设备 The deputy already has a device",
                          "revoke the credential first")
        row = await store.new_credential(uow.conn, session_id, body.deputy_id, digest(body.device_key), Status.RESERVED,
                                         0, bound_by=who.sub)
        await uow.audit(session["jurisdiction"], who.sub, "bind-tablet", "credential", row["id"],
                        after={"deputy_id": body.deputy_id, "session_id": str(session_id)})
        return {"credential_id": row["id"], "deputy_id": body.deputy_id, "status": row["status"], "bound_by": who.sub}

    return await command(request, who.sub, act, 201)


@router.delete("/terms/{term}/deputies/{deputy_id}/personal-code", status_code=204, responses=problems(403, 404))
async def reset_personal_code(term: TermParam, deputy_id: Identifier, request: Request, who: Principal = Depends(OFFICE)) -> None:
    """The office resets a deputy's personal code (forgotten, or locked): the deputy sets a new
    one at the next check-in. Recorded."""
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        done = await uow.conn.fetchval("DELETE FROM personal_codes WHERE jurisdiction = $1 AND term = $2 AND deputy_id = $3"
                                       " RETURNING true", who.jurisdiction, term, deputy_id)
        if not done:
            raise Problem(404, "personal-code-not-found", "该代表尚未设置个人码 No personal code set", deputy_id)
        await uow.audit(who.jurisdiction, who.sub, "reset-personal-code", "deputy", f"{term}/{deputy_id}")


@router.post("/sessions/{session_id}/display", status_code=201, responses=problems(403, 404))
async def display(session_id: UUID, request: Request, who: Principal = Depends(OFFICE)) -> dict[str, Any]:
    """The hall's big screen (大屏): a read-only credential for this one session, recorded with
    the deputies' credentials (``kind`` display) so that the office can revoke it."""
    settings = request.app.state.settings
    seconds = settings.session_credential_seconds
    async with unit_of_work(request.app.state.pool, "identity") as uow:
        session = await store.session_of_office(uow.conn, session_id, who.jurisdiction)
        row = await store.new_display_credential(uow.conn, session_id, who.sub, seconds)
        await uow.audit(session["jurisdiction"], who.sub, "display-credential", "session", session_id,
                        after={"credential": str(row["id"])})
    return {"access_token": issuer.display_credential(settings, session["jurisdiction"], session_id, who.sub, row["id"]),
            "token_type": "Bearer", "expires_in": seconds, "session_id": session_id, "credential_id": row["id"]}


@router.post("/sessions/{session_id}/display/{credential_id}/revoke", responses=problems(403, 404, 409))
async def revoke_display(session_id: UUID, credential_id: UUID, body: RevokeIn, request: Request,
                         who: Principal = Depends(OFFICE)) -> dict[str, Any]:
    """The office revokes a hall display's credential (a screen left signed in, a PC taken away):
    as for a deputy's, identity.credential.revoked tells the ballot service, which ends the
    screen's live stream (credential-revoked) and refuses the credential from then on."""

    async def act(uow: UnitOfWork):
        session = await store.session_of_office(uow.conn, session_id, who.jurisdiction)
        row = await uow.conn.fetchrow("SELECT * FROM credentials WHERE id = $1 AND session_id = $2 AND kind = 'display'"
                                      " FOR UPDATE", credential_id, session_id)
        if row is None:
            raise Problem(404, "credential-not-found", "未找到该大屏凭证 No such display credential",
                          f"no display credential {credential_id} in this session")
        if row["status"] != Status.ACTIVE:
            raise Problem(409, "credential-already-revoked", "该大屏凭证已撤销 Already revoked",
                          f"display credential {credential_id} was revoked at {row['ended_at']}")
        await uow.conn.execute("UPDATE credentials SET status = 'revoked', ended_at = now(), reason = $2 WHERE id = $1",
                               credential_id, body.reason)
        await uow.emit(CredentialRevoked(credential_id=credential_id, session_id=session_id, term=session["term"],
                                         deputy_id=issuer.display_subject(row["bound_by"]), reason=Status.REVOKED.value),
                       session["jurisdiction"])
        await uow.audit(session["jurisdiction"], who.sub, "revoke", "credential", credential_id,
                        after={"display": True, "reason": body.reason})
        return {"credential_id": credential_id, "kind": "display", "status": Status.REVOKED.value}

    return await command(request, who.sub, act)
