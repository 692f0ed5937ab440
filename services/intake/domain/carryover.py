"""The project library (项目库): a candidate not chosen but urgent and not yet ripe is carried into
next year's intake of the same jurisdiction, with its history, and is screened again. Pure."""

from __future__ import annotations

from typing import Any

from services.intake.domain.merging import Supporter


def history(year: int, original: dict[str, Any], proposals: list[dict[str, Any]], supporters: list[Supporter],
            votes: dict[str, Any] | None, reason: str) -> dict[str, Any]:
    """What a carried proposal brings along (``carried_from`` provenance): the original item, the
    proposals merged into it, its supporters (channel and village, never names), last year's
    votes and the reason it went to the library."""
    return {
        "from_year": year,
        "original": {"id": str(original["id"]), "code": original["code"], "title": original["title"]},
        "proposals": [{"title": p["title"], "channel": p["channel"], "location": p["location"]} for p in proposals],
        "supporters": [{"channel": s.channel, "location": s.location, "from_year": s.carried_from or year}
                       for s in supporters],
        "votes": votes,
        "reason": reason,
    }


def carried_supporters(history: dict[str, Any] | None) -> list[Supporter]:
    """The supporters an item carries from earlier years, counted with this year's."""
    if not history:
        return []
    return [Supporter(s["channel"], s["location"], s["from_year"]) for s in history["supporters"]]
