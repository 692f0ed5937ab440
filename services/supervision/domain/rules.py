"""Supervision (监督): the rules a project's record must keep. Pure: no I/O."""

from __future__ import annotations

from datetime import date

from services.supervision.domain.refusal import SupervisionRefused
from shared.contracts.supervision import Completion, InspectionKind

# 期中/期末考评 are the supervision group's (监督小组) judgement, not any single deputy's.
GROUP_ASSESSMENTS = frozenset({InspectionKind.MID_TERM, InspectionKind.FINAL})


def check_completion(completion: Completion, kinds_inspected: set[InspectionKind], already: Completion | None) -> None:
    """A project is judged complete only after its final assessment (期末考评); a judgement,
    once made, is not silently replaced."""
    if already is not None:
        raise SupervisionRefused("completion-already-recorded", f"completion already recorded as {already}")
    if completion is not Completion.NOT_COMPLETED and InspectionKind.FINAL not in kinds_inspected:
        raise SupervisionRefused("final-inspection-required", "record the final assessment (期末考评) before completion")


def check_inspection(kind: InspectionKind, kinds_inspected: set[InspectionKind]) -> None:
    """Mid-term and final assessments happen once each; look-backs (回头看) and inspections may repeat."""
    if kind in GROUP_ASSESSMENTS and kind in kinds_inspected:
        raise SupervisionRefused("inspection-already-recorded", f"the {kind} assessment is already recorded")
    if kind is InspectionKind.FINAL and InspectionKind.MID_TERM not in kinds_inspected:
        raise SupervisionRefused("mid-term-required", "the mid-term assessment (期中考评) comes before the final")


def check_raters(kind: InspectionKind, recorded_by_deputy: bool, raters: set[str], group: set[str]) -> None:
    """Mid-term and final are recorded for the supervision group (by the office on its behalf),
    not by one deputy; when the project has a group, only its members rate those."""
    if kind in GROUP_ASSESSMENTS:
        if recorded_by_deputy:
            raise SupervisionRefused("group-assessment", f"the {kind} assessment is recorded for the supervision group "
                                     "(监督小组), not by a single deputy", 403)
        if not raters:
            raise SupervisionRefused("ratings-required", f"the {kind} assessment needs the group's ratings", 422)
        outsiders = sorted(raters - group) if group else []
        if outsiders:
            raise SupervisionRefused("not-in-supervision-group", f"not in this project's supervision group: {outsiders}", 422)


def check_progress(previous_percent: int | None, percent: int, reason: str | None) -> None:
    """Percent done does not go backwards without a stated reason (e.g. a rework found at inspection)."""
    if previous_percent is not None and percent < previous_percent and not (reason and reason.strip()):
        raise SupervisionRefused("percent-decreased-without-reason",
                                 f"percent done falls from {previous_percent} to {percent}: give the reason", 422)


def is_backdated(as_of: date, latest_as_of: date | None) -> bool:
    """A report is backdated when it describes a day before the latest one already reported: it
    rewrites the record's past, so it is shown as such (the filing time is kept beside it)."""
    return latest_as_of is not None and as_of < latest_as_of
