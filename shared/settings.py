"""Settings from the environment, prefix ``PIAOJUE_``; the defaults work on a local machine."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# identity (身份) signs the tokens the other four verify.
SERVICES = ("intake", "ballot", "supervision", "scoring", "identity")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIAOJUE_")

    # development: the development signing key (public, in shared/auth.py) when none is set.
    # production: every process refuses to start without real keys (shared/auth.check_production).
    env: Literal["development", "production"] = "development"
    # One database; each service owns the schema named after it.
    database_url: str = "postgresql://postgres:postgres@127.0.0.1:5432/piaojue"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    http_host: str = "127.0.0.1"
    # intake = base_port + 1, ballot + 2, supervision + 3, scoring + 4, identity + 5.
    base_port: int = 8100
    db_pool_max: int = 10
    # Unacknowledged messages a consumer holds at once.
    prefetch: int = 16
    # Deliveries of one message before the queue dead-letters it (transient failures).
    delivery_limit: int = 5
    # The outbox relay wakes on NOTIFY; this poll is the fallback.
    relay_poll_seconds: float = 1.0
    # The relay claims rows for this long (another replica takes them over after it), publishes
    # each within publish_timeout_seconds, and backs off exponentially up to relay_backoff_max_seconds
    # while the broker fails.
    relay_batch: int = 100
    relay_lease_seconds: float = 15.0
    publish_timeout_seconds: float = 5.0
    relay_backoff_max_seconds: float = 30.0
    # The broker connection is made in the background: each step (connect, declare, subscribe) gives
    # up after broker_step_timeout_seconds and is retried with back-off up to broker_backoff_max_seconds;
    # once connected, a lost connection is retried every broker_reconnect_seconds (aio-pika's robust connection).
    broker_step_timeout_seconds: float = 10.0
    broker_backoff_max_seconds: float = 15.0
    broker_reconnect_seconds: float = 2.0
    # PostgreSQL: a new connection gives up after this; while the database is unavailable requests
    # get 503 with Retry-After: retry_after_seconds.
    db_connect_timeout_seconds: float = 5.0
    retry_after_seconds: int = 1
    # Housekeeping (every prune_interval_seconds, in every process): published outbox rows, inbox
    # ids and Idempotency-Key answers older than their retention are deleted. The inbox must keep an
    # event id longer than a dead letter may be replayed (dead_letter_replay_days), or a replay could
    # apply an event twice: checked here, at start.
    outbox_retention_days: float = 7
    inbox_retention_days: float = 45
    idempotency_retention_days: float = 7
    dead_letter_replay_days: float = 30
    prune_interval_seconds: float = 3600
    log_level: str = "INFO"
    # Request bodies larger than this are refused (413) before they are read; a route that needs
    # more says so itself (a term's roster).
    max_body_bytes: int = 1024 * 1024
    # The web front (on base_port; its development sign-in is off in production): the key that
    # signs its page-session cookies (production: required), cookies marked Secure (behind
    # HTTPS), idle minutes before a signed-in page session expires (renewed while in use).
    web_secret: str = ""
    cookie_secure: bool = False
    web_session_minutes: int = 30
    # The public proposal form's machine account at identity (role ``resident`` in each township
    # that takes proposals online): its client id and secret. Without them a development front
    # signs the form's token itself, and a production front answers the form 503 online-form-unavailable.
    web_client_id: str = ""
    web_client_secret: str = ""
    # The live view (GET /sessions/{id}/live, services/ballot/live_hub.py): a session's state is read
    # at most once per ``live_read_seconds`` per replica, whatever the cast rate, and that often while
    # it has a vote open (casts notify nobody; each read is an update to every screen of the session,
    # and the screens' socket writes are most of what they cost the replica); idle streams get a
    # heartbeat every ``live_heartbeat_seconds``; a client more than ``live_queue`` events behind is
    # dropped (it resumes with Last-Event-ID); one caller holds at most ``live_streams_per_caller``
    # streams per replica; every watched session is re-read every ``live_refresh_seconds`` anyway
    # (a missed notification costs no more than that).
    live_read_seconds: float = 0.5
    live_heartbeat_seconds: float = 15.0
    live_queue: int = 32
    live_streams_per_caller: int = 8
    live_refresh_seconds: float = 10.0

    # --- the audit chain's anchors (shared/audit.py, README "Audit trail"): the Ed25519 private JWK
    # that signs them (`piaojue keys generate`; its own key, not the token key), the public keys
    # that check them (a JWKS or one JWK; default: the signing key's public half), the file they
    # are appended to (archived by the operator, off the database's machine), and how often each
    # service appends its head (when both the key and the file are set).
    audit_signing_key: str = ""
    audit_public_keys: str = ""
    audit_anchor_file: str = ""
    audit_anchor_seconds: float = 3600.0
    # OpenTelemetry traces (shared/tracing.py), off unless set (or OTEL_EXPORTER_OTLP_ENDPOINT is):
    # the OTLP/HTTP collector, e.g. http://otel-collector:4318. Needs `pip install 'piaojue[otel]'`.
    otlp_endpoint: str = ""

    # --- tokens (see README "Keys"): identity signs with the private key, everyone verifies
    # with the public keys. Keys are JWK JSON on one line (`piaojue keys generate`).
    auth_algorithm: Literal["EdDSA", "ES256"] = "EdDSA"
    auth_signing_key: str = ""  # identity only: the private JWK. Empty: the development key
    auth_jwks: str = ""  # every service: the public keys it trusts ({"keys": [...]}). Empty: the development key
    auth_jwks_url: str = ""  # optional: also fetch unknown key ids from here (identity's /.well-known/jwks.json)
    auth_issuer: str = "piaojue-identity"
    access_token_seconds: int = 900  # staff: minutes; renewed with the refresh token
    refresh_token_seconds: int = 8 * 3600  # a refresh token unused this long expires (sliding)
    session_credential_seconds: int = 14 * 3600  # a deputy's voting credential and the hall's display: one sitting day
    # Sign-in throttling: consecutive failures lock an account; failures from one address are capped.
    signin_max_failures: int = 5
    signin_lockout_seconds: int = 900
    signin_address_failures: int = 30  # per address per signin_lockout_seconds
    # Single sign-on (OIDC) instead of passwords, where the county has a provider.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_url: str = ""  # identity's /auth/oidc/callback as the provider reaches it (default: on this host)

    @model_validator(mode="after")
    def _inbox_outlives_dead_letters(self) -> Settings:
        if self.inbox_retention_days < self.dead_letter_replay_days + 1:
            raise ValueError(
                f"PIAOJUE_INBOX_RETENTION_DAYS ({self.inbox_retention_days}) must be at least a day longer than "
                f"PIAOJUE_DEAD_LETTER_REPLAY_DAYS ({self.dead_letter_replay_days}): a dead letter replayed after its "
                "event id left the inbox would be applied twice")
        if self.relay_lease_seconds <= 2 * self.publish_timeout_seconds:
            raise ValueError("PIAOJUE_RELAY_LEASE_SECONDS must be more than twice PIAOJUE_PUBLISH_TIMEOUT_SECONDS: "
                             "a claim must outlast the publishing of its batch")
        return self

    def port(self, service: str) -> int:
        """``web`` (the pages) is on the base port itself."""
        return self.base_port if service == "web" else self.base_port + 1 + SERVICES.index(service)

    def url(self, service: str) -> str:
        return f"http://{self.http_host}:{self.port(service)}"

    @property
    def auth_secret(self) -> None:
        """Obsolete (the shared HS256 secret is gone): kept so that ``mint(..., secret=settings.auth_secret)``
        in older code still runs; the secret is ignored."""
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
