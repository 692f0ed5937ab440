"""Settings from the environment, prefix ``PIAOJUE_``; the defaults work on a local machine."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("intake", "ballot", "supervision", "scoring")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIAOJUE_")

    # One database; each service owns the schema named after it.
    database_url: str = "postgresql://postgres:postgres@127.0.0.1:5432/piaojue"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # HMAC secret for bearer tokens. Change it in every real deployment.
    auth_secret: str = "piaojue-local-development-secret"
    http_host: str = "127.0.0.1"
    # intake = base_port + 1, ballot + 2, supervision + 3, scoring + 4.
    base_port: int = 8100
    db_pool_max: int = 10
    # Unacknowledged messages a consumer holds at once.
    prefetch: int = 16
    # Deliveries of one message before the queue dead-letters it (transient failures).
    delivery_limit: int = 5
    # The outbox relay wakes on NOTIFY; this poll is the fallback.
    relay_poll_seconds: float = 1.0
    log_level: str = "INFO"
    # "production" turns off the web front's development sign-in.
    env: str = "development"
    # The web front (on base_port): cookies marked Secure (behind HTTPS), idle minutes before a
    # signed-in page session expires (renewed while in use).
    cookie_secure: bool = False
    web_session_minutes: int = 30

    def port(self, service: str) -> int:
        """``web`` (the pages) is on the base port itself."""
        return self.base_port if service == "web" else self.base_port + 1 + SERVICES.index(service)

    def url(self, service: str) -> str:
        return f"http://{self.http_host}:{self.port(service)}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
