"""The vote's rules (票决): quorum, ballot validity, tally, passing and ranking. Pure: no I/O.

Rules follow the domain rulebook; where places differ they are settings (``VoteRules``), frozen
when a vote opens and recorded with its result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from services.ballot.domain.refusal import Refused, Why
from shared.fields import Flag, Rounds, Seats, whole

QuorumPart = whole(1, 100)


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


class Shortfall(StrEnum):
    FURTHER_ROUND = "further_round"  # 另行票决 among those that did not pass
    ACCEPT_FEWER = "accept_fewer"  # the presidium accepts fewer projects


class VoteRules(BaseModel):
    """The voting procedure (票决办法) a vote runs under."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shortfall: Shortfall = Shortfall.FURTHER_ROUND
    max_rounds: Rounds = 3
    # 记名投票: only when the congress explicitly decides a named vote.
    named: Flag = False

    ballot_format: BallotFormat = BallotFormat.FOR_AGAINST_ABSTAIN
    # Most "for" marks on one ballot; None = the number of seats.
    max_for: Seats | None = None
    passing_basis: PassingBasis = PassingBasis.SEATED
    # Quorum: present ≥ numerator/denominator of seated deputies (exactly 2/3 is a quorum).
    quorum_numerator: QuorumPart = 2
    quorum_denominator: QuorumPart = 3

    @model_validator(mode="after")
    def _fraction(self) -> VoteRules:
        if self.quorum_numerator > self.quorum_denominator:  # a rule across fields: its own code (invalid-quorum)
            raise PydanticCustomError("invalid-quorum", "quorum fraction must be at most 1")
        return self

    def for_limit(self, seats: int) -> int:
        return self.max_for or seats


class BallotRejected(Refused):
    """A ballot refused before it is recorded."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(Why.INVALID, code, message)


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


# ---------------------------------------------------------------- rounds


@dataclass
class Round:
    """One round of balloting: who is on it, for how many seats, and what it counted."""

    candidates: list[UUID]
    seats: int
    issued: int
    tally: Tally
    void_reason: str | None = None  # voided by the presiding officer (e.g. the hall's network failed)

    @property
    def stands(self) -> bool:
        return self.void_reason is None and round_stands(self.issued, self.tally.collected)


@dataclass
class Progress:
    """Where a vote stands after its rounds so far."""

    chosen: list[UUID]  # in the order chosen (earlier rounds first, by rank within a round)
    finished: bool
    next_candidates: list[UUID] = field(default_factory=list)
    next_seats: int = 0
    note: str = ""


def progress(rounds: list[Round], seated: int, present: int, rules: VoteRules) -> Progress:
    """Chain the rounds of a vote: a void round is run again; a tie at the cut-off goes to a further
    round among the tied for the seats left; a shortfall to a further round among those that did
    not pass (or is accepted, by setting); after ``max_rounds`` fewer are accepted."""
    if not rounds:
        raise ValueError("a vote has at least one round")
    chosen: list[UUID] = []
    for r in rounds:
        if r.stands:
            outcome = decide(r.tally, r.seats, seated, present, rules)
            chosen += outcome.chosen
            step = _after(outcome, r, rules)
        else:
            why = r.void_reason or "more ballots collected than issued"
            step = Progress([], False, r.candidates, r.seats, f"round void: {why}")
    stood = sum(1 for r in rounds if r.stands)  # a void round is run again, not counted
    if not step.finished and stood >= rules.max_rounds:
        return Progress(chosen, True, note=f"{step.note}; after {rules.max_rounds} rounds fewer are accepted")
    return Progress(chosen, step.finished, step.next_candidates, step.next_seats, step.note)


def _after(outcome: Outcome, r: Round, rules: VoteRules) -> Progress:
    if outcome.decided:
        return Progress([], True)
    if outcome.tied:
        return Progress([], False, outcome.tied, outcome.open_seats, "tie at the cut-off")
    not_passed = [c for c in r.candidates if c not in outcome.ranks]
    if rules.shortfall is Shortfall.ACCEPT_FEWER or not not_passed:
        return Progress([], True, note="fewer passed than seats: fewer accepted")
    return Progress([], False, not_passed, outcome.open_seats, "fewer passed than seats")


# ---------------------------------------------------------------- paper totals


class TotalsRefused(Refused):
    """Paper totals that do not add up."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(Why.INVALID, code, message)


