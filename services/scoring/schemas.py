"""What the scoring service answers: the response models of its routes (the OpenAPI contract)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.scoring.domain import AssessmentMethod
from shared.contracts.scoring import AssessmentUpdated
from shared.contracts.supervision import Completion

NOT_MODIFIED = {304: {"description": "Not modified: the If-None-Match ETag is current"}}


class ProjectScored(BaseModel):
    id: UUID
    jurisdiction: str
    year: int
    title: str
    lead_unit: str | None
    budget: float | None = Field(description="planned investment, 元")
    funds_spent: float | None = Field(description="investment completed, 元 (the latest report)")
    completion: Completion | None
    score: float | None = Field(description="weighted from the inspection ratings and satisfaction; none before any")
    satisfaction: str | None = Field(description="the satisfaction tier (满意度测评), once rated")


class AssessmentOut(AssessmentUpdated):
    """A township's assessment, as sent to the county assessment system."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    jurisdiction: str


class AssessmentRecord(AssessmentOut):
    published_at: datetime


class Ranked(BaseModel):
    rank: int
    jurisdiction: str
    version: int
    published_at: datetime
    method_version: str | None
    total_projects: int | None
    completed: int | None
    completion_rate: Decimal | None
    bonus: Decimal | None
    deduction: Decimal | None
    overdue_rectifications: int | None
    rectification_deduction: Decimal | None
    net_points: Decimal | None
    investment_planned: Decimal | None
    investment_spent: Decimal | None
    investment_rate: Decimal | None


class Version(BaseModel):
    version: int
    reason: str = Field(description="published, recalculated after an event, method corrected")
    method_version: str
    published_at: datetime
    figures: dict[str, Any]


class Change(Version):
    seq: int = Field(description="the cursor: pass the last one as ?since= to get only what came after")
    jurisdiction: str
    year: int


class Changes(BaseModel):
    since: int
    next: int
    more: bool
    changes: list[Change]


class MethodOut(BaseModel):
    jurisdiction: str = Field(description="whose method: the county's, a township's own, or empty for the defaults")
    year: int
    version: int
    label: str = Field(description="e.g. taihu/2024/v2; default/2024 for the defaults")
    method: AssessmentMethod


class MethodSet(MethodOut):
    recalculated: list[str] = Field(description="townships that got a recalculated assessment version")


class MethodVersionOut(BaseModel):
    jurisdiction: str
    year: int
    version: int
    method: dict[str, Any]
    set_at: datetime
    set_by: str


class SubscriberOut(BaseModel):
    id: UUID
    jurisdiction: str
    name: str
    url: str
    active: bool
    created_at: datetime


class SubscriberAdded(SubscriberOut):
    secret: str = Field(description="the HMAC key, shown once (a replayed answer says so instead)")


class DeliveryOut(BaseModel):
    id: UUID
    subscriber_id: UUID
    subscriber: str
    assessment_id: UUID
    jurisdiction: str
    year: int
    version: int
    status: str
    attempts: int
    failures: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    alerted_at: datetime | None
    created_at: datetime
    log: list[dict[str, Any]] = Field(description="every attempt: time, status code, error, manual")


class Deliveries(BaseModel):
    deliveries: list[DeliveryOut]
    alerts: list[DeliveryOut]


class Redelivery(BaseModel):
    id: UUID
    status: str
