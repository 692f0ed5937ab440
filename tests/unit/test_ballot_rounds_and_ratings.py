"""Rounds of a vote (void round, tie at the cut-off, shortfall, max rounds), paper totals against
electronic ballots, and the satisfaction rating (满意度测评).

Rules from DOMAIN.md §2, §4 and its edge-case list. Pure domain, no I/O."""

from __future__ import annotations

from fractions import Fraction
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ballot.domain.rules import (
    SATISFACTION_LABELS,
    BallotFormat,
    BallotRejected,
    CandidateCount,
    Mark,
    PassingBasis,
    Progress,
    Round,
    Satisfaction,
    SatisfactionCount,
    Shortfall,
    Tally,
    TotalsRefused,
    VoteRules,
    check_rating_ballot,
    decide,
    progress,
    satisfaction_rate,
    satisfaction_tier,
    tally,
    tally_from_totals,
    tally_ratings,
)

DEFAULT = VoteRules()
ACCEPT_FEWER = VoteRules(shortfall=Shortfall.ACCEPT_FEWER)
CHOOSE_UP_TO = VoteRules(ballot_format=BallotFormat.CHOOSE_UP_TO)

A, B, C, D, E = (UUID(int=i) for i in range(1, 6))
FIVE = [A, B, C, D, E]
STRANGER = UUID(int=99)

SEATED = 30  # more than half of seated: 16 "for" votes pass, 15 (exactly half) fails
PRESENT = 30


def ids(n: int) -> list[UUID]:
    return [UUID(int=i) for i in range(1, n + 1)]


def counted(for_votes: dict[UUID, int], collected: int = PRESENT) -> Tally:
    """A round's tally in which each candidate got the given "for" votes (the rest: not marked)."""
    counts = {c: CandidateCount(for_votes=n, not_marked=collected - n) for c, n in for_votes.items()}
    return Tally(collected=collected, valid=collected, invalid=0, counts=counts)


def held(for_votes: dict[UUID, int], seats: int, issued: int = PRESENT, collected: int = PRESENT) -> Round:
    """A round among the candidates in ``for_votes`` (in that order) for ``seats``."""
    return Round(list(for_votes), seats, issued, counted(for_votes, collected))


def void(candidates: list[UUID], seats: int) -> Round:
    """A paper round with one ballot more collected than issued; its counts would choose everyone."""
    return held(dict.fromkeys(candidates, PRESENT), seats, issued=PRESENT, collected=PRESENT + 1)


def run(*rounds: Round, rules: VoteRules = DEFAULT, seated: int = SEATED, present: int = PRESENT) -> Progress:
    return progress(list(rounds), seated, present, rules)


# ---------------------------------------------------------------- one round


def test_progress_refuses_a_vote_with_no_rounds():
    with pytest.raises(ValueError):
        progress([], SEATED, PRESENT, DEFAULT)


def test_a_round_that_fills_every_seat_finishes_the_vote_with_the_top_seats_chosen():
    state = run(held({A: 25, B: 20, C: 18, D: 10, E: 5}, seats=3))
    assert state.finished
    assert state.chosen == [A, B, C]
    assert state.next_candidates == []
    assert state.next_seats == 0


def test_within_a_round_chosen_are_in_rank_order_not_slate_order():
    state = run(held({A: 17, B: 20, C: 29, D: 3, E: 0}, seats=3))
    assert state.chosen == [C, B, A]
    assert state.finished


def test_a_round_with_fewer_ballots_collected_than_issued_stands():
    state = run(held({A: 25, B: 20, C: 18, D: 10, E: 5}, seats=3, issued=PRESENT, collected=PRESENT - 1))
    assert state.finished
    assert state.chosen == [A, B, C]


def test_a_round_with_as_many_ballots_collected_as_issued_stands():
    state = run(held({A: 25, B: 20, C: 18, D: 10, E: 5}, seats=3, issued=PRESENT, collected=PRESENT))
    assert state.finished
    assert state.chosen == [A, B, C]


# ---------------------------------------------------------------- void round (收回 > 发出)


def test_a_void_round_is_run_again_with_the_same_candidates_and_seats():
    state = run(void(FIVE, seats=3))
    assert not state.finished
    assert state.chosen == []
    assert state.next_candidates == FIVE
    assert state.next_seats == 3


