"""Supervision (监督): the order of assessments and the completion judgement. DOMAIN.md §3.
Pure domain, no I/O."""

from __future__ import annotations

import pytest

from services.supervision.domain import SupervisionRefused, check_completion, check_inspection
from shared.contracts.supervision import Completion, InspectionKind

MID, FINAL, LOOK_BACK = InspectionKind.MID_TERM, InspectionKind.FINAL, InspectionKind.LOOK_BACK


def refusal(check, *args) -> str:
    with pytest.raises(SupervisionRefused) as refused:
        check(*args)
    return refused.value.code


# ---------------------------------------------------------------- inspection order (期中 → 期末, 回头看)


def test_mid_term_assessment_may_be_the_first():
    check_inspection(MID, set())


def test_final_assessment_after_the_mid_term_is_accepted():
    check_inspection(FINAL, {MID})


@pytest.mark.parametrize("inspected", [set(), {LOOK_BACK}])
def test_final_assessment_before_the_mid_term_is_refused(inspected):
    assert refusal(check_inspection, FINAL, inspected) == "mid-term-required"


@pytest.mark.parametrize(
    ("kind", "inspected"),
    [(MID, {MID}), (MID, {MID, FINAL}), (FINAL, {MID, FINAL}), (FINAL, {MID, FINAL, LOOK_BACK})],
)
def test_mid_term_and_final_assessments_happen_once_each(kind, inspected):
    assert refusal(check_inspection, kind, inspected) == "inspection-already-recorded"


@pytest.mark.parametrize("inspected", [{MID, FINAL}, {MID, FINAL, LOOK_BACK}])
def test_look_back_may_be_repeated(inspected):
    check_inspection(LOOK_BACK, inspected)


# ---------------------------------------------------------------- completion (完成/基本完成/未完成)


@pytest.mark.parametrize("completion", [Completion.COMPLETED, Completion.BASICALLY_COMPLETED])
@pytest.mark.parametrize("inspected", [set(), {MID}, {MID, LOOK_BACK}])
def test_completion_needs_the_final_assessment_first(completion, inspected):
    assert refusal(check_completion, completion, inspected, None) == "final-inspection-required"


@pytest.mark.parametrize("completion", list(Completion))
def test_any_completion_judgement_may_follow_the_final_assessment(completion):
    check_completion(completion, {MID, FINAL}, None)


@pytest.mark.parametrize("inspected", [set(), {MID}])
def test_not_completed_may_be_recorded_without_a_final_assessment(inspected):
    check_completion(Completion.NOT_COMPLETED, inspected, None)


@pytest.mark.parametrize("already", list(Completion))
@pytest.mark.parametrize("completion", list(Completion))
def test_a_completion_judgement_once_made_is_not_replaced(already, completion):
    assert refusal(check_completion, completion, {MID, FINAL}, already) == "completion-already-recorded"
