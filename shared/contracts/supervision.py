"""Events produced by supervision (监督)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.envelope import Payload, event


class InspectionKind(StrEnum):
    CONCENTRATED_INSPECTION = "concentrated_inspection"  # 集中视察
    ON_SITE_QUESTIONING = "on_site_questioning"  # 现场问询
    THEMATIC_INQUIRY = "thematic_inquiry"  # 专题询问
    REPORT_HEARING = "report_hearing"  # 听取实施情况报告
    MID_TERM = "mid_term"  # 期中考评
    FINAL = "final"  # 期末考评
    LOOK_BACK = "look_back"  # 回头看


class Completion(StrEnum):
    COMPLETED = "completed"  # 完成
    BASICALLY_COMPLETED = "basically_completed"  # 基本完成
    NOT_COMPLETED = "not_completed"  # 未完成


@event("supervision.project.created", 1)
class ProjectCreated(Payload):
    project_id: UUID
    candidate_id: UUID
    vote_id: UUID
    title: str
    year: int


class Milestone(BaseModel):
    due_on: date
    expected_percent: int = Field(ge=0, le=100)
    description: str = ""


@event("supervision.project.planned", 1)
class ProjectPlanned(Payload):
    """A project's plan, set or corrected: lead unit, budget (the planned investment), milestones."""

    project_id: UUID
    year: int
    lead_unit: str  # 牵头实施单位
    leader: str  # 责任领导
    budget: Decimal | None
    funding_source: str  # 资金来源
    milestones: list[Milestone]  # 时间节点 of this year


@event("supervision.progress.reported", 1)
class ProgressReported(Payload):
    """A lead unit's progress report. ``funds_spent`` is cumulative (investment completed)."""

    report_id: UUID
    project_id: UUID
    year: int
    as_of: date
    percent_done: int = Field(ge=0, le=100)
    funds_spent: Decimal | None
    backdated: bool


@event("supervision.inspection.recorded", 1)
class InspectionRecordedV1(Payload):
    """Version 1: one rating per inspection. Still understood by consumers; no longer sent."""

    inspection_id: UUID
    project_id: UUID
    year: int
    kind: InspectionKind
    rating: int = Field(ge=0, le=100)
    inspected_on: date


class DeputyRating(BaseModel):
    deputy: str
    rating: int = Field(ge=0, le=100)


@event("supervision.inspection.recorded", 2)
class InspectionRecorded(Payload):
    """An inspection with each participating deputy's rating; the assessment method (scoring)
    decides how they aggregate. ``ratings`` is empty for an unrated inspection (e.g. 专题询问)."""

    inspection_id: UUID
    project_id: UUID
    year: int
    kind: InspectionKind
    inspected_on: date
    ratings: list[DeputyRating]
    term: int | None  # the congress term (届) the deputies served under


class RectificationStatus(StrEnum):
    OPEN = "open"
    RESPONDED = "responded"
    SENT_BACK = "sent_back"
    CLOSED = "closed"
    REOPENED = "reopened"


@event("supervision.rectification.updated", 1)
class RectificationUpdated(Payload):
    """A rectification item (整改事项) opened or moved along its loop; overdue ones cost points."""

    item_id: UUID
    project_id: UUID
    year: int
    status: RectificationStatus
    due_on: date
    closed_on: date | None  # when it was last verified, if closed


@event("supervision.project.completed", 1)
class ProjectCompleted(Payload):
    project_id: UUID
    year: int
    completion: Completion
    accepted_on: date | None = None  # 验收
