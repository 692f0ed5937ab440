"""The ballot service's SQL, in one place: sessions, rosters, votes (the aggregate loaded and
saved), tellers' keys and shares, and the cast statement. Storage raises "not found"; the routes
turn refusals into HTTP."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.ballot.domain import sealing
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.rules import VoteRules
from services.ballot.domain.session import SessionStatus
from services.ballot.domain.vote import (
    Departure,
    Kind,
    Mode,
    RoundState,
    Status,
    Subject,
    Vote,
    ratings_from_json,
    ratings_json,
    tally_from_json,
    tally_json,
)
from shared.auth import Principal


def not_found(what: str, id_: Any) -> Refused:
    return Refused(Why.NOT_FOUND, f"{what}-not-found", f"no {what} {id_} in your jurisdiction")


async def _in_scope(conn, who: Principal | None, table: str, id_: Any, what: str, lock: str = ""):
    """The row if the caller's jurisdiction covers it (``who`` None: the service itself, counting)."""
    if who is None:
        row = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 {lock}", id_)
    else:
        row = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 AND {who.scope_sql('$2')} {lock}", id_, who.jurisdiction)
    if row is None:
        raise not_found(what, id_)
    return row


# ---------------------------------------------------------------- sessions and rosters


async def session(conn, who: Principal, session_id: UUID, lock: str = ""):
    if who is not None and who.session is not None and who.session != session_id:  # a session's credential sees that session
        raise not_found("session", session_id)
    return await _in_scope(conn, who, "sessions", session_id, "session", lock)


async def attendance(conn, session_id: UUID) -> dict[str, int]:
    """Seated deputies of the session's term, and how many of them are present now."""
    row = await conn.fetchrow(
        """SELECT count(*) AS seated, count(*) FILTER (WHERE a.present) AS present
           FROM sessions s
           JOIN deputies d ON d.jurisdiction = s.jurisdiction AND d.term = s.term AND d.seated
           LEFT JOIN attendance a ON a.session_id = s.id AND a.deputy_id = d.deputy_id
           WHERE s.id = $1""", session_id)
    return dict(row)


async def open_sessions(conn, jurisdiction: str, term: int) -> list[str]:
    return [r["name"] for r in await conn.fetch(
        "SELECT name FROM sessions WHERE jurisdiction = $1 AND term = $2 AND status = 'open'", jurisdiction, term)]


async def lock_term(conn, jurisdiction: str, term: int) -> bool:
    """Serialise roster edits and session openings of one term. False: no roster for the term."""
    return bool(await conn.fetchval("SELECT true FROM terms WHERE jurisdiction = $1 AND term = $2 FOR UPDATE", jurisdiction, term))


async def put_roster(conn, jurisdiction: str, term: int, quota: int, deputies: list[tuple[str, str, bool]]) -> None:
    await conn.execute("INSERT INTO terms (jurisdiction, term, quota) VALUES ($1, $2, $3)"
                       " ON CONFLICT (jurisdiction, term) DO UPDATE SET quota = EXCLUDED.quota", jurisdiction, term, quota)
    await conn.executemany(
        "INSERT INTO deputies (jurisdiction, term, deputy_id, name, seated) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (jurisdiction, term, deputy_id) DO UPDATE SET name = EXCLUDED.name, seated = EXCLUDED.seated",
        [(jurisdiction, term, *d) for d in deputies])


async def seated_count(conn, jurisdiction: str, term: int) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT t.quota, (SELECT count(*) FROM deputies d WHERE d.jurisdiction = t.jurisdiction"
                              " AND d.term = t.term AND d.seated) AS seated FROM terms t WHERE jurisdiction = $1 AND term = $2",
                              jurisdiction, term)
    return (row["quota"], row["seated"]) if row else (0, 0)


async def record_roster_change(conn, jurisdiction: str, term: int, deputy_id: str, name: str | None, seated: bool,
                               reason: str, by: str) -> UUID:
    return await conn.fetchval(
        "INSERT INTO roster_changes (jurisdiction, term, deputy_id, name, seated, reason, decided_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id", jurisdiction, term, deputy_id, name, seated, reason, by)


