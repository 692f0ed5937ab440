"""Bounded request fields: every string, number and list a caller sends has the domain's bounds,
never wider than the column that stores it, so that no input reaches the database it cannot take.

Use these in request models and in path and query parameters, e.g. ``year: Year``,
``title: Text[200]``-style via ``text(200)``, ``deputies: list[DeputyIn] = items(10_000)``.
Strings refuse NUL (PostgreSQL cannot store it) and lone surrogates (not UTF-8) with the stable
validation type ``invalid_characters``, which the HTTP layer reports as ``invalid-characters``."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

INVALID_CHARACTERS = "invalid_characters"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise PydanticCustomError(INVALID_CHARACTERS, "含有不可保存的字符 (NUL 或孤立代理项) contains NUL or a lone surrogate")
    return value


def text(max_length: int, min_length: int = 1, pattern: str | None = None) -> Any:
    """A storable string of ``min_length``..``max_length`` characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern),
                     AfterValidator(_storable)]


# Names of things people type; sizes fit the columns (text) and the pages that show them.
Name = text(100)  # a person, a unit, a village
Title = text(200)  # a proposal, a project, a session (孚玉镇第十九届人民代表大会第四次会议)
Content = text(10_000)  # a proposal's text, a narrative, findings
Reason = text(2_000)  # why: a rejection, a withdrawal, an override
OptionalText = text(2_000, min_length=0)
Identifier = text(64, pattern=r"^[A-Za-z0-9._:-]+$")  # deputy ids, unit codes: printable ASCII, no spaces

Year = Annotated[int, Field(ge=2000, le=2100, description="公历年")]
Term = Annotated[int, Field(ge=1, le=99, description="届")]
Seats = Annotated[int, Field(ge=1, le=1_000, description="应选数")]
Headcount = Annotated[int, Field(ge=0, le=10_000, description="people: deputies in a roster, ballots of a round")]
Population = Annotated[int, Field(ge=0, le=100_000_000, description="受益面: people who benefit")]
Percent = Annotated[int, Field(ge=0, le=100)]
Rating = Annotated[int, Field(ge=0, le=100, description="score 0–100")]
Money = Annotated[Decimal, Field(ge=0, le=Decimal(10) ** 12, max_digits=15, decimal_places=2, allow_inf_nan=False,
                                 description="元, at most 10¹²")]
Flag = StrictBool  # 0 and "false" are mistakes, not false


def items(max_length: int, min_length: int = 0, **kw: Any) -> Any:
    """A list field with bounded length (pass the element type in the annotation)."""
    return Field(min_length=min_length, max_length=max_length, **kw)
