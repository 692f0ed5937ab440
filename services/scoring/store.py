"""SQL the scoring service's routes and handlers share."""

from __future__ import annotations

from services.scoring.domain import AssessmentMethod


async def method_for(conn, jurisdiction: str, year: int) -> AssessmentMethod:
    """The year's method for a township: its own if set, else its county's, else the defaults."""
    row = await conn.fetchrow(
        "SELECT method FROM methods WHERE year = $2 AND (jurisdiction = $1 OR starts_with($1, jurisdiction || '.'))"
        " ORDER BY length(jurisdiction) DESC LIMIT 1",
        jurisdiction, year,
    )
    return AssessmentMethod.model_validate(row["method"]) if row else AssessmentMethod()
