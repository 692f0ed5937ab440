"""What the ballot service answers: the response models of its routes (the OpenAPI contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.ballot.domain import VoteRules
from shared.contracts.intake import SlateCandidate


class RosterOut(BaseModel):
    term: int
    quota: int
    seated: int = Field(description="实有代表")
    vacant: int


class Attendance(BaseModel):
    seated: int
    present: int


class SessionOut(Attendance):
    id: UUID
    name: str
    year: int
    term: int


class RollCallOut(Attendance):
    quorum: bool = Field(description="present ≥ 2/3 of seated")


class SessionDetail(SessionOut, RollCallOut):
    pass


class SlateOut(BaseModel):
    """A slate as intake published it."""

    id: UUID
    jurisdiction: str
    title: str
    year: int
    seats: int
    candidates: list[SlateCandidate]
    received_at: datetime


class Subject(BaseModel):
    id: UUID
    title: str


class Candidate(BaseModel):
    candidate_id: UUID
    title: str


class Withdrawn(BaseModel):
    id: UUID
    reason: str


class VoteCreated(BaseModel):
    id: UUID
    kind: Literal["selection", "satisfaction"]
    mode: Literal["electronic", "paper"]
    status: str
    seats: int
    subjects: list[Subject]
    candidates: list[Candidate]


class WithdrawalOut(BaseModel):
    id: UUID
    withdrawn: list[Withdrawn]
    candidates: list[Subject] = Field(description="those left on the ballot")


class Opened(Attendance):
    id: UUID
    status: str
    round: int
    candidates: list[UUID]
    seats: int
    issued: int = Field(description="发出: one ballot per deputy present")


class Cast(BaseModel):
    vote_id: UUID
    round: int
    status: str
    receipt: str | None = Field(description="the private receipt code, shown once (null on a replayed answer)")


class PaperBallotOut(BaseModel):
    vote_id: UUID
    round: int
    status: str
    valid: bool


class Count(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    for_: int = Field(alias="for")
    against: int
    abstain: int
    not_marked: int = Field(description="未按")


class RatingCount(BaseModel):
    satisfied: int
    basically_satisfied: int
    dissatisfied: int


class Tally(BaseModel):
    collected: int
    valid: int
    invalid: int
    counts: dict[UUID, Count] | None = Field(None, description="selection: per candidate")
    ratings: dict[UUID, RatingCount] | None = Field(None, description="satisfaction: per project")


class PaperTotalsOut(Tally):
    vote_id: UUID
    round: int
    status: str


class RoundOut(Tally):
    round: int
    candidates: list[UUID]
    seats: int
    issued: int
    void: bool = Field(description="more ballots collected than issued: the round is run again")


class CandidateOutcome(BaseModel):
    candidate_id: UUID
    title: str
    chosen: bool
    round: int | None = Field(description="the last round the candidate stood in")
    for_votes: int
    against: int
    abstain: int
    not_marked: int
    passed: bool
    rank: int | None


class RatingOut(RatingCount):
    project_id: UUID
    title: str
    tier: Literal["satisfied", "basically_satisfied", "dissatisfied"]
    tier_label: str
    rate: float | None = Field(description="(满意 + 基本满意) / votes")


class _Counts(BaseModel):
    seated: int
    present: int
    rounds: list[RoundOut]
    issued: int
    collected: int
    valid: int
    invalid: int
    finished: bool


class SelectionResult(_Counts):
    kind: Literal["selection"]
    note: str
    chosen: list[UUID]
    candidates: list[CandidateOutcome]
    next_candidates: list[UUID]
    next_seats: int


class SatisfactionResult(_Counts):
    kind: Literal["satisfaction"]
    ratings: list[RatingOut]


Result = Annotated[SelectionResult | SatisfactionResult, Field(discriminator="kind")]


class _Closed(BaseModel):
    id: UUID
    status: str


class ClosedSelection(SelectionResult, _Closed):
    pass


class ClosedSatisfaction(SatisfactionResult, _Closed):
    pass


Closed = Annotated[ClosedSelection | ClosedSatisfaction, Field(discriminator="kind")]


class _Certification(BaseModel):
    certified_at: datetime
    certified_by: str


class CertifiedSelection(ClosedSelection, _Certification):
    pass


class CertifiedSatisfaction(ClosedSatisfaction, _Certification):
    pass


Certified = Annotated[CertifiedSelection | CertifiedSatisfaction, Field(discriminator="kind")]


class VoteDetail(BaseModel):
    id: UUID
    session_id: UUID
    kind: Literal["selection", "satisfaction"]
    mode: Literal["electronic", "paper"]
    slate_id: UUID | None
    status: Literal["draft", "open", "closed", "certified"]
    round: int
    rules: VoteRules
    seats: int
    subjects: list[Subject]
    withdrawn: list[Withdrawn]
    issued: int | None = Field(description="ballots issued in the current round (none before it opens)")
    cast: int = Field(description="ballots cast so far in the current round; never a partial tally")
    result: Result | None = None
    certified_at: datetime | None = None
    certified_by: str | None = None


class PublishedRound(BaseModel):
    round: int
    candidates: list[UUID]
    seats: int
    issued: int
    totals: Tally | None = Field(description="paper: the tellers' totals, when entered as totals")
    receipt_hashes: list[str]
    ballots: list[dict[UUID, str]] = Field(description="anonymised, in random order")


class Publication(BaseModel):
    vote_id: UUID
    kind: Literal["selection", "satisfaction"]
    rules: VoteRules
    seats: int
    subjects: list[Subject]
    certified_at: datetime
    result: Result
    rounds: list[PublishedRound]


class LiveResult(BaseModel):
    issued: int
    collected: int
    valid: int
    invalid: int
    chosen: list[UUID] | None
    finished: bool


class LiveVote(BaseModel):
    id: UUID
    kind: Literal["selection", "satisfaction"]
    status: Literal["draft", "open", "closed", "certified"]
    round: int
    issued: int | None
    cast: int
    result: LiveResult | None = Field(None, description="once the round is closed: its counts, never before")


class LiveState(Attendance):
    """One ``state`` event of the live view (``data`` is this, as JSON)."""

    session_id: UUID
    votes: list[LiveVote]


LIVE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"const": "state"},
    "data": {"type": "string", "contentMediaType": "application/json",
             "contentSchema": {"$ref": "#/components/schemas/LiveState"}}}}
