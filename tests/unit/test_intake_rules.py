"""Intake (征集 → 初定): the screening pipeline, the competitive slate (差额) and the sorting of
candidates not chosen (分类处置). Rules from DOMAIN.md §1. Pure domain, no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain.screening import (
    Disposition,
    DispositionRules,
    ScreeningRefused,
    SlateRules,
    Stage,
    check_slate,
    dispose,
    screen,
)

# ---------------------------------------------------------------- screening (初审 → 论证 → 党委研究 → 候选)

# The forward moves the rulebook names; feasibility review (可行性论证) may be skipped.
FORWARD = {
    (Stage.SUBMITTED, Stage.PRELIMINARY_REVIEW),
    (Stage.PRELIMINARY_REVIEW, Stage.FEASIBILITY_REVIEWED),
    (Stage.PRELIMINARY_REVIEW, Stage.APPROVED),
    (Stage.FEASIBILITY_REVIEWED, Stage.APPROVED),
    (Stage.APPROVED, Stage.CANDIDATE),
}
BEFORE_THE_BALLOT = [Stage.SUBMITTED, Stage.PRELIMINARY_REVIEW, Stage.FEASIBILITY_REVIEWED, Stage.APPROVED, Stage.CANDIDATE]
PAST_SCREENING = [Stage.ON_BALLOT, Stage.CHOSEN, Stage.DISPOSED, Stage.REJECTED]


@pytest.mark.parametrize(("current", "target"), sorted(FORWARD))
def test_screening_moves_forward_one_stage_at_a_time(current, target):
    assert screen(current, target) is target


def test_full_screening_path_from_submission_to_candidate():
    stage = Stage.SUBMITTED
    for target in (Stage.PRELIMINARY_REVIEW, Stage.FEASIBILITY_REVIEWED, Stage.APPROVED, Stage.CANDIDATE):
        stage = screen(stage, target)
    assert stage is Stage.CANDIDATE


def test_feasibility_review_is_optional():
    assert screen(Stage.PRELIMINARY_REVIEW, Stage.APPROVED) is Stage.APPROVED


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in Stage for t in Stage if t is not Stage.REJECTED and (c, t) not in FORWARD],
)
def test_screening_refuses_every_other_move(current, target):
    """No skipping the government's preliminary review or the party committee, no going back,
    and nothing reaches the ballot, the vote's result or a disposition by a screening decision."""
    with pytest.raises(ScreeningRefused) as refused:
        screen(current, target, reason="because")
    assert refused.value.code == "transition-not-allowed"


@pytest.mark.parametrize("current", BEFORE_THE_BALLOT)
def test_any_stage_before_the_ballot_may_reject_with_a_reason(current):
    assert screen(current, Stage.REJECTED, reason="不属于民生实事范围：办公楼建设") is Stage.REJECTED


@pytest.mark.parametrize("current", BEFORE_THE_BALLOT)
@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_rejection_without_a_reason_is_refused(current, reason):
    with pytest.raises(ScreeningRefused) as refused:
        screen(current, Stage.REJECTED, reason=reason)
    assert refused.value.code == "reason-required"


@pytest.mark.parametrize("current", PAST_SCREENING)
def test_a_proposal_on_the_ballot_or_decided_can_no_longer_be_rejected(current):
    with pytest.raises(ScreeningRefused) as refused:
        screen(current, Stage.REJECTED, reason="too late")
    assert refused.value.code == "transition-not-allowed"


# ---------------------------------------------------------------- the slate (差额)


@pytest.mark.parametrize(("candidates", "seats"), [(10, 7), (12, 10), (7, 5), (20, 10)])
def test_slates_seen_in_practice_are_competitive(candidates, seats):
    check_slate(candidates, seats)


@pytest.mark.parametrize(
    ("seats", "least_candidates"),
    [
        (1, 2),  # seats + 1
        (3, 4),  # seats + 1 (1.2 × 3 = 3.6 → 4)
        (5, 6),  # both give 6
        (7, 9),  # 1.2 × 7 = 8.4 → 9: seats + 1 = 8 is not enough
        (10, 12),
        (15, 18),
    ],
)
def test_competitive_slate_needs_seats_plus_one_and_one_point_two_times_seats(seats, least_candidates):
    check_slate(least_candidates, seats)
    with pytest.raises(ScreeningRefused) as refused:
        check_slate(least_candidates - 1, seats)
    assert refused.value.code == "slate-not-competitive"
    assert str(least_candidates) in str(refused.value)


