"""Merging (合并): many people ask for the same thing; the office merges their proposals into
one item that keeps every proposer and channel as supporters. Pure: no I/O."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from services.intake.domain.screening import CHANNEL_LABELS, OPEN, Channel, Refused, Stage

# Past these stages an item is on a slate or decided: its supporters are fixed.
ON_SLATE = frozenset({Stage.ON_BALLOT, Stage.CHOSEN, Stage.DISPOSED})


@dataclass(frozen=True)
class Mergee:
    id: object
    jurisdiction: str
    year: int
    stage: Stage


def check_merge(item: Mergee, others: list[Mergee]) -> None:
    """Refuses a merge of ``others`` into ``item`` that the rules forbid, with a stable code."""
    if not others:
        raise Refused("nothing-to-merge", "name the proposals to merge into the item")
    if any(o.id == item.id for o in others):
        raise Refused("merge-into-itself", "a proposal cannot be merged into itself")
    if any(o.jurisdiction != item.jurisdiction for o in others):
        raise Refused("merge-across-jurisdictions", "不能合并不同辖区的提案: proposals of two jurisdictions cannot be merged")
    if any(o.year != item.year for o in others):
        raise Refused("merge-across-years", "不能合并不同年度的提案: proposals of two years cannot be merged")
    for p, role in [(item, "the item"), *((o, "a proposal") for o in others)]:
        if p.stage in ON_SLATE:
            raise Refused("already-on-slate", f"已列入候选清单，不能再合并: {role} is already on a slate ({p.stage})")
        if p.stage is Stage.MERGED:
            raise Refused("already-merged", f"{role} is already merged into another item; unmerge it first")
        if p.stage not in OPEN:
            raise Refused("not-mergeable", f"{role} is {p.stage} and cannot be merged")


def check_unmerge(proposal: Mergee, item: Mergee) -> None:
    """A merge can be undone while the item is not yet on a slate."""
    if proposal.stage is not Stage.MERGED:
        raise Refused("not-merged", "the proposal is not merged into an item")
    if item.stage in ON_SLATE:
        raise Refused("already-on-slate", f"已列入候选清单，不能撤销合并: the item is on a slate ({item.stage})")


@dataclass(frozen=True)
class Supporter:
    """One proposal behind an item: its channel and village, never its proposer."""

    channel: str
    location: str
    carried_from: int | None = None  # the year, for supporters carried over from the project library


@dataclass(frozen=True)
class Support:
    count: int
    by_channel: dict[str, int]
    by_location: dict[str, int]

    def as_dict(self) -> dict:
        return {"count": self.count, "by_channel": self.by_channel, "by_location": self.by_location,
                "by_channel_label": {CHANNEL_LABELS.get(Channel(c), c) if c in Channel._value2member_map_ else c: n
                                     for c, n in self.by_channel.items()}}


def support(supporters: list[Supporter]) -> Support:
    """How many asked, from which channels and villages (most first)."""
    channels = Counter(s.channel for s in supporters)
    places = Counter(s.location or "未注明" for s in supporters)
    return Support(len(supporters), dict(channels.most_common()), dict(places.most_common()))
