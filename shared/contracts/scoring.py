"""Events produced by scoring (考核), read by the county assessment system (县考核)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel

from shared.contracts.envelope import Payload, event
from shared.contracts.supervision import Completion


class ProjectScore(BaseModel):
    project_id: UUID
    title: str
    score: Decimal | None  # None until an inspection is rated
    completion: Completion | None


@event("scoring.assessment.updated", 1)
class AssessmentUpdatedV1(Payload):
    """Version 1 (no longer sent): a township's annual assessment of its voted projects."""

    assessment_id: UUID
    year: int
    version: int
    method: dict
    total_projects: int
    completed: int
    completion_rate: Decimal
    bonus: Decimal
    deduction: Decimal
    net_points: Decimal
    projects: list[ProjectScore]


@event("scoring.assessment.updated", 2)
class AssessmentUpdated(Payload):
    """A township's annual assessment of its voted projects. A recalculation (a new inspection,
    a corrected method) sends a new ``version``, never an overwrite; the county keeps the highest.
    Every figure was computed under ``method_version`` (e.g. ``taihu/2024/v2``)."""

    assessment_id: UUID
    year: int
    version: int
    reason: str  # what caused this version: published, recalculated after an event, method corrected
    method_version: str
    method: dict  # the method itself (年度考核评比办法), as it was
    as_of: date  # rectification items overdue on this day count
    total_projects: int
    completed: int
    completion_rate: Decimal  # 完成率, 0..1
    bonus: Decimal  # 加分
    deduction: Decimal  # 扣分 for unfinished projects
    overdue_rectifications: int
    rectification_deduction: Decimal  # 整改逾期扣分
    net_points: Decimal
    investment_planned: Decimal  # 计划投资
    investment_spent: Decimal  # 完成投资
    investment_rate: Decimal  # 投资完成率, 0..1
    projects: list[ProjectScore]
