"""What the intake routes share: who may call, refusals as problems, proposals as shown, and
the duplicate detector over a jurisdiction's year."""

from __future__ import annotations

from typing import Any

from services.intake import store
from services.intake.domain import duplicates
from services.intake.domain.screening import Refused
from services.intake.schemas import proposal_out
from shared.auth import Role, require
from shared.http import Problem

OFFICE = require(Role.OFFICE, own=True)  # a township's intake is its own office's: the county's token does not write here
ANY_OFFICE = require(Role.OFFICE)  # an office that may read below it (a merge looks, then refuses across townships)
SUBMITTERS = require(Role.OFFICE, Role.DEPUTY, Role.RESIDENT)  # resident: the pages' online form, online channel only
ANYONE = require()

# Refusals that conflict with the current state (409); the others are invalid requests (422).
CONFLICTS = {"transition-not-allowed", "already-on-slate", "already-merged", "not-mergeable", "not-merged", "ineligible",
             "notice-period-running", "notice-closed", "not-a-candidate", "slate-not-in-notice", "merge-across-jurisdictions",
             "merge-across-years"}


def refused(exc: Refused) -> Problem:
    return Problem(409 if exc.code in CONFLICTS else 422, exc.code, "不符合规则 Refused by the rules", str(exc))


async def shown(conn, rows) -> list[dict[str, Any]]:
    """Stored proposals as the API shows them, with supporters and weighted feasibility scores."""
    if not rows:
        return []
    by_item = await store.supporters(conn, [r["id"] for r in rows])
    weights = {}
    for key in {(r["jurisdiction"], r["year"]) for r in rows if r["feasibility"]}:
        weights[key] = (await store.year_settings(conn, *key))["feasibility_weights"]
    return [proposal_out(r, by_item[r["id"]], weights.get((r["jurisdiction"], r["year"]))) for r in rows]


async def detector(conn, jurisdiction: str, year: int) -> tuple[duplicates.Corpus, duplicates.Gazetteer, list]:
    """The year's open proposals of the jurisdiction, read by the duplicate detector."""
    gazetteer = duplicates.Gazetteer(await store.places(conn, jurisdiction))
    items = await store.open_items(conn, jurisdiction, year)
    readings = [duplicates.read(str(r["id"]), r["title"], r["content"] or "", r["location"] or "", gazetteer) for r in items]
    return duplicates.Corpus(readings), gazetteer, items


def duplicate(row, score: duplicates.Score) -> dict[str, Any]:
    return {"id": row["id"], "code": row["code"], "title": row["title"], "location": row["location"] or "",
            "stage": row["stage"], "score": score.total, "text": score.text, "topic": score.topic, "place": score.place}


async def duplicates_of(conn, row, limit: int = 10) -> list[dict[str, Any]]:
    """The likely duplicates of a stored proposal among its jurisdiction's year, best first."""
    corpus, gazetteer, items = await detector(conn, row["jurisdiction"], row["year"])
    by_id = {str(i["id"]): i for i in items}
    fields = row["fields"]
    target = duplicates.read(str(row["id"]), fields["title"], fields.get("content", ""), fields.get("location", ""), gazetteer)
    return [duplicate(by_id[r.id], s) for r, s in corpus.similar_to(target)[:limit]]
