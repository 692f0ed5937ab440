"""The typed result of a vote: each round's counts, each candidate's standing, each project's
rating, and where the vote stands; and the JSON forms they are stored and announced in. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from services.ballot.domain import rules
from services.ballot.domain.rules import SatisfactionCount, Tally


class Kind(StrEnum):
    SELECTION = "selection"  # 票决 of the slate
    SATISFACTION = "satisfaction"  # 满意度测评 of the year's voted projects



@dataclass
class Ratings:
    collected: int
    counts: dict[UUID, SatisfactionCount]



@dataclass(frozen=True)
class RoundResult:
    round: int
    candidates: list[str]
    seats: int
    issued: int
    void: bool
    void_reason: str | None
    collected: int
    valid: int
    invalid: int
    unopened: int
    counts: dict[str, dict[str, int]] | None = None
    ratings: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True)
class Standing:
    candidate_id: str
    title: str
    chosen: bool
    round: int | None
    for_votes: int
    against: int
    abstain: int
    not_marked: int
    passed: bool
    rank: int | None


@dataclass(frozen=True)
class Rating:
    project_id: str
    title: str
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    tier: str
    tier_label: str
    rate: float | None


@dataclass(frozen=True)
class VoteResult:
    kind: Kind
    seated: int
    present: int
    rounds: list[RoundResult]
    finished: bool
    note: str = ""
    chosen: list[str] = field(default_factory=list)
    candidates: list[Standing] = field(default_factory=list)
    next_candidates: list[str] = field(default_factory=list)
    next_seats: int = 0
    ratings: list[Rating] = field(default_factory=list)

    @property
    def first(self) -> RoundResult:
        return self.rounds[0]

    def as_json(self) -> dict[str, Any]:
        def round_json(r: RoundResult) -> dict[str, Any]:
            return {k: v for k, v in asdict(r).items() if v is not None or k == "void_reason"}

        base = {"kind": self.kind.value, "seated": self.seated, "present": self.present,
                "rounds": [round_json(r) for r in self.rounds], "issued": self.first.issued,
                "collected": self.first.collected, "valid": self.first.valid, "invalid": self.first.invalid,
                "finished": self.finished, "note": self.note}
        if self.kind is Kind.SATISFACTION:
            return {**base, "ratings": [asdict(r) for r in self.ratings]}
        return {**base, "chosen": self.chosen, "candidates": [asdict(c) for c in self.candidates],
                "next_candidates": self.next_candidates, "next_seats": self.next_seats}


def tally_json(t: Tally) -> dict[str, Any]:
    return {"collected": t.collected, "valid": t.valid, "invalid": t.invalid,
            "counts": {str(c): {"for": n.for_votes, "against": n.against, "abstain": n.abstain, "not_marked": n.not_marked}
                       for c, n in t.counts.items()}}


def tally_from_json(j: Mapping[str, Any], candidates: list[UUID]) -> Tally:
    """A stored tally, its counts in ballot order (jsonb keeps no key order; ties rank in ballot order)."""
    return Tally(j["collected"], j["valid"], j["invalid"],
                 {c: rules.CandidateCount(**dict(zip(("for_votes", "against", "abstain", "not_marked"),
                                                     (j["counts"][str(c)][k] for k in ("for", "against", "abstain", "not_marked")),
                                                     strict=True)))
                  for c in candidates})


def ratings_json(r: Ratings) -> dict[str, Any]:
    return {"collected": r.collected, "valid": r.collected, "invalid": 0,
            "ratings": {str(p): {"satisfied": c.satisfied, "basically_satisfied": c.basically, "dissatisfied": c.dissatisfied}
                        for p, c in r.counts.items()}}


def ratings_from_json(j: Mapping[str, Any]) -> Ratings:
    return Ratings(j["collected"], {UUID(p): SatisfactionCount(c["satisfied"], c["basically_satisfied"], c["dissatisfied"])
                                    for p, c in j["ratings"].items()})
