"""What the supervision service answers: the response models of its routes (the OpenAPI contract)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.supervision import Completion, InspectionKind

IMAGES = {"image/jpeg", "image/png", "image/webp"}
BINARY = {"schema": {"type": "string", "format": "binary"}}


class ProjectOut(BaseModel):
    """A voted project (one per chosen candidate of a certified vote) and its plan."""

    id: UUID
    jurisdiction: str
    year: int
    vote_id: UUID
    candidate_id: UUID
    title: str
    lead_unit: str | None = Field(description="牵头实施单位")
    leader: str | None = Field(description="责任领导")
    budget: float | None = Field(description="元")
    funding_source: str | None = Field(description="资金来源")
    deadline: date | None
    presidium_member: str | None = Field(description="联系项目的主席团成员")
    completion: Completion | None
    accepted_on: date | None = Field(description="验收")
    created_at: datetime


class ProjectListed(ProjectOut):
    percent_done: int | None = Field(description="the latest progress report's")
    funds_spent: float | None
    progress_as_of: date | None


class MilestoneOut(BaseModel):
    due_on: date
    expected_percent: int
    description: str


class SupervisorOut(BaseModel):
    term: int
    deputy: str
    is_leader: bool = Field(description="监督长")


class ProgressOut(BaseModel):
    id: UUID
    project_id: UUID
    as_of: date = Field(description="the day the report describes")
    reported_at: datetime
    reported_by: str
    percent_done: int
    funds_spent: float | None
    narrative: str
    milestones_met: list[date]
    reason: str | None = Field(description="why percent done went down, if it did")
    backdated: bool
    before: dict[str, Any] | None = Field(description="the latest report's figures when this one was filed")


class ProgressWithPhotos(ProgressOut):
    photos: list[UUID]


class PhotoOut(BaseModel):
    id: UUID
    report_id: UUID
    media_type: str
    size: int
    uploaded_by: str
    uploaded_at: datetime


class DeputyRatingOut(BaseModel):
    deputy: str
    rating: int


class InspectionOut(BaseModel):
    id: UUID
    project_id: UUID
    kind: InspectionKind
    inspected_on: date
    rating: float | None = Field(description="the plain mean of the deputies' ratings")
    ratings: list[DeputyRatingOut]
    deputies: list[str]
    findings: str
    recorded_by: str
    recorded_at: datetime
    term: int | None


class RectificationOut(BaseModel):
    """整改事项: a problem sent to the lead unit with a due date."""

    id: UUID
    project_id: UUID
    source: str = Field(description="satisfaction or inspection")
    source_id: UUID
    problem: str
    due_on: date
    status: str
    lead_unit: str | None
    responsible: str | None
    closed_on: date | None
    opened_by: str
    created_at: datetime


class InspectionRecorded(InspectionOut):
    rectifications: list[RectificationOut] = Field(description="the items its findings opened")


class ProjectDetail(ProjectOut):
    milestones: list[MilestoneOut]
    supervisors: list[SupervisorOut]
    progress: list[ProgressWithPhotos]
    inspections: list[InspectionOut]
    rectifications: list[RectificationOut]


class GroupOut(BaseModel):
    project_id: UUID
    term: int
    deputies: list[str]
    leader: str | None


class BoardProject(BaseModel):
    id: UUID
    jurisdiction: str
    title: str
    lead_unit: str | None
    percent_done: int | None
    expected_percent: int
    colour: str


class Board(BaseModel):
    on: date
    counts: dict[str, int] = Field(description="projects per colour")
    projects: list[BoardProject]


class ItemMoved(RectificationOut):
    status_label: str
    overdue: bool


class ItemListed(ItemMoved):
    jurisdiction: str
    year: int
    project_title: str
    leader: str | None
    history: list[dict[str, Any]] = Field(description="every step of the loop: who, when, what, under which term")


class LoopCounts(BaseModel):
    opened: int
    responded: int
    sent_back: int
    verified: int
    reopened: int
    overdue: int
    open_now: int


class Items(BaseModel):
    on: date
    items: list[ItemListed]
    overdue: list[ItemListed]
    counts: LoopCounts


class ActivityOut(BaseModel):
    id: UUID
    jurisdiction: str
    year: int
    kind: str
    title: str
    scheduled_on: date
    status: str
    project_ids: list[UUID]
    participants: list[str]
    held_on: date | None
    notes: str
    created_by: str
    created_at: datetime
    timing: str | None = Field(description="overdue, upcoming, or none")


class Plan(BaseModel):
    year: int
    on: date
    activities: list[ActivityOut]
    overdue: list[ActivityOut]
    upcoming: list[ActivityOut]


class TermStarted(BaseModel):
    jurisdiction: str
    term: int
    previous: int | None
    groups: int
