"""SQL of the ballot service that more than one route needs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.ballot import domain
from services.ballot.domain import CandidateCount, Mark, Satisfaction, Tally
from shared.auth import Principal, fetch_in_scope
from shared.http import Problem


def not_found(what: str, id_: Any) -> Problem:
    return Problem(404, f"{what}-not-found", f"未找到 {what} not found", f"no {what} {id_} in your jurisdiction")


async def session(conn, who: Principal, session_id: UUID, lock: str = ""):
    if who.session is not None and who.session != session_id:  # a session's credential (deputy, display) sees that session only
        raise not_found("session", session_id)
    return await fetch_in_scope(conn, who, "sessions", session_id, "session", "会议", lock)


async def vote(conn, who: Principal, vote_id: UUID, lock: str = ""):
    """The vote, optionally locked: "FOR UPDATE" to change it, "FOR KEY SHARE" to cast into it."""
    row = await fetch_in_scope(conn, who, "votes", vote_id, "vote", "表决", lock)
    if who.session is not None and who.session != row["session_id"]:
        raise not_found("vote", vote_id)
    return row


async def attendance(conn, session_id: UUID) -> dict[str, int]:
    """Seated deputies of the session's term, and how many of them are present now."""
    row = await conn.fetchrow(
        """SELECT count(*) AS seated, count(*) FILTER (WHERE a.present) AS present
           FROM sessions s
           JOIN deputies d ON d.jurisdiction = s.jurisdiction AND d.term = s.term AND d.seated
           LEFT JOIN attendance a ON a.session_id = s.id AND a.deputy_id = d.deputy_id
           WHERE s.id = $1""",
        session_id,
    )
    return dict(row)


def tally_json(t: Tally) -> dict[str, Any]:
    return {"collected": t.collected, "valid": t.valid, "invalid": t.invalid,
            "counts": {str(c): {"for": n.for_votes, "against": n.against, "abstain": n.abstain, "not_marked": n.not_marked}
                       for c, n in t.counts.items()}}


def tally_from_json(j: dict[str, Any], candidates: list[UUID]) -> Tally:
    """The stored tally, its counts in ballot order (jsonb does not keep key order; ties rank in ballot order)."""
    counts = {c: j["counts"][str(c)] for c in candidates}
    return Tally(j["collected"], j["valid"], j["invalid"],
                 {c: CandidateCount(n["for"], n["against"], n["abstain"], n["not_marked"]) for c, n in counts.items()})


_MARKS = {"selection": {m.value: m for m in Mark}, "satisfaction": {m.value: m for m in Satisfaction}}


def marks_of(vote_kind: str, raw: dict[str, str], ids: dict[str, UUID] | None = None) -> dict[UUID, Any]:
    """Stored marks as the domain takes them. Counting a large vote, pass ``ids`` (each candidate's
    id text → UUID) so that each id is parsed once, not once per ballot."""
    marks = _MARKS[vote_kind]
    if ids is None:
        return {UUID(c): marks[m] for c, m in raw.items()}
    return {ids.get(c) or UUID(c): marks[m] for c, m in raw.items()}


def rounds_of(rows) -> list[domain.Round]:
    rounds = []
    for r in rows:
        candidates = [UUID(c) for c in r["candidates"]]
        rounds.append(domain.Round(candidates, r["seats"], r["issued"], tally_from_json(r["tally"], candidates)))
    return rounds
