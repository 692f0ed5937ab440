"""Events produced by intake (征集)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.envelope import Payload, event


class SlateCandidate(BaseModel):
    candidate_id: UUID  # the proposal that became a candidate
    title: str
    summary: str = ""


@event("intake.slate.published", 1)
class SlatePublished(Payload):
    """候选项目清单: the candidates a congress votes on, and how many seats (应选数)."""

    slate_id: UUID
    title: str
    year: int
    seats: int = Field(gt=0)
    candidates: list[SlateCandidate] = Field(min_length=1)