async def apply_roster_changes(conn, jurisdiction: str, term: int) -> list[dict[str, Any]]:
    """The decisions recorded since the last session, applied as the next one opens, oldest first."""
    changes = await conn.fetch("UPDATE roster_changes SET applied_at = now() WHERE jurisdiction = $1 AND term = $2"
                               " AND applied_at IS NULL RETURNING deputy_id, name, seated, reason, decided_at",
                               jurisdiction, term)
    for c in sorted(changes, key=lambda c: c["decided_at"]):
        await conn.execute(
            "INSERT INTO deputies (jurisdiction, term, deputy_id, name, seated) VALUES ($1, $2, $3, coalesce($4, $3), $5)"
            " ON CONFLICT (jurisdiction, term, deputy_id) DO UPDATE SET seated = EXCLUDED.seated,"
            " name = coalesce($4, deputies.name)", jurisdiction, term, c["deputy_id"], c["name"], c["seated"])
    return [{"deputy_id": c["deputy_id"], "seated": c["seated"], "reason": c["reason"]} for c in changes]


async def seated_ids(conn, jurisdiction: str, term: int) -> set[str]:
    return {r["deputy_id"] for r in await conn.fetch(
        "SELECT deputy_id FROM deputies WHERE jurisdiction = $1 AND term = $2 AND seated", jurisdiction, term)}


async def mark_attendance(conn, session_id: UUID, present: list[str], absent: list[str]) -> None:
    await conn.executemany(
        "INSERT INTO attendance (session_id, deputy_id, present) VALUES ($1, $2, $3)"
        " ON CONFLICT (session_id, deputy_id) DO UPDATE SET present = EXCLUDED.present",
        [(session_id, d, True) for d in present] + [(session_id, d, False) for d in absent])


async def votes_in_progress(conn, session_id: UUID) -> list[str]:
    return [str(r["id"]) for r in await conn.fetch(
        "SELECT id FROM votes WHERE session_id = $1 AND status IN ('open', 'awaiting_shares')", session_id)]


# ---------------------------------------------------------------- tellers


async def register_teller_key(conn, jurisdiction: str, teller_id: str, suite: str, public_key: bytes) -> None:
    await conn.execute(
        "INSERT INTO teller_keys (jurisdiction, teller_id, suite, public_key) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (jurisdiction, teller_id) DO UPDATE SET suite = EXCLUDED.suite, public_key = EXCLUDED.public_key,"
        " registered_at = now()", jurisdiction, teller_id, suite, public_key)


async def teller_keys(conn, jurisdiction: str, teller_ids: list[str]) -> dict[str, tuple[str, bytes]]:
    return {r["teller_id"]: (r["suite"], r["public_key"]) for r in await conn.fetch(
        "SELECT teller_id, suite, public_key FROM teller_keys WHERE jurisdiction = $1 AND teller_id = ANY($2::text[])",
        jurisdiction, teller_ids)}


