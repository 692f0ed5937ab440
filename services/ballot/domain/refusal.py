"""One refusal type for the ballot domain: a stable code, a message, and why (which the HTTP
layer turns into a status, in one place: ``services/ballot/routes/common.py``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Why(StrEnum):
    INVALID = "invalid"  # the command itself is wrong (422)
    CONFLICT = "conflict"  # not now, in this state (409)
    FORBIDDEN = "forbidden"  # not this person (403)
    NOT_FOUND = "not_found"  # no such thing here (404)


class Refused(Exception):
    def __init__(self, why: Why, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.why, self.code, self.message, self.extra = why, code, message, extra
