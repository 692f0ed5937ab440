"""Supervision's pure rules: the project record (``rules``), the rectification loop
(``rectification``), the supervision plan, milestones and board (``plan``), photos (``photos``).
No I/O, no web stack."""

from services.supervision.domain.refusal import SupervisionRefused
from services.supervision.domain.rules import (
    GROUP_ASSESSMENTS,
    check_completion,
    check_inspection,
    check_progress,
    check_raters,
    is_backdated,
)

__all__ = ["GROUP_ASSESSMENTS", "SupervisionRefused", "check_completion", "check_inspection", "check_progress",
           "check_raters", "is_backdated"]
