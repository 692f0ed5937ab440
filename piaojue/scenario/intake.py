"""Stage 1, intake: the public "orders" (群众点单) from every channel and a grid worker's spreadsheet,
eligibility, duplicates merged into items with their supporters, screening, and the slate
(候选项目清单) under public notice (公示) before it goes to the ballot."""

from __future__ import annotations

from collections import Counter
from typing import Any

from piaojue.scenario import fuyu_intake as data
from piaojue.scenario.client import ScenarioError, Year
from piaojue.scenario.fuyu import PROPOSALS, SEATS, YEAR

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCREENING = ("preliminary_review", "feasibility_reviewed", "approved_by_party_committee", "candidate")


async def run(year: Year) -> None:
    api, office = year.api, year.office
    await api.call("PUT", "intake", "/places", office, {"places": data.PLACES})
    rules = await api.call("GET", "intake", f"/settings/{YEAR}", office)
    await api.call("PUT", "intake", f"/settings/{YEAR}", office, {
        "eligibility": {"rules": [*rules["eligibility"]["rules"], data.ELIGIBILITY_EXTRA]},
        "feasibility_weights": rules["feasibility_weights"], "notice_days": data.NOTICE_DAYS})

    proposals = []
    for p in PROPOSALS:
        body = {"year": YEAR, "title": p.title, "channel": p.channel, "location": p.location, "category": p.category,
                "estimated_budget": p.budget, "beneficiaries": p.beneficiaries, "funding_secured": p.funding_secured,
                "lead_unit": p.lead_unit, "content": p.content or f"{p.location}{p.title}"}
        proposals.append(await api.call("POST", "intake", "/proposals", office, body))
    items = {p["title"]: p for p in proposals}

    # The same requests in other words: the office merges what the detector suggests.
    merges: dict[str, list[dict[str, Any]]] = {}
    for title, channel, location, content, repeats in data.DUPLICATES:
        again = await api.call("POST", "intake", "/proposals", office, {"year": YEAR, "title": title, "channel": channel,
                                                                        "location": location, "content": content})
        merges.setdefault(repeats, []).append(_suggested(again, items[repeats]))

    # A grid worker's spreadsheet: a dry run, then the import; its duplicates are merged too.
    sheet = data.grid_sheet()
    checked = await _upload(year, sheet, dry_run=True)
    if checked["problems"]:
        raise ScenarioError(f"the grid worker's sheet has problems: {checked['problems']}")
    imported = await _upload(year, sheet, dry_run=False)
    for row in await api.call("GET", "intake", "/proposals", office, params={"year": YEAR, "stage": "submitted"}):
        if row["title"] in {r[0] for r in data.GRID_SHEET}:
            suggested = await api.call("GET", "intake", f"/proposals/{row['id']}/duplicates", office)
            item = next((items[p] for p in items if any(d["id"] == items[p]["id"] for d in suggested)), None)
            if item is not None:
                merges.setdefault(item["title"], []).append(row)
    merged_items = []
    for title, duplicates in merges.items():
        item = await api.call("POST", "intake", f"/proposals/{items[title]['id']}/merge", office,
                              {"proposal_ids": [d["id"] for d in duplicates]})
        merged_items.append({"title": title, "supporters": item["supporters"]["count"],
                             "by_channel": item["supporters"]["by_channel_label"],
                             "by_location": item["supporters"]["by_location"], "merged": [d["title"] for d in duplicates]})

    # Outside the project scope: recorded with the rule's reason, and turned away with it.
    title, channel, location, content = data.INELIGIBLE
    refused = await api.call("POST", "intake", "/proposals", office, {"year": YEAR, "title": title, "channel": channel,
                                                                      "location": location, "content": content})
    refused = await api.call("POST", "intake", f"/proposals/{refused['id']}/screening", office, {"to": "rejected"})

    for created in proposals:
        for stage in SCREENING:
            await api.call("POST", "intake", f"/proposals/{created['id']}/screening", office, {"to": stage})
            if stage == "preliminary_review":
                await api.call("PUT", "intake", f"/proposals/{created['id']}/feasibility", office, data.FEASIBILITY)

    # The slate, under public notice for the year's period: an objection is recorded and answered.
    slate = await api.call("POST", "intake", "/slates", office, {
        "title": f"孚玉镇{YEAR}年民生实事候选项目", "year": YEAR, "seats": SEATS,
        "proposal_ids": [p["id"] for p in proposals]})
    notice = slate["notices"][0]
    objection = await api.call("POST", "intake", f"/notices/{notice['id']}/objections", office,
                               {"text": "建议把联丰村断头路一并纳入联网路建设", "source": "来信"})
    await api.call("POST", "intake", f"/objections/{objection['objections'][0]['id']}/answer", office,
                   {"answer": "已纳入联网路建设项目统筹实施"})
    year.slate = await api.call("POST", "intake", f"/slates/{slate['id']}/send", office, {
        "override_reason": f"公示已于{YEAR}年1月2日至8日在镇政务公开栏和村务公开栏张贴期满，本系统补录"})

    received = await api.call("GET", "intake", "/proposals", office, params={"year": YEAR})
    year.outcome["ids"]["slate"] = year.slate["id"]
    year.outcome["intake"] = {
        "proposals_received": len(received),
        "by_channel": dict(Counter(p["channel_label"] for p in received).most_common()),
        "merged_items": merged_items,
        "supporters_on_slate": [{"title": c["title"], "supporters": c["on_slate_supporters"]} for c in year.slate["candidates"]],
        "ineligible": [{"title": refused["title"], "stage": refused["stage"], "reason": refused["rejection_reason"],
                        "rules": [f["rule"] for f in refused["eligibility"]]}],
        "imported_rows": imported["created"],
        "notice": {"days": data.NOTICE_DAYS, "objections": len(objection["objections"]),
                   "sent_with_override": year.slate["notice_override"] is not None},
    }
    year.progress("intake", {"proposals": proposals, "slate": year.slate, "intake": year.outcome["intake"],
                             "received": received})


def _suggested(again: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    if not any(d["id"] == item["id"] for d in again["duplicates"]):
        raise ScenarioError(f"the detector did not suggest 「{item['title']}」 for 「{again['title']}」: {again['duplicates']}")
    return again


async def _upload(year: Year, sheet: bytes, dry_run: bool) -> dict[str, Any]:
    api = year.api
    response = await api.client.post(
        api.settings.url("intake") + "/imports", params={"year": YEAR, "dry_run": str(dry_run).lower()}, content=sheet,
        headers={"authorization": f"Bearer {year.office}", "content-type": XLSX})
    if response.status_code >= 400:
        raise ScenarioError(f"POST /imports: {response.status_code} {response.text}")
    return response.json()
