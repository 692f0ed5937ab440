"""Recount a certified vote from its publication (``GET /votes/{id}/publication``, or with the
ballots ``…/publication/ballots``). Pure: it needs only the domain, so anyone can run it.

With the public notice it checks that the rounds chain to the certified choice, that each sealed
round opened as many ballots as it has trackers, and, given a receipt, that it is among them.
With the ballots (tellers, presiding officer, county) it also recounts every round from them and
checks each round's commitment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from services.ballot.domain import ballots as compact
from services.ballot.domain import rules
from services.ballot.domain.rules import VoteRules
from services.ballot.domain.vote import Ratings, ratings_json, tally_from_json, tally_json


@dataclass
class Recount:
    matches: bool
    differences: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    receipt_found: bool | None = None
    ballots_checked: bool = False  # False: the public notice only, tallies taken as announced


def recount(publication: dict[str, Any], receipt: str | None = None) -> Recount:
    certified, kind = publication["result"], publication["kind"]
    vote_rules = VoteRules.model_validate(publication["rules"])
    differences: list[str] = []
    chain: list[rules.Round] = []
    checked = all("ballots" in r for r in publication["rounds"])
    for published, announced in zip(publication["rounds"], certified["rounds"], strict=True):
        n, candidates = published["round"], [UUID(c) for c in published["candidates"]]
        counted: dict[str, Any] = announced
        if published["void_reason"] is None and published["totals"] is not None:  # a paper round counted by totals
            counted = published["totals"]
        elif published["void_reason"] is None and "ballots" in published:
            plain = published["ballots"]
            if kind == "satisfaction":
                collected, _, counts = compact.tally_ratings_compact(plain, candidates)
                counted = ratings_json(Ratings(collected, counts))
                counted["valid"], counted["invalid"] = collected - published["unopened"], published["unopened"]
            else:
                counted = tally_json(compact.tally_compact(plain, candidates, published["seats"], vote_rules))
            if published["sealed"] and compact.commitment(publication["vote_id"], n, published["salt"], published["trackers"],
                                                          plain) != published["commitment"]:
                differences.append(f"round {n}: the ballots and trackers do not match the round's commitment")
        if published["sealed"] and published["void_reason"] is None and len(published["trackers"]) != counted["collected"]:
            differences.append(f"round {n}: {len(published['trackers'])} trackers for {counted['collected']} ballots")
        for key in ("collected", "valid", "invalid", "counts", "ratings"):
            if key in counted and counted[key] != announced.get(key):
                differences.append(f"round {n}: {key} recounted {counted[key]!r}, certified {announced.get(key)!r}")
        if kind == "selection":
            tally = tally_from_json(counted, candidates) if "counts" in counted else rules.Tally(0, 0, 0, {})
            chain.append(rules.Round(candidates, published["seats"], published["issued"], tally, published["void_reason"]))
    chosen: list[str] = []
    if kind == "selection":
        state = rules.progress(chain, certified["seated"], certified["present"], vote_rules)
        chosen = [str(c) for c in state.chosen]
        if chosen != certified["chosen"]:
            differences.append(f"chosen recounted {chosen}, certified {certified['chosen']}")
    found = None if receipt is None else any(receipt in r["trackers"] for r in publication["rounds"])
    return Recount(not differences, differences, chosen, found, checked)
