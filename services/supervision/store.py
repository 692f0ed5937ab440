"""All of the supervision service's SQL: routes and handlers call these, nothing else writes it."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.supervision.domain.plan import BoardSetting, Milestone
from shared.auth import Principal, fetch_in_scope, scope_sql
from shared.contracts.supervision import InspectionKind
from shared.http import Problem

# ---------------------------------------------------------------- projects and their plans


async def project(conn, who: Principal, project_id: UUID, lock: str = "") -> asyncpg.Record:
    return await fetch_in_scope(conn, who, "projects", project_id, "project", "项目", lock)


async def projects(conn, jurisdiction: str, year: int | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT p.*, r.percent_done, r.funds_spent, r.as_of AS progress_as_of
            FROM projects p LEFT JOIN LATERAL (
                SELECT percent_done, funds_spent, as_of FROM progress_reports WHERE project_id = p.id
                ORDER BY as_of DESC, reported_at DESC LIMIT 1) r ON true
            WHERE {scope_sql('$1', 'p.jurisdiction')} AND ($2::int IS NULL OR p.year = $2)
            ORDER BY p.created_at, p.title""",
        jurisdiction, year,
    )


async def milestones(conn, project_id: UUID) -> list[Milestone]:
    rows = await conn.fetch("SELECT due_on, expected_percent FROM milestones WHERE project_id = $1 ORDER BY due_on", project_id)
    return [Milestone(r["due_on"], r["expected_percent"]) for r in rows]


async def all_milestones(conn, project_ids: list[UUID]) -> dict[UUID, list[Milestone]]:
    found: dict[UUID, list[Milestone]] = {p: [] for p in project_ids}
    for r in await conn.fetch("SELECT * FROM milestones WHERE project_id = ANY($1) ORDER BY due_on", project_ids):
        found[r["project_id"]].append(Milestone(r["due_on"], r["expected_percent"]))
    return found


async def set_plan(conn, project_id: UUID, plan: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE projects SET lead_unit = $2, leader = $3, budget = $4, deadline = $5, funding_source = $6,"
        " presidium_member = $7 WHERE id = $1 RETURNING *",
        project_id, plan["lead_unit"], plan["leader"], plan["budget"], plan["deadline"], plan["funding_source"],
        plan["presidium_member"],
    )
    await conn.execute("DELETE FROM milestones WHERE project_id = $1", project_id)
    await conn.executemany(
        "INSERT INTO milestones (project_id, due_on, expected_percent, description) VALUES ($1, $2, $3, $4)",
        [(project_id, m["due_on"], m["expected_percent"], m["description"]) for m in plan["milestones"]],
    )
    return row


async def set_group(conn, project_id: UUID, term: int, deputies: list[str], leader: str | None) -> None:
    await conn.execute("DELETE FROM supervisors WHERE project_id = $1 AND term = $2", project_id, term)
    await conn.executemany("INSERT INTO supervisors (project_id, term, deputy, is_leader) VALUES ($1, $2, $3, $4)",
                           [(project_id, term, d, d == leader) for d in deputies])


async def group(conn, project_id: UUID, term: int | None) -> set[str]:
    rows = await conn.fetch("SELECT deputy FROM supervisors WHERE project_id = $1 AND term IS NOT DISTINCT FROM $2",
                            project_id, term)
    return {r["deputy"] for r in rows}


async def detail(conn, row: asyncpg.Record) -> dict[str, Any]:
    pid = row["id"]
    progress = await conn.fetch(
        "SELECT r.*, coalesce((SELECT array_agg(p.id ORDER BY p.uploaded_at) FROM photos p WHERE p.report_id = r.id), '{}')"
        " AS photos FROM progress_reports r WHERE project_id = $1 ORDER BY as_of, reported_at", pid)
    inspections = await conn.fetch(
        "SELECT i.*, coalesce((SELECT jsonb_agg(jsonb_build_object('deputy', deputy, 'rating', rating) ORDER BY deputy)"
        " FROM inspection_ratings WHERE inspection_id = i.id), '[]') AS ratings FROM inspections i WHERE project_id = $1"
        " ORDER BY inspected_on, recorded_at", pid)
    items = await conn.fetch("SELECT * FROM rectifications WHERE project_id = $1 ORDER BY created_at", pid)
    marks = await conn.fetch("SELECT due_on, expected_percent, description FROM milestones WHERE project_id = $1 ORDER BY due_on", pid)
    groups = await conn.fetch("SELECT term, deputy, is_leader FROM supervisors WHERE project_id = $1 ORDER BY term, deputy", pid)
    return {**dict(row), "milestones": [dict(m) for m in marks],
            "supervisors": [dict(g) for g in groups],
            "progress": [dict(p) for p in progress], "inspections": [dict(i) for i in inspections],
            "rectifications": [dict(r) for r in items]}


