"""Tracking codes (查询码) and what a proposer may see by one, without signing in. Pure: no I/O.

A code is 10 characters from 31 that cannot be misread (no 0/O, 1/I/L), about 49 bits: with
the lookup rate-limited, guessing codes finds nothing. What a lookup shows is chosen here, in
one place: never the proposer's name or contact, never another proposal."""

from __future__ import annotations

import re
import secrets
from datetime import date, timedelta
from typing import Any

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 10
PATTERN = r"^[2-9A-HJKMNP-Za-hjkmnp-z]{5}-?[2-9A-HJKMNP-Za-hjkmnp-z]{5}$"


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize(code: str) -> str | None:
    """The stored form of a code as a person typed it (any case, with or without the dash)."""
    raw = re.sub(r"[\s-]", "", code).upper()
    if len(raw) != LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return f"{raw[:5]}-{raw[5:]}"


def public_view(proposal: dict[str, Any], item: dict[str, Any] | None = None, slate: dict[str, Any] | None = None,
                project: dict[str, Any] | None = None, carried_to: dict[str, Any] | None = None,
                notices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the lookup answers. ``item``: the proposal it was merged into, whose fate it shares."""
    from services.intake.domain.screening import DISPOSITION_LABELS, STAGE_LABELS, Disposition, Stage

    follows = item or proposal
    stage = Stage(proposal["stage"])
    view: dict[str, Any] = {
        "code": proposal["code"], "year": proposal["year"], "title": proposal["title"],
        "stage": stage, "stage_label": STAGE_LABELS[stage], "submitted_at": proposal["created_at"],
        "rejection_reason": proposal.get("rejection_reason") if stage is Stage.REJECTED else None,
        "eligibility": [{"label": f["label"], "reason": f["reason"], "overridden": f.get("overridden", False)}
                        for f in proposal.get("eligibility") or []],
        "merged_into": None, "slate": None, "outcome": None, "project": None, "carried_to": None,
        "notices": [{"at": n["at"], "text": n["text"]} for n in notices or []],
    }
    if item is not None:
        item_stage = Stage(item["stage"])
        view["merged_into"] = {"title": item["title"], "stage": item_stage, "stage_label": STAGE_LABELS[item_stage],
                               "supporters": item.get("supporters")}
    if slate is not None:
        view["slate"] = {"title": slate["title"], "status": slate["status"], "notice_ends_at": slate.get("notice_ends_at")}
    follows_stage = Stage(follows["stage"])
    if follows_stage is Stage.CHOSEN:
        view["outcome"] = {"chosen": True, "label": STAGE_LABELS[Stage.CHOSEN]}
    elif follows_stage is Stage.DISPOSED and follows.get("disposition"):
        disposition = Disposition(follows["disposition"])
        view["outcome"] = {"chosen": False, "disposition": disposition, "label": DISPOSITION_LABELS[disposition],
                           "reason": follows.get("disposition_reason")}
    if project is not None:
        view["project"] = {k: project.get(k) for k in ("percent_done", "progress_as_of", "completion", "accepted_on", "inspections")}
    if carried_to is not None:
        carried_stage = Stage(carried_to["stage"])
        view["carried_to"] = {"year": carried_to["year"], "stage": carried_stage, "stage_label": STAGE_LABELS[carried_stage]}
    return view


def erase_after(year: int, retention_days: int) -> date:
    """PIPL: a proposer's contact is kept for the retention period after the year closes, then erased."""
    return date(year, 12, 31) + timedelta(days=retention_days)
