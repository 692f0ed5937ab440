"""Feasibility scores (可行性论证): demand, buildability, urgency and funding, weighted per
jurisdiction and year into one score shown when the slate is built. Ranking stays a human
decision: nothing orders or chooses by this score. Pure: no I/O."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, model_validator

from shared.fields import Percent, Rating

LABELS = {"demand": "群众需求", "buildability": "实施条件", "urgency": "紧迫程度", "funding": "资金保障"}


class Weights(BaseModel):
    """权重, percent; they add up to 100."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    demand: Percent = 30
    buildability: Percent = 25
    urgency: Percent = 25
    funding: Percent = 20

    @model_validator(mode="after")
    def _hundred(self) -> Weights:
        total = self.demand + self.buildability + self.urgency + self.funding
        if total != 100:
            raise ValueError(f"the weights add up to {total}, not 100")
        return self


class Scores(BaseModel):
    """One proposal's scores, 0–100 each, from the feasibility review."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    demand: Rating
    buildability: Rating
    urgency: Rating
    funding: Rating


def weighted(scores: Scores, weights: Weights = Weights()) -> Decimal:
    total = sum(Decimal(getattr(scores, k)) * getattr(weights, k) for k in LABELS) / 100
    return total.quantize(Decimal("0.1"), ROUND_HALF_UP)