def tally_from_totals(
    counts: Mapping[UUID, Mapping[str, int]], collected: int, invalid: int, candidates: Iterable[UUID], seats: int,
    rules: VoteRules,
) -> Tally:
    """Tellers' per-candidate totals of a paper round, checked for consistency before they count."""
    ids = list(candidates)
    stray = [c for c in counts if c not in ids]
    if stray:
        raise TotalsRefused("unknown-candidate", f"candidate(s) not on this ballot: {', '.join(map(str, stray))}")
    if not 0 <= invalid <= collected:
        raise TotalsRefused("inconsistent-totals", "invalid ballots must be between 0 and the ballots collected")
    valid = collected - invalid
    tally = Tally(collected=collected, valid=valid, invalid=invalid, counts={})
    allowed = {"for"} if rules.ballot_format is BallotFormat.CHOOSE_UP_TO else {"for", "against", "abstain"}
    for c in ids:
        n = counts.get(c, {})
        stray = set(n) - allowed
        if any(n[m] for m in stray) or stray - {"for", "against", "abstain"}:
            raise TotalsRefused("inconsistent-totals", f"candidate {c}: only {', '.join(sorted(allowed))} marks on this ballot")
        count = CandidateCount(n.get("for", 0), n.get("against", 0), n.get("abstain", 0))
        marked = count.for_votes + count.against + count.abstain
        if min(count.for_votes, count.against, count.abstain) < 0 or marked > valid:
            raise TotalsRefused("inconsistent-totals", f"candidate {c}: marks must be ≥ 0 and at most the {valid} valid ballots")
        count.not_marked = valid - marked
        tally.counts[c] = count
    if sum(n.for_votes for n in tally.counts.values()) > valid * rules.for_limit(seats):
        raise TotalsRefused("inconsistent-totals", "more 'for' marks than valid ballots allow")
    return tally


# ---------------------------------------------------------------- satisfaction rating (满意度测评)


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意


SATISFACTION_LABELS = {Satisfaction.SATISFIED: "满意", Satisfaction.BASICALLY: "基本满意", Satisfaction.DISSATISFIED: "不满意"}


@dataclass
class SatisfactionCount:
    satisfied: int = 0
    basically: int = 0
    dissatisfied: int = 0

    @property
    def votes(self) -> int:
        return self.satisfied + self.basically + self.dissatisfied


def check_rating_ballot(marks: Mapping[UUID, Satisfaction], projects: Iterable[UUID]) -> None:
    on_ballot = set(projects)
    stray = [p for p in marks if p not in on_ballot]
    if stray:
        raise BallotRejected("unknown-candidate", f"project(s) not on this ballot: {', '.join(map(str, stray))}")


def tally_ratings(ballots: Iterable[Mapping[UUID, Satisfaction]], projects: Iterable[UUID]) -> tuple[int, dict[UUID, SatisfactionCount]]:
    ids = list(projects)
    counts = {p: SatisfactionCount() for p in ids}
    collected = 0
    for marks in ballots:
        collected += 1
        check_rating_ballot(marks, ids)
        for p, mark in marks.items():
            c = counts[p]
            if mark is Satisfaction.SATISFIED:
                c.satisfied += 1
            elif mark is Satisfaction.BASICALLY:
                c.basically += 1
            else:
                c.dissatisfied += 1
    return collected, counts


def satisfaction_tier(count: SatisfactionCount, seated: int) -> Satisfaction:
    """满意 if 满意 votes are more than half of seated deputies; else 基本满意 if 满意 + 基本满意 are;
    else 不满意. Exactly half is not more than half."""
    if 2 * count.satisfied > seated:
        return Satisfaction.SATISFIED
    if 2 * (count.satisfied + count.basically) > seated:
        return Satisfaction.BASICALLY
    return Satisfaction.DISSATISFIED


def satisfaction_rate(count: SatisfactionCount) -> float | None:
    """(满意 + 基本满意) / votes cast on the project."""
    return (count.satisfied + count.basically) / count.votes if count.votes else None