# ---------------------------------------------------------------- jurisdiction settings and terms


async def board_setting(conn, jurisdiction: str) -> BoardSetting:
    """The township's own colours, else its county's, else the defaults."""
    row = await conn.fetchrow(
        "SELECT board FROM jurisdiction_settings WHERE (jurisdiction = $1 OR starts_with($1, jurisdiction || '.'))"
        " AND board <> '{}' ORDER BY length(jurisdiction) DESC LIMIT 1", jurisdiction)
    return BoardSetting.model_validate(row["board"]) if row else BoardSetting()


async def set_board(conn, jurisdiction: str, setting: BoardSetting) -> None:
    await conn.execute("INSERT INTO jurisdiction_settings (jurisdiction, board) VALUES ($1, $2)"
                       " ON CONFLICT (jurisdiction) DO UPDATE SET board = EXCLUDED.board",
                       jurisdiction, setting.model_dump(mode="json"))


async def current_term(conn, jurisdiction: str) -> int | None:
    return await conn.fetchval("SELECT current_term FROM jurisdiction_settings WHERE jurisdiction = $1", jurisdiction)


async def change_term(conn, jurisdiction: str, to_term: int, by: str) -> int | None:
    before = await conn.fetchval("SELECT current_term FROM jurisdiction_settings WHERE jurisdiction = $1 FOR UPDATE",
                                 jurisdiction)
    await conn.execute("INSERT INTO jurisdiction_settings (jurisdiction, current_term) VALUES ($1, $2)"
                       " ON CONFLICT (jurisdiction) DO UPDATE SET current_term = EXCLUDED.current_term", jurisdiction, to_term)
    await conn.execute("INSERT INTO term_changes (jurisdiction, from_term, to_term, changed_by) VALUES ($1, $2, $3, $4)",
                       jurisdiction, before, to_term, by)
    return before


# ---------------------------------------------------------------- progress and photos


async def latest_progress(conn, project_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM progress_reports WHERE project_id = $1 ORDER BY as_of DESC, reported_at DESC"
                               " LIMIT 1", project_id)


async def add_progress(conn, project_id: UUID, by: str, report: dict[str, Any], backdated: bool,
                       before: dict[str, Any] | None) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO progress_reports (id, project_id, reported_by, percent_done, funds_spent, narrative, as_of,"
        " milestones_met, reason, backdated, before) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
        uuid4(), project_id, by, report["percent_done"], report["funds_spent"], report["narrative"], report["as_of"],
        report["milestones_met"], report["reason"], backdated, before,
    )


async def report(conn, who: Principal, report_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT r.*, p.lead_unit, p.jurisdiction FROM progress_reports r JOIN projects p ON p.id = r.project_id"
        f" WHERE r.id = $1 AND {who.scope_sql('$2', 'p.jurisdiction')}", report_id, who.jurisdiction)
    if row is None:
        raise Problem(404, "report-not-found", "未找到进度报告 Progress report not found", f"no report {report_id} in your jurisdiction")
    return row


async def add_photo(conn, report_id: UUID, media_type: str, content: bytes, by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO photos (id, report_id, media_type, size, content, uploaded_by) VALUES ($1, $2, $3, $4, $5, $6)"
        " RETURNING id, report_id, media_type, size, uploaded_by, uploaded_at",
        uuid4(), report_id, media_type, len(content), content, by)


async def photo(conn, who: Principal, photo_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT ph.media_type, ph.content FROM photos ph JOIN progress_reports r ON r.id = ph.report_id"
        f" JOIN projects p ON p.id = r.project_id WHERE ph.id = $1 AND {who.scope_sql('$2', 'p.jurisdiction')}",
        photo_id, who.jurisdiction)
    if row is None:
        raise Problem(404, "photo-not-found", "未找到照片 Photo not found", f"no photo {photo_id} in your jurisdiction")
    return row


# ---------------------------------------------------------------- inspections


async def kinds_inspected(conn, project_id: UUID) -> set[InspectionKind]:
    rows = await conn.fetch("SELECT kind FROM inspections WHERE project_id = $1", project_id)
    return {InspectionKind(r["kind"]) for r in rows}


