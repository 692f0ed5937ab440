"""Sealed ballots, the tellers' k-of-n key, trackers, commitments and the recount, as pure code."""

from __future__ import annotations

import itertools
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ballot.domain import ballots, sealing
from services.ballot.domain.refusal import Refused
from services.ballot.domain.rules import Mark, VoteRules, tally
from services.ballot.recount import recount

INFO = sealing.round_info("vote", 1)


def tellers(n: int, suite: str = sealing.DEFAULT_SUITE) -> tuple[list[sealing.TellerKey], dict[str, bytes]]:
    pairs = {f"T{i}": sealing.suite(suite).keypair() for i in range(n)}
    return [sealing.TellerKey(t, pub) for t, (_, pub) in pairs.items()], {t: priv for t, (priv, _) in pairs.items()}


def opened(key: sealing.RoundKey, privates: dict[str, bytes], who: list[str], info: bytes = INFO) -> list[tuple[int, bytes]]:
    shares = {s.teller_id: s for s in key.shares}
    return [(shares[t].index, sealing.open_share(key.suite, privates[t], shares[t], info)) for t in who]


def test_any_k_of_n_tellers_rebuild_the_round_key_and_open_its_ballots():
    keys, privates = tellers(5)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 3, INFO)
    sealed = sealing.suite().seal(key.public_key, b"FAB-F", INFO)
    for who in itertools.combinations(privates, 3):
        private = sealing.recover_private_key(key.suite, key.public_key, opened(key, privates, list(who)), INFO)
        assert sealing.open_batch(key.suite, private, INFO, [sealed]) == [(ballots.tracker(sealed), "FAB-F")]


def test_fewer_than_k_shares_do_not_rebuild_the_key():
    keys, privates = tellers(3)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 2, INFO)
    with pytest.raises(Refused) as refused:
        sealing.recover_private_key(key.suite, key.public_key, opened(key, privates, ["T0"]), INFO)
    assert refused.value.code == "shares-do-not-combine"


def test_what_is_kept_of_a_round_key_holds_no_private_key_and_no_share_in_the_clear():
    keys, privates = tellers(3)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 2, INFO)
    plain = [share for _, share in opened(key, privates, list(privates))]
    kept = key.public_key + b"".join(s.sealed + s.commitment.encode() + s.teller_key for s in key.shares)
    assert not any(share in kept for share in plain)
    private = sealing.recover_private_key(key.suite, key.public_key, opened(key, privates, ["T0", "T2"]), INFO)
    assert private not in kept


def test_a_wrong_share_or_another_tellers_share_is_refused_by_its_commitment():
    keys, privates = tellers(3)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 2, INFO)
    (index, share), (_, other) = opened(key, privates, ["T0", "T1"])
    sealing.check_share(key.shares[0], share, INFO)
    for wrong in (other, bytes(16), share[:-1], share + b"x"):
        with pytest.raises(Refused) as refused:
            sealing.check_share(key.shares[0], wrong, INFO)
        assert refused.value.code == "wrong-share"
    with pytest.raises(Refused):  # a share of this round is no share of the next
        sealing.check_share(key.shares[0], share, sealing.round_info("vote", 2))


def test_a_teller_cannot_open_another_tellers_sealed_share():
    keys, privates = tellers(2)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 2, INFO)
    with pytest.raises(sealing.Unopenable):
        sealing.open_share(key.suite, privates["T1"], key.shares[0], INFO)


def test_a_tampered_or_foreign_sealed_ballot_opens_as_nothing_and_is_reported_not_dropped():
    keys, privates = tellers(2)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 2, INFO)
    private = sealing.recover_private_key(key.suite, key.public_key, opened(key, privates, ["T0", "T1"]), INFO)
    good = sealing.suite().seal(key.public_key, b"FFA", INFO)
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    other_round = sealing.suite().seal(key.public_key, b"FFA", sealing.round_info("vote", 2))
    assert [b for _, b in sealing.open_batch(key.suite, private, INFO, [good, tampered, other_round, b"junk"])] == [
        "FFA", None, None, None]


def test_every_sealed_ballot_of_a_round_has_the_same_size_whatever_its_marks():
    _, public = sealing.suite().keypair()
    cands = [uuid4() for _ in range(4)]
    marks = [{}, {cands[0]: Mark.FOR}, dict.fromkeys(cands, Mark.AGAINST), {cands[3]: Mark.ABSTAIN}]
    sizes = {len(sealing.suite().seal(public, ballots.encode(m, cands).encode(), INFO)) for m in marks}
    assert len(sizes) == 1


def test_the_national_suite_sm2_sm3_sm4_seals_and_splits_like_the_default():
    keys, privates = tellers(3, sealing.Sm2Sm3Sm4.name)
    key = sealing.make_round_key(sealing.Sm2Sm3Sm4.name, keys, 2, INFO)
    sealed = sealing.suite(key.suite).seal(key.public_key, b"FAB", INFO)
    private = sealing.recover_private_key(key.suite, key.public_key, opened(key, privates, ["T2", "T0"]), INFO)
    assert [b for _, b in sealing.open_batch(key.suite, private, INFO, [sealed, sealed[:-1]])] == ["FAB", None]


