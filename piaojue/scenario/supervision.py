"""Stage 4, supervision (监督), the year after the vote: each project's plan and supervision group,
the annual key supervision plan, progress with a photo, a concentrated inspection whose findings go
round the rectification loop, the mid-term and final assessments by each group, and completion."""

from __future__ import annotations

from piaojue.scenario.client import Year
from piaojue.scenario.fuyu import PROPOSALS, SUPERVISION, TERM, YEAR
from shared.auth import Role

SPREAD = (-2, -1, 0, 1, 2)  # the five group members' ratings around the group's view
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a (tiny) site photo
BOARD_DAY = f"{YEAR}-12-31"


def _plan(year_: int) -> list[dict]:
    return [{"due_on": f"{year_}-03-31", "expected_percent": 10, "description": "开工"},
            {"due_on": f"{year_}-06-30", "expected_percent": 45, "description": "主体过半"},
            {"due_on": f"{year_}-12-31", "expected_percent": 100, "description": "完工验收"}]


async def run(year: Year) -> None:
    api, office = year.api, year.office
    await api.call("POST", "supervision", f"/terms/{TERM}/start", office, {})
    group_of: dict[str, list[str]] = {}
    for i, project in enumerate(year.projects):
        plan = next(p for p in PROPOSALS if p.title == project["title"])
        await api.call("PUT", "supervision", f"/projects/{project['id']}/assignment", office,
                       {"lead_unit": plan.lead_unit, "leader": "分管副镇长", "budget": plan.budget, "funding_source": "县镇财政",
                        "deadline": f"{YEAR}-12-31", "presidium_member": f"主席团成员{i % 3 + 1}",
                        "milestones": _plan(YEAR)})
        group_of[project["id"]] = year.present[5 * i: 5 * i + 5]
        await api.call("PUT", "supervision", f"/projects/{project['id']}/supervisors", office,
                       {"deputies": group_of[project["id"]], "leader": group_of[project["id"]][0]})

    ids = [p["id"] for p in year.projects]
    activities = {}
    for kind, title, day in (("concentrated_inspection", "二季度集中视察", f"{YEAR}-05-20"),
                             ("report_hearing", "听取上半年实施情况报告", f"{YEAR}-07-10"),
                             ("mid_term", "期中考评", f"{YEAR}-07-15"),
                             ("thematic_inquiry", "民生实事专题询问", f"{YEAR}-10-15"),
                             ("final", "期末考评", f"{YEAR}-12-20"),
                             ("satisfaction_rating", "满意度测评", f"{YEAR + 1}-01-18"),
                             ("look_back", "回头看", f"{YEAR + 1}-03-15")):
        activities[kind] = await api.call("POST", "supervision", f"/plan/{YEAR}/activities", office,
                                          {"kind": kind, "title": title, "scheduled_on": day, "project_ids": ids,
                                           "participants": year.present[:10]})
    await api.call("POST", "supervision", f"/activities/{activities['thematic_inquiry']['id']}/actions", office,
                   {"action": "reschedule", "on": f"{YEAR}-11-05", "reason": "与防汛工作冲突"})

    # Q2: the concentrated inspection finds two problems on the first project: one goes round the
    # loop (sent back once) and is verified; the other is answered but still awaits verification past its date.
    first = year.projects[0]
    first_unit = year.token(next(p.lead_unit for p in PROPOSALS if p.title == first["title"]), Role.LEAD_UNIT)
    leader = year.token(group_of[first["id"]][0], Role.DEPUTY)
    inspection = await api.call("POST", "supervision", f"/projects/{first['id']}/inspections", leader,
                                {"kind": "concentrated_inspection", "inspected_on": f"{YEAR}-05-20",
                                 "deputies": group_of[first["id"]],
                                 "findings": [{"problem": "施工现场安全围挡不到位", "due_on": f"{YEAR}-06-20"},
                                              {"problem": "资金拨付台账不完整", "due_on": f"{YEAR}-06-30"}]})
    fixed, pending = inspection["rectifications"]
    for who, action, text, day in ((first_unit, "respond", "已补设围挡, 附照片", "06-01"),
                                   (leader, "send_back", "北侧仍有缺口", "06-05"),
                                   (first_unit, "respond", "北侧缺口已封闭", "06-12"),
                                   (leader, "verify", "现场核实整改到位", "06-18")):
        await api.call("POST", "supervision", f"/rectifications/{fixed['id']}/actions", who,
                       {"action": action, "text": text, "on": f"{YEAR}-{day}"})
    await api.call("POST", "supervision", f"/rectifications/{pending['id']}/actions", first_unit,
                   {"action": "respond", "text": "台账补录中", "on": f"{YEAR}-06-25"})
    await api.call("POST", "supervision", f"/activities/{activities['concentrated_inspection']['id']}/actions", office,
                   {"action": "hold", "on": f"{YEAR}-05-20"})

    for project in year.projects:
        mid, final, completion = SUPERVISION[project["title"]]
        plan = next(p for p in PROPOSALS if p.title == project["title"])
        unit = year.token(plan.lead_unit, Role.LEAD_UNIT)
        done = 100 if completion == "completed" else 60
        for percent, day in ((45, f"{YEAR}-06-30"), (done, f"{YEAR}-12-31")):
            report = await api.call("POST", "supervision", f"/projects/{project['id']}/progress", unit,
                                    {"as_of": day, "percent_done": percent, "funds_spent": plan.budget * percent // 100,
                                     "narrative": f"{day} 进度报告"})
        await api.upload("supervision", f"/progress/{report['id']}/photos", unit, PHOTO, "image/png")
        group = group_of[project["id"]]
        for kind, rating, day in (("mid_term", mid, f"{YEAR}-07-15"), ("final", final, f"{YEAR}-12-20")):
            await api.call("POST", "supervision", f"/projects/{project['id']}/inspections", office,
                           {"kind": kind, "inspected_on": day, "deputies": group,
                            "ratings": [{"deputy": d, "rating": min(100, rating + s)} for d, s in zip(group, SPREAD, strict=True)],
                            "findings": []})
        await api.call("PUT", "supervision", f"/projects/{project['id']}/completion", office,
                       {"completion": completion, "accepted_on": f"{YEAR}-12-28" if completion == "completed" else None})
    for kind in ("report_hearing", "mid_term", "thematic_inquiry", "final"):
        await api.call("POST", "supervision", f"/activities/{activities[kind]['id']}/actions", office, {"action": "hold"})

    supervised = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
    year.supervised = [p for p in supervised if p["vote_id"] == year.vote["id"]]
    year.activities = activities
    year.progress("supervision", {"projects": year.supervised})


async def summary(year: Year, on: str) -> dict:
    """What the year's supervision came to, for ``demo --json``: the plan, inspections, the loop, the board."""
    api, office = year.api, year.office
    plan = await api.call("GET", "supervision", f"/plan/{YEAR}", office, params={"on": on})
    items = await api.call("GET", "supervision", "/rectifications", office, params={"year": YEAR, "on": on})
    board = await api.call("GET", "supervision", "/board", office, params={"year": YEAR, "on": BOARD_DAY})
    details = [await api.call("GET", "supervision", f"/projects/{p['id']}", office) for p in year.projects]
    counts = items["counts"]
    return {
        "plan_activities": {"total": len(plan["activities"]),
                            "held": sum(a["status"] == "held" for a in plan["activities"]),
                            "overdue": len(plan["overdue"]), "upcoming": len(plan["upcoming"]), "on": on},
        "inspections": sum(len(d["inspections"]) for d in details),
        "rectifications": {k: counts[k] for k in ("opened", "responded", "sent_back", "verified", "overdue")},
        "board": board["counts"],
    }
