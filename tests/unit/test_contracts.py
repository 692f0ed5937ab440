"""Event contracts: parse() turns every message that can never be handled into a PoisonMessage
(dead-lettered, never retried), and a good envelope survives the wire unchanged. Also the
jurisdiction scope rule (辖区) of shared/auth.py. Pure, no I/O."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.auth import Principal, Role, in_scope
from shared.contracts import EVENTS, Envelope, PoisonMessage, parse
from shared.contracts.ballot import (
    AttendanceRecorded,
    CandidateResult,
    RatedProject,
    ResultCertified,
    RoundCounts,
    SatisfactionCertified,
    SessionCreated,
)
from shared.contracts.envelope import Payload
from shared.contracts.identity import CredentialRevoked
from shared.contracts.intake import ProposalMerged, SlateCandidate, SlatePublished
from shared.contracts.scoring import AssessmentUpdated, AssessmentUpdatedV1, ProjectScore
from shared.contracts.supervision import (
    Completion,
    DeputyRating,
    InspectionKind,
    InspectionRecorded,
    InspectionRecordedV1,
    Milestone,
    ProgressReported,
    ProjectCompleted,
    ProjectCreated,
    ProjectPlanned,
    RectificationStatus,
    RectificationUpdated,
)
from shared.messaging import QUEUES

U1, U2, U3, U4 = (UUID(int=i) for i in range(1, 5))
CERTIFIED_AT = datetime(2024, 1, 18, 10, 30, tzinfo=UTC)

SAMPLES: list[Payload] = [
    SlatePublished(
        slate_id=U1, title="孚玉镇2024年民生实事候选项目", year=2024, seats=1,
        candidates=[SlateCandidate(candidate_id=U2, title="背街小巷亮化"), SlateCandidate(candidate_id=U3, title="老旧小区改造")],
    ),
    ResultCertified(
        vote_id=U1, session_id=U2, session_name="孚玉镇第十九届人民代表大会第四次会议", slate_id=U3, year=2024,
        seats=1, seated=30, present=27, issued=27, collected=27, valid=26, invalid=1,
        rules={"ballot_format": "for_against_abstain", "max_for": None, "passing_basis": "seated"},
        candidates=[
            CandidateResult(candidate_id=U2, title="背街小巷亮化", for_votes=20, against=5, abstain=1,
                            passed=True, chosen=True, rank=1),
            CandidateResult(candidate_id=U3, title="老旧小区改造", for_votes=6, against=15, abstain=5,
                            passed=False, chosen=False, rank=None),
        ],
        rounds=[RoundCounts(round=1, candidates=[U2, U3], seats=1, issued=27, collected=27, valid=26, invalid=1, void=False)],
        certified_at=CERTIFIED_AT, certified_by="chair-1",
    ),
    SatisfactionCertified(
        vote_id=U1, session_id=U2, session_name="孚玉镇第十九届人民代表大会第五次会议", year=2024, seated=58, present=50,
        issued=50, collected=50, certified_at=CERTIFIED_AT, certified_by="chair-1",
        projects=[RatedProject(project_id=U3, title="背街小巷亮化", satisfied=31, basically_satisfied=15, dissatisfied=4,
                               tier="satisfied", rate=0.92)],
    ),
    ProjectCreated(project_id=U1, candidate_id=U2, vote_id=U3, title="背街小巷亮化", year=2024),
    InspectionRecordedV1(inspection_id=U1, project_id=U2, year=2024, kind=InspectionKind.MID_TERM, rating=88,
                         inspected_on=date(2024, 6, 30)),
    ProjectCompleted(project_id=U1, year=2024, completion=Completion.BASICALLY_COMPLETED, accepted_on=date(2024, 12, 20)),
    AssessmentUpdatedV1(
        assessment_id=U1, year=2024, version=3, method={"version": "2024", "bonus_cap": "5.0"},
        total_projects=7, completed=7, completion_rate=Decimal("1.0000"), bonus=Decimal("5.0"),
        deduction=Decimal("0"), net_points=Decimal("5.0"),
        projects=[ProjectScore(project_id=U2, title="背街小巷亮化", score=Decimal("86.25"), completion=Completion.COMPLETED)],
    ),
    InspectionRecorded(inspection_id=U1, project_id=U2, year=2024, kind=InspectionKind.FINAL, inspected_on=date(2024, 12, 20),
                       ratings=[DeputyRating(deputy="D001", rating=90), DeputyRating(deputy="D002", rating=84)], term=19),
    ProjectPlanned(project_id=U1, year=2024, lead_unit="镇城建办", leader="分管副镇长", budget=Decimal("1800000"),
                   funding_source="镇财政", milestones=[Milestone(due_on=date(2024, 6, 30), expected_percent=50)]),
    ProgressReported(report_id=U1, project_id=U2, year=2024, as_of=date(2024, 6, 30), percent_done=45,
                     funds_spent=Decimal("810000"), backdated=False),
    RectificationUpdated(item_id=U1, project_id=U2, year=2024, status=RectificationStatus.CLOSED, due_on=date(2024, 8, 1),
                         closed_on=date(2024, 7, 28)),
    AssessmentUpdated(
        assessment_id=U1, year=2024, version=4, reason="method corrected", method_version="taihu/2024/v2",
        method={"bonus_cap": "5.0"}, as_of=date(2025, 1, 20), total_projects=7, completed=6,
        completion_rate=Decimal("0.8571"), bonus=Decimal("5.0"), deduction=Decimal("1.0"), overdue_rectifications=1,
        rectification_deduction=Decimal("0.5"), net_points=Decimal("3.5"), investment_planned=Decimal("30000000"),
        investment_spent=Decimal("27000000"), investment_rate=Decimal("0.9000"),
        projects=[ProjectScore(project_id=U2, title="背街小巷亮化", score=Decimal("86.25"), completion=Completion.COMPLETED)],
    ),
    SessionCreated(session_id=U1, term=19, name="孚玉镇第十九届人民代表大会第四次会议", year=2024),
    AttendanceRecorded(session_id=U1, term=19, present=["D01", "D02"], absent=["D03"]),
    CredentialRevoked(credential_id=U2, session_id=U1, term=19, deputy_id="D01", reason="left"),
    ProposalMerged(item_id=U1, title="王马公路升级改造", year=2024, merged=[U2, U3], supporters=3,
                   by_channel={"grid": 2, "wechat_qq": 1}, by_location={"王庄村": 2, "马庙村": 1}),
]


def envelope_of(payload: Payload) -> Envelope:
    """The envelope a producer writes to its outbox (as UnitOfWork.emit does)."""
    return Envelope(
        type=payload.TYPE, version=payload.VERSION, jurisdiction="taihu.fuyu", correlation_id=U4,
        causation_id=U3, producer="test", data=payload.model_dump(mode="json"),
    )


def wire(body: dict[str, Any]) -> bytes:
    """The bytes the outbox relay publishes."""
    return json.dumps(body, ensure_ascii=False).encode()


def good_body() -> dict[str, Any]:
    project_created = next(p for p in SAMPLES if isinstance(p, ProjectCreated))
    return envelope_of(project_created).model_dump(mode="json")


def poison(body: bytes) -> str:
    with pytest.raises(PoisonMessage) as refused:
        parse(body)
    return str(refused.value)


# ---------------------------------------------------------------- a good envelope


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: f"{p.TYPE}.v{p.VERSION}")
def test_good_envelope_round_trips_through_the_wire(payload):
    sent = envelope_of(payload)
    envelope, received = parse(wire(sent.model_dump(mode="json")))
    assert envelope == sent
    assert type(received) is type(payload)
    assert received == payload


def test_the_slate_carries_supporters_as_an_optional_field_of_version_1():
    """Backward compatible both ways: a slate from before the field parses (no count), and the
    count a newer intake sends is kept; the version stays 1, so the ballot service reads both."""
    old = envelope_of(SAMPLES[0]).model_dump(mode="json")
    for candidate in old["data"]["candidates"]:
        candidate.pop("supporters")
    _, payload = parse(wire(old))
    assert [c.supporters for c in payload.candidates] == [None, None]
    new = SlatePublished(slate_id=U1, title="清单", year=2024, seats=1, candidates=[
        SlateCandidate(candidate_id=U2, title="甲", supporters=5), SlateCandidate(candidate_id=U3, title="乙", supporters=1)])
    _, payload = parse(wire(envelope_of(new).model_dump(mode="json")))
    assert (payload.VERSION, [c.supporters for c in payload.candidates]) == (1, [5, 1])


def test_every_registered_event_has_a_round_trip_sample():
    assert {(p.TYPE, p.VERSION) for p in SAMPLES} == set(EVENTS)


def test_every_event_type_a_queue_is_bound_to_is_registered():
    registered = {type_ for type_, _ in EVENTS}
    assert {t for types in QUEUES.values() for t in types} <= registered


def test_envelope_keeps_its_id_correlation_and_time_across_the_wire():
    body = good_body()
    envelope, _ = parse(wire(body))
    assert str(envelope.id) == body["id"]
    assert envelope.correlation_id == U4
    assert envelope.causation_id == U3
    assert envelope.occurred_at.tzinfo is not None


def test_envelope_without_causation_is_accepted():
    body = good_body()
    del body["causation_id"]
    envelope, _ = parse(wire(body))
    assert envelope.causation_id is None


# ---------------------------------------------------------------- poison messages


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b'{"type": ', b"\xff\xfe\x00", b"[1, 2"],
    ids=["empty", "text", "open-brace", "truncated", "not-utf8", "open-array"],
)
def test_bad_json_is_a_poison_message(body):
    assert poison(body).startswith("bad envelope")


@pytest.mark.parametrize("body", [b"[]", b"null", b"42", b'"ballot.result.certified"', b"true"])
def test_json_that_is_not_an_object_is_a_poison_message(body):
    assert poison(body).startswith("bad envelope")


def test_deeply_nested_json_is_a_poison_message():
    """Valid JSON nested deeper than the decoder's recursion limit can never be handled either."""
    poison(b"[" * 10_000 + b"]" * 10_000)


