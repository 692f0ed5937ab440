"""Recount a certified vote from its publication (``GET /votes/{id}/publication``): anyone can
check that the anonymised ballots give the certified result, and a deputy that their receipt
is among those counted. Pure: the caller fetches the publication."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from services.ballot import domain, store
from services.ballot.domain import VoteRules


@dataclass
class Recount:
    matches: bool
    differences: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    receipt_found: bool | None = None


def recount(publication: dict[str, Any], receipt: str | None = None) -> Recount:
    certified = publication["result"]
    kind = publication["kind"]
    differences: list[str] = []
    rounds: list[domain.Round] = []
    for published, announced in zip(publication["rounds"], certified["rounds"], strict=True):
        candidates = [UUID(c) for c in published["candidates"]]
        n = published["round"]
        if published["totals"] is not None:  # a paper round counted by the tellers' totals
            counted = published["totals"]
        else:
            ballots = [store.marks_of(kind, b) for b in published["ballots"]]
            if kind == "satisfaction":
                collected, counts = domain.tally_ratings(ballots, candidates)
                counted = {"collected": collected, "ratings": {
                    str(p): {"satisfied": c.satisfied, "basically_satisfied": c.basically, "dissatisfied": c.dissatisfied}
                    for p, c in counts.items()}}
            else:
                counted = store.tally_json(domain.tally(ballots, candidates, published["seats"],
                                                        VoteRules.model_validate(publication["rules"])))
            if len(published["receipt_hashes"]) not in (0, counted["collected"]):
                differences.append(f"round {n}: {len(published['receipt_hashes'])} receipts for {counted['collected']} ballots")
        for key in ("collected", "valid", "invalid", "counts", "ratings"):
            if key in counted and counted[key] != announced.get(key):
                differences.append(f"round {n}: {key} recounted {counted[key]!r}, certified {announced.get(key)!r}")
        if kind == "selection":
            rounds.append(domain.Round(candidates, published["seats"], published["issued"], store.tally_from_json(counted, candidates)))
    chosen: list[str] = []
    if kind == "selection":
        state = domain.progress(rounds, certified["seated"], certified["present"], VoteRules.model_validate(publication["rules"]))
        chosen = [str(c) for c in state.chosen]
        if chosen != certified["chosen"]:
            differences.append(f"chosen recounted {chosen}, certified {certified['chosen']}")
    found = None
    if receipt is not None:
        digest = hashlib.sha256(receipt.encode()).hexdigest()
        found = any(digest in r["receipt_hashes"] for r in publication["rounds"])
    return Recount(not differences, differences, chosen, found)
