"""The identity rulebook (services/identity/domain.py): grants, who manages whom, lock-out, and
the life of a deputy's voting credential. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity import domain
from services.identity.domain import Grant, Live, Outcome, Refused, Status

NOW = datetime(2024, 1, 18, 9, 0, tzinfo=UTC)


def code_of(fn, *args) -> str:
    with pytest.raises(Refused) as exc:
        fn(*args)
    return exc.value.code


def test_one_person_may_hold_several_roles_in_several_jurisdictions():
    domain.check_grants([Grant("deputy", "taihu", term=17, deputy_id="C007"),
                         Grant("deputy", "taihu.fuyu", term=19, deputy_id="F012"),  # supervises in the township too
                         Grant("office", "taihu.fuyu")])


def test_the_county_roles_are_held_at_the_county_only():
    assert code_of(domain.check_grant, Grant("admin", "taihu.fuyu")) == "county-role"
    assert code_of(domain.check_grant, Grant("county", "taihu.fuyu")) == "county-role"
    domain.check_grant(Grant("admin", "taihu"))


def test_a_deputy_is_named_by_term_and_id_and_a_lead_unit_by_its_unit():
    assert code_of(domain.check_grant, Grant("deputy", "taihu.fuyu", deputy_id="F012")) == "deputy-identity"
    assert code_of(domain.check_grant, Grant("office", "taihu.fuyu", term=19, deputy_id="F012")) == "deputy-identity"
    assert code_of(domain.check_grant, Grant("lead_unit", "taihu.fuyu")) == "unit"
    assert code_of(domain.check_grant, Grant("office", "taihu.fuyu", unit="交通办")) == "unit"
    domain.check_grant(Grant("lead_unit", "taihu.fuyu", unit="镇交通办"))


def test_grants_are_refused_when_empty_repeated_or_unknown():
    assert code_of(domain.check_grants, []) == "no-grant"
    assert code_of(domain.check_grants, [Grant("office", "taihu.fuyu")] * 2) == "duplicate-grant"
    assert code_of(domain.check_grant, Grant("display", "taihu.fuyu")) == "unknown-role"  # the screen is no account
    assert code_of(domain.check_grant, Grant("office", "Taihu Fuyu")) == "bad-jurisdiction"


def test_the_county_manages_its_townships_and_no_township_manages_another():
    assert domain.manages("taihu", [Grant("office", "taihu.fuyu"), Grant("county", "taihu")])
    assert not domain.manages("taihu", [Grant("office", "taihu.fuyu"), Grant("office", "wangjiang.x")])
    assert not domain.manages("taihu.fuyu", [Grant("office", "taihu.xinchang")])
    assert not domain.manages("taihu", [Grant("office", "taihuxi.a")])  # a prefix of the name is not the county


def test_a_weak_password_is_refused():
    for weak in ("short", "fuyu-office-2024", "aaaaaaaaaaaa"):
        assert code_of(domain.check_password, weak, "fuyu-office") == "weak-password"
    domain.check_password("湖水-青山-2024-春", "fuyu-office")
    generated = domain.new_password()
    domain.check_password(generated, "fuyu-office")


def test_consecutive_failures_lock_the_account_for_a_while():
    rule = domain.Lockout(max_failures=5, seconds=900)
    assert [domain.after_failure(n, NOW, rule) for n in range(1, 5)] == [None] * 4
    until = domain.after_failure(5, NOW, rule)
    assert until == NOW + timedelta(seconds=900)
    assert domain.locked(until, NOW + timedelta(seconds=899)) and not domain.locked(until, NOW + timedelta(seconds=900))
    assert not domain.locked(None, NOW)


def test_a_token_is_for_the_grant_asked_for_or_the_first():
    grants = [Grant("office", "taihu.fuyu"), Grant("deputy", "taihu", term=17, deputy_id="C007")]
    assert domain.pick_grant(grants, None, None) == grants[0]
    assert domain.pick_grant(grants, "deputy", None) == grants[1]
    assert code_of(domain.pick_grant, grants, "office", "taihu") == "no-such-grant"


# ---------------------------------------------------------------- the voting credential


def test_a_deputy_not_confirmed_present_gets_no_credential():
    assert code_of(domain.check_in, None, "device-a", False) == "not-present"


def test_the_first_device_is_bound_and_another_is_refused():
    assert domain.check_in(None, "device-a", True) is Outcome.NEW
    live = Live(Status.ACTIVE, "device-a")
    assert domain.check_in(live, "device-a", True) is Outcome.AGAIN
    assert code_of(domain.check_in, live, "device-b", True) == "credential-bound-to-another-device"


def test_a_seat_tablet_bound_by_the_office_is_taken_up_on_that_tablet_only():
    reserved = Live(Status.RESERVED, "tablet-7")
    assert domain.check_in(reserved, "tablet-7", True) is Outcome.ACTIVATE
    assert code_of(domain.check_in, reserved, "phone", True) == "credential-bound-to-another-device"


def test_a_wrong_personal_code_is_refused_and_repeated_ones_lock_it():
    domain.check_personal_code(0, None, 5)  # none yet: this one becomes the deputy's
    domain.check_personal_code(4, True, 5)
    assert code_of(domain.check_personal_code, 0, False, 5) == "wrong-personal-code"
    assert code_of(domain.check_personal_code, 5, True, 5) == "personal-code-locked"


@given(st.integers(min_value=0, max_value=20))
def test_check_in_codes_are_readable_across_the_hall(_):
    code = domain.new_checkin_code()
    assert len(code) == 9 and code[4] == "-"
    assert set(code.replace("-", "")) <= set(domain.CHECKIN_ALPHABET) and not set(code) & set("0O1I")
