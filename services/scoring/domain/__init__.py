"""Scoring's pure rules: the assessment method (``method``), scores and assessments
(``assessment``), signed webhooks (``webhooks``). No I/O, no web stack."""

from services.scoring.domain.assessment import (
    Assessment,
    Standing,
    assess,
    inspection_rating,
    is_completed,
    project_score,
    rank,
)
from services.scoring.domain.method import (
    SATISFACTION,
    Aggregation,
    AssessmentMethod,
    MethodVersion,
    default_method,
)

__all__ = ["SATISFACTION", "Aggregation", "Assessment", "AssessmentMethod", "MethodVersion", "Standing", "assess",
           "default_method", "inspection_rating", "is_completed", "project_score", "rank"]
