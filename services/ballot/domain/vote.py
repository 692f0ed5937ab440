"""The vote (表决) as an aggregate: its states, refusals, rounds, typed result and certification.

    draft ──open──► open ──close──► awaiting_shares ──k shares──► closed ──certify──► certified
                      │  (sealed: secret electronic)                ▲  │
                      └──close (paper, named: counted at once)──────┘  └─open (a further round)─► open
    open / awaiting_shares ──void round (presiding, reason)──► closed (the round is run again, e.g. on paper)
    any but certified ──void (presiding, reason)──► void (a new vote on the slate may follow)

Routes load a ``Vote``, call one method, save it: every rule of the vote's life is here, pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from uuid import UUID

from services.ballot.domain import ballots, rules
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.result import (  # noqa: F401 — Kind, Ratings and the JSON forms are part of the vote's language
    Kind,
    Rating,
    Ratings,
    RoundResult,
    Standing,
    VoteResult,
    ratings_from_json,
    ratings_json,
    tally_from_json,
    tally_json,
)
from services.ballot.domain.rules import PassingBasis, Tally, VoteRules
from shared.contracts.ballot import CandidateResult, RatedProject, ResultCertified, RoundCounts, SatisfactionCertified


class Status(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    AWAITING_SHARES = "awaiting_shares"  # closed, awaiting the tellers' shares (待监票人开启)
    CLOSED = "closed"  # counted: certify, or open the further round the result calls for
    CERTIFIED = "certified"
    VOID = "void"  # 作废: voided by the presiding officer with a reason


class Mode(StrEnum):
    ELECTRONIC = "electronic"
    PAPER = "paper"  # tellers (监票人/计票人) enter the paper ballots


@dataclass(frozen=True)
class Subject:
    id: str
    title: str


@dataclass(frozen=True)
class Departure:
    """A departure from the default procedure: only by the presiding role, with a reason, shown on
    every ballot and in the publication."""

    what: str  # named | quorum | passing_basis
    label: str
    reason: str
    by: str


def departures_of(r: VoteRules) -> list[tuple[str, str]]:
    out = []
    if r.named:
        out.append(("named", "记名投票 named vote"))
    if Fraction(r.quorum_numerator, r.quorum_denominator) < Fraction(2, 3):
        out.append(("quorum", f"法定人数低于三分之二 quorum {r.quorum_numerator}/{r.quorum_denominator}"))
    if r.passing_basis is not PassingBasis.SEATED:
        out.append(("passing_basis", f"过半数基数非全体实有代表 basis: {r.passing_basis.value}"))
    return out


@dataclass
class RoundState:
    number: int
    candidates: list[str]
    seats: int
    issued: int
    mode: Mode
    sealed: bool  # a secret electronic round: ballots sealed to the round's key until k tellers open them
    tally: Tally | None = None
    ratings: Ratings | None = None
    unopened: int = 0  # sealed ballots that did not open: collected, counted invalid, reported
    void_reason: str | None = None
    totals_entered: bool = False

    @property
    def counted(self) -> bool:
        return self.tally is not None or self.ratings is not None

    def domain_round(self) -> rules.Round:
        ids = [UUID(c) for c in self.candidates]
        return rules.Round(ids, self.seats, self.issued, self.tally or Tally(0, 0, 0, {c: rules.CandidateCount() for c in ids}),
                           self.void_reason)


def check_marks(kind: Kind, candidates: list[UUID], seats: int, r: VoteRules, raw: Mapping[UUID, str]) -> tuple[str, bool]:
    """A ballot as cast or entered: (its compact form, whether it is valid). Marks that can never be
    recorded (a stranger candidate, a mark of the wrong kind) are refused."""
    marks = ballots.parse_marks(kind, raw)
    if kind is Kind.SATISFACTION:
        rules.check_rating_ballot(marks, candidates)  # type: ignore[arg-type]
        valid = True
    else:
        valid = rules.check_ballot(marks, candidates, seats, r)  # type: ignore[arg-type]
    return ballots.encode(marks, candidates), valid


# ---------------------------------------------------------------- the aggregate


@dataclass
class Vote:
    id: UUID
    session_id: UUID
    jurisdiction: str
    kind: Kind
    mode: Mode
    slate_id: UUID | None
    year: int
    subjects: list[Subject]
    seats: int
    rules: VoteRules
    status: Status = Status.DRAFT
    withdrawn: list[dict[str, str]] = field(default_factory=list)
    departures: list[Departure] = field(default_factory=list)
    seated: int | None = None  # frozen at the first opening
    present: int | None = None
    rounds: list[RoundState] = field(default_factory=list)
    void_reason: str | None = None
    certified_at: datetime | None = None
    certified_by: str | None = None

    # -------------------------------------------------- creation

    @classmethod
    def create(cls, *, id: UUID, session_id: UUID, jurisdiction: str, kind: Kind, mode: Mode, slate_id: UUID | None,
               year: int, subjects: list[Subject], seats: int, vote_rules: VoteRules, by: str, presiding: bool,
               reason: str | None, slate_votes: Mapping[UUID, Status] | None = None) -> Vote:
        """A new vote. Departures from the default procedure need the presiding role and a reason; a
        slate already put to a vote (opened, closed or certified) gets no second one unless that one
        was voided."""
        earlier = [v for v, s in (slate_votes or {}).items() if s not in (Status.DRAFT, Status.VOID)]
        if earlier:
            raise Refused(Why.CONFLICT, "slate-already-voted", f"vote {earlier[0]} on this slate went ahead; void it first",
                          earlier_vote=str(earlier[0]))
        departures = departures_of(vote_rules)
        if departures and not presiding:
            raise Refused(Why.FORBIDDEN, "departure-needs-presiding",
                          f"{'; '.join(label for _, label in departures)}: only the presiding role may depart from the procedure")
        if departures and not (reason or "").strip():
            raise Refused(Why.INVALID, "departure-reason-required", "a departure from the procedure needs a recorded reason")
        return cls(id=id, session_id=session_id, jurisdiction=jurisdiction, kind=kind, mode=mode, slate_id=slate_id,
                   year=year, subjects=subjects, seats=seats, rules=vote_rules,
                   departures=[Departure(what, label, reason or "", by) for what, label in departures])

    # -------------------------------------------------- what it is now

    @property
    def current(self) -> RoundState | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def on_ballot(self) -> list[Subject]:
        gone = {w["id"] for w in self.withdrawn}
        return [s for s in self.subjects if s.id not in gone]

    @property
    def sealed(self) -> bool:
        """Whether a round opened now is sealed: secret and electronic."""
        return self.mode is Mode.ELECTRONIC and not self.rules.named

    def _refuse_unless(self, *wanted: Status) -> None:
        if self.status not in wanted:
            name = "open" if wanted == (Status.OPEN,) else "-or-".join(wanted)
            raise Refused(Why.CONFLICT, f"vote-not-{name}", f"vote {self.id} is {self.status}, not {' or '.join(wanted)}",
                          status_now=self.status.value)

    # -------------------------------------------------- commands

    def withdraw(self, candidate_id: str, reason: str) -> None:
        """A candidate withdrawn from the ballot: only before the vote opens."""
        if self.status is not Status.DRAFT:
            raise Refused(Why.CONFLICT, "vote-already-open", "a candidate can be withdrawn only before the vote opens",
                          status_now=self.status.value)
        remaining = [s for s in self.on_ballot if s.id != candidate_id]
        if len(remaining) == len(self.on_ballot):
            raise Refused(Why.INVALID, "unknown-candidate", f"{candidate_id} is not a candidate")
        if self.kind is Kind.SELECTION and len(remaining) < self.seats:
            raise Refused(Why.CONFLICT, "too-few-candidates", f"{len(remaining)} candidates cannot fill {self.seats} seats")
        self.withdrawn = [*self.withdrawn, {"id": candidate_id, "reason": reason}]

    def open(self, present: int, seated: int, tellers: int = 0, threshold: int | None = None) -> RoundState:
        """Open the first round, or the further round the last count called for. Only with a quorum;
        a secret electronic round only with tellers able to open it (k of n)."""
        if self.status is Status.DRAFT:
            candidates, seats = [s.id for s in self.on_ballot], self.seats
        elif self.status is Status.CLOSED and not (result := self.result()).finished:
            candidates, seats = result.next_candidates, result.next_seats
        else:
            raise Refused(Why.CONFLICT, "vote-not-ready-to-open", f"vote {self.id} is {self.status}: nothing to open",
                          status_now=self.status.value)
        if not rules.has_quorum(present, seated, self.rules):
            raise Refused(Why.CONFLICT, "quorum-not-met", f"{present} present of {seated} seated; need at least "
                          f"{self.rules.quorum_numerator}/{self.rules.quorum_denominator}", present=present, seated=seated)
        if self.sealed and not (threshold and 1 <= threshold <= tellers):
            raise Refused(Why.CONFLICT, "no-tellers", "a secret electronic round needs the session's tellers (监票人) and "
                          "how many of them open it: PUT /sessions/{id}/tellers")
        if self.seated is None:
            self.seated, self.present = seated, present
        round_ = RoundState(len(self.rounds) + 1, list(candidates), seats, present, self.mode, self.sealed)
        self.rounds.append(round_)
        self.status = Status.OPEN
        return round_

    def close(self, counted: Tally | Ratings | None = None) -> None:
        """End the round's casting. A sealed round then waits for the tellers' shares; any other is
        counted now (``counted``)."""
        self._refuse_unless(Status.OPEN)
        if self.current.sealed:
            self.status = Status.AWAITING_SHARES
        else:
            self._record(counted)

    def count_elsewhere(self) -> None:
        """The process counting the sealed round is gone (a restart, a scale down): another takes over,
        and the tellers present their shares to it again."""
        self._refuse_unless(Status.AWAITING_SHARES)

    def record_opened(self, counted: Tally | Ratings, unopened: int) -> None:
        """The sealed round's ballots, opened with k tellers' shares, and how many did not open."""
        self._refuse_unless(Status.AWAITING_SHARES)
        self.current.unopened = unopened
        self._record(counted)

    def _record(self, counted: Tally | Ratings | None) -> None:
        if isinstance(counted, Ratings):
            self.current.ratings = counted
        elif isinstance(counted, Tally):
            self.current.tally = counted
        elif not self.current.counted:
            raise ValueError("a round is counted when it closes")
        self.status = Status.CLOSED

    def void_round(self, reason: str, rerun_mode: Mode) -> None:
        """The presiding officer voids the round (the hall's network or devices failed, or the tellers'
        shares never came) and it is run again, in ``rerun_mode`` (on paper if need be)."""
        self._refuse_unless(Status.OPEN, Status.AWAITING_SHARES)
        if not reason.strip():
            raise Refused(Why.INVALID, "reason-required", "voiding a round needs a recorded reason")
        self.current.void_reason = reason
        self.mode = rerun_mode
        self.status = Status.CLOSED

    def void(self, reason: str) -> None:
        """The whole vote void: a new vote on its slate may then be held."""
        if self.status in (Status.CERTIFIED, Status.VOID):
            raise Refused(Why.CONFLICT, f"vote-{self.status}", f"vote {self.id} is {self.status}", status_now=self.status.value)
        if not reason.strip():
            raise Refused(Why.INVALID, "reason-required", "voiding a vote needs a recorded reason")
        self.void_reason, self.status = reason, Status.VOID

    def certify(self, by: str, at: datetime, session_name: str, slate_decided_by: UUID | None = None
                ) -> ResultCertified | SatisfactionCertified:
        """The presiding officer certifies the announced result: immutable from now on. Returns the
        event certification sends (projects are created from it)."""
        self._refuse_unless(Status.CLOSED)
        result = self.result()
        if not result.finished:
            code = "round-void" if result.rounds[-1].void else "further-round-required"
            raise Refused(Why.CONFLICT, code, f"{result.note}: open round {len(self.rounds) + 1}",
                          next_candidates=result.next_candidates, next_seats=result.next_seats)
        if slate_decided_by:
            raise Refused(Why.CONFLICT, "slate-already-decided", f"vote {slate_decided_by} on this slate is certified",
                          decided_by=str(slate_decided_by))
        self.status, self.certified_at, self.certified_by = Status.CERTIFIED, at, by
        first = result.first
        common = {"vote_id": self.id, "session_id": self.session_id, "session_name": session_name, "year": self.year,
                  "seated": result.seated, "present": result.present, "issued": first.issued, "collected": first.collected,
                  "certified_at": at, "certified_by": by}
        if self.kind is Kind.SATISFACTION:
            return SatisfactionCertified(**common, projects=[
                RatedProject(**{k: getattr(r, k) for k in RatedProject.model_fields}) for r in result.ratings])
        return ResultCertified(
            **common, slate_id=self.slate_id, seats=self.seats, valid=first.valid, invalid=first.invalid,
            rules=self.rules.model_dump(mode="json"),
            candidates=[CandidateResult(**{k: getattr(c, k) for k in CandidateResult.model_fields}) for c in result.candidates],
            rounds=[RoundCounts(**{k: getattr(r, k) for k in RoundCounts.model_fields}) for r in result.rounds])

    # -------------------------------------------------- the result

    def result(self) -> VoteResult:
        """Every counted round with its counts, and where the vote stands."""
        titles = {s.id: s.title for s in self.subjects}
        done = [r for r in self.rounds if r.counted or r.void_reason]
        rounds = [self._round_result(r) for r in done]
        seated, present = self.seated or 0, self.present or 0
        if self.kind is Kind.SATISFACTION:
            last = next((r for r in reversed(done) if r.ratings and not r.void_reason), None)
            ratings = []
            for pid, c in (last.ratings.counts.items() if last else ()):
                tier = rules.satisfaction_tier(c, seated)
                ratings.append(Rating(str(pid), titles[str(pid)], c.satisfied, c.basically, c.dissatisfied, tier.value,
                                      rules.SATISFACTION_LABELS[tier], rules.satisfaction_rate(c)))
            return VoteResult(self.kind, seated, present, rounds, finished=last is not None,
                              note="" if last else "round void: run it again", ratings=ratings,
                              next_candidates=[] if last else done[-1].candidates, next_seats=0 if last else done[-1].seats)
        state = rules.progress([r.domain_round() for r in done], seated, present, self.rules)
        chosen = [str(c) for c in state.chosen]
        standing: dict[str, Standing] = {}
        for r in done:
            if not r.domain_round().stands:
                continue
            outcome = rules.decide(r.tally, r.seats, seated, present, self.rules)
            for c in r.candidates:
                n = r.tally.counts[UUID(c)]
                standing[c] = Standing(c, titles[c], c in chosen, r.number, n.for_votes, n.against, n.abstain, n.not_marked,
                                       UUID(c) in outcome.ranks, outcome.ranks.get(UUID(c)))
        candidates = [standing.get(s.id) or Standing(s.id, s.title, False, None, 0, 0, 0, 0, False, None) for s in self.on_ballot]
        candidates = [Standing(**{**asdict(c), "chosen": c.candidate_id in chosen}) for c in candidates]
        return VoteResult(self.kind, seated, present, rounds, state.finished, state.note, chosen, candidates,
                          [str(c) for c in state.next_candidates], state.next_seats)

    def _round_result(self, r: RoundState) -> RoundResult:
        if r.ratings is not None:
            counted = ratings_json(r.ratings)
            counted["invalid"] = r.unopened
            counted["valid"] = counted["collected"] - r.unopened
        elif r.tally is not None:
            counted = tally_json(r.tally)
        else:  # voided before it was counted
            counted = {"collected": 0, "valid": 0, "invalid": 0}
        void = r.void_reason is not None or not rules.round_stands(r.issued, counted["collected"])
        return RoundResult(r.number, r.candidates, r.seats, r.issued, void, r.void_reason, counted["collected"],
                           counted["valid"], counted["invalid"], r.unopened, counted.get("counts"), counted.get("ratings"))
