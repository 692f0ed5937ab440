"""The year's assessment method (年度考核评比办法): the numbers a county sets, validated, versioned.

A method is data. Each jurisdiction sets one per year; a correction is a new version, and every
figure computed names the version it was computed under (``MethodVersion.label``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from shared.contracts.supervision import InspectionKind

SATISFACTION = "satisfaction"  # the key of the satisfaction rate (满意度, as a percentage) among the weights
WEIGHABLE = frozenset({*InspectionKind, SATISFACTION})

# Bounds: no negative weights, points or caps (a negative weight is how a score of 200 came about).
Weight = Annotated[Decimal, Field(ge=0, le=100, max_digits=9, decimal_places=4, allow_inf_nan=False)]
Points = Annotated[Decimal, Field(ge=0, le=100, max_digits=9, decimal_places=4, allow_inf_nan=False)]


class Aggregation(StrEnum):
    """How the deputies' ratings of one inspection become the inspection's rating."""

    MEAN = "mean"  # 平均分
    TRIMMED_MEAN = "trimmed_mean"  # 去掉最高分和最低分后的平均分


class AssessmentMethod(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Weights in a project's score of each kind of rated inspection and of the satisfaction rate;
    # renormalised over the kinds rated so far. Kinds without a weight do not count.
    weights: dict[str, Weight] = Field(
        default_factory=lambda: {
            InspectionKind.MID_TERM: Decimal("0.3"),
            InspectionKind.FINAL: Decimal("0.5"),
            InspectionKind.LOOK_BACK: Decimal("0.2"),
            SATISFACTION: Decimal("0.25"),
        },
        max_length=len(WEIGHABLE),
    )
    aggregation: Aggregation = Aggregation.MEAN
    trim: int = Field(default=1, ge=1, le=10, description="trimmed mean: ratings dropped at each end")
    points_per_completed: Points = Decimal("1.0")  # 完成项目适量加分
    bonus_cap: Points = Decimal("5.0")
    points_per_unfinished: Points = Decimal("1.0")  # 未实施完成适度扣分
    deduction_cap: Points = Decimal("3.0")
    points_per_overdue_rectification: Points = Decimal("0.5")  # 整改逾期扣分
    rectification_cap: Points = Decimal("2.0")
    # 基本完成 counts as completed for the rate and the bonus (a setting: some towns do not).
    basically_completed_counts: StrictBool = True

    @model_validator(mode="after")
    def _sound(self) -> AssessmentMethod:
        unknown = sorted(set(self.weights) - WEIGHABLE)
        if unknown:
            raise ValueError(f"unknown weight keys {unknown}; allowed: {sorted(WEIGHABLE)}")
        if not any(w > 0 for w in self.weights.values()):
            raise ValueError("at least one weight must be positive")
        return self


@dataclass(frozen=True)
class MethodVersion:
    """A method as set by ``jurisdiction`` for ``year``, version ``version`` (0: the defaults)."""

    jurisdiction: str
    year: int
    version: int
    method: AssessmentMethod

    @property
    def label(self) -> str:
        return f"{self.jurisdiction}/{self.year}/v{self.version}" if self.version else f"default/{self.year}"


def default_method(year: int) -> MethodVersion:
    return MethodVersion("", year, 0, AssessmentMethod())
