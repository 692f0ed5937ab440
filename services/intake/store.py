"""The intake service's SQL, all of it. Storage raises "not found" as a Problem (404); every other
rule is the domain's."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from services.intake.domain import eligibility, feasibility, tracking
from services.intake.domain.duplicates import Place
from services.intake.domain.merging import Supporter
from services.intake.domain.screening import ProposalFields, Stage
from services.intake.schemas import own_supporters
from shared.auth import Principal, fetch_in_scope
from shared.http import Problem

# ---------------------------------------------------------------- proposals


async def proposal(conn, who: Principal, proposal_id: UUID, lock: str = ""):
    return await fetch_in_scope(conn, who, "proposals", proposal_id, "proposal", "提案", lock)


async def proposals(conn, who: Principal, year: int | None = None, stage: str | None = None, limit: int = 10_000):
    return await conn.fetch(
        f"SELECT * FROM proposals WHERE {who.scope_sql('$1')} AND ($2::int IS NULL OR year = $2)"
        " AND ($3::text IS NULL OR stage = $3) ORDER BY created_at, import_row LIMIT $4",
        who.jurisdiction, year, stage, limit,
    )


async def in_scope(conn, who: Principal, ids: list[UUID], lock: str = ""):
    """The proposals with these ids in the caller's scope; a missing one is a 404."""
    rows = await conn.fetch(f"SELECT * FROM proposals WHERE id = ANY($1::uuid[]) AND {who.scope_sql('$2')} ORDER BY id {lock}",
                            ids, who.jurisdiction)
    missing = set(ids) - {r["id"] for r in rows}
    if missing:
        raise Problem(404, "proposal-not-found", "未找到提案 Proposal not found",
                      f"not in your jurisdiction: {', '.join(sorted(map(str, missing)))}")
    return rows


async def open_items(conn, jurisdiction: str, year: int):
    """What duplicates are looked for among: the year's proposals that are not merged or rejected."""
    return await conn.fetch(
        "SELECT id, code, stage, fields->>'title' AS title, fields->>'content' AS content, fields->>'location' AS location"
        " FROM proposals WHERE jurisdiction = $1 AND year = $2 AND stage NOT IN ('merged', 'rejected') ORDER BY created_at",
        jurisdiction, year,
    )


INSERT_PROPOSAL = (
    "INSERT INTO proposals (id, jurisdiction, year, stage, fields, code, eligibility, import_id, import_row, carried_from,"
    " history) VALUES ($1, $2, $3, 'submitted', $4, $5, $6, $7, $8, $9, $10) RETURNING *"
)
INSERT_CONTACT = "INSERT INTO contacts (proposal_id, proposer, contact, erase_after) VALUES ($1, $2, $3, $4)"


async def insert_proposal(conn, jurisdiction: str, year: int, fields: ProposalFields, failures: list[eligibility.Failure],
                          retention_days: int, carried_from: UUID | None = None, history: dict | None = None):
    row = await conn.fetchrow(INSERT_PROPOSAL, uuid4(), jurisdiction, year, fields.public(), tracking.new_code(),
                              [f.model_dump() for f in failures], None, None, carried_from, history)
    await conn.execute(INSERT_CONTACT, row["id"], fields.proposer, fields.contact, tracking.erase_after(year, retention_days))
    return row


async def insert_imported(conn, import_id: UUID, jurisdiction: str, year: int,
                          rows: list[tuple[int, ProposalFields, list[eligibility.Failure]]], retention_days: int) -> int:
    """A spreadsheet's rows, in one statement each for proposals and contacts (the import is one
    transaction: all rows or none)."""
    ids = [uuid4() for _ in rows]
    await conn.executemany(INSERT_PROPOSAL.removesuffix(" RETURNING *"), [
        (pid, jurisdiction, year, fields.public(), tracking.new_code(), [f.model_dump() for f in failures], import_id,
         number, None, None)
        for pid, (number, fields, failures) in zip(ids, rows, strict=True)])
    erase = tracking.erase_after(year, retention_days)
    await conn.executemany(INSERT_CONTACT, [(pid, fields.proposer, fields.contact, erase)
                                            for pid, (_, fields, _) in zip(ids, rows, strict=True)])
    return len(ids)


