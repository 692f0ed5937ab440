"""The pure rules behind "faults don't become outages": which errors mean the database is away
(503, not 500), the back-off, the outbox's ordering key, the retention settings."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from shared.contracts.ballot import AttendanceRecorded
from shared.contracts.supervision import ProgressReported
from shared.db import aggregate_of
from shared.http import install_error_handlers
from shared.messaging import Backoff
from shared.settings import Settings

OUTAGES = {
    "connection refused": ConnectionRefusedError(111, "Connection refused"),
    "pool or connect timeout": TimeoutError(),
    "starting up (57P03)": asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    "terminated by the administrator (57P01)": asyncpg.exceptions.AdminShutdownError("terminating connection"),
    "connection lost mid-statement": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
    "too many connections (53300)": asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    "a closed pooled connection": asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
}


def _app(exc: BaseException) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails")
    async def fails():
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("name", OUTAGES)
def test_every_way_the_database_can_be_away_is_a_503_problem_with_retry_after_never_a_500(name):
    response = _app(OUTAGES[name]).get("/fails")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database-unavailable"
    assert int(response.headers["retry-after"]) >= 1


def test_a_driver_error_that_is_a_bug_stays_a_500():
    response = _app(asyncpg.InterfaceError("cannot perform operation: another operation is in progress")).get("/fails")
    assert response.status_code == 500 and response.json()["code"] == "internal-error"


def test_back_off_doubles_up_to_its_cap_and_starts_again_after_a_success():
    backoff = Backoff(cap=5.0, first=0.2)
    delays = [backoff.next() for _ in range(8)]
    assert all(0.8 * min(0.2 * 2**i, 5.0) <= d <= min(0.2 * 2**i, 5.0) for i, d in enumerate(delays))
    assert max(delays) <= 5.0
    backoff.reset()
    assert backoff.next() <= 0.2


def test_a_projects_events_share_one_ordering_key_and_a_sessions_events_another():
    project, session = uuid4(), uuid4()
    report = ProgressReported(report_id=uuid4(), project_id=project, year=2024, as_of="2024-05-01", percent_done=10,
                              funds_spent=None, backdated=False)
    assert aggregate_of(report) == f"project_id:{project}"
    attendance = AttendanceRecorded(session_id=session, term=1, present=["A"], absent=[])
    assert aggregate_of(attendance) == f"session_id:{session}"


def test_the_inbox_must_outlive_the_dead_letter_replay_window_or_the_settings_are_refused():
    Settings(inbox_retention_days=31, dead_letter_replay_days=30)
    with pytest.raises(ValidationError, match="applied twice"):
        Settings(inbox_retention_days=30, dead_letter_replay_days=30)


def test_a_relay_claim_must_outlast_the_publishing_of_its_batch():
    with pytest.raises(ValidationError, match="outlast"):
        Settings(relay_lease_seconds=10, publish_timeout_seconds=5)
