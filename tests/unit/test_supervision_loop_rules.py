"""Supervision after the vote: the rectification loop (整改), the plan's activities, milestones and
the progress board, progress reports, photos, group assessments. DOMAIN.md §3. Pure domain, no I/O."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.supervision.domain import SupervisionRefused, check_progress, check_raters, is_backdated
from services.supervision.domain.photos import MAX_BYTES, check_photo
from services.supervision.domain.plan import (
    ActivityStatus,
    BoardSetting,
    Colour,
    Milestone,
    colour,
    expected_percent,
    next_status,
    timing,
)
from services.supervision.domain.rectification import Action, Item, Status, act, is_overdue
from shared.contracts.supervision import InspectionKind

DUE = date(2024, 8, 1)
UNIT = "镇城建办"


def refusal(fn, *args) -> str:
    with pytest.raises(SupervisionRefused) as refused:
        fn(*args)
    return refused.value.code


def item(status: Status) -> Item:
    return Item(status, UNIT, DUE)


# ---------------------------------------------------------------- the rectification loop


def test_the_loop_runs_open_responded_sent_back_twice_then_verified():
    status = Status.OPEN
    for step, actor, text in [(Action.RESPOND, UNIT, "已整改, 附照片"), (Action.SEND_BACK, None, "照明仍不足"),
                              (Action.RESPOND, UNIT, "加装路灯"), (Action.SEND_BACK, None, "西段未完成"),
                              (Action.RESPOND, UNIT, "西段完成"), (Action.VERIFY, None, None)]:
        status = act(item(status), step, actor, text)
    assert status is Status.CLOSED


def test_a_look_back_reopens_a_closed_item_and_the_unit_responds_again():
    reopened = act(item(Status.CLOSED), Action.REOPEN, None, "回头看发现反弹")
    assert reopened is Status.REOPENED
    assert act(item(reopened), Action.RESPOND, UNIT, "再次整改") is Status.RESPONDED


def test_a_lead_unit_cannot_verify_its_own_item():
    assert refusal(act, item(Status.RESPONDED), Action.VERIFY, UNIT, None) == "cannot-verify-own"
    assert refusal(act, item(Status.RESPONDED), Action.SEND_BACK, UNIT, "x") == "cannot-verify-own"
    assert refusal(act, item(Status.CLOSED), Action.REOPEN, UNIT, "x") == "cannot-verify-own"


def test_another_unit_cannot_respond_for_the_lead_unit():
    assert refusal(act, item(Status.OPEN), Action.RESPOND, "别的单位", "done") == "not-your-project"


@pytest.mark.parametrize(("action", "text", "code"), [(Action.RESPOND, None, "evidence-required"),
                                                      (Action.SEND_BACK, "  ", "reason-required"),
                                                      (Action.REOPEN, "", "reason-required")])
def test_a_response_needs_evidence_and_a_send_back_or_reopen_a_reason(action, text, code):
    start = {Action.RESPOND: Status.OPEN, Action.SEND_BACK: Status.RESPONDED, Action.REOPEN: Status.CLOSED}[action]
    assert refusal(act, item(start), action, UNIT if action is Action.RESPOND else None, text) == code


@pytest.mark.parametrize(("status", "action"), [(Status.OPEN, Action.VERIFY), (Status.SENT_BACK, Action.VERIFY),
                                                (Status.CLOSED, Action.RESPOND), (Status.OPEN, Action.REOPEN),
                                                (Status.RESPONDED, Action.RESPOND), (Status.CLOSED, Action.SEND_BACK)])
def test_steps_out_of_order_are_refused(status, action):
    actor = UNIT if action is Action.RESPOND else None
    assert refusal(act, item(status), action, actor, "text") == "rectification-wrong-state"


@given(st.lists(st.sampled_from(list(Action)[1:]), max_size=20))
def test_only_a_verification_closes_an_item(actions):
    status = Status.OPEN
    for action in actions:
        try:
            new = act(item(status), action, UNIT if action is Action.RESPOND else None, "text")
        except SupervisionRefused:
            continue
        assert (new is Status.CLOSED) == (action is Action.VERIFY)
        status = new


@pytest.mark.parametrize(("status", "on", "overdue"), [(Status.OPEN, date(2024, 8, 2), True), (Status.OPEN, DUE, False),
                                                       (Status.RESPONDED, date(2024, 9, 1), True),
                                                       (Status.CLOSED, date(2024, 9, 1), False)])
def test_an_item_not_closed_after_its_due_date_is_overdue(status, on, overdue):
    assert is_overdue(status, DUE, on) is overdue


# ---------------------------------------------------------------- the plan's activities


def test_a_planned_activity_is_held_cancelled_or_rescheduled():
    assert next_status(ActivityStatus.PLANNED, "hold") is ActivityStatus.HELD
    assert next_status(ActivityStatus.PLANNED, "cancel", "防汛") is ActivityStatus.CANCELLED
    assert next_status(ActivityStatus.PLANNED, "reschedule", "暴雨") is ActivityStatus.PLANNED


@pytest.mark.parametrize("status", [ActivityStatus.HELD, ActivityStatus.CANCELLED])
def test_a_held_or_cancelled_activity_does_not_move(status):
    assert refusal(next_status, status, "hold") == "activity-not-planned"


def test_cancel_and_reschedule_need_a_reason():
    assert refusal(next_status, ActivityStatus.PLANNED, "cancel", None) == "reason-required"


@pytest.mark.parametrize(("status", "on", "expected"), [
    (ActivityStatus.PLANNED, date(2024, 6, 29), "overdue"), (ActivityStatus.PLANNED, date(2024, 7, 1), "upcoming"),
    (ActivityStatus.PLANNED, date(2024, 7, 30), "upcoming"), (ActivityStatus.PLANNED, date(2024, 8, 30), None),
    (ActivityStatus.HELD, date(2024, 6, 29), None), (ActivityStatus.CANCELLED, date(2024, 6, 29), None)])
def test_overdue_and_upcoming_activities(status, on, expected):
    assert timing(status, on, date(2024, 6, 30)) == expected


# ---------------------------------------------------------------- milestones and the board


PLAN = [Milestone(date(2024, 3, 31), 20), Milestone(date(2024, 6, 30), 50), Milestone(date(2024, 12, 31), 100)]


def test_the_plan_expects_the_percent_of_the_last_milestone_due():
    assert expected_percent(PLAN, date(2024, 3, 1)) == 0
    assert expected_percent(PLAN, date(2024, 6, 30)) == 50
    assert expected_percent(PLAN, date(2025, 1, 1)) == 100


@pytest.mark.parametrize(("done", "expected", "accepted", "result"), [
    (10, 50, False, Colour.RED), (14, 50, False, Colour.RED), (15, 50, False, Colour.YELLOW),
    (44, 50, False, Colour.YELLOW), (45, 50, False, Colour.GREEN), (0, 0, False, Colour.GREEN),
    (100, 100, True, Colour.BLUE), (None, 50, False, Colour.RED)])
def test_board_colours_against_the_plan(done, expected, accepted, result):
    assert colour(done, expected, accepted, BoardSetting()) is result


def test_board_colours_are_a_setting():
    strict = BoardSetting(red_below=50, yellow_below=100)
    assert colour(20, 50, False, strict) is Colour.RED
    assert colour(45, 50, False, strict) is Colour.YELLOW
    with pytest.raises(ValidationError):
        BoardSetting(red_below=80, yellow_below=60)


# ---------------------------------------------------------------- progress, photos, group assessments


def test_percent_going_backwards_needs_a_reason():
    assert refusal(check_progress, 60, 55, None) == "percent-decreased-without-reason"
    check_progress(60, 55, "验收发现返工")
    check_progress(60, 60, None)
    check_progress(None, 0, None)


def test_a_report_about_a_day_before_the_latest_is_backdated():
    assert is_backdated(date(2024, 5, 31), date(2024, 6, 30))
    assert not is_backdated(date(2024, 6, 30), date(2024, 6, 30))
    assert not is_backdated(date(2024, 5, 31), None)


def test_photos_are_images_of_bounded_size():
    assert check_photo(b"\xff\xd8\xff\xe0" + b"0" * 100) == "image/jpeg"
    assert check_photo(b"\x89PNG\r\n\x1a\n" + b"0" * 100) == "image/png"
    assert check_photo(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert refusal(check_photo, b"%PDF-1.7 pretending") == "not-an-image"
    assert refusal(check_photo, b"") == "not-an-image"
    assert refusal(check_photo, b"\xff\xd8\xff" + b"0" * MAX_BYTES) == "photo-too-large"


def test_mid_term_and_final_are_the_groups_not_one_deputys():
    assert refusal(check_raters, InspectionKind.MID_TERM, True, {"D1"}, {"D1"}) == "group-assessment"
    assert refusal(check_raters, InspectionKind.FINAL, False, set(), {"D1"}) == "ratings-required"
    assert refusal(check_raters, InspectionKind.FINAL, False, {"D1", "D9"}, {"D1", "D2"}) == "not-in-supervision-group"
    check_raters(InspectionKind.FINAL, False, {"D1", "D2"}, {"D1", "D2", "D3"})
    check_raters(InspectionKind.CONCENTRATED_INSPECTION, True, {"D9"}, {"D1"})  # any deputy may inspect