async def update(conn, proposal_id: UUID, **columns: Any):
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
    return await conn.fetchrow(f"UPDATE proposals SET {sets} WHERE id = $1 RETURNING *", proposal_id, *columns.values())


async def decide(conn, proposal_id: UUID, actor: str, from_stage: str, to_stage: str, reason: str = "") -> None:
    await conn.execute(
        "INSERT INTO decisions (proposal_id, actor, from_stage, to_stage, reason) VALUES ($1, $2, $3, $4, $5)",
        proposal_id, actor, from_stage, to_stage, reason,
    )


async def decisions(conn, proposal_id: UUID):
    return await conn.fetch(
        "SELECT at, actor, from_stage, to_stage, reason FROM decisions WHERE proposal_id = $1 ORDER BY seq", proposal_id)


async def stage_before_merge(conn, proposal_id: UUID) -> str:
    return await conn.fetchval(
        "SELECT from_stage FROM decisions WHERE proposal_id = $1 AND to_stage = 'merged' ORDER BY seq DESC LIMIT 1",
        proposal_id) or Stage.SUBMITTED


async def supporters(conn, item_ids: list[UUID]) -> dict[UUID, list[Supporter]]:
    """Each item's supporters: its own proposal (or, carried from the library, last year's
    supporters) and every proposal merged into it."""
    rows = await conn.fetch(
        "SELECT id, coalesce(merged_into, id) AS item, fields, carried_from, history FROM proposals"
        " WHERE id = ANY($1::uuid[]) OR merged_into = ANY($1::uuid[])", item_ids)
    out: dict[UUID, list[Supporter]] = {i: [] for i in item_ids}
    for row in rows:
        out.setdefault(row["item"], []).extend(own_supporters(row))
    return out


async def merged_into(conn, item_id: UUID) -> list[UUID]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM proposals WHERE merged_into = $1 ORDER BY created_at", item_id)]


async def merge(conn, item_id: UUID, ids: list[UUID]) -> None:
    """``ids`` into the item; what was merged into them follows (one level of merging)."""
    await conn.execute("UPDATE proposals SET merged_into = $1 WHERE merged_into = ANY($2::uuid[])", item_id, ids)
    await conn.execute("UPDATE proposals SET merged_into = $1, stage = 'merged' WHERE id = ANY($2::uuid[])", item_id, ids)


# ---------------------------------------------------------------- the year's settings and places


async def year_settings(conn, jurisdiction: str, year: int) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM year_settings WHERE jurisdiction = $1 AND year = $2", jurisdiction, year)
    return {
        "jurisdiction": jurisdiction, "year": year, "default": row is None,
        "eligibility": eligibility.Rules.model_validate(row["eligibility"]) if row and row["eligibility"] else eligibility.DEFAULT,
        "feasibility_weights": feasibility.Weights.model_validate(row["feasibility_weights"])
        if row and row["feasibility_weights"] else feasibility.Weights(),
        "notice_days": row["notice_days"] if row else 0,
    }


async def put_year_settings(conn, jurisdiction: str, year: int, body, actor: str) -> None:
    await conn.execute(
        "INSERT INTO year_settings (jurisdiction, year, eligibility, feasibility_weights, notice_days, updated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (jurisdiction, year) DO UPDATE SET eligibility = $3,"
        " feasibility_weights = $4, notice_days = $5, updated_by = $6, updated_at = now()",
        jurisdiction, year, body.eligibility and body.eligibility.model_dump(mode="json"),
        body.feasibility_weights and body.feasibility_weights.model_dump(), body.notice_days, actor,
    )


async def places(conn, jurisdiction: str) -> list[Place]:
    rows = await conn.fetch("SELECT * FROM places WHERE jurisdiction = $1 ORDER BY name", jurisdiction)
    return [Place(r["name"], r["kind"], tuple(r["aliases"]), r["within"], tuple(r["ends"])) for r in rows]


async def put_places(conn, jurisdiction: str, places_: list) -> None:
    await conn.execute("DELETE FROM places WHERE jurisdiction = $1", jurisdiction)
    await conn.executemany(
        "INSERT INTO places (jurisdiction, name, kind, aliases, within, ends) VALUES ($1, $2, $3, $4, $5, $6)",
        [(jurisdiction, p.name, p.kind, p.aliases, p.within, p.ends) for p in places_])


