"""Scoring (考核): project scores and the township's annual assessment. Pure: no I/O.

The numbers are the year's assessment method (年度考核评比办法, ``method.py``); the figures
name the method version they were computed under."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from services.scoring.domain.method import Aggregation, AssessmentMethod
from shared.contracts.supervision import Completion

TWO_PLACES = Decimal("0.01")
FOUR_PLACES = Decimal("0.0001")


def inspection_rating(ratings: Sequence[Decimal | int], method: AssessmentMethod) -> Decimal | None:
    """One inspection's rating from its deputies' ratings: the mean, or the trimmed mean (the
    ``trim`` highest and lowest dropped) when enough deputies rated; None if nobody did."""
    values = sorted(Decimal(r) for r in ratings)
    if not values:
        return None
    if method.aggregation is Aggregation.TRIMMED_MEAN and len(values) > 2 * method.trim:
        values = values[method.trim:-method.trim]
    return (sum(values) / len(values)).quantize(TWO_PLACES, ROUND_HALF_UP)


def project_score(ratings: Mapping[str, Iterable[Decimal | int]], method: AssessmentMethod) -> Decimal | None:
    """Weighted mean over the kinds rated so far (each kind's ratings averaged); None before any.
    With weights ≥ 0 and ratings in 0..100, the score stays in 0..100."""
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
    overdue_rectifications: int = 0
    rectification_deduction: Decimal = Decimal(0)
    investment_planned: Decimal = Decimal(0)
    investment_spent: Decimal = Decimal(0)

    @property
    def net_points(self) -> Decimal:
        return self.bonus - self.deduction - self.rectification_deduction

    @property
    def investment_rate(self) -> Decimal:
        """Investment completed against plan (投资完成率), 0 without a planned budget."""
        if not self.investment_planned:
            return Decimal(0)
        return (self.investment_spent / self.investment_planned).quantize(FOUR_PLACES, ROUND_HALF_UP)


def assess(completions: Iterable[Completion | None], method: AssessmentMethod, overdue_rectifications: int = 0,
           investment_planned: Decimal = Decimal(0), investment_spent: Decimal = Decimal(0)) -> Assessment:
    """A township's voted projects of one year: completion rate, points added and deducted, and
    the penalty for rectification items (整改事项) not verified by their due date, each capped.
    A project with no completion judgement yet counts as not completed."""
    completions = list(completions)
    total = len(completions)
    done = sum(1 for c in completions if is_completed(c, method))
    unfinished = total - done
    rate = (Decimal(done) / total).quantize(FOUR_PLACES, ROUND_HALF_UP) if total else Decimal(0)
    bonus = min(method.bonus_cap, method.points_per_completed * done)
    deduction = min(method.deduction_cap, method.points_per_unfinished * unfinished)
    penalty = min(method.rectification_cap, method.points_per_overdue_rectification * overdue_rectifications)
    return Assessment(total, done, rate, bonus, deduction, overdue_rectifications, penalty,
                      Decimal(investment_planned), Decimal(investment_spent))


@dataclass(frozen=True)
class Standing:
    """One township's latest assessment, as the county ranks it."""

    jurisdiction: str
    net_points: Decimal
    completion_rate: Decimal
    investment_rate: Decimal


def rank(standings: Iterable[Standing]) -> list[tuple[int, Standing]]:
    """The county view (县考核): by net points, then completion rate, then investment completed
    against plan; townships equal on all three share a rank (1, 1, 3)."""
    ordered = sorted(standings, key=lambda s: (-s.net_points, -s.completion_rate, -s.investment_rate, s.jurisdiction))
    ranked: list[tuple[int, Standing]] = []
    for i, s in enumerate(ordered):
        prev = ranked[-1] if ranked else None
        same = prev and (prev[1].net_points, prev[1].completion_rate, prev[1].investment_rate) == (
            s.net_points, s.completion_rate, s.investment_rate)
        ranked.append((prev[0] if same else i + 1, s))
    return ranked
