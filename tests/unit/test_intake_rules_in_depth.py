"""Intake in depth (DOMAIN.md §1): eligibility as data with overrides, merging with supporters,
public notice (公示), feasibility scores, the project library, tracking codes. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.domain import carryover, eligibility, feasibility, merging, notice, tracking
from services.intake.domain.merging import Mergee, Supporter
from services.intake.domain.screening import OPEN, Refused, Stage

# ---------------------------------------------------------------- eligibility (负面清单)


@pytest.mark.parametrize(("fields", "rule"), [
    ({"title": "镇政府办公楼维修改造"}, "office-buildings"),
    ({"title": "村部建设", "category": "办公设备"}, "office-buildings"),
    ({"title": "文化中心", "content": "由施工方垫资建设"}, "adds-debt"),
    ({"title": "修路", "content": "每户集资两千元"}, "adds-burden"),
    ({"title": "物流园", "funding_source": "企业投资"}, "private-funded"),
    ({"title": "续建停工多年的安置房"}, "stalled"),
    ({"title": "三年改造计划", "multi_year": True}, "within-year"),
])
def test_each_exclusion_of_the_default_negative_list_fails_with_its_reason(fields, rule):
    [failure] = eligibility.check(fields)
    assert failure.rule == rule and failure.reason and failure.label and failure.detail


def test_a_livelihood_project_passes_and_a_multi_year_one_with_milestones_too():
    assert eligibility.check({"title": "农村饮水安全提升工程", "content": "接入镇区管网", "location": "山区五村"}) == []
    assert eligibility.check({"title": "三年改造计划", "multi_year": True, "milestones": "2024年完成一期管网"}) == []


def test_rules_are_data_per_jurisdiction_and_year():
    rules = eligibility.Rules(rules=(
        eligibility.Rule(id="required", kind="required", label="必填", reason="请补充地点", fields=("title", "location")),
        eligibility.Rule(id="cap", kind="budget_at_most", label="投资上限", reason="超过乡镇投资上限", amount=Decimal(5_000_000)),
    ))
    failures = eligibility.check({"title": "G105征迁", "estimated_budget": "25000000"}, rules)
    assert [f.rule for f in failures] == ["required", "cap"]
    assert "地点" in failures[0].detail and eligibility.check({"title": "办公楼", "location": "镇"}, rules) == []


@pytest.mark.parametrize("bad", [
    {"rules": [{"id": "a", "kind": "keywords", "label": "x", "reason": "y"}]},  # keywords rule without keywords
    {"rules": [{"id": "a", "kind": "budget_at_most", "label": "x", "reason": "y"}]},  # cap without an amount
    {"rules": [{"id": "a", "kind": "required", "label": "x", "reason": "y", "fields": ["proposer"]}]},  # not a checkable field
    {"rules": [{"id": "a", "kind": "within_year", "label": "x", "reason": "y"}] * 2},  # one id twice
])
def test_rules_that_cannot_be_applied_are_refused(bad):
    with pytest.raises(ValidationError):
        eligibility.Rules.model_validate(bad)


def test_a_failed_check_blocks_screening_until_overridden_with_a_reason():
    failures = eligibility.check({"title": "镇政府办公楼维修改造"})
    with pytest.raises(Refused) as refused:
        eligibility.require_eligible(failures)
    assert refused.value.code == "ineligible" and "楼堂馆所" in str(refused.value)
    with pytest.raises(Refused) as no_reason:
        eligibility.override(failures, "office-buildings", "  ")
    assert no_reason.value.code == "reason-required"
    with pytest.raises(Refused) as nothing_to_override:
        eligibility.override(failures, "stalled", "reason")
    assert nothing_to_override.value.code == "no-such-failure"
    overridden = eligibility.with_overrides(failures, {"office-buildings": "实为村级便民服务室，县人大同意"})
    eligibility.require_eligible(overridden)
    assert overridden[0].overridden and overridden[0].override_reason


def test_a_rejection_for_failed_checks_carries_their_reasons():
    failures = eligibility.check({"title": "镇政府办公楼", "content": "施工方垫资"})
    reason = eligibility.rejection_reason(failures)
    assert "楼堂馆所" in reason and "新增政府债务" in reason


@given(st.text(alphabet="村路灯水桥广场健身道硬化改造老旧小区", max_size=30))
def test_a_proposal_without_an_excluded_word_passes_the_default_list(title):
    assert eligibility.check({"title": title or "修路", "location": "王庄村"}) == []


# ---------------------------------------------------------------- merging (合并)


def m(id_, jurisdiction="taihu.fuyu", year=2024, stage=Stage.SUBMITTED):
    return Mergee(id_, jurisdiction, year, stage)


@pytest.mark.parametrize(("item", "others", "code"), [
    (m(1), [], "nothing-to-merge"),
    (m(1), [m(1)], "merge-into-itself"),
    (m(1), [m(2, "taihu.xinchang")], "merge-across-jurisdictions"),
    (m(1), [m(2, year=2025)], "merge-across-years"),
    (m(1, stage=Stage.ON_BALLOT), [m(2)], "already-on-slate"),
    (m(1), [m(2, stage=Stage.CHOSEN)], "already-on-slate"),
    (m(1), [m(2, stage=Stage.DISPOSED)], "already-on-slate"),
    (m(1), [m(2, stage=Stage.MERGED)], "already-merged"),
    (m(1, stage=Stage.MERGED), [m(2)], "already-merged"),
    (m(1), [m(2, stage=Stage.REJECTED)], "not-mergeable"),
])
def test_a_merge_the_rules_forbid_is_refused_with_a_stable_code(item, others, code):
    with pytest.raises(Refused) as refused:
        merging.check_merge(item, others)
    assert refused.value.code == code


@pytest.mark.parametrize("stage", sorted(OPEN))
def test_proposals_before_the_slate_merge_at_any_screening_stage(stage):
    merging.check_merge(m(1, stage=stage), [m(2, stage=Stage.SUBMITTED), m(3, stage=stage)])


def test_a_merge_is_undone_only_while_the_item_is_not_on_a_slate():
    merging.check_unmerge(m(2, stage=Stage.MERGED), m(1, stage=Stage.CANDIDATE))
    for stage in (Stage.ON_BALLOT, Stage.CHOSEN, Stage.DISPOSED):
        with pytest.raises(Refused) as refused:
            merging.check_unmerge(m(2, stage=Stage.MERGED), m(1, stage=stage))
        assert refused.value.code == "already-on-slate"
    with pytest.raises(Refused) as refused:
        merging.check_unmerge(m(2, stage=Stage.SUBMITTED), m(1))
    assert refused.value.code == "not-merged"


@given(st.lists(st.tuples(st.sampled_from(["grid", "online", "deputy_forum"]), st.sampled_from(["王庄村", "马庙村", ""])),
                min_size=1, max_size=50))
def test_an_item_counts_every_supporter_once_by_channel_and_by_village(people):
    support = merging.support([Supporter(c, p) for c, p in people])
    assert support.count == len(people) == sum(support.by_channel.values()) == sum(support.by_location.values())
    assert "未注明" in support.by_location or all(p for _, p in people)


# ---------------------------------------------------------------- public notice (公示)

T0 = datetime(2024, 1, 2, 9, tzinfo=UTC)


def test_a_slate_under_notice_goes_to_the_ballot_after_the_period_or_with_a_reason():
    starts, ends = notice.period(T0, 7)
    assert ends - starts == timedelta(days=7)
    with pytest.raises(Refused) as refused:
        notice.may_go_to_ballot(ends, ends - timedelta(seconds=1))
    assert refused.value.code == "notice-period-running"
    assert notice.may_go_to_ballot(ends, ends) is False  # the period has ended: no override needed
    assert notice.may_go_to_ballot(ends, T0, "县人大同意提前") is True  # overridden, and the reason is recorded
    assert notice.may_go_to_ballot(None, T0) is False  # no notice period set


def test_objections_are_recorded_only_during_the_notice_period():
    starts, ends = notice.period(T0, 5)
    notice.may_record_objection(starts, ends, starts)
    for when in (starts - timedelta(seconds=1), ends):
        with pytest.raises(Refused) as refused:
            notice.may_record_objection(starts, ends, when)
        assert refused.value.code == "notice-closed"


# ---------------------------------------------------------------- feasibility (可行性论证)


def test_the_weighted_feasibility_score_uses_the_years_weights():
    scores = feasibility.Scores(demand=90, buildability=70, urgency=80, funding=50)
    assert feasibility.weighted(scores) == Decimal("74.5")  # 30/25/25/20
    assert feasibility.weighted(scores, feasibility.Weights(demand=100, buildability=0, urgency=0, funding=0)) == 90
    with pytest.raises(ValidationError):
        feasibility.Weights(demand=50, buildability=50, urgency=50, funding=0)
    with pytest.raises(ValidationError):
        feasibility.Scores(demand=101, buildability=0, urgency=0, funding=0)


# ---------------------------------------------------------------- the project library, tracking codes, retention


def test_a_library_item_carries_its_history_and_its_supporters_into_next_year():
    history = carryover.history(2024, {"id": 1, "code": "AAAAA-BBBBB", "title": "G105征迁"},
                                [{"title": "G105征迁", "channel": "practice_point", "location": "G105沿线"}],
                                [Supporter("practice_point", "G105沿线"), Supporter("letter_hotline", "徐桥村")],
                                {"for": 19, "against": 26, "abstain": 7}, "条件尚不成熟")
    assert history["from_year"] == 2024 and history["votes"]["for"] == 19 and history["original"]["code"] == "AAAAA-BBBBB"
    carried = carryover.carried_supporters(history)
    assert [(s.channel, s.carried_from) for s in carried] == [("practice_point", 2024), ("letter_hotline", 2024)]
    again = carryover.carried_supporters(carryover.history(2025, {"id": 2, "code": "C", "title": "t"}, [], carried, None, ""))
    assert [s.carried_from for s in again] == [2024, 2024]  # carried twice, still from the year they asked


@given(st.integers(0, 1000))
def test_codes_are_unambiguous_and_read_back_however_typed(_):
    code = tracking.new_code()
    assert tracking.normalize(code) == code
    assert tracking.normalize(code.lower().replace("-", " ")) == code
    assert not set(code) & set("01OIL")
    assert len(tracking.ALPHABET) ** tracking.LENGTH > 2**49  # guessing is pointless behind a rate limit


@pytest.mark.parametrize("typed", ["", "ABCDE", "ABCDE-FGHI0", "ABCDE-FGHIJK", "OOOOO-OOOOO", "ABCDE_FGHIJ"])
def test_what_is_not_a_code_is_not_looked_up(typed):
    assert tracking.normalize(typed) is None


def test_the_lookup_never_shows_a_proposer_or_a_contact_or_another_proposal():
    proposal = {"code": "AAAAA-BBBBB", "year": 2024, "title": "王马路太烂了", "stage": "merged", "created_at": T0,
                "proposer": "张三", "contact": "13800000000", "eligibility": [], "id": "x"}
    item = {"title": "王马公路升级改造", "stage": "chosen", "supporters": 4, "proposer": "李四", "contact": "139", "code": "CCCCC"}
    view = tracking.public_view(proposal, item, {"title": "清单", "status": "decided"}, {"completion": "completed"},
                                notices=[{"at": T0, "text": "已合并"}])
    text = repr(view)
    assert not {"张三", "13800000000", "李四", "139", "CCCCC", "x"} & {*_words(text)}
    assert view["outcome"]["chosen"] and view["merged_into"]["supporters"] == 4 and view["project"]["completion"] == "completed"


def _words(text: str) -> list[str]:
    return [w.strip("'\" ") for w in text.replace(",", " ").replace(":", " ").replace("{", " ").replace("}", " ").split()]


def test_a_contact_is_kept_for_the_retention_period_after_the_year_ends():
    assert tracking.erase_after(2024, 365) == date(2025, 12, 31)
    assert tracking.erase_after(2024, 0) == date(2024, 12, 31)