def test_a_void_round_followed_by_a_good_round_chooses_from_the_good_round_only():
    state = run(void(FIVE, seats=3), held({A: 10, B: 20, C: 18, D: 25, E: 5}, seats=3))
    assert state.finished
    assert state.chosen == [D, B, C]


def test_a_void_run_off_is_run_again_with_the_run_off_candidates_and_seats():
    first = held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3)
    state = run(first, void([B, C, D], seats=2))
    assert not state.finished
    assert state.chosen == [A]
    assert set(state.next_candidates) == {B, C, D}
    assert state.next_seats == 2


def test_a_void_round_is_run_again_even_when_it_is_the_last_round_max_rounds_allows():
    """收回 > 发出: the round is void and is run again (DOMAIN §2). A void round counted nothing, so
    it cannot be the round after which "fewer are accepted": the vote must not finish having chosen
    nobody without a single round that stood."""
    state = run(void(FIVE, seats=3), rules=VoteRules(max_rounds=1))
    assert not state.finished
    assert state.next_candidates == FIVE
    assert state.next_seats == 3


# ---------------------------------------------------------------- tie at the cut-off


def test_a_tie_at_the_cut_off_goes_to_a_further_round_among_the_tied_for_the_seats_left():
    state = run(held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3))
    assert not state.finished
    assert state.chosen == [A]
    assert set(state.next_candidates) == {B, C, D}
    assert state.next_seats == 2


def test_a_tie_for_every_seat_goes_to_a_further_round_among_all_the_tied_for_all_seats():
    state = run(held({A: 20, B: 20, C: 20, D: 3, E: 5}, seats=2))
    assert not state.finished
    assert state.chosen == []
    assert set(state.next_candidates) == {A, B, C}
    assert state.next_seats == 2


def test_a_tie_that_exactly_fills_the_seats_finishes_the_vote():
    state = run(held({A: 25, B: 20, C: 20, D: 10, E: 5}, seats=3))
    assert state.finished
    assert state.chosen == [A, B, C]


def test_a_tie_among_candidates_that_fail_is_no_tie_at_the_cut_off():
    state = run(held({A: 25, B: 20, C: 20, D: 15, E: 15}, seats=3))
    assert state.finished
    assert state.chosen == [A, B, C]


def test_the_tie_run_off_fills_the_seats_left_after_the_first_rounds_choice():
    first = held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3)
    state = run(first, held({B: 22, C: 10, D: 18}, seats=2))
    assert state.finished
    assert state.chosen == [A, B, D]


def test_a_run_off_that_ties_again_goes_to_another_round_among_the_tied():
    first = held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3)
    state = run(first, held({B: 25, C: 19, D: 19}, seats=2))
    assert not state.finished
    assert state.chosen == [A, B]
    assert set(state.next_candidates) == {C, D}
    assert state.next_seats == 1


def test_a_run_off_that_ties_again_is_settled_by_a_third_round():
    first = held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3)
    state = run(first, held({B: 25, C: 19, D: 19}, seats=2), held({C: 16, D: 21}, seats=1))
    assert state.finished
    assert state.chosen == [A, B, D]


def test_a_run_off_that_ties_again_in_the_last_round_allowed_finishes_with_fewer():
    first = held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3)
    state = run(first, held({B: 25, C: 19, D: 19}, seats=2), rules=VoteRules(max_rounds=2))
    assert state.finished
    assert state.chosen == [A, B]
    assert state.next_candidates == []
    assert state.next_seats == 0


def test_a_tie_at_the_cut_off_goes_to_a_further_round_even_when_fewer_would_be_accepted():
    state = run(held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3), rules=ACCEPT_FEWER)
    assert not state.finished
    assert set(state.next_candidates) == {B, C, D}
    assert state.next_seats == 2


def test_a_tie_run_off_in_which_nobody_passes_goes_to_a_further_round_among_them():
    first = held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3)
    state = run(first, held({B: 15, C: 12, D: 9}, seats=2))
    assert not state.finished
    assert state.chosen == [A]
    assert set(state.next_candidates) == {B, C, D}
    assert state.next_seats == 2


