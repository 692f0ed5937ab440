"""Bounded request fields: every string, number and list a caller sends has the domain's bounds,
never wider than the column that stores it, so that no input reaches the database it cannot take.

Use these in request models (subclass ``Body``) and in path and query parameters, e.g.
``year: Year`` in a body, ``year: YearParam`` in a path or query, ``title: Title``,
``deputies: list[DeputyIn] = items(10_000)``. Strings refuse NUL (PostgreSQL cannot store it) and
lone surrogates (not UTF-8) with the stable validation type ``invalid_characters``, which the HTTP
layer reports as ``invalid-characters``. Numbers and flags in a body are strict: ``"7"`` is not 7
and ``0`` is not ``false``; a path or query parameter arrives as text, so its twin (``…Param``,
made by ``param``) takes the same bounds from text."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

INVALID_CHARACTERS = "invalid_characters"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Body(BaseModel):
    """A request body: a field the model does not know is a mistake (a misspelt name), not
    something to drop silently."""

    model_config = ConfigDict(extra="forbid")


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise PydanticCustomError(INVALID_CHARACTERS, "含有不可保存的字符 (NUL 或孤立代理项) contains NUL or a lone surrogate")
    return value


# The same rule for the OpenAPI document, so that clients and testers know it. Lone surrogates need
# no pattern there: a JSON Schema string is Unicode text, which they are not.
STORABLE = r"^[^\u0000]*$"


def text(max_length: int, min_length: int = 1, pattern: str | None = None) -> Any:
    """A storable string of ``min_length``..``max_length`` characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern),
                     AfterValidator(_storable), Field(json_schema_extra=None if pattern else {"pattern": STORABLE})]


# Names of things people type; sizes fit the columns (text) and the pages that show them.
Name = text(100)  # a person, a unit, a village
OptionalName = text(100, min_length=0)
Title = text(200)  # a proposal, a project, a session (孚玉镇第十九届人民代表大会第四次会议)
Content = text(10_000)  # a proposal's text, a narrative, findings
OptionalContent = text(10_000, min_length=0)
Reason = text(2_000)  # why: a rejection, a withdrawal, an override
OptionalText = text(2_000, min_length=0)
Identifier = text(64, pattern=r"^[A-Za-z0-9._:-]+$")  # deputy ids, unit codes: printable ASCII, no spaces
# A jurisdiction (辖区) is a dotted path, the county first: taihu, taihu.fuyu.
Jurisdiction = text(200, pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


class _NotText:
    """Refuses text and booleans where a JSON number belongs (``"7"``, ``true``)."""

    @staticmethod
    def check(value: Any) -> Any:
        if isinstance(value, bool | str | bytes):
            raise PydanticCustomError("int_type", "a whole number (a JSON number, not text or true/false)")
        return value


def whole(ge: int, le: int, description: str = "") -> Any:
    """An integer ``ge``..``le`` in a JSON body: ``7`` or ``7.0`` (JSON Schema's integer), never
    ``"7"``, ``true`` or ``7.5``."""
    return Annotated[int, Field(ge=ge, le=le, description=description), BeforeValidator(_NotText.check)]


def param(body_type: Any) -> Any:
    """The same bounds for a path or query parameter, which arrives as text."""
    base, *metadata = get_args(body_type)
    return Annotated[base, *(m for m in metadata if getattr(m, "func", None) is not _NotText.check)]


Year = whole(2000, 2100, "公历年")
Term = whole(1, 99, "届")
Seats = whole(1, 1_000, "应选数")
Headcount = whole(0, 10_000, "people: deputies in a roster, ballots of a round")
Population = whole(0, 100_000_000, "受益面: people who benefit")
Percent = whole(0, 100)
Rating = whole(0, 100, "score 0–100")
Rounds = whole(1, 20, "rounds of a vote")
YearParam, TermParam = param(Year), param(Term)



def amount(power: int, places: int, description: str = "") -> Any:
    """A non-negative amount up to 10**``power`` with at most ``places`` decimals, kept exact: a JSON
    number, or its decimal text ("1200000.50"); ``true`` or ``"1e5"`` is a mistake."""
    le = 10**power
    digits = rf"^(\d{{1,{power}}}(\.\d{{1,{places}}})?|{le}(\.0{{1,{places}}})?)$"

    def exact(value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and not re.fullmatch(digits, value)):
            raise PydanticCustomError("decimal_type", f"an amount is a number of at most {power} digits and {places} decimals")
        return value

    return Annotated[Decimal, BeforeValidator(exact),
                     Field(ge=0, le=le, max_digits=power + 1 + places, decimal_places=places, allow_inf_nan=False),
                     WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": le,
                                                "multipleOf": float(Decimal(1).scaleb(-places))},
                                               {"type": "string", "pattern": digits}],
                                     "description": description}, mode="validation")]


Money = amount(12, 2, "元, at most 10¹²")
Weight = amount(3, 4, "a weight or a number of points")
Flag = StrictBool  # 0 and "false" are mistakes, not false
FlagParam = bool  # a query's flag arrives as text: true/false


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise PydanticCustomError("date_type", "a date is written YYYY-MM-DD")


# A day of the years the software serves (2000–2100), written YYYY-MM-DD; the pattern tells clients the bounds.
Day = Annotated[date, BeforeValidator(_iso_date), Field(ge=date(2000, 1, 1), le=date(2100, 12, 31)),
                WithJsonSchema({"type": "string", "format": "date", "pattern": r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
                                "description": "YYYY-MM-DD, 2000–2100"})]


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise PydanticCustomError("duplicate_items", "每项只能出现一次 each item at most once")
    return values


def distinct(item_type: Any) -> Any:
    """A list in which each item appears at most once (JSON Schema ``uniqueItems``): a deputy in a
    group, say, where a repeat would break the table's key."""
    return Annotated[list[item_type], AfterValidator(_distinct), Field(json_schema_extra={"uniqueItems": True})]


def items(max_length: int, min_length: int = 0, **kw: Any) -> Any:
    """A list field with bounded length (pass the element type in the annotation)."""
    return Field(min_length=min_length, max_length=max_length, **kw)
