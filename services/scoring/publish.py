"""Computing and publishing a township's assessment: a new version each time the figures change,
sent as ``scoring.assessment.updated`` (the county's queue) and to each webhook subscriber."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from services.scoring import domain, store
from services.scoring.domain import SATISFACTION, inspection_rating
from shared.contracts.scoring import AssessmentUpdated, ProjectScore
from shared.contracts.supervision import Completion
from shared.db import UnitOfWork

# Figures that identify a version's content: a recalculation that changes none of them sends nothing.
_IDENTITY = ("assessment_id", "version", "reason", "as_of")


async def rescore(uow: UnitOfWork, jurisdiction: str, project_id: UUID, year: int) -> None:
    """Recompute a project's score from all its ratings under the year's method."""
    method = (await store.method_for(uow.conn, jurisdiction, year)).method
    by_kind: dict[str, list[Decimal]] = defaultdict(list)
    for r in await store.ratings(uow.conn, project_id):
        rating = inspection_rating(r["scores"], method)
        if rating is not None:
            by_kind[r["kind"]].append(rating)
    for rate in await store.satisfaction_rates(uow.conn, project_id):
        by_kind[SATISFACTION].append(Decimal(rate) * 100)
    await store.update_project(uow.conn, project_id, score=domain.project_score(by_kind, method))


async def compute(uow: UnitOfWork, jurisdiction: str, year: int, on: date, reason: str) -> AssessmentUpdated | None:
    """The township's figures now, under the year's method; None without voted projects."""
    projects = await store.township_projects(uow.conn, jurisdiction, year)
    if not projects:
        return None
    method = await store.method_for(uow.conn, jurisdiction, year)
    completions = [Completion(p["completion"]) if p["completion"] else None for p in projects]
    planned = sum((p["budget"] or Decimal(0) for p in projects), Decimal(0))
    spent = sum((p["funds_spent"] or Decimal(0) for p in projects if p["budget"]), Decimal(0))
    overdue = await store.overdue_rectifications(uow.conn, jurisdiction, year, on)
    figures = domain.assess(completions, method.method, overdue, planned, spent)
    return AssessmentUpdated(
        assessment_id=uuid4(), year=year, version=0, reason=reason, method_version=method.label,
        method=method.method.model_dump(mode="json"), as_of=on,
        total_projects=figures.total_projects, completed=figures.completed, completion_rate=figures.completion_rate,
        bonus=figures.bonus, deduction=figures.deduction, overdue_rectifications=figures.overdue_rectifications,
        rectification_deduction=figures.rectification_deduction, net_points=figures.net_points,
        investment_planned=figures.investment_planned, investment_spent=figures.investment_spent,
        investment_rate=figures.investment_rate,
        projects=[ProjectScore(project_id=p["id"], title=p["title"], score=p["score"], completion=c)
                  for p, c in zip(projects, completions, strict=True)],
    )


def _content(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in _IDENTITY}


async def publish(uow: UnitOfWork, jurisdiction: str, year: int, by: str, reason: str, on: date,
                  only_if_changed: bool = False) -> dict[str, Any] | None:
    """Store and send a new version of the township's assessment. ``only_if_changed`` (a
    recalculation) sends nothing when the figures are those of the latest version."""
    await store.lock_township_year(uow.conn, jurisdiction, year)  # versions of one township's year in order
    for project in await store.township_projects(uow.conn, jurisdiction, year):  # under the method in force now
        await rescore(uow, jurisdiction, project["id"], year)
    event = await compute(uow, jurisdiction, year, on, reason)
    if event is None:
        return None
    latest = await store.latest_assessment(uow.conn, jurisdiction, year)
    if only_if_changed and (latest is None or _content(latest["figures"]) == _content(event.model_dump(mode="json"))):
        return None
    event = event.model_copy(update={"version": 1 + (latest["version"] if latest else 0)})
    data = event.model_dump(mode="json")
    await store.add_assessment(uow.conn, event.assessment_id, jurisdiction, year, event.version, data, by,
                               event.method_version, reason)
    envelope = await uow.emit(event, jurisdiction)
    body = json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
    await store.enqueue_deliveries(uow.conn, event.assessment_id, jurisdiction, body)
    return {"jurisdiction": jurisdiction, **data}


async def recalculate(uow: UnitOfWork, jurisdiction: str, year: int, reason: str, by: str = "scoring") -> dict[str, Any] | None:
    """After a change that moves the figures: a new version, if the township was assessed already.
    It keeps the day of assessment (``as_of``) of the version it revises."""
    latest = await store.latest_assessment(uow.conn, jurisdiction, year)
    if latest is None:
        return None
    on = date.fromisoformat(latest["figures"]["as_of"])
    return await publish(uow, jurisdiction, year, by, reason, on, only_if_changed=True)