# ---------------------------------------------------------------- shortfall (另行票决 or accept fewer)


def test_a_shortfall_goes_to_a_further_round_among_those_that_did_not_pass_by_default():
    # C has exactly half of the seated deputies: it does not pass.
    state = run(held({A: 25, B: 20, C: 15, D: 10, E: 3}, seats=3))
    assert not state.finished
    assert state.chosen == [A, B]
    assert set(state.next_candidates) == {C, D, E}
    assert state.next_seats == 1


def test_a_shortfall_is_accepted_with_fewer_chosen_under_accept_fewer():
    state = run(held({A: 25, B: 20, C: 15, D: 10, E: 3}, seats=3), rules=ACCEPT_FEWER)
    assert state.finished
    assert state.chosen == [A, B]
    assert state.next_candidates == []
    assert state.next_seats == 0


def test_the_shortfall_round_fills_the_seats_left():
    state = run(held({A: 25, B: 20, C: 15, D: 10, E: 3}, seats=3), held({C: 14, D: 18, E: 2}, seats=1))
    assert state.finished
    assert state.chosen == [A, B, D]


def test_a_shortfall_round_that_falls_short_again_goes_to_another_round_among_those_still_not_passed():
    state = run(held({A: 25, B: 10, C: 15, D: 10, E: 3}, seats=3), held({B: 16, C: 15, D: 15, E: 1}, seats=2))
    assert not state.finished
    assert state.chosen == [A, B]
    assert set(state.next_candidates) == {C, D, E}
    assert state.next_seats == 1


def test_when_no_candidate_passes_the_further_round_is_among_all_for_all_seats():
    state = run(held({A: 15, B: 14, C: 10, D: 2, E: 0}, seats=3))
    assert not state.finished
    assert state.chosen == []
    assert set(state.next_candidates) == set(FIVE)
    assert state.next_seats == 3


def test_when_no_candidate_passes_under_accept_fewer_the_vote_finishes_with_none_chosen():
    state = run(held({A: 15, B: 14, C: 10, D: 2, E: 0}, seats=3), rules=ACCEPT_FEWER)
    assert state.finished
    assert state.chosen == []
    assert state.next_candidates == []


def test_progress_uses_the_vote_s_passing_basis():
    # 12 of 20 present is more than half of those present, not of the 30 seated.
    first = held({A: 12, B: 11, C: 3}, seats=1, issued=20, collected=20)
    on_present = run(first, rules=VoteRules(passing_basis=PassingBasis.PRESENT), present=20)
    on_seated = run(first, rules=VoteRules(passing_basis=PassingBasis.SEATED), present=20)
    assert on_present.finished and on_present.chosen == [A]
    assert not on_seated.finished and on_seated.chosen == []


# ---------------------------------------------------------------- max rounds, order of chosen


def test_with_max_rounds_one_a_shortfall_finishes_with_fewer():
    state = run(held({A: 25, B: 20, C: 15, D: 10, E: 3}, seats=3), rules=VoteRules(max_rounds=1))
    assert state.finished
    assert state.chosen == [A, B]
    assert state.next_candidates == []
    assert state.next_seats == 0


def test_with_max_rounds_one_a_tie_at_the_cut_off_finishes_with_those_above_it():
    state = run(held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3), rules=VoteRules(max_rounds=1))
    assert state.finished
    assert state.chosen == [A]
    assert state.next_candidates == []


def test_after_max_rounds_fewer_are_accepted_even_under_further_round():
    rules = VoteRules(max_rounds=2, shortfall=Shortfall.FURTHER_ROUND)
    state = run(held({A: 25, B: 20, C: 15, D: 10, E: 3}, seats=3), held({C: 14, D: 12, E: 2}, seats=1), rules=rules)
    assert state.finished
    assert state.chosen == [A, B]


def test_a_vote_decided_in_time_is_not_cut_short_by_max_rounds():
    state = run(held({A: 25, B: 20, C: 15, D: 10, E: 3}, seats=3), held({C: 14, D: 18, E: 2}, seats=1), rules=VoteRules(max_rounds=2))
    assert state.finished
    assert state.chosen == [A, B, D]


