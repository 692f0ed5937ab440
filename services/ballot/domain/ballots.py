"""A ballot's compact form, its tracker (the deputy's receipt) and a round's commitment. Pure.

**Compact form.** One character per candidate of the round, in the round's order: ``F`` for (赞成),
``A`` against (反对), ``B`` abstain (弃权), ``S`` 满意, ``J`` 基本满意, ``D`` 不满意, ``-`` not marked.
Every ballot of a round has the same length, so a sealed ballot's size says nothing of its marks.

**Tracker.** The hash of the sealed ballot (Helios' "ballot tracker"): it shows the deputy that
*their* sealed ballot is among those opened and counted, and nothing of what it says, because
nobody but the service ever held the sealing randomness.

**Commitment.** Per round, a hash over a random salt, the sorted trackers and the sorted opened
ballots. Everyone in the jurisdiction sees the tallies, the trackers and the commitment; those who
may see the anonymised ballots (tellers, the presiding officer, the county) get the salt and the
ballots, and ``piaojue ballot recount`` checks all of it."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.rules import (
    BallotFormat,
    CandidateCount,
    Mark,
    Satisfaction,
    SatisfactionCount,
    Tally,
    VoteRules,
)

NOT_MARKED = "-"
CODES: dict[Mark | Satisfaction, str] = {
    Mark.FOR: "F", Mark.AGAINST: "A", Mark.ABSTAIN: "B",
    Satisfaction.SATISFIED: "S", Satisfaction.BASICALLY: "J", Satisfaction.DISSATISFIED: "D",
}
SELECTION_CODES = {CODES[m]: m for m in Mark}
RATING_CODES = {CODES[m]: m for m in Satisfaction}


def encode(marks: Mapping[UUID, Mark | Satisfaction], candidates: Sequence[UUID]) -> str:
    """The compact form of checked marks (every key is one of ``candidates``)."""
    return "".join(CODES[marks[c]] if c in marks else NOT_MARKED for c in candidates)


def decode(ballot: str, candidates: Sequence[UUID], kind: str) -> dict[UUID, Mark | Satisfaction]:
    codes = SELECTION_CODES if kind == "selection" else RATING_CODES
    return {c: codes[x] for c, x in zip(candidates, ballot, strict=True) if x != NOT_MARKED}


def readable(ballot: str | None, candidates: int, kind: str) -> bool:
    """Whether an opened ballot is a well-formed compact ballot of this round."""
    codes = SELECTION_CODES if kind == "selection" else RATING_CODES
    return ballot is not None and len(ballot) == candidates and all(x == NOT_MARKED or x in codes for x in ballot)


def tally_compact(ballots: Iterable[str | None], candidates: Sequence[UUID], seats: int, rules: VoteRules) -> Tally:
    """``rules.tally`` over compact ballots, grouped by pattern so that a 100,000-ballot round costs
    a few hundred steps. ``None`` is a ballot that could not be opened: collected, invalid."""
    patterns = Counter(ballots)
    counts = {c: CandidateCount() for c in candidates}
    limit = rules.for_limit(seats)
    collected = valid = 0
    for ballot, n in patterns.items():
        collected += n
        if ballot is None or ballot.count("F") > limit:
            continue
        if rules.ballot_format is BallotFormat.CHOOSE_UP_TO and any(x not in "F-" for x in ballot):
            continue
        valid += n
        for c, x in zip(candidates, ballot, strict=True):
            count = counts[c]
            if x == "F":
                count.for_votes += n
            elif x == "A":
                count.against += n
            elif x == "B":
                count.abstain += n
            else:
                count.not_marked += n
    return Tally(collected=collected, valid=valid, invalid=collected - valid, counts=counts)


def tally_ratings_compact(ballots: Iterable[str | None], projects: Sequence[UUID]) -> tuple[int, int, dict[UUID, SatisfactionCount]]:
    """(collected, unreadable, counts) of a rating round's compact ballots."""
    counts = {p: SatisfactionCount() for p in projects}
    collected = unreadable = 0
    for ballot, n in Counter(ballots).items():
        collected += n
        if ballot is None:
            unreadable += n
            continue
        for p, x in zip(projects, ballot, strict=True):
            if x == "S":
                counts[p].satisfied += n
            elif x == "J":
                counts[p].basically += n
            elif x == "D":
                counts[p].dissatisfied += n
    return collected, unreadable, counts


def tracker(sealed: bytes) -> str:
    """The receipt a deputy keeps: the hash of their sealed ballot."""
    return hashlib.sha256(sealed).hexdigest()


def commitment(vote_id: UUID | str, round_: int, salt: str, trackers: Iterable[str], ballots: Iterable[str | None]) -> str:
    """Binds a round's trackers and opened ballots (``?`` for one that could not be opened)."""
    lines = ["piaojue/ballots/v1", str(vote_id), str(round_), salt, *sorted(trackers), "--",
             *sorted("?" if b is None else b for b in ballots)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def parse_marks(kind: str, marks: Mapping[UUID, str]) -> dict[UUID, Mark | Satisfaction]:
    """Marks as a deputy or teller sends them (``{candidate: "for"}``), refused if not of this kind."""
    allowed = Mark if kind == "selection" else Satisfaction
    try:
        return {c: allowed(m) for c, m in marks.items()}
    except ValueError as exc:
        raise Refused(Why.INVALID, "mark-not-allowed", f"marks are one of: {', '.join(k.value for k in allowed)}") from exc
