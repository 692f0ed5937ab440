"""Scoring (考核): a project's score from its inspection ratings, and a township's annual
assessment of its voted projects (completion rate, points added and deducted, with caps).
DOMAIN.md §4 (satisfaction rating is not in this module yet). Pure domain, no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scoring.domain import AssessmentMethod, assess, is_completed, project_score
from shared.contracts.supervision import Completion, InspectionKind

MID, FINAL, LOOK_BACK = InspectionKind.MID_TERM, InspectionKind.FINAL, InspectionKind.LOOK_BACK
DONE, BASIC, NOT_DONE = Completion.COMPLETED, Completion.BASICALLY_COMPLETED, Completion.NOT_COMPLETED
METHOD = AssessmentMethod()  # mid-term 0.3, final 0.5, look-back 0.2; +1 each up to 5, −1 each up to 3


# ---------------------------------------------------------------- project score


@pytest.mark.parametrize("ratings", [{}, {MID: []}, {MID: [], FINAL: [], LOOK_BACK: []}])
def test_project_has_no_score_before_any_rating(ratings):
    assert project_score(ratings, METHOD) is None


def test_project_score_weights_mid_term_final_and_look_back():
    # 0.3 × 80 + 0.5 × 90 + 0.2 × 70 = 83
    assert project_score({MID: [80], FINAL: [90], LOOK_BACK: [70]}, METHOD) == Decimal("83.00")


def test_project_score_renormalises_weights_over_the_kinds_rated_so_far():
    # (0.3 × 80 + 0.5 × 90) / 0.8 = 86.25
    assert project_score({MID: [80], FINAL: [90]}, METHOD) == Decimal("86.25")
    assert project_score({MID: [80], FINAL: [90], LOOK_BACK: []}, METHOD) == Decimal("86.25")


def test_project_score_with_one_kind_rated_is_that_rating():
    assert project_score({MID: [77]}, METHOD) == Decimal("77.00")


def test_repeated_ratings_of_one_kind_are_averaged():
    # look-back (回头看) may be repeated: 70 and 80 → 75
    assert project_score({LOOK_BACK: [70, 80]}, METHOD) == Decimal("75.00")
    # 0.3 × 80 + 0.5 × 90 + 0.2 × 75 = 84
    assert project_score({MID: [80], FINAL: [90], LOOK_BACK: [70, 80]}, METHOD) == Decimal("84.00")


def test_project_score_is_rounded_half_up_to_two_places():
    # (0.3 × 80 + 0.5 × 81) / 0.8 = 80.625 → 80.63 (not banker's 80.62)
    score = project_score({MID: [80], FINAL: [81]}, METHOD)
    assert score == Decimal("80.63")
    assert score.as_tuple().exponent == -2
    # 80, 81, 81 → 80.666… → 80.67
    assert project_score({MID: [80, 81, 81]}, METHOD) == Decimal("80.67")


def test_score_weights_are_part_of_the_assessment_method():
    final_only = AssessmentMethod(weights={FINAL: Decimal("1")})
    assert project_score({MID: [60], FINAL: [90]}, final_only) == Decimal("90.00")
    assert project_score({MID: [60]}, final_only) is None  # a kind the method does not weigh


def test_assessment_method_cannot_be_changed_once_made():
    with pytest.raises(ValidationError):
        METHOD.bonus_cap = Decimal("10")


@given(st.dictionaries(st.sampled_from([MID, FINAL, LOOK_BACK]), st.lists(st.integers(0, 100), min_size=1, max_size=5), min_size=1))
def test_project_score_lies_between_the_lowest_and_highest_rating(ratings):
    score = project_score(ratings, METHOD)
    every = [r for values in ratings.values() for r in values]
    assert min(every) <= score <= max(every)


# ---------------------------------------------------------------- completion counts


@pytest.mark.parametrize(
    ("completion", "counts_by_default", "counts_when_basic_does_not"),
    [(DONE, True, True), (BASIC, True, False), (NOT_DONE, False, False), (None, False, False)],
)
def test_which_completion_judgements_count_as_completed(completion, counts_by_default, counts_when_basic_does_not):
    strict = AssessmentMethod(basically_completed_counts=False)
    assert is_completed(completion, METHOD) is counts_by_default
    assert is_completed(completion, strict) is counts_when_basic_does_not


# ---------------------------------------------------------------- township annual assessment


def test_town_with_nine_of_ten_completed_has_ninety_percent_and_capped_bonus():
    figures = assess([DONE] * 8 + [BASIC] + [NOT_DONE], METHOD)
    assert (figures.total_projects, figures.completed) == (10, 9)
    assert figures.completion_rate == Decimal("0.9000")
    assert figures.bonus == Decimal("5.0")  # 9 × 1 capped at 5
    assert figures.deduction == Decimal("1.0")
    assert figures.net_points == Decimal("4.0")


def test_points_are_added_per_completed_and_deducted_per_unfinished_below_the_caps():
    figures = assess([DONE, DONE, NOT_DONE], METHOD)
    assert figures.bonus == Decimal("2")
    assert figures.deduction == Decimal("1")
    assert figures.net_points == Decimal("1")


def test_deduction_is_capped():
    figures = assess([NOT_DONE] * 7, METHOD)
    assert figures.completion_rate == Decimal("0")
    assert figures.bonus == Decimal("0")
    assert figures.deduction == Decimal("3.0")
    assert figures.net_points == Decimal("-3.0")


def test_project_without_a_completion_judgement_counts_as_not_completed():
    figures = assess([DONE, None], METHOD)
    assert figures.completed == 1
    assert figures.completion_rate == Decimal("0.5000")
    assert figures.deduction == Decimal("1")


def test_basically_completed_counts_as_unfinished_when_the_method_says_so():
    strict = AssessmentMethod(basically_completed_counts=False)
    figures = assess([DONE, BASIC, BASIC], strict)
    assert figures.completed == 1
    assert figures.bonus == Decimal("1")
    assert figures.deduction == Decimal("2")


def test_completion_rate_is_rounded_half_up_to_four_places():
    assert assess([DONE, DONE, NOT_DONE], METHOD).completion_rate == Decimal("0.6667")
    assert assess([DONE] + [NOT_DONE] * 7, METHOD).completion_rate == Decimal("0.1250")


def test_points_per_project_and_caps_are_set_by_the_method():
    method = AssessmentMethod(
        points_per_completed=Decimal("0.5"), bonus_cap=Decimal("2"),
        points_per_unfinished=Decimal("2"), deduction_cap=Decimal("3"),
    )
    figures = assess([DONE] * 3 + [NOT_DONE], method)
    assert figures.bonus == Decimal("1.5")
    assert figures.deduction == Decimal("2")
    figures = assess([DONE] * 7 + [NOT_DONE] * 2, method)
    assert figures.bonus == Decimal("2")
    assert figures.deduction == Decimal("3")


def test_township_without_voted_projects_gets_no_points():
    figures = assess([], METHOD)
    assert (figures.total_projects, figures.completed) == (0, 0)
    assert figures.completion_rate == Decimal("0")
    assert figures.bonus == figures.deduction == Decimal("0")


@given(
    st.lists(st.sampled_from([DONE, BASIC, NOT_DONE, None]), max_size=40),
    st.sampled_from([METHOD, AssessmentMethod(basically_completed_counts=False)]),
)
def test_assessment_figures_stay_within_their_bounds(completions, method):
    figures = assess(completions, method)
    assert figures.total_projects == len(completions)
    assert figures.completed == sum(1 for c in completions if is_completed(c, method))
    assert Decimal(0) <= figures.completion_rate <= Decimal(1)
    assert Decimal(0) <= figures.bonus <= method.bonus_cap
    assert Decimal(0) <= figures.deduction <= method.deduction_cap
    assert figures.net_points == figures.bonus - figures.deduction
    if completions:
        assert abs(figures.completion_rate - Decimal(figures.completed) / len(completions)) <= Decimal("0.00005")
