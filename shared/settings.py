"""Settings from the environment, prefix ``PIAOJUE_``; the defaults work on a local machine."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

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
    # The live view (GET /sessions/{id}/live, services/ballot/live_hub.py): a session's state is read
    # at most once per ``live_read_seconds`` per replica, whatever the cast rate; idle streams get a
    # heartbeat every ``live_heartbeat_seconds``; a client more than ``live_queue`` events behind is
    # dropped (it resumes with Last-Event-ID); one caller holds at most ``live_streams_per_caller``
    # streams per replica; every watched session is re-read every ``live_refresh_seconds`` anyway
    # (a missed notification costs no more than that).
    live_read_seconds: float = 0.25
    live_heartbeat_seconds: float = 15.0
    live_queue: int = 32
    live_streams_per_caller: int = 8
    live_refresh_seconds: float = 10.0

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
