"""Events produced by supervision (监督)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from shared.contracts.envelope import Payload, event


class InspectionKind(StrEnum):
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


@event("supervision.inspection.recorded", 1)
class InspectionRecorded(Payload):
    inspection_id: UUID
    project_id: UUID
    year: int
    kind: InspectionKind
    rating: int = Field(ge=0, le=100)
    inspected_on: date


@event("supervision.project.completed", 1)
class ProjectCompleted(Payload):
    project_id: UUID
    year: int
    completion: Completion
    accepted_on: date | None = None  # 验收
