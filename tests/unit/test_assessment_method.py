"""The versioned assessment method (年度考核评比办法): bounds, inspection aggregation, the penalty
for overdue rectification, investment completion, the county ranking, and webhook signing and
back-off. DOMAIN.md §4. Pure domain, no I/O."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scoring.domain import (
    SATISFACTION,
    Aggregation,
    AssessmentMethod,
    MethodVersion,
    Standing,
    assess,
    default_method,
    inspection_rating,
    project_score,
    rank,
    webhooks,
)
from shared.contracts.supervision import Completion, InspectionKind

MID, FINAL = InspectionKind.MID_TERM, InspectionKind.FINAL
DONE, NOT_DONE = Completion.COMPLETED, Completion.NOT_COMPLETED


# ---------------------------------------------------------------- bounds: no score of 200


def test_a_negative_weight_is_refused_so_no_score_of_200():
    # weights −1 and 2 would turn ratings 0 and 100 into (−0 + 200) / 1 = 200
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        AssessmentMethod(weights={MID: Decimal("-1"), FINAL: Decimal("2")})


@pytest.mark.parametrize("field", ["bonus_cap", "deduction_cap", "rectification_cap", "points_per_completed",
                                   "points_per_unfinished", "points_per_overdue_rectification"])
def test_negative_points_and_caps_are_refused(field):
    with pytest.raises(ValidationError):
        AssessmentMethod(**{field: Decimal("-0.5")})


def test_all_weights_zero_is_refused():
    with pytest.raises(ValidationError, match="at least one weight"):
        AssessmentMethod(weights={MID: Decimal(0)})


def test_an_unknown_weight_key_is_refused():
    with pytest.raises(ValidationError, match="unknown weight"):
        AssessmentMethod(weights={"annual": Decimal(1)})


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e9"])
def test_unbounded_numbers_are_refused(value):
    with pytest.raises(ValidationError):
        AssessmentMethod(bonus_cap=Decimal(value))


weights = st.dictionaries(st.sampled_from([MID, FINAL, InspectionKind.LOOK_BACK, SATISFACTION]),
                          st.decimals(0, 100, places=2), min_size=1).filter(lambda w: any(v > 0 for v in w.values()))


@given(weights, st.dictionaries(st.sampled_from([MID, FINAL, InspectionKind.LOOK_BACK, SATISFACTION]),
                                st.lists(st.integers(0, 100), min_size=1, max_size=4)))
def test_any_valid_method_keeps_every_score_within_0_and_100(w, ratings):
    score = project_score(ratings, AssessmentMethod(weights=w))
    assert score is None or Decimal(0) <= score <= Decimal(100)


# ---------------------------------------------------------------- versions


def test_figures_name_the_method_version():
    assert MethodVersion("taihu", 2024, 2, AssessmentMethod()).label == "taihu/2024/v2"
    assert default_method(2024).label == "default/2024"


# ---------------------------------------------------------------- one inspection's rating from the deputies'


def test_mean_of_the_deputies_ratings():
    assert inspection_rating([80, 90, 95], AssessmentMethod()) == Decimal("88.33")


def test_trimmed_mean_drops_the_highest_and_the_lowest():
    trimmed = AssessmentMethod(aggregation=Aggregation.TRIMMED_MEAN)
    assert inspection_rating([40, 80, 90, 100], trimmed) == Decimal("85.00")


def test_trimmed_mean_with_too_few_ratings_is_the_mean():
    trimmed = AssessmentMethod(aggregation=Aggregation.TRIMMED_MEAN, trim=1)
    assert inspection_rating([40, 100], trimmed) == Decimal("70.00")


def test_an_inspection_nobody_rated_has_no_rating():
    assert inspection_rating([], AssessmentMethod()) is None


@given(st.lists(st.integers(0, 100), min_size=1, max_size=30), st.sampled_from(list(Aggregation)), st.integers(1, 3))
def test_an_inspection_rating_lies_between_the_lowest_and_highest(ratings, aggregation, trim):
    rating = inspection_rating(ratings, AssessmentMethod(aggregation=aggregation, trim=trim))
    assert min(ratings) <= rating <= max(ratings)


# ---------------------------------------------------------------- overdue rectification, investment


def test_overdue_rectification_items_cost_points_up_to_the_cap():
    method = AssessmentMethod(points_per_overdue_rectification=Decimal("0.5"), rectification_cap=Decimal("1.2"))
    assert assess([DONE], method, overdue_rectifications=2).rectification_deduction == Decimal("1.0")
    figures = assess([DONE], method, overdue_rectifications=5)
    assert figures.rectification_deduction == Decimal("1.2")
    assert figures.net_points == Decimal("1.0") - Decimal("1.2")


def test_investment_completed_against_plan():
    figures = assess([DONE, NOT_DONE], AssessmentMethod(), investment_planned=Decimal(3_000_000),
                     investment_spent=Decimal(2_250_000))
    assert figures.investment_rate == Decimal("0.7500")
    assert assess([DONE], AssessmentMethod()).investment_rate == Decimal(0)


# ---------------------------------------------------------------- the county ranking


def test_townships_rank_by_net_points_then_completion_then_investment():
    s = [Standing("taihu.a", Decimal(3), Decimal("0.9"), Decimal("0.8")),
         Standing("taihu.b", Decimal(5), Decimal("0.5"), Decimal("0.1")),
         Standing("taihu.c", Decimal(3), Decimal("0.9"), Decimal("0.9")),
         Standing("taihu.d", Decimal(3), Decimal("0.95"), Decimal("0"))]
    assert [(place, x.jurisdiction) for place, x in rank(s)] == [(1, "taihu.b"), (2, "taihu.d"), (3, "taihu.c"), (4, "taihu.a")]


def test_equal_townships_share_a_rank():
    s = [Standing(j, Decimal(2), Decimal("0.5"), Decimal("0.5")) for j in ("taihu.x", "taihu.y")]
    s.append(Standing("taihu.z", Decimal(1), Decimal(1), Decimal(1)))
    assert [place for place, _ in rank(s)] == [1, 1, 3]


# ---------------------------------------------------------------- webhook signature and retries


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature("s3cret", 1700000000, body) == "sha256=" + expected
    assert webhooks.signature("other", 1700000000, body) != webhooks.signature("s3cret", 1700000000, body)
    assert webhooks.signature("s3cret", 1700000001, body) != webhooks.signature("s3cret", 1700000000, body)


def test_retries_back_off_exponentially_up_to_a_ceiling():
    waits = [webhooks.next_wait(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40), timedelta(seconds=80)]
    assert waits == sorted(waits) and max(waits) == webhooks.LONGEST_WAIT
    assert webhooks.next_wait(10_000) == webhooks.LONGEST_WAIT


def test_an_hour_of_failures_is_retried_about_a_dozen_times_never_given_up():
    elapsed, attempts = timedelta(0), 0
    while elapsed < timedelta(hours=1):
        attempts += 1
        elapsed += webhooks.next_wait(attempts)
    assert 6 <= attempts <= 15


def test_the_alert_is_raised_once_at_the_threshold():
    assert [n for n in range(1, 20) if webhooks.alert_due(n, 5)] == [5]
