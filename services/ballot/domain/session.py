"""A session (人代会会议) and its term's roster. Pure.

A session is opened, then closed. While a session of a term is open, that term's roster is frozen:
a change of a deputy's status (elected, resigned, removed: 补选/辞职/罢免) is a recorded decision that
takes effect when the next session of the term opens. The session's tellers (监票人) hold the keys
of its secret electronic rounds, k of n."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.ballot.domain.refusal import Refused, Why


class SessionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def refuse_roster_edit(open_sessions: Iterable[str]) -> None:
    """The roster cannot be rewritten under an open session: decide a change instead."""
    names = list(open_sessions)
    if names:
        raise Refused(Why.CONFLICT, "roster-frozen", f"session {names[0]} of this term is open: the roster is frozen; "
                      "record a change (POST /terms/{term}/roster/changes), it takes effect at the next session")


def refuse_new_session(open_sessions: Iterable[str]) -> None:
    names = list(open_sessions)
    if names:
        raise Refused(Why.CONFLICT, "session-already-open", f"session {names[0]} of this term is still open: close it first")


def close_session(status: SessionStatus, votes_in_progress: Iterable[str]) -> SessionStatus:
    """A session closes when no vote of it is open or awaiting its tellers' shares."""
    if status is SessionStatus.CLOSED:
        raise Refused(Why.CONFLICT, "session-closed", "the session is already closed")
    busy = list(votes_in_progress)
    if busy:
        raise Refused(Why.CONFLICT, "votes-in-progress", f"vote {busy[0]} of this session is not closed yet")
    return SessionStatus.CLOSED


def refuse_unless_open(status: SessionStatus) -> None:
    if status is not SessionStatus.OPEN:
        raise Refused(Why.CONFLICT, "session-closed", "the session is closed")


@dataclass(frozen=True)
class Tellers:
    """The session's tellers (监票人) and how many of them it takes to open a secret round."""

    ids: list[str]
    threshold: int

    def __post_init__(self) -> None:
        if len(set(self.ids)) != len(self.ids):
            raise Refused(Why.INVALID, "duplicate-teller", "each teller once")
        if not 1 <= self.threshold <= len(self.ids):
            raise Refused(Why.INVALID, "bad-threshold", f"{self.threshold} of {len(self.ids)} tellers cannot open a round")


def refuse_tellers_without_keys(tellers: Tellers, with_keys: Iterable[str]) -> None:
    missing = sorted(set(tellers.ids) - set(with_keys))
    if missing:
        raise Refused(Why.INVALID, "teller-without-key", f"no public key registered by: {', '.join(missing)} "
                      "(each teller: piaojue ballot teller-key, then PUT /tellers/me/key)")