async def save_round_key(conn, vote_id: UUID, round_: int, key: sealing.RoundKey) -> None:
    await conn.execute("UPDATE rounds SET suite = $3, public_key = $4, threshold = $5 WHERE vote_id = $1 AND round = $2",
                       vote_id, round_, key.suite, key.public_key, key.threshold)
    await conn.executemany(
        "INSERT INTO round_shares (vote_id, round, teller_id, idx, teller_key, sealed, commitment) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(vote_id, round_, s.teller_id, s.index, s.teller_key, s.sealed, s.commitment) for s in key.shares])


async def round_key(conn, vote_id: UUID, round_: int):
    return await conn.fetchrow("SELECT suite, public_key, threshold, count_key FROM rounds WHERE vote_id = $1 AND round = $2",
                               vote_id, round_)


async def teller_share(conn, vote_id: UUID, round_: int, teller_id: str) -> sealing.SealedShare | None:
    row = await conn.fetchrow("SELECT * FROM round_shares WHERE vote_id = $1 AND round = $2 AND teller_id = $3",
                              vote_id, round_, teller_id)
    return None if row is None else sealing.SealedShare(row["teller_id"], row["idx"], row["teller_key"], row["sealed"] or b"",
                                                        row["commitment"])


async def shares_presented(conn, vote_id: UUID, round_: int, count_key: bytes) -> list[tuple[str, bytes]]:
    return [(r["teller_id"], r["sealed"]) for r in await conn.fetch(
        "SELECT teller_id, sealed FROM presented_shares WHERE vote_id = $1 AND round = $2 AND count_key = $3",
        vote_id, round_, count_key)]


async def present_share(conn, vote_id: UUID, round_: int, teller_id: str, count_key: bytes, sealed: bytes) -> None:
    await conn.execute(
        "INSERT INTO presented_shares (vote_id, round, teller_id, count_key, sealed) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (vote_id, round, teller_id) DO UPDATE SET count_key = EXCLUDED.count_key, sealed = EXCLUDED.sealed",
        vote_id, round_, teller_id, count_key, sealed)


async def set_count_key(conn, vote_id: UUID, round_: int, count_key: bytes | None) -> None:
    """A new counting process: shares presented to an earlier one can no longer be opened."""
    await conn.execute("UPDATE rounds SET count_key = $3 WHERE vote_id = $1 AND round = $2", vote_id, round_, count_key)
    await conn.execute("DELETE FROM presented_shares WHERE vote_id = $1 AND round = $2", vote_id, round_)


# ---------------------------------------------------------------- votes: the aggregate


async def slate(conn, who: Principal, slate_id: UUID, own_only: bool = False):
    row = await conn.fetchrow(f"SELECT * FROM slates WHERE id = $1 AND {'jurisdiction = $2' if own_only else who.scope_sql('$2')}",
                              slate_id, who.jurisdiction)
    if row is None:
        raise not_found("slate", slate_id)
    return row


async def projects(conn, jurisdiction: str, year: int) -> list[Subject]:
    return [Subject(str(r["id"]), r["title"]) for r in await conn.fetch(
        "SELECT id, title FROM projects WHERE jurisdiction = $1 AND year = $2 ORDER BY title", jurisdiction, year)]


async def slate_votes(conn, slate_id: UUID) -> dict[UUID, Status]:
    return {r["id"]: Status(r["status"]) for r in await conn.fetch("SELECT id, status FROM votes WHERE slate_id = $1", slate_id)}


async def certified_on_slate(conn, slate_id: UUID, other_than: UUID) -> UUID | None:
    await conn.execute("SELECT 1 FROM slates WHERE id = $1 FOR UPDATE", slate_id)  # one decision per slate
    return await conn.fetchval("SELECT id FROM votes WHERE slate_id = $1 AND status = 'certified' AND id <> $2", slate_id, other_than)


async def vote(conn, who: Principal, vote_id: UUID, lock: str = ""):
    """The vote's row (for read-only lists); a session's credential sees its own session's votes only."""
    row = await _in_scope(conn, who, "votes", vote_id, "vote", lock)
    if who.session is not None and who.session != row["session_id"]:
        raise not_found("vote", vote_id)
    return row


async def load_vote(conn, who: Principal | None, vote_id: UUID, lock: str = "") -> Vote:
    """The vote, optionally locked: "FOR UPDATE" to change it."""
    v = await _in_scope(conn, who, "votes", vote_id, "vote", lock)
    if who is not None and who.session is not None and who.session != v["session_id"]:  # a session's credential: that session only
        raise not_found("vote", vote_id)
    kind = Kind(v["kind"])
    rounds = []
    for r in await conn.fetch("SELECT * FROM rounds WHERE vote_id = $1 ORDER BY round", vote_id):
        state = RoundState(r["round"], r["candidates"], r["seats"], r["issued"], Mode(r["mode"]), r["sealed"],
                           unopened=r["unopened"], void_reason=r["void_reason"], totals_entered=r["totals_entered"])
        if r["tally"] is not None:
            if kind is Kind.SATISFACTION:
                state.ratings = ratings_from_json(r["tally"])
            else:
                state.tally = tally_from_json(r["tally"], [UUID(c) for c in r["candidates"]])
        rounds.append(state)
    return Vote(id=v["id"], session_id=v["session_id"], jurisdiction=v["jurisdiction"], kind=kind, mode=Mode(v["mode"]),
                slate_id=v["slate_id"], year=v["year"], subjects=[Subject(s["id"], s["title"]) for s in v["subjects"]],
                seats=v["seats"], rules=VoteRules.model_validate(v["rules"]), status=Status(v["status"]),
                withdrawn=v["withdrawn"], departures=[Departure(**d) for d in v["departures"]], seated=v["seated"],
                present=v["present"], rounds=rounds, void_reason=v["void_reason"], certified_at=v["certified_at"],
                certified_by=v["certified_by"])


def _departures(vote: Vote) -> list[dict[str, str]]:
    return [{"what": d.what, "label": d.label, "reason": d.reason, "by": d.by} for d in vote.departures]


async def insert_vote(conn, vote: Vote) -> None:
    await conn.execute(
        "INSERT INTO votes (id, session_id, jurisdiction, kind, mode, slate_id, year, subjects, status, rules, seats, departures)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        vote.id, vote.session_id, vote.jurisdiction, vote.kind.value, vote.mode.value, vote.slate_id, vote.year,
        [{"id": s.id, "title": s.title} for s in vote.subjects], vote.status.value, vote.rules.model_dump(mode="json"),
        vote.seats, _departures(vote))


async def save_vote(conn, vote: Vote) -> None:
    """The vote's state and its rounds (new rounds inserted, counted ones updated)."""
    shown = any(r.counted or r.void_reason for r in vote.rounds)
    await conn.execute(
        "UPDATE votes SET status = $2, mode = $3, withdrawn = $4, seated = $5, present = $6, round = $7, result = $8,"
        " certified_at = $9, certified_by = $10, void_reason = $11 WHERE id = $1",
        vote.id, vote.status.value, vote.mode.value, vote.withdrawn, vote.seated, vote.present, len(vote.rounds),
        vote.result().as_json() if shown else None, vote.certified_at, vote.certified_by, vote.void_reason)
    for r in vote.rounds:
        counted = ratings_json(r.ratings) if r.ratings else tally_json(r.tally) if r.tally else None
        await conn.execute(
            "INSERT INTO rounds (vote_id, round, candidates, seats, issued, mode, sealed, tally, void_reason, unopened, totals_entered)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (vote_id, round) DO UPDATE SET"
            " tally = EXCLUDED.tally, void_reason = EXCLUDED.void_reason, unopened = EXCLUDED.unopened,"
            " totals_entered = EXCLUDED.totals_entered",
            vote.id, r.number, r.candidates, r.seats, r.issued, r.mode.value, r.sealed, counted, r.void_reason, r.unopened,
            r.totals_entered)


async def issue_ballots(conn, vote_id: UUID, round_: int, session_id: UUID) -> None:
    """A ballot to each seated deputy present."""
    await conn.execute(
        """INSERT INTO issued (vote_id, round, deputy_id)
           SELECT $1, $2, a.deputy_id FROM attendance a JOIN sessions s ON s.id = a.session_id
           JOIN deputies d ON d.jurisdiction = s.jurisdiction AND d.term = s.term AND d.deputy_id = a.deputy_id
           WHERE a.session_id = $3 AND a.present AND d.seated""", vote_id, round_, session_id)


async def cast_count(conn, vote_id: UUID, round_: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM issued WHERE vote_id = $1 AND round = $2 AND cast_done", vote_id, round_)


async def plain_ballots(conn, vote_id: UUID, round_: int) -> list[str]:
    """A paper or named round's ballots, to count at close."""
    return [r[0] for r in await conn.fetch("SELECT ballot FROM ballots WHERE vote_id = $1 AND round = $2 UNION ALL"
                                           " SELECT ballot FROM named_ballots WHERE vote_id = $1 AND round = $2", vote_id, round_)]


async def discard_sealed(conn, vote_id: UUID, round_: int) -> None:
    """A voided round's sealed ballots and key shares: never opened."""
    for table in ("sealed_ballots", "presented_shares"):
        await conn.execute(f"DELETE FROM {table} WHERE vote_id = $1 AND round = $2", vote_id, round_)
    await conn.execute("UPDATE round_shares SET sealed = NULL WHERE vote_id = $1 AND round = $2", vote_id, round_)
    await conn.execute("UPDATE rounds SET count_key = NULL WHERE vote_id = $1 AND round = $2", vote_id, round_)


async def insert_paper_ballot(conn, vote_id: UUID, round_: int, ballot: str) -> None:
    await conn.execute("INSERT INTO ballots (vote_id, round, ballot) VALUES ($1, $2, $3)", vote_id, round_, ballot)


async def has_ballots(conn, vote_id: UUID, round_: int) -> bool:
    return bool(await conn.fetchval("SELECT true FROM ballots WHERE vote_id = $1 AND round = $2 LIMIT 1", vote_id, round_))


async def issued_and_cast(conn, vote_id: UUID, round_: int) -> tuple[int | None, int]:
    row = await conn.fetchrow("SELECT (SELECT issued FROM rounds WHERE vote_id = $1 AND round = $2) AS issued,"
                              " (SELECT count(*) FROM issued WHERE vote_id = $1 AND round = $2 AND cast_done) AS cast",
                              vote_id, round_)
    return row["issued"], row["cast"]


async def paper_entered(conn, vote_id: UUID, round_: int) -> int:
    """Paper ballots a teller has entered one by one in this round (收回 so far)."""
    return await conn.fetchval("SELECT count(*) FROM ballots WHERE vote_id = $1 AND round = $2", vote_id, round_)


async def session_status(conn, session_id: UUID) -> SessionStatus:
    return SessionStatus(await conn.fetchval("SELECT status FROM sessions WHERE id = $1", session_id))


# ---------------------------------------------------------------- publication


async def published_rounds(conn, vote_id: UUID, with_ballots: bool) -> list[dict[str, Any]]:
    out = []
    for r in await conn.fetch("SELECT * FROM rounds WHERE vote_id = $1 ORDER BY round", vote_id):
        trackers = [t[0] for t in await conn.fetch("SELECT tracker FROM receipts WHERE vote_id = $1 AND round = $2 ORDER BY tracker",
                                                   vote_id, r["round"])]
        entry = {"round": r["round"], "candidates": r["candidates"], "seats": r["seats"], "issued": r["issued"],
                 "mode": r["mode"], "sealed": r["sealed"], "void_reason": r["void_reason"], "unopened": r["unopened"],
                 "totals": r["tally"] if r["totals_entered"] else None, "trackers": trackers, "commitment": r["commitment"]}
        if with_ballots:
            rows = await conn.fetch("SELECT ballot FROM ballots WHERE vote_id = $1 AND round = $2 UNION ALL"
                                    " SELECT ballot FROM named_ballots WHERE vote_id = $1 AND round = $2 ORDER BY 1",
                                    vote_id, r["round"])
            entry |= {"salt": r["salt"], "ballots": [b[0] for b in rows]}
        out.append(entry)
    return out


async def find_tracker(conn, vote_id: UUID, tracker: str) -> int | None:
    return await conn.fetchval("SELECT round FROM receipts WHERE vote_id = $1 AND tracker = $2", vote_id, tracker)


# ---------------------------------------------------------------- the cast: one statement

# Lock the vote against a concurrent close (FOR KEY SHARE), take the deputy's ballot, store the
# sealed ballot (a named vote: the plain ballot next to the deputy, in named_ballots), and keep the
# answer (the tracker, which is no more than the link the transaction id already makes until the
# close) for a retry with the same Idempotency-Key. One round trip, atomic on its own; retries of
# one request are serialised by the deputy's row in `issued`. The deputy's voting credential must
# not be revoked (identity's event) and the deputy still present (离场 ends it).
CAST = """
WITH vote AS (SELECT 1 FROM votes WHERE id = $1 AND round = $2 AND status = 'open' AND mode = 'electronic'
              AND jurisdiction = $7 FOR KEY SHARE),
     revoked AS (SELECT 1 FROM revoked_credentials WHERE credential_id = $11),
     present AS (SELECT 1 FROM attendance WHERE session_id = $12 AND deputy_id = $3 AND present),
     taken AS (UPDATE issued SET cast_done = true
               WHERE vote_id = $1 AND round = $2 AND deputy_id = $3 AND NOT cast_done AND EXISTS (SELECT 1 FROM vote)
                 AND NOT EXISTS (SELECT 1 FROM revoked) AND EXISTS (SELECT 1 FROM present)
               RETURNING 1),
     secret AS (INSERT INTO sealed_ballots (vote_id, round, sealed) SELECT $1, $2, $4 FROM taken WHERE NOT $6),
     named AS (INSERT INTO named_ballots (vote_id, round, deputy_id, ballot) SELECT $1, $2, $3, $5 FROM taken WHERE $6),
     answer AS (INSERT INTO idempotency (principal, key, fingerprint, status, body)
                SELECT $3, $8, $9, 201, $10 FROM taken WHERE $8::text IS NOT NULL)
SELECT EXISTS (SELECT 1 FROM vote) AS open, EXISTS (SELECT 1 FROM taken) AS taken,
       EXISTS (SELECT 1 FROM taken) OR EXISTS (SELECT 1 FROM issued WHERE vote_id = $1 AND round = $2 AND deputy_id = $3) AS issued,
       EXISTS (SELECT 1 FROM revoked) AS revoked, EXISTS (SELECT 1 FROM present) AS present
"""


async def open_round_for_cast(conn, who: Principal, vote_id: UUID):
    return await conn.fetchrow(
        f"""SELECT v.jurisdiction, v.session_id, v.status, v.mode, v.kind, v.rules, v.round, r.candidates, r.seats, r.sealed,
                   r.suite, r.public_key, (SELECT term FROM sessions s WHERE s.id = v.session_id) AS term
            FROM votes v LEFT JOIN rounds r ON r.vote_id = v.id AND r.round = v.round
            WHERE v.id = $1 AND {who.scope_sql('$2', 'v.jurisdiction')}""", vote_id, who.jurisdiction)
