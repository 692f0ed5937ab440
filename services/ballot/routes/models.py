"""What the ballot routes answer (``response_model``), so that OpenAPI says it and nothing else leaks."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel


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