@pytest.mark.parametrize("field", ["type", "version", "jurisdiction", "correlation_id", "producer", "data"])
def test_envelope_missing_a_required_field_is_a_poison_message(field):
    body = good_body()
    del body[field]
    assert poison(wire(body)).startswith("bad envelope")


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "not-a-uuid"), ("correlation_id", 7), ("version", "one"), ("occurred_at", "yesterday"), ("data", [1, 2])],
)
def test_envelope_with_a_malformed_field_is_a_poison_message(field, value):
    body = good_body()
    body[field] = value
    assert poison(wire(body)).startswith("bad envelope")


def test_envelope_with_an_unknown_field_is_a_poison_message():
    assert poison(wire({**good_body(), "priority": "high"})).startswith("bad envelope")


def test_unknown_event_type_is_a_poison_message():
    message = poison(wire({**good_body(), "type": "ballot.vote.opened"}))
    assert "unknown event type/version" in message
    assert "ballot.vote.opened" in message


def test_known_event_type_at_an_unknown_version_is_a_poison_message():
    message = poison(wire({**good_body(), "version": 2}))
    assert "unknown event type/version" in message
    assert "v2" in message


@pytest.mark.parametrize(
    "data",
    [
        {},  # every field missing
        {"project_id": str(U1), "candidate_id": str(U2), "vote_id": str(U3), "title": "路灯"},  # year missing
        {"project_id": "nope", "candidate_id": str(U2), "vote_id": str(U3), "title": "路灯", "year": 2024},
        {"project_id": str(U1), "candidate_id": str(U2), "vote_id": str(U3), "title": "路灯", "year": "next"},
        {"project_id": str(U1), "candidate_id": str(U2), "vote_id": str(U3), "title": "路灯", "year": 2024, "x": 1},
    ],
    ids=["empty", "missing-field", "bad-uuid", "bad-int", "unknown-field"],
)
def test_bad_payload_is_a_poison_message(data):
    message = poison(wire({**good_body(), "data": data}))
    assert message.startswith("bad payload for supervision.project.created v1")


