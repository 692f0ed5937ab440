"""The annual key supervision plan (年度重点监督计划), milestones and the progress board. Pure: no I/O.

An activity of the plan:

    planned ──hold──► held
       │ ▲
       │ └─ reschedule(new date, reason)
       └──cancel(reason)──► cancelled

Overdue: still planned after its date. Upcoming: planned within the next ``UPCOMING_DAYS``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.supervision.domain.refusal import SupervisionRefused

UPCOMING_DAYS = 30


class ActivityKind(StrEnum):
    CONCENTRATED_INSPECTION = "concentrated_inspection"  # 集中视察
    ON_SITE_QUESTIONING = "on_site_questioning"  # 现场问询
    THEMATIC_INQUIRY = "thematic_inquiry"  # 专题询问
    REPORT_HEARING = "report_hearing"  # 听取实施情况报告
    MID_TERM = "mid_term"  # 期中考评
    FINAL = "final"  # 期末考评
    SATISFACTION_RATING = "satisfaction_rating"  # 满意度测评
    LOOK_BACK = "look_back"  # 回头看


class ActivityStatus(StrEnum):
    PLANNED = "planned"
    HELD = "held"
    CANCELLED = "cancelled"


def next_status(status: ActivityStatus, action: str, reason: str | None = None) -> ActivityStatus:
    """``hold``, ``cancel`` (with reason) or ``reschedule`` (with reason) a planned activity."""
    if status is not ActivityStatus.PLANNED:
        raise SupervisionRefused("activity-not-planned", f"the activity is already {status}")
    if action in ("cancel", "reschedule") and not (reason and reason.strip()):
        raise SupervisionRefused("reason-required", f"{action} needs a reason", 422)
    return {"hold": ActivityStatus.HELD, "cancel": ActivityStatus.CANCELLED, "reschedule": ActivityStatus.PLANNED}[action]


def timing(status: ActivityStatus, scheduled_on: date, today: date) -> str | None:
    """``overdue``, ``upcoming`` or None (held, cancelled, or further off)."""
    if status is not ActivityStatus.PLANNED:
        return None
    if scheduled_on < today:
        return "overdue"
    return "upcoming" if scheduled_on <= today + timedelta(days=UPCOMING_DAYS) else None


@dataclass(frozen=True)
class Milestone:
    """时间节点: by ``due_on`` the project should be ``expected_percent`` done."""

    due_on: date
    expected_percent: int


def expected_percent(milestones: Iterable[Milestone], on: date) -> int:
    """What the plan expects by ``on``: the highest expected percent of the milestones already due
    (a multi-year project is judged on this year's milestones), 0 before the first."""
    return max((m.expected_percent for m in milestones if m.due_on <= on), default=0)


class Colour(StrEnum):
    RED = "red"  # 严重滞后
    YELLOW = "yellow"  # 滞后
    GREEN = "green"  # 正常推进
    BLUE = "blue"  # 已完成并验收


class BoardSetting(BaseModel):
    """The board's colours, a per-jurisdiction setting: below ``red_below`` % of plan is red,
    below ``yellow_below`` % yellow, else green; completed and accepted is blue."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    red_below: int = Field(default=30, ge=0, le=100)
    yellow_below: int = Field(default=90, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> BoardSetting:
        if self.red_below > self.yellow_below:
            raise ValueError("red_below must not exceed yellow_below")
        return self


def colour(percent_done: int | None, expected: int, accepted: bool, setting: BoardSetting) -> Colour:
    if accepted:
        return Colour.BLUE
    if expected == 0:
        return Colour.GREEN  # nothing due yet
    share = 100 * (percent_done or 0) / expected
    if share < setting.red_below:
        return Colour.RED
    return Colour.YELLOW if share < setting.yellow_below else Colour.GREEN