def test_chosen_lists_earlier_rounds_first_even_when_a_later_round_gave_more_votes():
    state = run(held({A: 16, B: 10, C: 12}, seats=2), held({B: 29, C: 3}, seats=1))
    assert state.finished
    assert state.chosen == [A, B]


def test_a_named_vote_progresses_by_the_same_rules_as_a_secret_one():
    rounds = [held({A: 25, B: 20, C: 20, D: 20, E: 5}, seats=3), held({B: 25, C: 19, D: 19}, seats=2)]
    assert run(*rounds, rules=VoteRules(named=True)) == run(*rounds, rules=VoteRules(named=False))


# ---------------------------------------------------------------- rounds: properties over any sequence of rounds


@st.composite
def vote_settings(draw):
    seats = draw(st.integers(1, 4))
    candidates = ids(draw(st.integers(seats + 1, seats + 4)))
    seated = draw(st.integers(3, 40))
    present = draw(st.integers(-(-2 * seated // 3), seated))
    rules = VoteRules(
        shortfall=draw(st.sampled_from(Shortfall)),
        max_rounds=draw(st.integers(1, 4)),
        passing_basis=draw(st.sampled_from(PassingBasis)),
        named=draw(st.booleans()),
    )
    return candidates, seats, seated, present, rules


def simulate(setting, data) -> list[tuple[list[Round], Progress]]:
    """Hold rounds as progress asks until the vote finishes; every prefix of rounds with its progress.
    "For" votes cluster around the threshold so that ties and shortfalls are frequent."""
    candidates, seats, seated, present, rules = setting
    near = st.integers(max(0, seated // 2 - 1), min(present, seated // 2 + 2))
    votes = st.one_of(near, st.integers(0, present), st.sampled_from([0, present]))
    rounds: list[Round] = []
    steps = []
    voids = 0
    for _ in range(12):
        is_void = voids < 2 and data.draw(st.integers(0, 4)) == 0
        voids += is_void
        for_votes = {c: data.draw(votes) for c in candidates}
        rounds.append(held(for_votes, seats, issued=present, collected=present + 1 if is_void else present))
        state = progress(list(rounds), seated, present, rules)
        steps.append((list(rounds), state))
        if state.finished:
            return steps
        candidates, seats = state.next_candidates, state.next_seats
    raise AssertionError(f"the vote never finished: {steps[-1][1]}")


def passed_in(r: Round, c: UUID, seated: int, present: int, rules: VoteRules) -> bool:
    n = r.tally.counts[c].for_votes
    if rules.passing_basis is PassingBasis.SEATED:
        return 2 * n > seated
    if rules.passing_basis is PassingBasis.PRESENT:
        return 2 * n > present
    return n > 0


def stood(r: Round) -> bool:
    return r.tally.collected <= r.issued


@settings(deadline=None)
@given(setting=vote_settings(), data=st.data())
def test_chosen_never_exceeds_the_seats_nor_repeats_a_candidate_over_any_sequence_of_rounds(setting, data):
    _, seats, *_ = setting
    for _, state in simulate(setting, data):
        assert len(state.chosen) <= seats
        assert len(set(state.chosen)) == len(state.chosen)


@settings(deadline=None)
@given(setting=vote_settings(), data=st.data())
def test_chosen_accumulates_each_round_adds_to_the_end_of_what_earlier_rounds_chose(setting, data):
    chosen_before: list[UUID] = []
    for _, state in simulate(setting, data):
        assert state.chosen[: len(chosen_before)] == chosen_before
        chosen_before = state.chosen


@settings(deadline=None)
@given(setting=vote_settings(), data=st.data())
def test_every_chosen_candidate_passed_in_the_round_that_chose_it_and_outvoted_all_left_out(setting, data):
    _, _, seated, present, rules = setting
    chosen_before: list[UUID] = []
    for rounds, state in simulate(setting, data):
        r = rounds[-1]
        new = state.chosen[len(chosen_before):]
        if not stood(r):
            assert new == []
        votes = {c: r.tally.counts[c].for_votes for c in r.candidates}
        for c in new:
            assert c in r.candidates
            assert passed_in(r, c, seated, present, rules)
            assert all(votes[o] < votes[c] for o in r.candidates if o not in new)
        assert [votes[c] for c in new] == sorted((votes[c] for c in new), reverse=True)
        chosen_before = state.chosen


@settings(deadline=None)
@given(setting=vote_settings(), data=st.data())
def test_progress_never_asks_for_a_further_round_with_zero_seats_or_no_candidates(setting, data):
    _, seats, *_ = setting
    for rounds, state in simulate(setting, data):
        if state.finished:
            assert state.next_candidates == [] and state.next_seats == 0
            continue
        assert state.next_seats >= 1
        assert len(state.next_candidates) >= state.next_seats
        assert set(state.next_candidates) <= set(rounds[-1].candidates)
        assert not set(state.next_candidates) & set(state.chosen)
        assert state.next_seats == seats - len(state.chosen)


@settings(deadline=None)
@given(setting=vote_settings(), data=st.data())
def test_fewer_are_chosen_only_under_accept_fewer_or_after_max_rounds_that_stood(setting, data):
    _, seats, _, _, rules = setting
    rounds, state = simulate(setting, data)[-1]
    assert state.finished
    assert sum(map(stood, rounds)) <= rules.max_rounds
    if len(state.chosen) < seats:
        assert rules.shortfall is Shortfall.ACCEPT_FEWER or len(rounds) >= rules.max_rounds


@settings(deadline=None)
@given(setting=vote_settings(), data=st.data())
def test_a_named_vote_progresses_like_a_secret_one_over_any_sequence_of_rounds(setting, data):
    _, _, seated, present, rules = setting
    flipped = rules.model_copy(update={"named": not rules.named})
    for rounds, state in simulate(setting, data):
        assert progress(rounds, seated, present, flipped) == state


# ---------------------------------------------------------------- paper totals


def totals(for_: int = 0, against: int = 0, abstain: int = 0) -> dict[str, int]:
    return {"for": for_, "against": against, "abstain": abstain}


def test_paper_totals_give_each_candidate_its_counts_and_the_rest_not_marked():
    result = tally_from_totals({A: totals(18, 7, 3), B: totals(2)}, collected=30, invalid=2, candidates=[A, B, C], seats=2,
                               rules=DEFAULT)
    assert result == Tally(collected=30, valid=28, invalid=2, counts={
        A: CandidateCount(18, 7, 3, 0), B: CandidateCount(2, 0, 0, 26), C: CandidateCount(0, 0, 0, 28)})


def test_paper_totals_for_a_candidate_not_on_the_ballot_are_refused():
    with pytest.raises(TotalsRefused) as refused:
        tally_from_totals({A: totals(3), STRANGER: totals(1)}, collected=10, invalid=0, candidates=[A, B], seats=1, rules=DEFAULT)
    assert refused.value.code == "unknown-candidate"


@pytest.mark.parametrize(("collected", "invalid"), [(10, 11), (10, -1), (-1, 0)])
def test_paper_totals_with_invalid_ballots_outside_zero_to_collected_are_refused(collected, invalid):
    with pytest.raises(TotalsRefused) as refused:
        tally_from_totals({}, collected=collected, invalid=invalid, candidates=[A, B], seats=1, rules=DEFAULT)
    assert refused.value.code == "inconsistent-totals"


@pytest.mark.parametrize("count", [totals(-1), totals(0, -1), totals(0, 0, -1), totals(5, 3, 3), totals(11)])
def test_paper_totals_with_negative_marks_or_more_marks_than_valid_ballots_are_refused(count):
    with pytest.raises(TotalsRefused) as refused:
        tally_from_totals({A: count}, collected=12, invalid=2, candidates=[A, B], seats=2, rules=DEFAULT)
    assert refused.value.code == "inconsistent-totals"


def test_paper_totals_with_a_candidate_marked_on_every_valid_ballot_are_accepted():
    result = tally_from_totals({A: totals(5, 3, 2)}, collected=12, invalid=2, candidates=[A, B], seats=2, rules=DEFAULT)
    assert result.counts[A] == CandidateCount(5, 3, 2, 0)


def test_paper_totals_with_more_for_marks_than_valid_ballots_allow_are_refused():
    # 10 valid ballots with at most 2 "for" marks each hold at most 20 "for" marks.
    with pytest.raises(TotalsRefused) as refused:
        tally_from_totals({A: totals(10), B: totals(10), C: totals(1)}, collected=10, invalid=0, candidates=[A, B, C], seats=2,
                          rules=DEFAULT)
    assert refused.value.code == "inconsistent-totals"
    assert tally_from_totals({A: totals(10), B: totals(10), C: totals(0)}, collected=10, invalid=0, candidates=[A, B, C], seats=2,
                             rules=DEFAULT).valid == 10


def test_paper_totals_check_for_marks_against_the_for_limit_setting_not_the_seats():
    rules = VoteRules(max_for=1)
    with pytest.raises(TotalsRefused) as refused:
        tally_from_totals({A: totals(6), B: totals(5)}, collected=10, invalid=0, candidates=[A, B, C], seats=2, rules=rules)
    assert refused.value.code == "inconsistent-totals"


@pytest.mark.parametrize("count", [totals(2, 1, 0), totals(2, 0, 1)])
def test_paper_totals_with_against_or_abstain_marks_on_a_choose_up_to_ballot_are_refused(count):
    """A choose-up-to ballot takes only "for" marks (check_ballot refuses others with
    "mark-not-allowed"); paper totals carrying against/abstain give a tally no set of such
    ballots can give, so "both modes give the same tally" requires refusing them."""
    with pytest.raises(TotalsRefused):
        tally_from_totals({A: count}, collected=10, invalid=0, candidates=[A, B], seats=1, rules=CHOOSE_UP_TO)


def test_paper_totals_with_an_unknown_mark_name_are_refused():
    """A teller's misspelt column ("againts") must not be silently dropped from the count."""
    with pytest.raises(TotalsRefused):
        tally_from_totals({A: {"for": 5, "againts": 3}}, collected=10, invalid=0, candidates=[A, B], seats=1, rules=DEFAULT)


@st.composite
def paper_rounds(draw):
    candidates = ids(draw(st.integers(1, 6)))
    seats = draw(st.integers(1, len(candidates)))
    ballot_format = draw(st.sampled_from(BallotFormat))
    rules = VoteRules(ballot_format=ballot_format, max_for=draw(st.none() | st.integers(1, len(candidates))))
    marks = st.just(Mark.FOR) if ballot_format is BallotFormat.CHOOSE_UP_TO else st.sampled_from(Mark)
    ballots = draw(st.lists(st.dictionaries(st.sampled_from(candidates), marks), max_size=40))
    return candidates, seats, rules, ballots


def tellers_count(ballots, candidates, seats, rules, leave_out_zeros: bool):
    """What tellers write down from a pile of paper ballots: collected, invalid, per-candidate totals."""
    limit = rules.max_for or seats
    valid = [b for b in ballots if sum(1 for m in b.values() if m is Mark.FOR) <= limit]
    counts = {}
    for c in candidates:
        n = {m.value: sum(1 for b in valid if b.get(c) is m) for m in Mark}
        if leave_out_zeros:
            n = {k: v for k, v in n.items() if v}
            if not n:
                continue
        counts[c] = n
    return counts, len(ballots), len(ballots) - len(valid)


@settings(deadline=None, max_examples=300)
@given(round_=paper_rounds(), leave_out_zeros=st.booleans(), seated=st.integers(1, 60), data=st.data())
def test_paper_totals_and_electronic_ballots_give_the_same_tally(round_, leave_out_zeros, seated, data):
    candidates, seats, rules, ballots = round_
    present = data.draw(st.integers(0, seated))
    counts, collected, invalid = tellers_count(ballots, candidates, seats, rules, leave_out_zeros)
    electronic = tally(ballots, candidates, seats, rules)
    paper = tally_from_totals(counts, collected, invalid, candidates, seats, rules)
    assert paper == electronic
    for basis in PassingBasis:
        decided = rules.model_copy(update={"passing_basis": basis})
        assert decide(paper, seats, seated, present, decided) == decide(electronic, seats, seated, present, decided)


def ballots_for(result: Tally, candidates: list[UUID]) -> list[dict[UUID, Mark]]:
    """A pile of paper ballots with exactly these totals: each candidate's marks laid on the valid
    ballots one after another, wrapping round (so no ballot gets a candidate's "for" twice and the
    "for" marks spread as evenly as they can), then the invalid ballots."""
    valid: list[dict[UUID, Mark]] = [{} for _ in range(result.valid)]
    at = 0
    for c in candidates:
        n = result.counts[c]
        marks = [Mark.FOR] * n.for_votes + [Mark.AGAINST] * n.against + [Mark.ABSTAIN] * n.abstain
        for i, m in enumerate(marks):
            valid[(at + i) % result.valid][c] = m
        at = (at + n.for_votes) % result.valid if result.valid else 0
    too_many = dict.fromkeys(candidates, Mark.FOR)
    return valid + [too_many] * result.invalid


@settings(deadline=None, max_examples=300)
@given(
    n=st.integers(1, 5),
    seats_and_limit=st.tuples(st.integers(1, 5), st.none() | st.integers(1, 4)),
    ballot_format=st.sampled_from(BallotFormat),
    data=st.data(),
)
def test_any_paper_totals_accepted_are_what_some_pile_of_paper_ballots_gives(n, seats_and_limit, ballot_format, data):
    candidates = ids(n)
    seats, max_for = seats_and_limit
    seats = min(seats, n)
    rules = VoteRules(ballot_format=ballot_format, max_for=max_for)
    collected = data.draw(st.integers(0, 12))
    invalid = data.draw(st.integers(0, collected))
    valid = collected - invalid
    counts = {}
    for c in candidates:
        for_ = data.draw(st.integers(0, valid))
        against = data.draw(st.integers(0, valid - for_))
        counts[c] = totals(for_, against, data.draw(st.integers(0, valid - for_ - against)))
    if rules.for_limit(seats) >= n:
        invalid = 0  # a ballot can only be invalid by holding more "for" marks than there are candidates
        collected = valid
    try:
        paper = tally_from_totals(counts, collected, invalid, candidates, seats, rules)
    except TotalsRefused:
        return
    assert tally(ballots_for(paper, candidates), candidates, seats, rules) == paper


# ---------------------------------------------------------------- satisfaction rating (满意度测评)


SAT, BASIC, DIS = Satisfaction.SATISFIED, Satisfaction.BASICALLY, Satisfaction.DISSATISFIED


def test_satisfaction_tiers_carry_their_chinese_labels():
    assert SATISFACTION_LABELS == {SAT: "满意", BASIC: "基本满意", DIS: "不满意"}


def test_a_rating_ballot_may_rate_some_all_or_none_of_the_projects():
    check_rating_ballot({}, [A, B, C])
    check_rating_ballot({A: SAT}, [A, B, C])
    check_rating_ballot({A: SAT, B: BASIC, C: DIS}, [A, B, C])


def test_a_rating_ballot_for_a_project_not_on_the_ballot_is_rejected():
    with pytest.raises(BallotRejected) as rejected:
        check_rating_ballot({A: SAT, STRANGER: DIS}, [A, B])
    assert rejected.value.code == "unknown-candidate"


def test_rating_tally_counts_each_tier_per_project_and_every_ballot_collected():
    ballots = [{A: SAT, B: DIS}, {A: BASIC}, {A: SAT, B: SAT}, {}]
    collected, counts = tally_ratings(ballots, [A, B, C])
    assert collected == 4
    assert counts == {A: SatisfactionCount(2, 1, 0), B: SatisfactionCount(1, 0, 1), C: SatisfactionCount(0, 0, 0)}


def test_rating_tally_refuses_a_ballot_rating_a_project_not_on_the_ballot():
    with pytest.raises(BallotRejected) as rejected:
        tally_ratings([{A: SAT}, {STRANGER: SAT}], [A, B])
    assert rejected.value.code == "unknown-candidate"


@given(st.lists(st.dictionaries(st.sampled_from([A, B, C]), st.sampled_from(Satisfaction))))
def test_rating_tally_gives_each_project_exactly_the_marks_cast_for_it(ballots):
    collected, counts = tally_ratings(ballots, [A, B, C])
    assert collected == len(ballots)
    for p in (A, B, C):
        marks = [b[p] for b in ballots if p in b]
        assert counts[p] == SatisfactionCount(marks.count(SAT), marks.count(BASIC), marks.count(DIS))
        assert counts[p].votes <= collected


@pytest.mark.parametrize(
    ("satisfied", "basically", "dissatisfied", "seated", "tier"),
    [
        (16, 0, 0, 30, SAT),  # more than half of seated
        (15, 10, 0, 30, BASIC),  # 满意 exactly half is not 满意; with 基本满意, more than half
        (15, 0, 15, 30, DIS),  # exactly half, nothing more
        (10, 5, 0, 30, DIS),  # 满意 + 基本满意 exactly half
        (10, 6, 0, 30, BASIC),  # 满意 + 基本满意 one more than half
        (0, 16, 0, 30, BASIC),  # 基本满意 alone can carry 基本满意
        (16, 0, 0, 31, SAT),  # odd seated: 16 of 31 is more than half
        (15, 0, 0, 31, DIS),
        (0, 0, 0, 30, DIS),  # nobody rated
    ],
)
def test_satisfaction_tier_by_votes_over_half_of_seated(satisfied, basically, dissatisfied, seated, tier):
    assert satisfaction_tier(SatisfactionCount(satisfied, basically, dissatisfied), seated) is tier


def test_satisfaction_exactly_half_of_seated_is_dissatisfied():
    assert satisfaction_tier(SatisfactionCount(satisfied=15, basically=0, dissatisfied=0), seated=30) is DIS


def test_satisfaction_and_basic_satisfaction_exactly_half_of_seated_is_dissatisfied():
    assert satisfaction_tier(SatisfactionCount(satisfied=8, basically=7, dissatisfied=0), seated=30) is DIS


def test_satisfaction_tier_is_over_all_seated_deputies_not_the_votes_cast():
    # 12 of 14 votes satisfied, but 12 is not more than half of 30 seated deputies.
    count = SatisfactionCount(satisfied=12, basically=0, dissatisfied=2)
    assert satisfaction_tier(count, seated=30) is DIS
    assert satisfaction_rate(count) == pytest.approx(12 / 14)


satisfaction_counts = st.builds(SatisfactionCount, st.integers(0, 60), st.integers(0, 60), st.integers(0, 60))


@given(count=satisfaction_counts, seated=st.integers(1, 120))
def test_satisfaction_tier_is_the_rulebook_rule(count, seated):
    half = Fraction(seated, 2)
    if count.satisfied > half:
        expected = SAT
    elif count.satisfied + count.basically > half:
        expected = BASIC
    else:
        expected = DIS
    assert satisfaction_tier(count, seated) is expected


ORDER = {DIS: 0, BASIC: 1, SAT: 2}


@given(count=satisfaction_counts, seated=st.integers(1, 120), more=st.sampled_from(["satisfied", "basically", "dissatisfied"]))
def test_one_more_vote_never_lowers_the_tier_and_a_dissatisfied_vote_never_changes_it(count, seated, more):
    before = satisfaction_tier(count, seated)
    after = satisfaction_tier(SatisfactionCount(**{**vars(count), more: getattr(count, more) + 1}), seated)
    if more == "dissatisfied":
        assert after is before
    else:
        assert ORDER[after] >= ORDER[before]


def test_satisfaction_rate_is_satisfied_and_basically_satisfied_over_votes_cast():
    assert satisfaction_rate(SatisfactionCount(satisfied=20, basically=4, dissatisfied=6)) == pytest.approx(0.8)
    assert satisfaction_rate(SatisfactionCount(satisfied=0, basically=0, dissatisfied=3)) == 0
    assert satisfaction_rate(SatisfactionCount(satisfied=1, basically=1, dissatisfied=0)) == 1


def test_satisfaction_rate_with_no_votes_is_none():
    assert satisfaction_rate(SatisfactionCount()) is None


@given(count=satisfaction_counts)
def test_satisfaction_rate_is_between_zero_and_one(count):
    rate = satisfaction_rate(count)
    if count.votes == 0:
        assert rate is None
    else:
        assert 0 <= rate <= 1
        assert rate == pytest.approx((count.satisfied + count.basically) / count.votes)