@pytest.mark.parametrize(
    ("payload", "change"),
    [
        (SAMPLES[0], {"seats": 0}),  # a slate needs a seat
        (SAMPLES[0], {"candidates": []}),  # and a candidate
        (SAMPLES[3], {"rating": 101}),  # ratings are 0–100
        (SAMPLES[3], {"rating": -1}),
        (SAMPLES[3], {"kind": "annual"}),  # not an inspection kind
        (SAMPLES[4], {"completion": "half_done"}),
    ],
)
def test_payload_breaking_its_contract_constraints_is_a_poison_message(payload, change):
    body = envelope_of(payload).model_dump(mode="json")
    body["data"] = {**body["data"], **change}
    assert poison(wire(body)).startswith(f"bad payload for {payload.TYPE}")


def test_poison_reason_stays_on_one_short_line():
    message = poison(wire({**good_body(), "data": {}}))
    assert "\n" not in message
    assert len(message) <= 600


# ---------------------------------------------------------------- jurisdiction scope (辖区)


@pytest.mark.parametrize(
    ("scope", "jurisdiction", "visible"),
    [
        ("taihu", "taihu", True),  # its own jurisdiction
        ("taihu", "taihu.fuyu", True),  # the county sees its townships
        ("taihu", "taihu.fuyu.east", True),  # and everything below them
        ("taihu.fuyu", "taihu.fuyu", True),
        ("taihu.fuyu", "taihu", False),  # a township does not see its county
        ("taihu.fuyu", "taihu.xiaochi", False),  # nor a neighbouring township
        ("taihu", "taihu2", False),  # a name that merely starts the same is another county
        ("taihu", "taihuxian.fuyu", False),
        ("taihu.fu", "taihu.fuyu", False),
        ("taihu", "susong.taihu", False),
        ("taihu", "", False),
    ],
)
def test_caller_sees_its_own_jurisdiction_and_everything_below_it(scope, jurisdiction, visible):
    assert in_scope(scope, jurisdiction) is visible


def test_principal_sees_through_the_same_scope_rule():
    office = Principal(sub="office-1", role=Role.OFFICE, jurisdiction="taihu.fuyu")
    assert office.sees("taihu.fuyu")
    assert not office.sees("taihu")
    assert not office.sees("taihu.xiaochi")


segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
path = st.lists(segment, min_size=1, max_size=4).map(".".join)


@given(scope=path, below=path)
def test_everything_below_a_jurisdiction_is_in_its_scope_and_not_the_reverse(scope, below):
    child = f"{scope}.{below}"
    assert in_scope(scope, child)
    assert not in_scope(child, scope)


@given(a=path, b=path)
def test_two_jurisdictions_see_each_other_only_if_they_are_the_same(a, b):
    assert (in_scope(a, b) and in_scope(b, a)) == (a == b)
