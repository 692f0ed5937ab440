"""What the ballot routes answer (``response_model``), so that OpenAPI says it and nothing else leaks."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class RosterOut(BaseModel):
    term: int
    quota: int
    seated: int
    vacant: int


class RosterChangeOut(BaseModel):
    id: UUID
    term: int
    deputy_id: str
    name: str | None
    seated: bool
    reason: str
    effective: str


class SessionOut(BaseModel):
    id: UUID
    name: str
    year: int
    term: int
    status: str
    seated: int
    present: int
    quorum: bool | None = None
    tellers: list[str] = []
    threshold: int | None = None
    roster_changes_applied: list[dict[str, Any]] = []


class SessionClosedOut(BaseModel):
    id: UUID
    status: str


class AttendanceOut(BaseModel):
    seated: int
    present: int
    quorum: bool


class TellerOut(BaseModel):
    teller_id: str
    suite: str
    fingerprint: str


class TellersOut(BaseModel):
    id: UUID
    tellers: list[TellerOut]
    threshold: int


class Departure(BaseModel):
    what: str
    label: str
    reason: str
    by: str


class VoteOut(BaseModel):
    """A vote: its ballot, its progress (never a partial tally), its result once counted."""

    id: UUID
    session_id: UUID
    kind: str
    mode: str
    slate_id: UUID | None
    status: str
    round: int
    rules: dict[str, Any]
    seats: int
    subjects: list[dict[str, str]]
    withdrawn: list[dict[str, str]]
    departures: list[Departure]
    candidates: list[str]
    sealed: bool
    issued: int | None = None
    cast: int | None = None
    void_reason: str | None = None
    result: dict[str, Any] | None = None
    certified_at: datetime | None = None
    certified_by: str | None = None
    tellers: list[str] | None = None
    threshold: int | None = None


class WithdrawalOut(BaseModel):
    id: UUID
    withdrawn: list[dict[str, str]]
    candidates: list[dict[str, str]]


class PaperBallotOut(BaseModel):
    vote_id: UUID
    round: int
    status: str
    valid: bool


class MyShareOut(BaseModel):
    vote_id: UUID
    round: int
    status: str
    teller_id: str
    index: int
    suite: str
    sealed: str
    commitment: str
    threshold: int
    fingerprint: str


class ReceiptOut(BaseModel):
    vote_id: UUID
    tracker: str
    round: int
    counted: bool
    status: str


# Answers documented by the fields a client relies on; the rest of a round's counts and result
# (their shape follows the vote's kind and format) comes with them (additional properties).
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SlateCopy(_Open):
    """A slate as intake published it."""

    id: UUID
    jurisdiction: str
    title: str
    year: int
    seats: int
    candidates: list[dict[str, Any]]


class VoteStep(_Open):
    """The vote after a close or a certification: its status and, once counted, its result."""

    id: UUID
    status: str = Field(description="closed, awaiting_shares (a sealed round waits for the tellers), certified, …")


class CertifiedOut(VoteStep):
    certified_at: datetime
    certified_by: str


class RoundStep(_Open):
    vote_id: UUID
    status: str
    round: int | None = None


class Publication(_Open):
    vote_id: UUID
    kind: str
    seats: int
    certified_at: datetime | None
    result: dict[str, Any]
    rounds: list[dict[str, Any]]


LIVE = {200: {"content": {"text/event-stream": {"schema": {
    "type": "object", "required": ["data"], "description": "one server-sent event: event state, data the JSON state",
    "properties": {"event": {"type": "string"}, "data": {"type": "string", "contentMediaType": "application/json"}}}}}}}
