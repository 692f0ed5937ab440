"""The rectification loop (整改): a problem sent to the lead unit until the deputies are satisfied.

    open ──respond(evidence)──► responded ──verify──► closed
      ▲                            │                     │
      │                       send_back(reason)      reopen(reason, 回头看)
      │                            ▼                     ▼
      └──────────────────────  sent_back            reopened ──respond──► responded …

The unit responds (with evidence) from open, sent_back or reopened; the deputies (or the office for
the supervision group) verify or send back a response; a look-back may reopen a closed item. The
lead unit never verifies its own item. Overdue: not closed and past its due date. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from services.supervision.domain.refusal import SupervisionRefused


class Status(StrEnum):
    OPEN = "open"  # 待整改
    RESPONDED = "responded"  # 已反馈, awaiting verification
    SENT_BACK = "sent_back"  # 退回重新整改
    CLOSED = "closed"  # 验证销号
    REOPENED = "reopened"  # 回头看重新打开


class Action(StrEnum):
    OPEN = "open"
    RESPOND = "respond"
    VERIFY = "verify"
    SEND_BACK = "send_back"
    REOPEN = "reopen"


TRANSITIONS: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.RESPOND: (frozenset({Status.OPEN, Status.SENT_BACK, Status.REOPENED}), Status.RESPONDED),
    Action.VERIFY: (frozenset({Status.RESPONDED}), Status.CLOSED),
    Action.SEND_BACK: (frozenset({Status.RESPONDED}), Status.SENT_BACK),
    Action.REOPEN: (frozenset({Status.CLOSED}), Status.REOPENED),
}
NEEDS_TEXT = {Action.RESPOND: "evidence", Action.SEND_BACK: "reason", Action.REOPEN: "reason"}


@dataclass(frozen=True)
class Item:
    status: Status
    lead_unit: str | None
    due_on: date


def act(item: Item, action: Action, actor_unit: str | None, text: str | None) -> Status:
    """The status after ``action`` by a caller whose own unit is ``actor_unit`` (None: not a unit)."""
    allowed_from, to = TRANSITIONS[action]
    if action is Action.RESPOND and actor_unit is not None and actor_unit != item.lead_unit:
        raise SupervisionRefused("not-your-project", "only the project's lead unit responds to its rectification", 403)
    if action is not Action.RESPOND and actor_unit is not None and actor_unit == item.lead_unit:
        raise SupervisionRefused("cannot-verify-own", "a lead unit cannot verify, send back or reopen its own "
                                 "rectification: the deputies do", 403)
    if item.status not in allowed_from:
        raise SupervisionRefused("rectification-wrong-state",
                                 f"cannot {action} a rectification that is {item.status}")
    if action in NEEDS_TEXT and not (text and text.strip()):
        raise SupervisionRefused(f"{NEEDS_TEXT[action]}-required", f"{action} needs the {NEEDS_TEXT[action]}", 422)
    return to


def is_overdue(status: Status, due_on: date, on: date) -> bool:
    return status is not Status.CLOSED and on > due_on
