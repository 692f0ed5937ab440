"""Public notice (公示): a slate, and a result, are published for a period during which comments
and objections are recorded and answered. A slate goes to the ballot only after its notice
period ends, unless the office overrides with a reason. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from services.intake.domain.screening import Refused


class Kind(StrEnum):
    SLATE = "slate"  # 候选项目公示
    RESULT = "result"  # 票决结果公示


KIND_LABELS = {Kind.SLATE: "候选项目公示", Kind.RESULT: "票决结果公示"}


def period(starts_at: datetime, days: int) -> tuple[datetime, datetime]:
    if days < 1:
        raise Refused("invalid-period", "a notice period lasts at least one day")
    return starts_at, starts_at + timedelta(days=days)


def is_open(starts_at: datetime, ends_at: datetime, now: datetime) -> bool:
    return starts_at <= now < ends_at


def may_go_to_ballot(ends_at: datetime | None, now: datetime, override_reason: str = "") -> bool:
    """Whether a slate may go to the ballot now. True when the office overrode a running notice
    (the override is then recorded); refused while the period runs without one."""
    if ends_at is None or now >= ends_at:
        return False
    if not override_reason.strip():
        raise Refused("notice-period-running",
                      f"公示期未满: the notice period ends at {ends_at.isoformat()}; the office may override with a reason")
    return True


def may_record_objection(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if not is_open(starts_at, ends_at, now):
        raise Refused("notice-closed", f"公示期已结束或未开始: objections are recorded from {starts_at.isoformat()} "
                                       f"until {ends_at.isoformat()}")
