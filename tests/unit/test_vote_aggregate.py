"""The vote as an aggregate (services/ballot/domain/vote.py): its states, refusals, rounds, result
and certification, as pure code. Most of these were end-to-end tests through the services."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from services.ballot.domain import ballots
from services.ballot.domain.refusal import Refused, Why
from services.ballot.domain.rules import VoteRules
from services.ballot.domain.vote import Kind, Mode, Ratings, Status, Subject, Vote, check_marks
from shared.contracts.ballot import ResultCertified, SatisfactionCertified

A, B, C, D = (str(UUID(int=i)) for i in range(1, 5))
NOW = datetime(2024, 1, 20, tzinfo=UTC)


def vote(*candidates: str, seats: int = 2, mode: Mode = Mode.ELECTRONIC, kind: Kind = Kind.SELECTION, presiding=False,
         reason=None, slate_votes=None, **vote_rules) -> Vote:
    return Vote.create(id=uuid4(), session_id=uuid4(), jurisdiction="taihu.fuyu", kind=kind, mode=mode, slate_id=uuid4(),
                       year=2024, subjects=[Subject(c, f"项目{c[-1]}") for c in candidates or (A, B, C)], seats=seats,
                       vote_rules=VoteRules(**vote_rules), by="chair", presiding=presiding, reason=reason,
                       slate_votes=slate_votes)


def refused(code: str, why: Why | None = None):
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(Refused)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            assert self.info.value.code == code, self.info.value.code
            if why:
                assert self.info.value.why is why
            return handled

    return Check()


def count(v: Vote, columns: dict[str, int] | list[str], voters: int = 0) -> None:
    """Count the open round: compact ballots, or ``columns``: voter i marks "for" each candidate
    whose "for" count is above i, "against" the others."""
    cands = [UUID(c) for c in v.current.candidates]
    plain = columns if isinstance(columns, list) else [
        "".join("F" if i < columns.get(str(c), 0) else "A" for c in cands) for i in range(voters)]
    counted = ballots.tally_compact(plain, cands, v.current.seats, v.rules)
    if v.current.sealed:
        v.close()
        v.record_opened(counted, 0)
    else:
        v.close(counted)


# ---------------------------------------------------------------- the state machine


def test_a_secret_electronic_round_closes_into_awaiting_the_tellers_shares_then_is_counted_and_certified():
    v = vote(A, B, C)
    opened = v.open(present=7, seated=7, tellers=3, threshold=2)
    assert (v.status, opened.sealed, opened.issued, opened.candidates) == (Status.OPEN, True, 7, [A, B, C])
    v.close()
    assert v.status is Status.AWAITING_SHARES
    with refused("vote-not-closed"):
        v.certify("chair", NOW, "人代会")
    plain = ["FFA"] * 6 + [None]  # one sealed ballot did not open: collected, invalid
    v.record_opened(ballots.tally_compact(plain, [UUID(c) for c in (A, B, C)], 2, v.rules), unopened=1)
    result = v.result()
    assert (v.status, result.finished, result.chosen) == (Status.CLOSED, True, [A, B])
    assert (result.first.collected, result.first.valid, result.first.invalid, result.first.unopened) == (7, 6, 1, 1)
    event = v.certify("chair", NOW, "人代会")
    assert isinstance(event, ResultCertified) and [c.candidate_id for c in event.chosen] == [UUID(A), UUID(B)]
    assert v.status is Status.CERTIFIED
    with refused("vote-not-closed", Why.CONFLICT):
        v.certify("chair", NOW, "人代会")


def test_a_secret_electronic_round_needs_tellers_able_to_open_it():
    v = vote()
    with refused("no-tellers"):
        v.open(7, 7, tellers=0, threshold=None)
    with refused("no-tellers"):
        v.open(7, 7, tellers=2, threshold=3)
    assert v.status is Status.DRAFT and not v.rounds


def test_paper_and_named_rounds_need_no_tellers_and_are_counted_at_close():
    for v in (vote(mode=Mode.PAPER), vote(presiding=True, reason="主席团决定记名", named=True)):
        assert not v.open(7, 7).sealed
        count(v, {A: 5, B: 4}, 7)
        assert v.status is Status.CLOSED and v.result().chosen == [A, B]


def test_no_quorum_no_vote_and_exactly_two_thirds_is_a_quorum():
    v = vote(mode=Mode.PAPER)
    with refused("quorum-not-met") as info:
        v.open(present=3, seated=6)
    assert info.value.extra == {"present": 3, "seated": 6}
    assert v.open(present=4, seated=6).issued == 4


def test_the_round_is_counted_only_while_closing_an_open_vote():
    v = vote(mode=Mode.PAPER)
    with refused("vote-not-open"):
        v.close()
    v.open(7, 7)
    count(v, {A: 5, B: 5}, 7)
    with refused("vote-not-ready-to-open"):
        v.open(7, 7)


def test_a_tie_at_the_cut_off_and_a_tied_run_off_go_to_further_rounds_until_decided():
    v = vote(A, B, C, mode=Mode.PAPER)
    v.open(7, 7)
    count(v, ["FFA"] * 3 + ["FAF"] * 3 + ["AFF"])  # 甲 6, 乙 4, 丙 4
    first = v.result()
    assert (first.finished, first.chosen, first.next_candidates, first.next_seats, first.note) == (False, [A], [B, C], 1,
                                                                                                   "tie at the cut-off")
    with refused("further-round-required"):
        v.certify("chair", NOW, "人代会")
    assert v.open(7, 7).candidates == [B, C]
    count(v, ["FA"] * 3 + ["AF"] * 3 + ["BB"])
    assert v.result().next_candidates == [B, C]
    v.open(7, 7)
    count(v, ["FA"] * 5 + ["AF"] * 2)
    assert (v.result().finished, v.result().chosen, [r.round for r in v.result().rounds]) == (True, [A, B], [1, 2, 3])


def test_a_shortfall_is_accepted_when_the_rules_say_so():
    v = vote(A, B, C, mode=Mode.PAPER, shortfall="accept_fewer")
    v.open(5, 5)
    count(v, ["FFA", "FFA", "FAF", "FAA", "FAA"])
    assert (v.result().finished, v.result().chosen) == (True, [A])
    assert "fewer accepted" in v.result().note


def test_more_paper_ballots_collected_than_issued_voids_the_round_and_it_is_run_again():
    v = vote(A, B, C, mode=Mode.PAPER)
    v.open(7, 7)
    count(v, {A: 8, B: 8}, 8)
    assert v.result().rounds[0].void and not v.result().finished
    with refused("round-void"):
        v.certify("chair", NOW, "人代会")
    v.open(7, 7)
    count(v, {A: 7, B: 7}, 7)
    assert v.result().chosen == [A, B]


# ---------------------------------------------------------------- withdrawals


def test_a_candidate_can_be_withdrawn_before_the_vote_opens_but_not_after():
    v = vote(A, B, C, D)
    v.withdraw(D, "已另行安排资金")
    assert [s.id for s in v.on_ballot] == [A, B, C]
    with refused("unknown-candidate", Why.INVALID):
        v.withdraw(D, "again")
    assert v.open(7, 7, 3, 2).candidates == [A, B, C]
    with refused("vote-already-open"):
        v.withdraw(C, "迟到的撤回")


def test_a_withdrawal_that_leaves_too_few_candidates_for_the_seats_is_refused():
    v = vote(A, B, seats=2)
    with refused("too-few-candidates"):
        v.withdraw(A, "撤回")


# ---------------------------------------------------------------- departures from the procedure


@pytest.mark.parametrize("departure", [{"named": True}, {"quorum_numerator": 1, "quorum_denominator": 2},
                                       {"passing_basis": "present"}, {"passing_basis": "ranking"}])
def test_a_departure_from_the_procedure_needs_the_presiding_role_and_a_reason_and_is_recorded(departure):
    with refused("departure-needs-presiding", Why.FORBIDDEN):
        vote(presiding=False, reason="理由", **departure)
    with refused("departure-reason-required", Why.INVALID):
        vote(presiding=True, reason="  ", **departure)
    v = vote(presiding=True, reason="主席团决定", **departure)
    assert [(d.reason, d.by) for d in v.departures] == [("主席团决定", "chair")]


def test_the_default_procedure_and_a_stricter_quorum_are_no_departure():
    assert vote().departures == []
    assert vote(quorum_numerator=3, quorum_denominator=4).departures == []


# ---------------------------------------------------------------- one slate, one vote; voiding


def test_a_new_vote_on_a_slate_with_a_vote_that_went_ahead_is_refused_unless_that_one_was_void():
    earlier = uuid4()
    for status in (Status.OPEN, Status.AWAITING_SHARES, Status.CLOSED, Status.CERTIFIED):
        with refused("slate-already-voted"):
            vote(slate_votes={earlier: status})
    assert vote(slate_votes={earlier: Status.VOID}).status is Status.DRAFT
    assert vote(slate_votes={earlier: Status.DRAFT}).status is Status.DRAFT


def test_the_presiding_officer_voids_an_electronic_round_with_a_reason_and_it_is_run_again_on_paper():
    v = vote(A, B, C, max_rounds=1)
    v.open(7, 7, 3, 2)
    with refused("reason-required"):
        v.void_round(" ", Mode.PAPER)
    v.void_round("会场网络故障", Mode.PAPER)
    result = v.result()
    assert (v.status, result.finished, result.rounds[0].void, result.rounds[0].void_reason) == (Status.CLOSED, False, True,
                                                                                              "会场网络故障")
    rerun = v.open(7, 7)
    assert (rerun.mode, rerun.sealed, rerun.candidates, rerun.number) == (Mode.PAPER, False, [A, B, C], 2)
    count(v, {A: 6, B: 5}, 7)  # a void round does not count toward max_rounds
    assert (v.result().finished, v.result().chosen) == (True, [A, B])


def test_a_round_whose_shares_never_come_can_be_voided_while_it_awaits_them():
    v = vote()
    v.open(7, 7, 3, 2)
    v.close()
    v.count_elsewhere()  # another replica may take over the count
    v.void_round("监票人未能到场", Mode.PAPER)
    assert v.status is Status.CLOSED
    with refused("vote-not-awaiting_shares"):
        v.count_elsewhere()


def test_a_void_vote_cannot_be_certified_and_a_certified_one_cannot_be_voided():
    v = vote(mode=Mode.PAPER)
    v.void("候选清单有误")
    with refused("vote-not-closed"):
        v.certify("chair", NOW, "人代会")
    w = vote(mode=Mode.PAPER)
    w.open(7, 7)
    count(w, {A: 7, B: 7}, 7)
    w.certify("chair", NOW, "人代会")
    with refused("vote-certified"):
        w.void("迟到的作废")


def test_one_slate_one_decision_at_certification():
    v = vote(mode=Mode.PAPER)
    v.open(7, 7)
    count(v, {A: 7, B: 7}, 7)
    with refused("slate-already-decided"):
        v.certify("chair", NOW, "人代会", slate_decided_by=uuid4())
    assert v.status is Status.CLOSED


# ---------------------------------------------------------------- ballots as cast


def test_marks_are_checked_and_kept_in_compact_form_of_the_rounds_fixed_length():
    cands = [UUID(c) for c in (A, B, C)]
    assert check_marks(Kind.SELECTION, cands, 2, VoteRules(), {UUID(A): "for", UUID(C): "abstain"}) == ("F-B", True)
    assert check_marks(Kind.SELECTION, cands, 2, VoteRules(), dict.fromkeys(cands, "for")) == ("FFF", False)
    with refused("unknown-candidate"):
        check_marks(Kind.SELECTION, cands, 2, VoteRules(), {uuid4(): "for"})
    with refused("mark-not-allowed"):
        check_marks(Kind.SELECTION, cands, 2, VoteRules(), {UUID(A): "satisfied"})
    with refused("mark-not-allowed"):
        check_marks(Kind.SATISFACTION, cands, 3, VoteRules(), {UUID(A): "for"})


def test_a_satisfaction_rating_is_counted_and_certified_by_tier():
    v = vote(A, B, kind=Kind.SATISFACTION, seats=2)
    v.open(5, 5, 3, 2)
    v.close()
    plain = ["SS", "SJ", "SD", "SD", "JD"]
    collected, _, counts = ballots.tally_ratings_compact(plain, [UUID(A), UUID(B)])
    v.record_opened(Ratings(collected, counts), 0)
    tiers = {r.project_id: (r.tier, r.tier_label, r.rate) for r in v.result().ratings}
    assert tiers == {A: ("satisfied", "满意", 1.0), B: ("dissatisfied", "不满意", 0.4)}
    assert isinstance(v.certify("chair", NOW, "人代会"), SatisfactionCertified)


def test_the_domain_imports_no_web_stack_database_driver_or_broker_client():
    """The recount command, which anyone may run, needs only the domain."""
    import subprocess
    import sys

    code = ("import sys, services.ballot.domain.vote, services.ballot.domain.sealing, services.ballot.domain.session, "
            "services.ballot.recount; print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'asyncpg', 'faststream', "
            "'starlette', 'uvicorn', 'aio_pika'}))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
