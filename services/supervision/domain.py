"""Supervision (监督): the rules a project's record must keep. Pure: no I/O."""

from __future__ import annotations

from shared.contracts.supervision import Completion, InspectionKind


class SupervisionRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_completion(completion: Completion, kinds_inspected: set[InspectionKind], already: Completion | None) -> None:
    """A project is judged complete only after its final assessment (期末考评); a judgement,
    once made, is not silently replaced."""
    if already is not None:
        raise SupervisionRefused("completion-already-recorded", f"completion already recorded as {already}")
    if completion is not Completion.NOT_COMPLETED and InspectionKind.FINAL not in kinds_inspected:
        raise SupervisionRefused("final-inspection-required", "record the final assessment (期末考评) before completion")


def check_inspection(kind: InspectionKind, kinds_inspected: set[InspectionKind]) -> None:
    """Mid-term and final assessments happen once each; look-backs (回头看) may repeat."""
    if kind is not InspectionKind.LOOK_BACK and kind in kinds_inspected:
        raise SupervisionRefused("inspection-already-recorded", f"the {kind} assessment is already recorded")
    if kind is InspectionKind.FINAL and InspectionKind.MID_TERM not in kinds_inspected:
        raise SupervisionRefused("mid-term-required", "the mid-term assessment (期中考评) comes before the final")
