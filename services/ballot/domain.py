"""The vote (票决): quorum, ballot validity, tally, passing and ranking. Pure: no I/O.

Rules follow the domain rulebook; where places differ they are settings (``VoteRules``), frozen
when a vote opens and recorded with its result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Mark(StrEnum):
    FOR = "for"  # 赞成
    AGAINST = "against"  # 反对
    ABSTAIN = "abstain"  # 弃权


class BallotFormat(StrEnum):
    FOR_AGAINST_ABSTAIN = "for_against_abstain"  # per candidate 赞成/反对/弃权
    CHOOSE_UP_TO = "choose_up_to"  # tick up to N; only "for" marks


class PassingBasis(StrEnum):
    SEATED = "seated"  # more than half of all seated deputies (实有代表过半数)
    PRESENT = "present"  # more than half of those present
    RANKING = "ranking"  # no threshold: the top ``seats`` by "for" votes


class VoteRules(BaseModel):
    """The voting procedure (票决办法) a vote runs under."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ballot_format: BallotFormat = BallotFormat.FOR_AGAINST_ABSTAIN
    # Most "for" marks on one ballot; None = the number of seats.
    max_for: int | None = Field(default=None, gt=0)
    passing_basis: PassingBasis = PassingBasis.SEATED
    # Quorum: present ≥ numerator/denominator of seated deputies (exactly 2/3 is a quorum).
    quorum_numerator: int = Field(default=2, gt=0)
    quorum_denominator: int = Field(default=3, gt=0)

    @model_validator(mode="after")
    def _fraction(self) -> VoteRules:
        if self.quorum_numerator > self.quorum_denominator:
            raise ValueError("quorum fraction must be at most 1")
        return self

    def for_limit(self, seats: int) -> int:
        return self.max_for or seats


class BallotRejected(Exception):
    """A ballot refused before it is recorded."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def has_quorum(present: int, seated: int, rules: VoteRules = VoteRules()) -> bool:
    """法定人数: present ≥ 2/3 of seated (default), exactly 2/3 included. No deputies, no quorum."""
    return seated > 0 and present * rules.quorum_denominator >= seated * rules.quorum_numerator


def check_ballot(marks: Mapping[UUID, Mark], candidates: Iterable[UUID], seats: int, rules: VoteRules) -> bool:
    """Returns whether the ballot is valid. A mark for a candidate not on the ballot is refused
    outright; more "for" marks than allowed make the whole ballot invalid (but collected);
    a blank ballot is valid."""
    on_ballot = set(candidates)
    stray = [c for c in marks if c not in on_ballot]
    if stray:
        raise BallotRejected("unknown-candidate", f"candidate(s) not on this ballot: {', '.join(map(str, stray))}")
    if rules.ballot_format is BallotFormat.CHOOSE_UP_TO and any(m is not Mark.FOR for m in marks.values()):
        raise BallotRejected("mark-not-allowed", "a choose-up-to ballot takes only 'for' marks")
    return sum(1 for m in marks.values() if m is Mark.FOR) <= rules.for_limit(seats)


@dataclass
class CandidateCount:
    for_votes: int = 0
    against: int = 0
    abstain: int = 0
    not_marked: int = 0  # 未按: a valid ballot with no mark for this candidate


@dataclass
class Tally:
    collected: int
    valid: int
    invalid: int
    counts: dict[UUID, CandidateCount]


def tally(ballots: Iterable[Mapping[UUID, Mark]], candidates: Iterable[UUID], seats: int, rules: VoteRules) -> Tally:
    """Count the ballots collected in one round. Invalid ballots count as collected, nothing else."""
    ids = list(candidates)
    counts = {c: CandidateCount() for c in ids}
    collected = valid = 0
    for marks in ballots:
        collected += 1
        if not check_ballot(marks, ids, seats, rules):
            continue
        valid += 1
        for c in ids:
            mark = marks.get(c)
            count = counts[c]
            if mark is Mark.FOR:
                count.for_votes += 1
            elif mark is Mark.AGAINST:
                count.against += 1
            elif mark is Mark.ABSTAIN:
                count.abstain += 1
            else:
                count.not_marked += 1
    return Tally(collected=collected, valid=valid, invalid=collected - valid, counts=counts)


def round_stands(issued: int, collected: int) -> bool:
    """发出/收回: more ballots collected than issued (possible on paper) voids the round."""
    return collected <= issued


def passes(for_votes: int, seated: int, present: int, rules: VoteRules) -> bool:
    """Strictly more than half of the basis: exactly half fails."""
    if rules.passing_basis is PassingBasis.SEATED:
        return 2 * for_votes > seated
    if rules.passing_basis is PassingBasis.PRESENT:
        return 2 * for_votes > present
    return True


@dataclass
class Outcome:
    passed: list[UUID]  # in rank order
    ranks: dict[UUID, int]  # competition ranking ("1224") among passing candidates
    chosen: list[UUID]
    # A tie at the cut-off: these share the last places and need a further round for ``open_seats``.
    tied: list[UUID] = field(default_factory=list)
    open_seats: int = 0

    @property
    def shortfall(self) -> int:
        """Seats left empty because too few passed (另行票决 or accept fewer)."""
        return self.open_seats if not self.tied else 0

    @property
    def decided(self) -> bool:
        return self.open_seats == 0


def decide(result: Tally, seats: int, seated: int, present: int, rules: VoteRules) -> Outcome:
    """Which candidates pass, their ranking by "for" votes, and the top ``seats`` chosen."""
    if rules.passing_basis is PassingBasis.RANKING:
        eligible = [c for c, n in result.counts.items() if n.for_votes > 0]
    else:
        eligible = [c for c, n in result.counts.items() if passes(n.for_votes, seated, present, rules)]
    votes = {c: result.counts[c].for_votes for c in eligible}
    ordered = sorted(eligible, key=lambda c: -votes[c])
    ranks = {c: 1 + sum(1 for o in ordered if votes[o] > votes[c]) for c in ordered}
    if len(ordered) <= seats:
        return Outcome(ordered, ranks, chosen=ordered, open_seats=seats - len(ordered))
    cutoff = votes[ordered[seats - 1]]
    above = [c for c in ordered if votes[c] > cutoff]
    at_cutoff = [c for c in ordered if votes[c] == cutoff]
    if len(above) + len(at_cutoff) == seats:
        return Outcome(ordered, ranks, chosen=above + at_cutoff)
    return Outcome(ordered, ranks, chosen=above, tied=at_cutoff, open_seats=seats - len(above))