# ---------------------------------------------------------------- contacts (PIPL)


async def contact(conn, proposal_id: UUID):
    return await conn.fetchrow("SELECT * FROM contacts WHERE proposal_id = $1", proposal_id)


async def contacts(conn, ids: list[UUID]) -> dict[UUID, Any]:
    return {r["proposal_id"]: r for r in await conn.fetch("SELECT * FROM contacts WHERE proposal_id = ANY($1::uuid[])", ids)}


async def erase_due_contacts(conn, today: date) -> int:
    """Erase every proposer's name and contact whose retention period has passed."""
    erased = await conn.fetchval(
        "WITH e AS (UPDATE contacts SET proposer = '', contact = '', erased_at = now()"
        " WHERE erase_after < $1 AND erased_at IS NULL RETURNING 1) SELECT count(*) FROM e", today)
    return erased


# ---------------------------------------------------------------- slates and notices


async def slate(conn, who: Principal, slate_id: UUID, lock: str = ""):
    row = await conn.fetchrow(f"SELECT * FROM slates WHERE id = $1 AND {who.scope_sql('$2')} {lock}", slate_id, who.jurisdiction)
    if row is None:
        raise Problem(404, "slate-not-found", "未找到候选清单 Slate not found", f"no slate {slate_id} in your jurisdiction")
    return row


async def slate_candidates(conn, slate_id: UUID):
    return await conn.fetch(
        "SELECT p.*, s.supporters AS on_slate_supporters FROM proposals p JOIN slate_candidates s ON s.proposal_id = p.id"
        " WHERE s.slate_id = $1 ORDER BY s.position NULLS LAST, p.created_at", slate_id)


async def notices(conn, slate_id: UUID):
    rows = await conn.fetch("SELECT * FROM notices WHERE slate_id = $1 ORDER BY starts_at", slate_id)
    objections = await conn.fetch(
        "SELECT * FROM objections WHERE notice_id = ANY($1::uuid[]) ORDER BY received_at", [r["id"] for r in rows])
    return rows, objections


async def notice(conn, who: Principal, notice_id: UUID, lock: str = ""):
    row = await conn.fetchrow(f"SELECT * FROM notices WHERE id = $1 AND {who.scope_sql('$2')} {lock}", notice_id, who.jurisdiction)
    if row is None:
        raise Problem(404, "notice-not-found", "未找到公示 Notice not found", f"no notice {notice_id} in your jurisdiction")
    return row


async def objection(conn, who: Principal, objection_id: UUID, lock: str = ""):
    row = await conn.fetchrow(
        f"SELECT o.*, n.jurisdiction FROM objections o JOIN notices n ON n.id = o.notice_id"
        f" WHERE o.id = $1 AND {who.scope_sql('$2', 'n.jurisdiction')} {lock.replace('FOR UPDATE', 'FOR UPDATE OF o')}",
        objection_id, who.jurisdiction)
    if row is None:
        raise Problem(404, "objection-not-found", "未找到意见 Objection not found", f"no objection {objection_id} in your jurisdiction")
    return row


# ---------------------------------------------------------------- imports


async def import_by_hash(conn, jurisdiction: str, year: int, file_hash: str):
    return await conn.fetchrow("SELECT * FROM imports WHERE jurisdiction = $1 AND year = $2 AND file_hash = $3",
                               jurisdiction, year, file_hash)


async def claim_import(conn, jurisdiction: str, year: int, file_hash: str, rows: int, actor: str) -> UUID | None:
    """The new import's id, or None when this file was imported already (a concurrent upload of the
    same file waits here for the first to commit)."""
    return await conn.fetchval(
        "INSERT INTO imports (id, jurisdiction, year, file_hash, rows, created_by) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (jurisdiction, year, file_hash) DO NOTHING RETURNING id",
        uuid4(), jurisdiction, year, file_hash, rows, actor)


# ---------------------------------------------------------------- the project library