@pytest.mark.parametrize("seats", [1, 5, 7, 10])
def test_equal_slate_is_refused_by_default(seats):
    with pytest.raises(ScreeningRefused) as refused:
        check_slate(seats, seats)
    assert refused.value.code == "slate-not-competitive"


@pytest.mark.parametrize("seats", [1, 5, 7, 10])
def test_equal_slate_is_accepted_when_explicitly_allowed(seats):
    check_slate(seats, seats, SlateRules(allow_equal=True))


@pytest.mark.parametrize("rules", [SlateRules(), SlateRules(allow_equal=True)])
def test_fewer_candidates_than_seats_is_always_refused(rules):
    with pytest.raises(ScreeningRefused) as refused:
        check_slate(6, 7, rules)
    assert refused.value.code == "too-few-candidates"


@pytest.mark.parametrize("seats", [0, -1])
def test_slate_without_seats_is_refused(seats):
    with pytest.raises(ScreeningRefused) as refused:
        check_slate(5, seats, SlateRules(allow_equal=True))
    assert refused.value.code == "invalid-seats"


def test_competitive_ratio_is_a_setting():
    one_and_a_half = SlateRules(min_ratio=Decimal("1.5"))
    check_slate(6, 4, one_and_a_half)
    with pytest.raises(ScreeningRefused):
        check_slate(5, 4, one_and_a_half)
    check_slate(5, 4)  # the default 1.2 accepts it


@given(candidates=st.integers(0, 200), seats=st.integers(1, 150))
def test_slate_is_accepted_exactly_when_competitive(candidates, seats):
    competitive = candidates >= seats + 1 and 5 * candidates >= 6 * seats
    try:
        check_slate(candidates, seats)
        accepted = True
    except ScreeningRefused:
        accepted = False
    assert accepted is competitive


# ---------------------------------------------------------------- 分类处置 of candidates not chosen


@pytest.mark.parametrize(
    ("funding_secured", "budget", "beneficiaries", "disposition"),
    [
        # funded and feasible → done anyway as ordinary livelihood works, whatever its size
        (True, Decimal("3000000"), 20000, Disposition.ORDINARY_WORKS),
        (True, Decimal("100000"), 50, Disposition.ORDINARY_WORKS),
        (True, None, None, Disposition.ORDINARY_WORKS),
        # small in cost or narrow in benefit → handed to the village / community
        (False, Decimal("499999.99"), 20000, Disposition.HANDED_TO_VILLAGE),
        (False, Decimal("3000000"), 999, Disposition.HANDED_TO_VILLAGE),
        (False, Decimal("100000"), None, Disposition.HANDED_TO_VILLAGE),
        (False, None, 200, Disposition.HANDED_TO_VILLAGE),
        # not ripe but urgent, not small → the project library, carried into next year
        (False, Decimal("500000"), 1000, Disposition.PROJECT_LIBRARY),  # thresholds are not "small"
        (False, Decimal("3000000"), 20000, Disposition.PROJECT_LIBRARY),
        (False, None, None, Disposition.PROJECT_LIBRARY),
    ],
)
def test_candidates_not_chosen_are_sorted_as_the_town_does(funding_secured, budget, beneficiaries, disposition):
    got, reason = dispose(funding_secured, budget, beneficiaries)
    assert got is disposition
    assert reason.strip()


def test_disposition_thresholds_are_a_setting():
    county = DispositionRules(small_budget=Decimal("2000000"), narrow_beneficiaries=5000)
    assert dispose(False, Decimal("1000000"), 20000, county)[0] is Disposition.HANDED_TO_VILLAGE
    assert dispose(False, Decimal("3000000"), 4000, county)[0] is Disposition.HANDED_TO_VILLAGE
    assert dispose(False, Decimal("1000000"), 20000)[0] is Disposition.PROJECT_LIBRARY