async def add_inspection(conn, project_id: UUID, body: dict[str, Any], mean: Any, term: int | None, by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO inspections (id, project_id, kind, inspected_on, rating, deputies, findings, recorded_by, term)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        uuid4(), project_id, body["kind"], body["inspected_on"], mean, body["deputies"],
        "\n".join(f["problem"] for f in body["findings"]), by, term)
    await conn.executemany("INSERT INTO inspection_ratings (inspection_id, deputy, rating) VALUES ($1, $2, $3)",
                           [(row["id"], r["deputy"], r["rating"]) for r in body["ratings"]])
    return row


# ---------------------------------------------------------------- rectification items


async def open_item(conn, project: asyncpg.Record, source: str, source_id: UUID, problem: str, due_on: date,
                    by: str, role: str, term: int | None) -> asyncpg.Record | None:
    """Open an item for the project's lead unit; None if this source already opened one (satisfaction)."""
    row = await conn.fetchrow(
        "INSERT INTO rectifications (id, project_id, source, source_id, problem, due_on, lead_unit, responsible, opened_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING *",
        uuid4(), project["id"], source, source_id, problem, due_on, project["lead_unit"], project["leader"], by)
    if row is not None:
        await log_action(conn, row["id"], "open", None, "open", by, role, term, problem)
    return row


async def item(conn, who: Principal, item_id: UUID, lock: str = "") -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT r.*, p.jurisdiction, p.year, p.title AS project_title FROM rectifications r JOIN projects p ON p.id = r.project_id"
        f" WHERE r.id = $1 AND {who.scope_sql('$2', 'p.jurisdiction')} {lock}", item_id, who.jurisdiction)
    if row is None:
        raise Problem(404, "rectification-not-found", "未找到整改事项 Rectification not found",
                      f"no rectification {item_id} in your jurisdiction")
    return row


async def move_item(conn, item_id: UUID, status: str, closed_on: date | None) -> asyncpg.Record:
    return await conn.fetchrow("UPDATE rectifications SET status = $2, closed_on = $3 WHERE id = $1 RETURNING *",
                               item_id, status, closed_on)


async def log_action(conn, item_id: UUID, action: str, from_status: str | None, to_status: str, actor: str, role: str,
                     term: int | None, text: str) -> None:
    await conn.execute(
        "INSERT INTO rectification_actions (item_id, action, from_status, to_status, actor, actor_role, term, text)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", item_id, action, from_status, to_status, actor, role, term, text)


async def items(conn, jurisdiction: str, year: int | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT r.*, p.jurisdiction, p.year, p.title AS project_title, p.leader,
                   coalesce((SELECT jsonb_agg(a ORDER BY a.seq) FROM rectification_actions a WHERE a.item_id = r.id), '[]') AS history
            FROM rectifications r JOIN projects p ON p.id = r.project_id
            WHERE {scope_sql('$1', 'p.jurisdiction')} AND ($2::int IS NULL OR p.year = $2) ORDER BY r.created_at""",
        jurisdiction, year)


# ---------------------------------------------------------------- the key supervision plan


async def add_activity(conn, jurisdiction: str, year: int, body: dict[str, Any], by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO activities (id, jurisdiction, year, kind, title, scheduled_on, project_ids, participants, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        uuid4(), jurisdiction, year, body["kind"], body["title"], body["scheduled_on"], body["project_ids"],
        body["participants"], by)


async def activity(conn, who: Principal, activity_id: UUID, lock: str = "") -> asyncpg.Record:
    return await fetch_in_scope(conn, who, "activities", activity_id, "activity", "监督活动", lock)


async def update_activity(conn, activity_id: UUID, status: str, scheduled_on: date, held_on: date | None,
                          notes: str) -> asyncpg.Record:
    return await conn.fetchrow("UPDATE activities SET status = $2, scheduled_on = $3, held_on = $4, notes = $5"
                               " WHERE id = $1 RETURNING *", activity_id, status, scheduled_on, held_on, notes)


async def log_activity(conn, activity_id: UUID, action: str, before: Any, after: Any, reason: str | None, by: str) -> None:
    await conn.execute("INSERT INTO activity_history (activity_id, action, before, after, reason, actor)"
                       " VALUES ($1, $2, $3, $4, $5, $6)", activity_id, action, before, after, reason, by)


async def activities(conn, jurisdiction: str, year: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM activities WHERE {scope_sql('$1')} AND year = $2 ORDER BY scheduled_on, created_at",
        jurisdiction, year)


async def unknown_projects(conn, jurisdiction: str, project_ids: list[UUID]) -> list[UUID]:
    found = {r["id"] for r in await conn.fetch(
        f"SELECT id FROM projects WHERE id = ANY($1) AND {scope_sql('$2')}", project_ids, jurisdiction)}
    return [p for p in project_ids if p not in found]
