"""Events produced by ballot (票决)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.contracts.envelope import Payload, event


class CandidateResult(BaseModel):
    """A candidate's counts in the last round it stood in, and whether it was chosen."""

    candidate_id: UUID
    title: str
    for_votes: int
    against: int
    abstain: int
    passed: bool
    chosen: bool
    rank: int | None  # among passing candidates, by "for" votes


class RoundCounts(BaseModel):
    round: int
    candidates: list[UUID]
    seats: int
    issued: int
    collected: int
    valid: int
    invalid: int
    void: bool


@event("ballot.result.certified", 1)
class ResultCertified(Payload):
    """A certified vote result. Certification is what creates projects (supervision)
    and disposes of the candidates not chosen (intake)."""

    vote_id: UUID
    session_id: UUID
    session_name: str
    slate_id: UUID
    year: int
    seats: int
    seated: int  # 实有代表
    present: int
    issued: int  # 发出
    collected: int  # 收回
    valid: int
    invalid: int
    rules: dict[str, Any]  # the settings the vote ran under, frozen at open
    candidates: list[CandidateResult]  # counts from the last round each candidate stood in
    rounds: list[RoundCounts]  # every round, first to last (the top-level counts are the first round's)
    certified_at: datetime
    certified_by: str

    @property
    def chosen(self) -> list[CandidateResult]:
        return [c for c in self.candidates if c.chosen]


class RatedProject(BaseModel):
    project_id: UUID
    title: str
    satisfied: int  # 满意
    basically_satisfied: int  # 基本满意
    dissatisfied: int  # 不满意
    tier: str  # satisfied / basically_satisfied / dissatisfied, by the rule over seated deputies
    rate: float | None  # (满意 + 基本满意) / votes on the project


@event("ballot.satisfaction.certified", 1)
class SatisfactionCertified(Payload):
    """A certified satisfaction rating (满意度测评) of the year's voted projects. 不满意 sends a
    project back to its lead unit for rectification (supervision); scoring counts the rating."""

    vote_id: UUID
    session_id: UUID
    session_name: str
    year: int
    seated: int
    present: int
    issued: int
    collected: int
    projects: list[RatedProject]
    certified_at: datetime
    certified_by: str


@event("ballot.session.created", 1)
class SessionCreated(Payload):
    """A sitting of a congress (人代会会议) was set up. Identity gives it a check-in code (签到码),
    the one thing the office prints or shows in the hall."""

    session_id: UUID
    term: int  # 届: the deputies of the session are (jurisdiction, term, deputy id)
    name: str
    year: int


@event("ballot.attendance.recorded", 1)
class AttendanceRecorded(Payload):
    """The office's roll call (签到) of a session: deputies it confirmed present, and those who
    left (离场). Identity issues a deputy's voting credential only while the deputy is present,
    and ends it when the deputy leaves."""

    session_id: UUID
    term: int
    present: list[str]  # deputy ids, of (envelope jurisdiction, term)
    absent: list[str]
