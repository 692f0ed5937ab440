"""Scoring (考核): project scores and the township's annual assessment. Pure: no I/O.

The numbers are the year's assessment method (年度考核评比办法); places and years differ, so the
method is data, recorded with every figure computed under it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.supervision import Completion, InspectionKind
from shared.fields import Flag, Name, Weight

SATISFACTION = "satisfaction"  # the key of the satisfaction rate among a project's ratings
TWO_PLACES = Decimal("0.01")
FOUR_PLACES = Decimal("0.0001")


class AssessmentMethod(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Name = "default"
    # Weights in a project's score of the inspection ratings and of the deputies' satisfaction
    # rate (满意度, as a percentage); renormalised over those present.
    weights: dict[Literal["mid_term", "final", "look_back", "satisfaction"], Weight] = Field(
        default_factory=lambda: {
            InspectionKind.MID_TERM: Decimal("0.3"),
            InspectionKind.FINAL: Decimal("0.5"),
            InspectionKind.LOOK_BACK: Decimal("0.2"),
            SATISFACTION: Decimal("0.25"),
        }
    )
    points_per_completed: Weight = Decimal("1.0")  # 完成项目适量加分
    bonus_cap: Weight = Decimal("5.0")
    points_per_unfinished: Weight = Decimal("1.0")  # 未实施完成适度扣分
    deduction_cap: Weight = Decimal("3.0")
    # 基本完成 counts as completed for the rate and the bonus (a setting: some towns do not).
    basically_completed_counts: Flag = True


def project_score(ratings: Mapping[str, Iterable[Decimal | int]], method: AssessmentMethod) -> Decimal | None:
    """Weighted mean over the kinds rated so far (each kind's ratings averaged); None before any."""
    total = weight = Decimal(0)
    for kind, values in ratings.items():
        values = list(values)
        w = method.weights.get(kind, Decimal(0))
        if not values or w == 0:
            continue
        total += w * Decimal(sum(values)) / len(values)
        weight += w
    if weight == 0:
        return None
    return (total / weight).quantize(TWO_PLACES, ROUND_HALF_UP)


def is_completed(completion: Completion | None, method: AssessmentMethod) -> bool:
    return completion is Completion.COMPLETED or (
        completion is Completion.BASICALLY_COMPLETED and method.basically_completed_counts
    )


@dataclass(frozen=True)
class Assessment:
    total_projects: int
    completed: int
    completion_rate: Decimal
    bonus: Decimal
    deduction: Decimal

    @property
    def net_points(self) -> Decimal:
        return self.bonus - self.deduction


def assess(completions: Iterable[Completion | None], method: AssessmentMethod) -> Assessment:
    """A township's voted projects of one year: completion rate, points added and deducted.
    A project with no completion judgement yet counts as not completed."""
    completions = list(completions)
    total = len(completions)
    done = sum(1 for c in completions if is_completed(c, method))
    unfinished = total - done
    rate = (Decimal(done) / total).quantize(FOUR_PLACES, ROUND_HALF_UP) if total else Decimal(0)
    bonus = min(method.bonus_cap, method.points_per_completed * done)
    deduction = min(method.deduction_cap, method.points_per_unfinished * unfinished)
    return Assessment(total, done, rate, bonus, deduction)
