"""The envelope every message carries, and the registry of payload types by (type, version)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Payload(BaseModel):
    """Base of every event payload. ``TYPE`` is also the routing key."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(default_factory=uuid4)
    type: str
    version: int = Field(strict=True)  # 1, never true or "1"
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    jurisdiction: str
    # One chain of cause and effect: a vote → its projects → their scores.
    correlation_id: UUID
    causation_id: UUID | None = None
    producer: str
    data: dict[str, Any]


EVENTS: dict[tuple[str, int], type[Payload]] = {}
P = TypeVar("P", bound=type[Payload])


def event(type_: str, version: int):
    """Register a payload class under its routing key and schema version."""

    def register(cls: P) -> P:
        cls.TYPE, cls.VERSION = type_, version
        EVENTS[(type_, version)] = cls
        return cls

    return register


class PoisonMessage(Exception):
    """A message that can never be handled: it goes to the dead-letter queue."""


def parse(body: bytes) -> tuple[Envelope, Payload]:
    try:
        envelope = Envelope.model_validate(json.loads(body))
    # JSONDecodeError is a ValueError; JSON nested past the recursion limit raises RecursionError.
    except (ValueError, RecursionError, ValidationError) as exc:
        raise PoisonMessage(f"bad envelope: {_short(exc)}") from exc
    model = EVENTS.get((envelope.type, envelope.version))
    if model is None:
        raise PoisonMessage(f"unknown event type/version: {envelope.type} v{envelope.version}")
    try:
        return envelope, model.model_validate(envelope.data)
    except ValidationError as exc:
        raise PoisonMessage(f"bad payload for {envelope.type} v{envelope.version}: {_short(exc)}") from exc


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:500]