async def library(conn, who: Principal, year: int):
    return await conn.fetch(
        f"SELECT p.*, c.id AS carried_id, c.stage AS carried_stage FROM proposals p"
        f" LEFT JOIN proposals c ON c.carried_from = p.id"
        f" WHERE {who.scope_sql('$1', 'p.jurisdiction')} AND p.year = $2 AND p.disposition = 'project_library'"
        f" ORDER BY p.created_at", who.jurisdiction, year)


# ---------------------------------------------------------------- projects (from supervision) and notices to proposers


async def project_event(conn, project_id: UUID, jurisdiction: str, year: int, **changes: Any) -> None:
    """Apply what one of supervision's events says of a project, in any order of arrival."""
    await conn.execute("INSERT INTO projects (project_id, jurisdiction, year) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       project_id, jurisdiction, year)
    if "inspection" in changes:
        await conn.execute("UPDATE projects SET inspections = inspections || $2::jsonb WHERE project_id = $1",
                           project_id, [changes.pop("inspection")])
    if changes:
        sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(changes))
        await conn.execute(f"UPDATE projects SET {sets} WHERE project_id = $1", project_id, *changes.values())


async def project_progress(conn, project_id: UUID, jurisdiction: str, year: int, percent: int, as_of: date) -> None:
    await conn.execute("INSERT INTO projects (project_id, jurisdiction, year) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       project_id, jurisdiction, year)
    await conn.execute("UPDATE projects SET percent_done = $2, progress_as_of = $3 WHERE project_id = $1"
                       " AND (progress_as_of IS NULL OR progress_as_of <= $3)", project_id, percent, as_of)


async def tell_proposers(conn, proposal_ids: list[UUID], kind: str, text: str, event_id: UUID) -> None:
    await conn.executemany(
        "INSERT INTO proposer_notices (proposal_id, kind, text, event_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [(p, kind, text, event_id) for p in proposal_ids])


# ---------------------------------------------------------------- the public lookup


async def count_lookup(conn, client: str) -> int:
    """This client's lookups in the current minute, this one included (shared by all replicas)."""
    return await conn.fetchval(
        "INSERT INTO lookups (client, minute, count) VALUES ($1, date_trunc('minute', now()), 1)"
        " ON CONFLICT (client, minute) DO UPDATE SET count = lookups.count + 1 RETURNING count", client)


async def prune_lookups(conn) -> None:
    await conn.execute("DELETE FROM lookups WHERE minute < now() - interval '10 minutes'")


async def track(conn, code: str) -> dict[str, Any] | None:
    """What the lookup by a code is built from, or None. Selects no proposer and no contact."""
    columns = ("p.id, p.code, p.year, p.stage, p.fields->>'title' AS title, p.created_at, p.rejection_reason,"
               " p.eligibility, p.disposition, p.disposition_reason, p.merged_into")
    row = await conn.fetchrow(f"SELECT {columns} FROM proposals p WHERE p.code = $1", code)
    if row is None:
        return None
    item = await conn.fetchrow(f"SELECT {columns} FROM proposals p WHERE p.id = $1", row["merged_into"]) \
        if row["merged_into"] else None
    follows = (item or row)["id"]
    slate = await conn.fetchrow(
        "SELECT s.title, s.status, n.ends_at AS notice_ends_at FROM slate_candidates c JOIN slates s ON s.id = c.slate_id"
        " LEFT JOIN notices n ON n.slate_id = s.id AND n.kind = 'slate' WHERE c.proposal_id = $1", follows)
    project = await conn.fetchrow("SELECT percent_done, progress_as_of, completion, accepted_on, inspections FROM projects"
                                  " WHERE proposal_id = $1", follows)
    carried = await conn.fetchrow("SELECT year, stage FROM proposals WHERE carried_from = $1", follows)
    notices_ = await conn.fetch("SELECT at, text FROM proposer_notices WHERE proposal_id = $1 ORDER BY at", row["id"])
    supporters_ = (await supporters(conn, [item["id"]]))[item["id"]] if item else None
    return {"proposal": dict(row), "item": {**dict(item), "supporters": len(supporters_)} if item else None,
            "slate": dict(slate) if slate else None, "project": dict(project) if project else None,
            "carried_to": dict(carried) if carried else None, "notices": [dict(n) for n in notices_]}
