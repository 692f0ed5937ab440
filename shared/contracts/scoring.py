"""Events produced by scoring (考核), read by the county assessment system (县考核)."""

from __future__ import annotations

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
class AssessmentUpdated(Payload):
    """A township's annual assessment of its voted projects. A recalculation sends a new
    ``version``; the county system keeps the highest."""

    assessment_id: UUID
    year: int
    version: int
    method: dict  # the year's assessment method (年度考核评比办法) the figures were computed under
    total_projects: int
    completed: int
    completion_rate: Decimal  # 完成率, 0..1
    bonus: Decimal  # 加分
    deduction: Decimal  # 扣分
    net_points: Decimal
    projects: list[ProjectScore]
