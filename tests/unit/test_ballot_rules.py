"""The vote (票决): quorum, ballot validity, tally, passing, ranking, ties and shortfall.

Rules from DOMAIN.md §2 and its edge-case list. Pure domain, no I/O."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ballot.domain.rules import (
    BallotFormat,
    BallotRejected,
    CandidateCount,
    Mark,
    PassingBasis,
    Tally,
    VoteRules,
    check_ballot,
    decide,
    has_quorum,
    passes,
    round_stands,
    tally,
)

DEFAULT = VoteRules()
SEATED_BASIS = VoteRules(passing_basis=PassingBasis.SEATED)
PRESENT_BASIS = VoteRules(passing_basis=PassingBasis.PRESENT)
RANKING_BASIS = VoteRules(passing_basis=PassingBasis.RANKING)
CHOOSE_UP_TO = VoteRules(ballot_format=BallotFormat.CHOOSE_UP_TO)

A, B, C, D, E = (UUID(int=i) for i in range(1, 6))
STRANGER = UUID(int=99)


def ids(n: int) -> list[UUID]:
    return [UUID(int=i) for i in range(1, n + 1)]


def result(for_votes: dict[UUID, int], valid: int = 30) -> Tally:
    """A tally in which each candidate got the given "for" votes (the rest: not marked)."""
    counts = {c: CandidateCount(for_votes=n, not_marked=valid - n) for c, n in for_votes.items()}
    return Tally(collected=valid, valid=valid, invalid=0, counts=counts)


# ---------------------------------------------------------------- quorum (法定人数)


def test_exactly_two_thirds_present_is_a_quorum():
    assert has_quorum(present=20, seated=30)


def test_one_below_two_thirds_present_is_not_a_quorum():
    assert not has_quorum(present=19, seated=30)


@pytest.mark.parametrize(
    ("seated", "least_quorum"),
    [(1, 1), (2, 2), (3, 2), (4, 3), (10, 7), (11, 8), (31, 21), (45, 30), (100, 67)],
)
def test_quorum_needs_present_at_least_two_thirds_of_seated_rounded_up(seated, least_quorum):
    assert has_quorum(least_quorum, seated)
    assert not has_quorum(least_quorum - 1, seated)


def test_no_seated_deputies_is_never_a_quorum():
    assert not has_quorum(present=0, seated=0)


def test_quorum_fraction_is_a_setting():
    half = VoteRules(quorum_numerator=1, quorum_denominator=2)
    assert has_quorum(15, 30, half)
    assert not has_quorum(14, 30, half)
    assert not has_quorum(15, 30)  # the default 2/3 is not met by half


def test_quorum_fraction_above_one_is_refused():
    with pytest.raises(ValidationError):
        VoteRules(quorum_numerator=4, quorum_denominator=3)


@given(seated=st.integers(1, 500), data=st.data())
def test_quorum_is_exactly_present_at_least_two_thirds_of_seated(seated, data):
    present = data.draw(st.integers(0, seated))
    assert has_quorum(present, seated) == (3 * present >= 2 * seated)


@given(seated=st.integers(0, 500), data=st.data())
def test_more_deputies_present_never_loses_the_quorum(seated, data):
    present = data.draw(st.integers(0, seated))
    if has_quorum(present, seated):
        assert all(has_quorum(p, seated) for p in range(present, seated + 1))


# ---------------------------------------------------------------- the rules are frozen


def test_vote_rules_cannot_be_changed_once_made():
    with pytest.raises(ValidationError):
        DEFAULT.passing_basis = PassingBasis.PRESENT


def test_vote_rules_refuse_unknown_settings():
    with pytest.raises(ValidationError):
        VoteRules(threshold="half")


def test_a_for_limit_of_zero_is_refused():
    with pytest.raises(ValidationError):
        VoteRules(max_for=0)


def test_default_ballot_is_for_against_abstain_passing_on_seated_deputies():
    assert DEFAULT.ballot_format is BallotFormat.FOR_AGAINST_ABSTAIN
    assert DEFAULT.passing_basis is PassingBasis.SEATED
    assert DEFAULT.for_limit(7) == 7


# ---------------------------------------------------------------- ballot validity


CANDIDATES = ids(5)  # a slate of 5 for 3 seats
SEATS = 3


def test_ballot_with_as_many_for_marks_as_seats_is_valid():
    marks = {A: Mark.FOR, B: Mark.FOR, C: Mark.FOR, D: Mark.AGAINST, E: Mark.ABSTAIN}
    assert check_ballot(marks, CANDIDATES, SEATS, DEFAULT)


def test_ballot_with_one_for_mark_more_than_seats_is_invalid():
    marks = {A: Mark.FOR, B: Mark.FOR, C: Mark.FOR, D: Mark.FOR}
    assert not check_ballot(marks, CANDIDATES, SEATS, DEFAULT)


def test_blank_ballot_is_valid():
    assert check_ballot({}, CANDIDATES, SEATS, DEFAULT)


def test_all_abstain_ballot_is_valid():
    assert check_ballot(dict.fromkeys(CANDIDATES, Mark.ABSTAIN), CANDIDATES, SEATS, DEFAULT)


def test_against_marks_on_every_candidate_do_not_count_toward_the_for_limit():
    assert check_ballot(dict.fromkeys(CANDIDATES, Mark.AGAINST), CANDIDATES, SEATS, DEFAULT)


@pytest.mark.parametrize(
    "marks",
    [
        {STRANGER: Mark.FOR},
        {A: Mark.FOR, STRANGER: Mark.ABSTAIN},
        {A: Mark.FOR, B: Mark.FOR, C: Mark.FOR, D: Mark.FOR, STRANGER: Mark.AGAINST},  # also too many "for"
    ],
)
def test_mark_for_a_candidate_not_on_the_ballot_is_rejected(marks):
    with pytest.raises(BallotRejected) as refused:
        check_ballot(marks, CANDIDATES, SEATS, DEFAULT)
    assert refused.value.code == "unknown-candidate"
    assert str(STRANGER) in str(refused.value)


def test_for_limit_setting_overrides_the_number_of_seats():
    two_at_most = VoteRules(max_for=2)
    assert check_ballot({A: Mark.FOR, B: Mark.FOR}, CANDIDATES, SEATS, two_at_most)
    assert not check_ballot({A: Mark.FOR, B: Mark.FOR, C: Mark.FOR}, CANDIDATES, SEATS, two_at_most)


@pytest.mark.parametrize("mark", [Mark.AGAINST, Mark.ABSTAIN])
def test_choose_up_to_ballot_refuses_against_and_abstain_marks(mark):
    with pytest.raises(BallotRejected) as refused:
        check_ballot({A: Mark.FOR, B: mark}, CANDIDATES, SEATS, CHOOSE_UP_TO)
    assert refused.value.code == "mark-not-allowed"


def test_choose_up_to_ballot_with_up_to_n_ticks_is_valid_and_one_more_is_invalid():
    assert check_ballot({}, CANDIDATES, SEATS, CHOOSE_UP_TO)
    assert check_ballot({A: Mark.FOR, B: Mark.FOR, C: Mark.FOR}, CANDIDATES, SEATS, CHOOSE_UP_TO)
    assert not check_ballot({A: Mark.FOR, B: Mark.FOR, C: Mark.FOR, D: Mark.FOR}, CANDIDATES, SEATS, CHOOSE_UP_TO)


def test_choose_up_to_ballot_checks_unknown_candidates_first():
    with pytest.raises(BallotRejected) as refused:
        check_ballot({STRANGER: Mark.AGAINST}, CANDIDATES, SEATS, CHOOSE_UP_TO)
    assert refused.value.code == "unknown-candidate"


# ---------------------------------------------------------------- tally (计票)


def test_tally_counts_each_mark_and_leaves_invalid_ballots_out_of_the_counts():
    ballots = [
        {A: Mark.FOR, B: Mark.FOR, C: Mark.AGAINST},
        {A: Mark.FOR, C: Mark.ABSTAIN},
        {},  # blank: valid, nothing marked
        {A: Mark.AGAINST, B: Mark.FOR},
        {A: Mark.FOR, B: Mark.FOR, C: Mark.FOR},  # 3 "for" for 2 seats: invalid
    ]
    counted = tally(ballots, [A, B, C], seats=2, rules=DEFAULT)
    assert (counted.collected, counted.valid, counted.invalid) == (5, 4, 1)
    assert counted.counts[A] == CandidateCount(for_votes=2, against=1, abstain=0, not_marked=1)
    assert counted.counts[B] == CandidateCount(for_votes=2, against=0, abstain=0, not_marked=2)
    assert counted.counts[C] == CandidateCount(for_votes=0, against=1, abstain=1, not_marked=2)


def test_tally_of_no_ballots_is_all_zero_for_every_candidate():
    counted = tally([], [A, B], seats=1, rules=DEFAULT)
    assert (counted.collected, counted.valid, counted.invalid) == (0, 0, 0)
    assert counted.counts == {A: CandidateCount(), B: CandidateCount()}


def test_tally_refuses_a_ballot_marking_a_candidate_not_on_the_slate():
    with pytest.raises(BallotRejected) as refused:
        tally([{A: Mark.FOR}, {STRANGER: Mark.FOR}], [A, B], seats=1, rules=DEFAULT)
    assert refused.value.code == "unknown-candidate"


def test_invalid_ballot_is_collected_but_counts_for_nobody():
    counted = tally([{A: Mark.FOR, B: Mark.FOR}], [A, B], seats=1, rules=DEFAULT)
    assert (counted.collected, counted.valid, counted.invalid) == (1, 0, 1)
    assert counted.counts[A] == CandidateCount()


@st.composite
def rounds(draw, rules_strategy=st.sampled_from([DEFAULT, VoteRules(max_for=1)])):
    """A slate, its seats, rules and the ballots collected (for/against/abstain format)."""
    n = draw(st.integers(1, 6))
    candidates = ids(n)
    seats = draw(st.integers(1, n))
    rules = draw(rules_strategy)
    ballots = draw(st.lists(st.dictionaries(st.sampled_from(candidates), st.sampled_from(list(Mark))), max_size=40))
    return candidates, seats, rules, ballots


@given(rounds())
def test_tally_every_valid_ballot_gives_each_candidate_exactly_one_of_for_against_abstain_or_not_marked(round_):
    candidates, seats, rules, ballots = round_
    counted = tally(ballots, candidates, seats, rules)
    for c in candidates:
        n = counted.counts[c]
        assert n.for_votes + n.against + n.abstain + n.not_marked == counted.valid


@given(rounds())
def test_tally_valid_plus_invalid_is_every_ballot_collected(round_):
    candidates, seats, rules, ballots = round_
    counted = tally(ballots, candidates, seats, rules)
    assert counted.collected == len(ballots)
    assert counted.valid + counted.invalid == counted.collected
    limit = rules.max_for or seats
    assert counted.valid == sum(1 for b in ballots if list(b.values()).count(Mark.FOR) <= limit)


@given(rounds())
def test_tally_for_votes_are_the_for_marks_on_valid_ballots(round_):
    candidates, seats, rules, ballots = round_
    counted = tally(ballots, candidates, seats, rules)
    limit = rules.max_for or seats
    valid = [b for b in ballots if list(b.values()).count(Mark.FOR) <= limit]
    for c in candidates:
        assert counted.counts[c].for_votes == sum(1 for b in valid if b.get(c) is Mark.FOR)
        assert counted.counts[c].against == sum(1 for b in valid if b.get(c) is Mark.AGAINST)


@given(rounds(), st.randoms(use_true_random=False))
def test_tally_does_not_depend_on_the_order_ballots_are_counted(round_, rnd):
    """Paper and electronic ballots arrive in different orders; both give the same tally."""
    candidates, seats, rules, ballots = round_
    shuffled = list(ballots)
    rnd.shuffle(shuffled)
    assert tally(shuffled, candidates, seats, rules) == tally(ballots, candidates, seats, rules)


# ---------------------------------------------------------------- issued vs collected (发出/收回)


@pytest.mark.parametrize(
    ("issued", "collected", "stands"),
    [
        (30, 30, True),  # collected = issued
        (30, 29, True),  # collected < issued
        (30, 0, True),
        (30, 31, False),  # collected > issued: void, run again
        (0, 1, False),
    ],
)
def test_round_stands_only_when_collected_does_not_exceed_issued(issued, collected, stands):
    assert round_stands(issued, collected) is stands


# ---------------------------------------------------------------- passing (过半数)


@pytest.mark.parametrize(
    ("for_votes", "seated", "passed"),
    [
        (15, 30, False),  # exactly half of seated fails
        (16, 30, True),
        (15, 31, False),
        (16, 31, True),
        (0, 30, False),
        (30, 30, True),
    ],
)
def test_for_votes_must_be_more_than_half_of_seated_deputies(for_votes, seated, passed):
    assert passes(for_votes, seated=seated, present=seated, rules=SEATED_BASIS) is passed


def test_for_votes_exactly_half_of_seated_fails():
    assert not passes(15, seated=30, present=20, rules=DEFAULT)


def test_for_votes_exactly_half_of_present_fails_on_present_basis():
    assert not passes(11, seated=30, present=22, rules=PRESENT_BASIS)
    assert passes(12, seated=30, present=22, rules=PRESENT_BASIS)


def test_seated_basis_ignores_how_many_are_present():
    assert not passes(12, seated=30, present=22, rules=SEATED_BASIS)


def test_passing_basis_seated_or_present_chooses_different_winners():
    """30 seated, 22 present, 2 seats: B and C clear half of those present but not half of all seated."""
    votes = result({A: 20, B: 14, C: 12, D: 8}, valid=22)

    on_seated = decide(votes, seats=2, seated=30, present=22, rules=SEATED_BASIS)
    on_present = decide(votes, seats=2, seated=30, present=22, rules=PRESENT_BASIS)

    assert on_seated.passed == [A]
    assert on_seated.chosen == [A]
    assert on_seated.shortfall == 1
    assert on_present.passed == [A, B, C]
    assert on_present.chosen == [A, B]
    assert on_present.decided


def test_ranking_basis_chooses_the_top_seats_without_a_threshold():
    outcome = decide(result({A: 3, B: 5, C: 1, D: 2}), seats=2, seated=30, present=30, rules=RANKING_BASIS)
    assert outcome.chosen == [B, A]
    assert outcome.decided


def test_ranking_basis_never_chooses_a_candidate_with_no_for_votes():
    outcome = decide(result({A: 3, B: 0, C: 0}), seats=2, seated=30, present=30, rules=RANKING_BASIS)
    assert outcome.chosen == [A]
    assert B not in outcome.ranks
    assert outcome.shortfall == 1


# ---------------------------------------------------------------- ranking and choosing


def test_passing_candidates_are_ranked_by_for_votes_and_the_top_seats_chosen():
    outcome = decide(result({A: 17, B: 25, C: 16, D: 21, E: 10}), seats=3, seated=30, present=28, rules=DEFAULT)
    assert outcome.passed == [B, D, A, C]
    assert outcome.chosen == [B, D, A]
    assert outcome.ranks == {B: 1, D: 2, A: 3, C: 4}
    assert E not in outcome.ranks  # 10 of 30: did not pass, no rank
    assert outcome.decided
    assert outcome.tied == []
    assert outcome.shortfall == 0


def test_ranks_are_competition_ranks_equal_votes_share_a_rank_and_the_next_rank_is_skipped():
    outcome = decide(result({A: 25, B: 20, C: 20, D: 18}), seats=4, seated=30, present=30, rules=DEFAULT)
    assert outcome.ranks == {A: 1, B: 2, C: 2, D: 4}


def test_a_tie_above_the_cut_off_needs_no_further_round():
    outcome = decide(result({A: 20, B: 20, C: 18, D: 16}), seats=3, seated=30, present=30, rules=DEFAULT)
    assert set(outcome.chosen) == {A, B, C}
    assert outcome.decided


def test_a_tie_that_exactly_fills_the_seats_needs_no_further_round():
    outcome = decide(result({A: 20, B: 18, C: 18, D: 16}), seats=3, seated=30, present=30, rules=DEFAULT)
    assert set(outcome.chosen) == {A, B, C}
    assert outcome.tied == []
    assert outcome.decided


# ---------------------------------------------------------------- tie at the cut-off


def test_tie_at_the_cut_off_leaves_the_tied_candidates_and_open_seats_for_a_further_round():
    outcome = decide(result({A: 20, B: 19, C: 18, D: 18, E: 10}), seats=3, seated=30, present=30, rules=DEFAULT)
    assert outcome.chosen == [A, B]
    assert set(outcome.tied) == {C, D}
    assert outcome.open_seats == 1
    assert not outcome.decided
    assert outcome.shortfall == 0  # a tie is not a shortfall
    assert outcome.ranks[C] == outcome.ranks[D] == 3


def test_tie_for_the_only_seat_chooses_nobody_yet():
    outcome = decide(result({A: 18, B: 18, C: 2}), seats=1, seated=30, present=30, rules=DEFAULT)
    assert outcome.chosen == []
    assert set(outcome.tied) == {A, B}
    assert outcome.open_seats == 1
    assert not outcome.decided


def test_three_way_tie_for_two_remaining_seats():
    outcome = decide(result({A: 25, B: 17, C: 17, D: 17}), seats=3, seated=30, present=30, rules=DEFAULT)
    assert outcome.chosen == [A]
    assert set(outcome.tied) == {B, C, D}
    assert outcome.open_seats == 2


def test_run_off_that_ties_again_is_still_undecided():
    first = decide(result({A: 20, B: 19, C: 18, D: 18}), seats=3, seated=30, present=30, rules=DEFAULT)
    run_off = decide(result({C: 16, D: 16}), seats=first.open_seats, seated=30, present=30, rules=DEFAULT)
    assert run_off.chosen == []
    assert set(run_off.tied) == {C, D}
    assert run_off.open_seats == 1
    assert not run_off.decided


def test_run_off_among_the_tied_fills_the_open_seats():
    first = decide(result({A: 20, B: 19, C: 18, D: 18}), seats=3, seated=30, present=30, rules=DEFAULT)
    run_off = decide(result({C: 17, D: 12}), seats=first.open_seats, seated=30, present=30, rules=DEFAULT)
    assert run_off.chosen == [C]
    assert run_off.decided


def test_a_tie_among_candidates_that_do_not_pass_is_no_tie_at_the_cut_off():
    outcome = decide(result({A: 20, B: 19, C: 15, D: 15}), seats=3, seated=30, present=30, rules=DEFAULT)
    assert outcome.chosen == [A, B]
    assert outcome.tied == []
    assert outcome.shortfall == 1


# ---------------------------------------------------------------- shortfall


def test_fewer_passing_than_seats_is_a_shortfall_of_the_empty_seats():
    outcome = decide(result({A: 25, B: 16, C: 12, D: 9}), seats=3, seated=30, present=30, rules=DEFAULT)
    assert outcome.chosen == [A, B]
    assert outcome.shortfall == 1
    assert outcome.open_seats == 1
    assert outcome.tied == []
    assert not outcome.decided


def test_no_candidate_passing_chooses_nobody_and_leaves_every_seat_short():
    outcome = decide(result({A: 15, B: 10, C: 0}), seats=2, seated=30, present=30, rules=DEFAULT)
    assert outcome.passed == []
    assert outcome.chosen == []
    assert outcome.ranks == {}
    assert outcome.shortfall == 2
    assert not outcome.decided


def test_exactly_as_many_passing_as_seats_is_decided():
    outcome = decide(result({A: 25, B: 16, C: 15}), seats=2, seated=30, present=30, rules=DEFAULT)
    assert outcome.chosen == [A, B]
    assert outcome.decided
    assert outcome.shortfall == 0


# ---------------------------------------------------------------- a whole round


def test_town_vote_ten_candidates_seven_seats_from_ballots_to_outcome():
    """孚玉镇: 10 candidates, 7 seats, 30 seated deputies, 27 present, 27 issued, 27 collected."""
    candidates = ids(10)
    first_seven, last_three = candidates[:7], candidates[7:]
    ballots = (
        [dict.fromkeys(first_seven, Mark.FOR)] * 20
        + [{**dict.fromkeys(last_three, Mark.FOR), candidates[0]: Mark.AGAINST}] * 5
        + [{}]  # blank
        + [dict.fromkeys(candidates, Mark.FOR)]  # 10 "for" marks for 7 seats: invalid
    )
    counted = tally(ballots, candidates, seats=7, rules=DEFAULT)
    assert has_quorum(27, 30)
    assert round_stands(issued=27, collected=counted.collected)
    assert (counted.collected, counted.valid, counted.invalid) == (27, 26, 1)

    outcome = decide(counted, seats=7, seated=30, present=27, rules=DEFAULT)
    assert set(outcome.chosen) == set(first_seven)
    assert outcome.decided
    assert counted.counts[candidates[0]] == CandidateCount(for_votes=20, against=5, abstain=0, not_marked=1)


# ---------------------------------------------------------------- properties of decide


@st.composite
def outcomes(draw):
    seated = draw(st.integers(1, 60))
    present = draw(st.integers(0, seated))
    n = draw(st.integers(1, 8))
    votes = {c: draw(st.integers(0, present)) for c in ids(n)}
    seats = draw(st.integers(1, n))
    rules = draw(st.sampled_from([SEATED_BASIS, PRESENT_BASIS, RANKING_BASIS]))
    return votes, seats, seated, present, rules


def qualifies(v: int, seated: int, present: int, rules: VoteRules) -> bool:
    if rules.passing_basis is PassingBasis.SEATED:
        return 2 * v > seated
    if rules.passing_basis is PassingBasis.PRESENT:
        return 2 * v > present
    return v > 0


@given(outcomes())
def test_chosen_never_exceed_the_seats_and_every_chosen_candidate_passes(case):
    votes, seats, seated, present, rules = case
    outcome = decide(result(votes, valid=present), seats, seated, present, rules)
    assert len(outcome.chosen) <= seats
    assert all(qualifies(votes[c], seated, present, rules) for c in outcome.chosen)
    assert {c for c in votes if qualifies(votes[c], seated, present, rules)} == set(outcome.passed)


@given(outcomes())
def test_passed_are_in_order_of_for_votes_with_competition_ranks(case):
    votes, seats, seated, present, rules = case
    outcome = decide(result(votes, valid=present), seats, seated, present, rules)
    ordered = [votes[c] for c in outcome.passed]
    assert ordered == sorted(ordered, reverse=True)
    assert set(outcome.ranks) == set(outcome.passed)
    for c in outcome.passed:
        assert outcome.ranks[c] == 1 + sum(1 for o in outcome.passed if votes[o] > votes[c])


@given(outcomes())
def test_every_chosen_candidate_has_more_votes_than_every_passing_one_left_out(case):
    votes, seats, seated, present, rules = case
    outcome = decide(result(votes, valid=present), seats, seated, present, rules)
    left_out = [c for c in outcome.passed if c not in outcome.chosen]
    for chosen in outcome.chosen:
        for other in left_out:
            assert votes[chosen] > votes[other]


@given(outcomes())
def test_chosen_and_open_seats_add_up_to_the_seats(case):
    votes, seats, seated, present, rules = case
    outcome = decide(result(votes, valid=present), seats, seated, present, rules)
    assert len(outcome.chosen) + outcome.open_seats == seats
    assert outcome.decided == (outcome.open_seats == 0)
    if outcome.tied:
        assert len({votes[c] for c in outcome.tied}) == 1  # all tied on the same votes
        assert len(outcome.tied) > outcome.open_seats > 0
        assert not set(outcome.tied) & set(outcome.chosen)
        assert set(outcome.tied) <= set(outcome.passed)
        assert outcome.shortfall == 0
    else:
        assert outcome.shortfall == seats - len(outcome.chosen)
        assert outcome.shortfall == max(0, seats - len(outcome.passed))
