"""Test infrastructure: every run gets its own PostgreSQL database and RabbitMQ vhost.

The environment is set here, before any test imports the settings, so that nothing a test
starts (in-process apps or service subprocesses) can touch a real deployment's data."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from shared import tokens

RUN = uuid.uuid4().hex[:8]
_base_db = os.environ.get("PIAOJUE_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/piaojue")
_base_amqp = os.environ.get("PIAOJUE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DB_NAME = f"piaojue_test_{RUN}"
VHOST = f"piaojue_test_{RUN}"
os.environ["PIAOJUE_DATABASE_URL"] = urlunsplit(urlsplit(_base_db)._replace(path=f"/{DB_NAME}"))
os.environ["PIAOJUE_AMQP_URL"] = urlunsplit(urlsplit(_base_amqp)._replace(path=f"/{VHOST}"))
os.environ.setdefault("PIAOJUE_BASE_PORT", "18100")  # away from a running deployment's 8100
# This run's own issuer key: the tests' tokens (shared.auth.mint) and identity sign with it, and
# every service verifies with its public half only, as in production.
_KEY = tokens.generate("EdDSA")
os.environ["PIAOJUE_AUTH_SIGNING_KEY"] = json.dumps(_KEY)
os.environ["PIAOJUE_AUTH_JWKS"] = json.dumps({"keys": [tokens.public_jwk(_KEY)]})
os.environ.pop("PIAOJUE_AUTH_JWKS_URL", None)
os.environ["PIAOJUE_ENV"] = "development"
os.environ["PIAOJUE_RELAY_POLL_SECONDS"] = "0.2"
# Small pools: a run starts a dozen service processes against one PostgreSQL (max_connections 100 by default).
os.environ.setdefault("PIAOJUE_DB_POOL_MAX", "5")


# Hypothesis' per-example deadline measures the machine, not the rule: on a shared 2-core machine
# an example may take 300 ms. The examples themselves are what the property tests check.
hypothesis_settings.register_profile("piaojue", deadline=None)
hypothesis_settings.load_profile("piaojue")


def _admin_url() -> str:
    return urlunsplit(urlsplit(_base_db)._replace(path="/postgres"))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def infra():
    """A database and a vhost of this run's own, dropped afterwards."""
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    _rabbitmqctl("add_vhost", VHOST)
    user = urlsplit(_base_amqp).username or "guest"
    _rabbitmqctl("set_permissions", "-p", VHOST, user, ".*", ".*", ".*")
    try:
        yield
    finally:
        _rabbitmqctl("delete_vhost", VHOST)
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(infra):
    from piaojue.services import migrate_all
    from shared.settings import get_settings

    settings = get_settings()
    migrate_all(settings)
    return settings


@pytest.fixture(scope="module")
def receiver(settings, tmp_path_factory):
    """The county's reference webhook receiver, as a separate process."""
    from tests.support import Receiver

    receiver = Receiver(settings, tmp_path_factory.mktemp("county") / "received.sqlite3")
    try:
        receiver.wait_ready()
        yield receiver
    finally:
        receiver.stop()
