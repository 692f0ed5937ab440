"""Events produced by ballot (票决)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.contracts.envelope import Payload, event


class CandidateResult(BaseModel):
    candidate_id: UUID
    title: str
    for_votes: int
    against: int
    abstain: int
    passed: bool
    chosen: bool
    rank: int | None  # among passing candidates, by "for" votes


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
    candidates: list[CandidateResult]
    certified_at: datetime
    certified_by: str

    @property
    def chosen(self) -> list[CandidateResult]:
        return [c for c in self.candidates if c.chosen]
