"""Settings of the intake service alone, from the environment (prefix ``PIAOJUE_INTAKE_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIAOJUE_INTAKE_")

    # PIPL: days a proposer's name and contact are kept after the proposal's year ends.
    contact_retention_days: int = 365
    # The public tracking lookup: lookups per client (IP address) per minute, over all replicas.
    lookups_per_minute: int = 30
    # Spreadsheet imports.
    import_max_bytes: int = 5 * 1024 * 1024
    import_max_rows: int = 10_000
    # How often each replica erases contacts past retention and prunes old lookup counters.
    housekeeping_seconds: float = 3600.0


@lru_cache
def get_intake_settings() -> IntakeSettings:
    return IntakeSettings()
