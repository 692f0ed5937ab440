"""The intake API's request and response models (bounded: ``shared/fields.py``), and the one
function that turns a stored proposal into what the API shows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.intake.domain import feasibility, merging, tracking
from services.intake.domain.carryover import carried_supporters
from services.intake.domain.eligibility import Failure, Rules
from services.intake.domain.feasibility import Scores, Weights
from services.intake.domain.screening import CHANNEL_LABELS, DISPOSITION_LABELS, STAGE_LABELS, Channel, Disposition, ProposalFields, Stage
from shared.fields import Flag, Identifier, Name, Reason, Seats, Title, Year, items, text

Code = Annotated[str, Field(pattern=tracking.PATTERN, description="查询码, e.g. K7QM4-9XW2P")]
NoticeDays = Annotated[int, Field(ge=0, le=60, description="公示期, days (0: none)")]


# ---------------------------------------------------------------- requests


class ProposalIn(ProposalFields):
    year: Year = Field(description="the year the project would be carried out")


class ScreeningIn(BaseModel):
    to: Stage
    reason: text(2_000, min_length=0) = Field("", description="rejection: empty takes the failed eligibility checks' reasons")


class OverrideIn(BaseModel):
    rule: Identifier = Field(description="the failed rule's id")
    reason: Reason


class MergeIn(BaseModel):
    proposal_ids: list[UUID] = items(500, min_length=1, description="the proposals to merge into this item")
    reason: text(2_000, min_length=0) = ""


class UnmergeIn(BaseModel):
    reason: Reason


class SlateIn(BaseModel):
    title: Title
    year: Year
    seats: Seats
    proposal_ids: list[UUID] = items(1_000, min_length=1)
    allow_equal: Flag = Field(False, description="等额: only when the congress explicitly allows it")
    notice_days: NoticeDays | None = Field(None, description="公示期 before the ballot; default: the year's setting")


class SendIn(BaseModel):
    override_reason: text(2_000, min_length=0) = Field("", description="to send before the notice period ends")


class NoticeIn(BaseModel):
    days: NoticeDays = Field(ge=1)


class ObjectionIn(BaseModel):
    text: text(2_000)
    source: text(100, min_length=0) = Field("", description="how it came in (来信, 电话, 现场), not who")


class AnswerIn(BaseModel):
    answer: text(2_000)


class PlaceIn(BaseModel):
    name: Name
    kind: Identifier = "village"
    aliases: list[Name] = items(50, default_factory=list)
    within: Name | None = None
    ends: list[Name] = items(2, default_factory=list)


class PlacesIn(BaseModel):
    places: list[PlaceIn] = items(2_000)


class SettingsIn(BaseModel):
    eligibility: Rules | None = Field(None, description="null: the default negative list (负面清单)")
    feasibility_weights: Weights | None = None
    notice_days: NoticeDays = 0


# ---------------------------------------------------------------- responses


class Support(BaseModel):
    count: int
    by_channel: dict[str, int]
    by_location: dict[str, int]
    by_channel_label: dict[str, int]


class Feasibility(BaseModel):
    scores: Scores | None
    weighted: Decimal | None


class ProposalOut(BaseModel):
    id: UUID
    code: str
    year: int
    stage: Stage
    stage_label: str
    title: str
    content: str
    channel: Channel
    channel_label: str
    location: str
    category: str
    beneficiaries: int | None
    estimated_budget: Decimal | None
    funding_secured: bool
    funding_source: str
    lead_unit: str
    multi_year: bool
    milestones: str
    collected_on: date | None
    eligibility: list[Failure]
    rejection_reason: str | None
    merged_into: UUID | None
    carried_from: UUID | None
    history: dict[str, Any] | None = Field(description="carried from the project library: what it brings along")
    supporters: Support
    feasibility: Feasibility
    disposition: Disposition | None
    disposition_label: str | None
    disposition_reason: str | None
    created_at: datetime


class Duplicate(BaseModel):
    id: UUID
    code: str
    title: str
    location: str
    stage: Stage
    score: float
    text: float
    topic: float | None
    place: float | None


class SubmittedOut(ProposalOut):
    duplicates: list[Duplicate] = Field(description="likely duplicates among the year's proposals, best first")


class Decision(BaseModel):
    at: datetime
    actor: str
    from_stage: str
    to_stage: str
    reason: str


class ProposalDetail(ProposalOut):
    history_of_decisions: list[Decision]
    merged: list[UUID] = Field(description="the proposals merged into this item")


class DuplicatePair(BaseModel):
    a: Duplicate
    b: Duplicate
    score: float


class ContactOut(BaseModel):
    proposer: str
    contact: str
    erase_after: date
    erased: bool


def proposal_out(row, supporters: list[merging.Supporter], weights: feasibility.Weights | None = None) -> dict[str, Any]:
    """A stored proposal as the API shows it: the public fields only (the proposer and contact are
    in another table altogether), its supporters, checks and scores."""
    fields = ProposalFields.model_fields
    stored = row["fields"]
    scores = feasibility.Scores.model_validate(row["feasibility"]) if row["feasibility"] else None
    disposition = Disposition(row["disposition"]) if row["disposition"] else None
    return {
        "id": row["id"], "code": row["code"], "year": row["year"], "stage": row["stage"],
        "stage_label": STAGE_LABELS[Stage(row["stage"])],
        **{k: stored.get(k, fields[k].default) for k in fields if k not in ProposalFields.PRIVATE},
        "channel_label": CHANNEL_LABELS[Channel(stored["channel"])],
        "eligibility": row["eligibility"], "rejection_reason": row["rejection_reason"],
        "merged_into": row["merged_into"], "carried_from": row["carried_from"], "history": row["history"],
        "supporters": merging.support(supporters).as_dict(),
        "feasibility": {"scores": scores, "weighted": feasibility.weighted(scores, weights or feasibility.Weights())
                        if scores else None},
        "disposition": disposition, "disposition_label": DISPOSITION_LABELS[disposition] if disposition else None,
        "disposition_reason": row["disposition_reason"], "created_at": row["created_at"],
    }


def own_supporters(row) -> list[merging.Supporter]:
    """Who a stored proposal stands for: its proposer, or, carried from the library, last year's supporters."""
    if row["carried_from"] is not None:
        return carried_supporters(row["history"])
    return [merging.Supporter(row["fields"]["channel"], row["fields"].get("location", ""))]


