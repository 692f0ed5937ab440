"""Events produced by intake (征集)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.envelope import Payload, event


class SlateCandidate(BaseModel):
    candidate_id: UUID  # the proposal that became a candidate
    title: str
    summary: str = ""
    # How many asked for it: the item's own proposal, those merged into it, and supporters carried
    # from the project library. Optional, so that version 1 stays readable both ways: a consumer
    # that does not know the field ignores it; an older producer leaves it out (None: not counted).
    supporters: int | None = Field(None, ge=1)


@event("intake.slate.published", 1)
class SlatePublished(Payload):
    """候选项目清单: the candidates a congress votes on, and how many seats (应选数)."""

    slate_id: UUID
    title: str
    year: int
    seats: int = Field(gt=0)
    candidates: list[SlateCandidate] = Field(min_length=1)


@event("intake.proposal.merged", 1)
class ProposalMerged(Payload):
    """合并: proposals asking for the same thing were merged into one item, which keeps each of
    them as a supporter. Counts only: supporters' names and contacts never leave intake."""

    item_id: UUID
    title: str
    year: int
    merged: list[UUID] = Field(min_length=1)  # the proposals merged by this decision
    supporters: int = Field(ge=2)  # the item's supporters after the merge
    by_channel: dict[str, int]  # 来源渠道 → how many
    by_location: dict[str, int]  # village/community → how many