def test_an_unknown_suite_is_refused():
    with pytest.raises(Refused) as refused:
        sealing.suite("rot13")
    assert refused.value.code == "unknown-suite"


# ---------------------------------------------------------------- compact ballots


CANDS = [UUID(int=i) for i in range(1, 5)]


@given(st.lists(st.dictionaries(st.sampled_from(CANDS), st.sampled_from(list(Mark))), max_size=60),
       st.integers(1, 4), st.sampled_from([VoteRules(), VoteRules(max_for=1), VoteRules(ballot_format="choose_up_to")]))
def test_counting_compact_ballots_gives_the_rules_tally(marks, seats, rules):
    if rules.ballot_format == "choose_up_to":
        marks = [{c: m for c, m in b.items() if m is Mark.FOR} for b in marks]
    compact = [ballots.encode(b, CANDS) for b in marks]
    assert [ballots.decode(b, CANDS, "selection") for b in compact] == marks
    assert ballots.tally_compact(compact, CANDS, seats, rules) == tally(marks, CANDS, seats, rules)


def test_a_ballot_that_did_not_open_is_collected_and_invalid():
    counted = ballots.tally_compact(["FA--", None], CANDS, 2, VoteRules())
    assert (counted.collected, counted.valid, counted.invalid) == (2, 1, 1)


# ---------------------------------------------------------------- recount


def publication(with_ballots: bool = True) -> dict:
    a, b = str(CANDS[0]), str(CANDS[1])
    plain = ["FA", "FA", "FF", None]
    trackers = sorted(ballots.tracker(bytes([i])) for i in range(4))
    # "FF" marks two "for" for one seat: invalid, like the ballot that did not open.
    counts = {a: {"for": 2, "against": 0, "abstain": 0, "not_marked": 0}, b: {"for": 0, "against": 2, "abstain": 0, "not_marked": 0}}
    announced = {"round": 1, "candidates": [a, b], "seats": 1, "issued": 4, "void": False, "void_reason": None, "collected": 4,
                 "valid": 2, "invalid": 2, "unopened": 1, "counts": counts}
    pub = {"vote_id": "v", "kind": "selection", "rules": {}, "seats": 1,
           "result": {"seated": 3, "present": 3, "chosen": [a], "rounds": [announced]},
           "rounds": [{"round": 1, "candidates": [a, b], "seats": 1, "issued": 4, "sealed": True, "void_reason": None, "unopened": 1,
                       "totals": None, "trackers": trackers, "commitment": ballots.commitment("v", 1, "salt", trackers, plain)}]}
    if with_ballots:
        pub["rounds"][0] |= {"salt": "salt", "ballots": plain}
    return pub


def test_a_recount_from_the_ballots_matches_and_finds_a_receipt_among_the_trackers():
    pub = publication()
    checked = recount(pub, pub["rounds"][0]["trackers"][2])
    assert (checked.matches, checked.ballots_checked, checked.receipt_found, checked.chosen) == (True, True, True, [str(CANDS[0])])
    assert recount(pub, "0" * 64).receipt_found is False


def test_the_public_notice_alone_checks_trackers_and_the_chain_of_rounds():
    checked = recount(publication(with_ballots=False))
    assert (checked.matches, checked.ballots_checked) == (True, False)


def test_a_tampered_ballot_or_a_dropped_tracker_is_a_mismatch():
    pub = publication()
    pub["rounds"][0]["ballots"][0] = "AF"
    assert not recount(pub).matches
    pub = publication()
    pub["rounds"][0]["ballots"][0], pub["rounds"][0]["ballots"][1] = "FA", "FA"  # same counts, swapped: still matches
    assert recount(pub).matches
    pub["rounds"][0]["trackers"].pop()
    result = recount(pub)
    assert not result.matches and any("trackers" in d for d in result.differences)


def test_a_large_round_is_opened_on_worker_processes_that_import_only_the_sealing_module():
    from services.ballot import workers

    keys, privates = tellers(2)
    key = sealing.make_round_key(sealing.DEFAULT_SUITE, keys, 2, INFO)
    private = sealing.recover_private_key(key.suite, key.public_key, opened(key, privates, ["T0", "T1"]), INFO)
    blobs = [sealing.suite().seal(key.public_key, b"FA-B", INFO) for _ in range(50)] + [b"junk"]
    pool = workers.acquire()
    try:
        result = pool.submit(sealing.open_batch, key.suite, private, INFO, blobs).result(timeout=120)
        web = pool.submit(_imported, ("fastapi", "asyncpg", "faststream")).result(timeout=120)
    finally:
        workers.release()
    assert [b for _, b in result] == ["FA-B"] * 50 + [None]
    assert web == []


def _imported(names: tuple[str, ...]) -> list[str]:
    import sys

    return [n for n in names if n in sys.modules]