class SlateCandidateOut(ProposalOut):
    candidate_id: UUID = Field(description="the proposal's id, as the ballot service knows the candidate")
    summary: str
    on_slate_supporters: int | None = Field(description="supporters when the slate was published")
    disposition_label: str | None


class ObjectionOut(BaseModel):
    id: UUID
    received_at: datetime
    text: str
    source: str
    answer: str | None
    answered_at: datetime | None


class NoticeOut(BaseModel):
    id: UUID
    kind: str
    kind_label: str
    starts_at: datetime
    ends_at: datetime
    open: bool
    objections: list[ObjectionOut]


class SlateOut(BaseModel):
    id: UUID
    title: str
    year: int
    seats: int
    status: str
    created_at: datetime
    sent_at: datetime | None
    notice_override: str | None
    candidates: list[SlateCandidateOut]
    notices: list[NoticeOut]


class SettingsOut(BaseModel):
    jurisdiction: str
    year: int
    eligibility: Rules
    feasibility_weights: Weights
    notice_days: int
    default: bool = Field(description="true: nothing set for this year; these are the defaults")


class ImportOut(BaseModel):
    dry_run: bool
    file_hash: str
    format: str
    encoding: str | None
    rows: int
    problems: list[dict[str, Any]] = Field(description="每个问题的行、列和说明 (row, column, message)")
    already_imported: bool
    import_id: UUID | None = None
    created: int = 0
    ineligible: int = Field(0, description="rows recorded with a failed eligibility check")
    preview: list[dict[str, Any]] = Field(default_factory=list, description="dry run: the first rows as they would be created")


class LibraryItem(BaseModel):
    id: UUID
    code: str
    title: str
    year: int
    disposition_reason: str | None
    supporters: int
    carried_to: UUID | None
    carried_to_stage: Stage | None


class TrackOut(BaseModel):
    """What anyone holding the code may see: never the proposer's name or contact, nor other proposals."""

    code: str
    year: int
    title: str
    stage: Stage
    stage_label: str
    submitted_at: datetime
    rejection_reason: str | None
    eligibility: list[dict[str, Any]]
    merged_into: dict[str, Any] | None
    slate: dict[str, Any] | None
    outcome: dict[str, Any] | None
    project: dict[str, Any] | None
    carried_to: dict[str, Any] | None
    notices: list[dict[str, Any]]
