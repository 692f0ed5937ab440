"""The Fuyu 2024 scenario (孚玉镇 2024 年民生实事项目票决), replayed through the four services' HTTP APIs.

Nothing here decides an outcome: the deputies' ballots are drawn from fixed leanings with a
fixed seed, and which 7 projects are chosen follows from the tally the ballot service makes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx

from shared.auth import Role, mint
from shared.settings import Settings

COUNTY = "taihu"  # 太湖县
TOWN = "taihu.fuyu"  # 孚玉镇
YEAR = 2024
SEATS = 7
SESSION_NAME = "孚玉镇第十九届人民代表大会第四次会议"
RATING_SESSION_NAME = "孚玉镇第十九届人民代表大会第五次会议"  # the next January: 回头看 and 满意度测评
RATING_ABSENT = ("D005", "D013", "D027", "D041")
TERM = 19  # 第十九届
QUOTA = 60  # 名额
SEATED = 58  # 实有代表: two seats vacant
ABSENT = ("D013", "D027", "D041", "D049", "D052", "D058")  # on leave: 52 present


@dataclass(frozen=True)
class Proposal:
    title: str
    channel: str
    location: str
    category: str
    budget: int  # 元
    beneficiaries: int
    funding_secured: bool
    lead_unit: str
    leaning: float  # how likely a deputy is to vote for it
    content: str = ""


# The ten proposals of the town report (seven named there, three "others").
PROPOSALS = (
    Proposal("党群服务中心建设", "deputy_forum", "城西社区", "公共服务", 3_200_000, 12_000, False, "镇党政办", 0.86),
    Proposal("背街小巷及村庄道路亮化工程", "wechat_qq", "全镇", "基础设施", 1_800_000, 30_000, False, "镇城建办", 0.92),
    Proposal("老旧小区改造", "grid", "城东社区", "城镇建设", 6_500_000, 8_000, False, "镇住建所", 0.81),
    Proposal("老城更新改造", "practice_point", "老城片区", "城镇建设", 12_000_000, 15_000, True, "镇城建办", 0.31),
    Proposal("联网路建设", "deputy_forum", "联丰村", "交通", 4_000_000, 6_000, False, "镇交通站", 0.78),
    Proposal("王马公路升级改造", "grid", "王庄村—马庙村", "交通", 9_000_000, 9_500, False, "镇交通站", 0.74),
    Proposal("G105国道改扩建项目沿线征地拆迁", "practice_point", "G105沿线", "征地拆迁", 25_000_000, 20_000, False,
             "镇征迁办", 0.27),
    Proposal("农村饮水安全提升工程", "wechat_qq", "山区五村", "民生保障", 2_600_000, 7_200, False, "镇水利站", 0.88),
    Proposal("中小学校园周边交通安全设施", "practice_point", "镇区学校", "教育", 900_000, 5_600, False, "镇教育办", 0.83),
    Proposal("村级文化广场健身器材配置", "grid", "新仓村", "文体", 280_000, 900, False, "新仓村委会", 0.35),
)

# How supervision goes: (mid-term rating, final rating, completion). One project runs late.
SUPERVISION = {
    "党群服务中心建设": (88, 93, "completed"),
    "背街小巷及村庄道路亮化工程": (92, 96, "completed"),
    "老旧小区改造": (84, 90, "completed"),
    "联网路建设": (86, 91, "completed"),
    "王马公路升级改造": (72, 68, "not_completed"),
    "农村饮水安全提升工程": (90, 94, "completed"),
    "中小学校园周边交通安全设施": (89, 95, "completed"),
    "老城更新改造": (85, 90, "completed"),
    "G105国道改扩建项目沿线征地拆迁": (70, 75, "not_completed"),
    "村级文化广场健身器材配置": (90, 92, "completed"),
}


def deputies() -> list[dict[str, str]]:
    return [{"deputy_id": f"D{i:03d}", "name": f"代表{i:03d}"} for i in range(1, SEATED + 1)]


def ballot_for(rng: random.Random, candidates: list[dict[str, Any]]) -> dict[str, str]:
    """One deputy's secret choices: for / against / abstain per candidate, at most SEATS 'for'."""
    by_title = {p.title: p for p in PROPOSALS}
    draws = {c["candidate_id"]: rng.random() for c in candidates}
    wanted = sorted((cid for cid in draws if draws[cid] < by_title[_title(candidates, cid)].leaning), key=draws.get)
    marks = {}
    for c in candidates:
        cid = c["candidate_id"]
        if cid in wanted[:SEATS]:
            marks[cid] = "for"
        else:
            marks[cid] = "abstain" if rng.random() < 0.3 else "against"
    return marks


def rate_project(rng: random.Random, completion: str) -> str:
    """One deputy's rating of a project: most are pleased with finished work, few with unfinished."""
    draw = rng.random()
    if completion == "completed":
        return "satisfied" if draw < 0.78 else "basically_satisfied" if draw < 0.96 else "dissatisfied"
    return "satisfied" if draw < 0.1 else "basically_satisfied" if draw < 0.35 else "dissatisfied"


def _title(candidates: list[dict[str, Any]], cid: str) -> str:
    return next(c["title"] for c in candidates if c["candidate_id"] == cid)


class ScenarioError(RuntimeError):
    pass


@dataclass
class Api:
    """A thin client: one base URL per service, a token per actor, problems raised as errors."""

    settings: Settings
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    town: str = TOWN

    def token(self, sub: str, role: Role, jurisdiction: str | None = None) -> str:
        jurisdiction = jurisdiction or self.town
        key = f"{sub}/{role}/{jurisdiction}"
        if key not in self.tokens:
            self.tokens[key] = mint(sub, role, jurisdiction, secret=self.settings.auth_secret)
        return self.tokens[key]

    async def call(self, method: str, service: str, path: str, who: str, json: Any = None,
                   params: dict | None = None) -> Any:
        headers = {"authorization": f"Bearer {who}"}
        if method in ("POST", "PUT"):  # safe to retry: the service answers a repeat with the first answer
            headers["idempotency-key"] = str(uuid4())
        response = await self.client.request(method, self.settings.url(service) + path, json=json, params=params,
                                             headers=headers)
        if response.status_code >= 400:
            raise ScenarioError(f"{method} {service}{path}: {response.status_code} {response.text}")
        return response.json()


async def wait_for(what: str, probe: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    """Poll until ``probe`` returns something truthy: events take their time through the broker."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


Progress = Callable[[str, Any], None]


class AlreadyPlayed(ScenarioError):
    pass


async def run(settings: Settings, progress: Progress = lambda stage, data: None, town: str = TOWN) -> dict[str, Any]:
    """Replay the whole year in ``town``; ``progress(stage, data)`` is told as each stage completes."""
    if not town.startswith(COUNTY + "."):
        raise ScenarioError(f"the township must be in the county {COUNTY}: {COUNTY}.<name>")
    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(settings, client, town=town)
        if await api.call("GET", "supervision", "/projects", api.token("demo", Role.OFFICE), params={"year": YEAR}):
            raise AlreadyPlayed(f"{town} already has voted projects for {YEAR} on these services; "
                                f"choose another township with --jurisdiction {COUNTY}.<name>, or stop the services "
                                "(the demo then runs on a database of its own)")
        office = api.token("fuyu-office", Role.OFFICE)
        chair = api.token("fuyu-presidium", Role.PRESIDING)
        county = api.token("taihu-kaohe", Role.COUNTY, COUNTY)

        # 1. Intake: the public "orders" (群众点单); screening; the slate (候选项目清单).
        proposals = []
        for p in PROPOSALS:
            body = {"year": YEAR, "title": p.title, "channel": p.channel, "location": p.location, "category": p.category,
                    "estimated_budget": p.budget, "beneficiaries": p.beneficiaries, "funding_secured": p.funding_secured,
                    "lead_unit": p.lead_unit, "content": p.content or f"{p.location}{p.title}"}
            proposals.append(await api.call("POST", "intake", "/proposals", office, body))
        for created in proposals:
            for stage in ("preliminary_review", "feasibility_reviewed", "approved_by_party_committee", "candidate"):
                await api.call("POST", "intake", f"/proposals/{created['id']}/screening", office, {"to": stage})
        slate = await api.call("POST", "intake", "/slates", office, {
            "title": f"孚玉镇{YEAR}年民生实事候选项目", "year": YEAR, "seats": SEATS,
            "proposal_ids": [p["id"] for p in proposals]})
        progress("intake", {"proposals": proposals, "slate": slate})

        # 2. Ballot: the session, roll call, quorum, one secret vote, close, certification.
        await wait_for("the slate to reach the ballot service", lambda: _ok(api, "ballot", f"/slates/{slate['id']}", office))
        roster = await api.call("PUT", "ballot", f"/terms/{TERM}/roster", office, {"quota": QUOTA, "deputies": deputies()})
        session = await api.call("POST", "ballot", "/sessions", office, {"name": SESSION_NAME, "year": YEAR, "term": TERM})
        present = [d["deputy_id"] for d in deputies() if d["deputy_id"] not in ABSENT]
        attendance = await api.call("POST", "ballot", f"/sessions/{session['id']}/roll-call", office, {"present": present})
        vote = await api.call("POST", "ballot", f"/sessions/{session['id']}/votes", office, {"slate_id": slate["id"]})
        opened = await api.call("POST", "ballot", f"/votes/{vote['id']}/open", chair)
        rng = random.Random(f"fuyu-{YEAR}")
        for deputy in present:
            token = api.token(deputy, Role.DEPUTY)
            await api.call("POST", "ballot", f"/votes/{vote['id']}/ballots", token,
                           {"marks": ballot_for(rng, slate["candidates"])})
        await api.call("POST", "ballot", f"/votes/{vote['id']}/close", chair)
        certified = await api.call("POST", "ballot", f"/votes/{vote['id']}/certify", chair)
        progress("ballot", {"session": session, "roster": roster, "attendance": attendance, "opened": opened, "result": certified})

        # 3. The certified result, through events: projects in supervision, dispositions in intake.
        chosen = [c for c in certified["candidates"] if c["chosen"]]

        async def projects_created():
            projects = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
            mine = [p for p in projects if p["vote_id"] == vote["id"]]
            return mine if len(mine) == len(chosen) else None

        projects = await wait_for("projects to be created", projects_created)

        async def disposed():
            decided = await api.call("GET", "intake", f"/slates/{slate['id']}", office)
            return decided if decided["status"] == "decided" else None

        decided = await wait_for("dispositions in intake", disposed)
        dispositions = [c for c in decided["candidates"] if c["stage"] == "disposed"]
        progress("outcome", {"projects": projects, "dispositions": dispositions})

        # 4. Supervision: lead units, progress, mid-term and final assessments, completion.
        for project in projects:
            mid, final, completion = SUPERVISION[project["title"]]
            plan = next(p for p in PROPOSALS if p.title == project["title"])
            await api.call("PUT", "supervision", f"/projects/{project['id']}/assignment", office,
                           {"lead_unit": plan.lead_unit, "leader": "分管副镇长", "budget": plan.budget,
                            "deadline": f"{YEAR}-12-31"})
            unit = api.token(plan.lead_unit, Role.LEAD_UNIT)
            done = 100 if completion == "completed" else 60
            for percent, month in ((45, "06"), (done, "12")):
                await api.call("POST", "supervision", f"/projects/{project['id']}/progress", unit,
                               {"percent_done": percent, "funds_spent": plan.budget * percent // 100,
                                "narrative": f"{YEAR}-{month} 进度报告"})
            for kind, rating, day in (("mid_term", mid, f"{YEAR}-07-15"), ("final", final, f"{YEAR}-12-20")):
                await api.call("POST", "supervision", f"/projects/{project['id']}/inspections", office,
                               {"kind": kind, "rating": rating, "inspected_on": day,
                                "deputies": present[:5], "findings": "集中视察"})
            await api.call("PUT", "supervision", f"/projects/{project['id']}/completion", office,
                           {"completion": completion,
                            "accepted_on": f"{YEAR}-12-28" if completion == "completed" else None})
        supervised = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
        supervised = [p for p in supervised if p["vote_id"] == vote["id"]]
        progress("supervision", {"projects": supervised})

        # 5. Satisfaction rating (满意度测评) at the next session: each present deputy rates each project.
        rating_session = await api.call("POST", "ballot", "/sessions", office,
                                         {"name": RATING_SESSION_NAME, "year": YEAR + 1, "term": TERM})
        rating_present = [d["deputy_id"] for d in deputies() if d["deputy_id"] not in RATING_ABSENT]
        await api.call("POST", "ballot", f"/sessions/{rating_session['id']}/roll-call", office, {"present": rating_present})

        async def rating_vote():  # the projects reach the ballot service as events
            response = await client.post(settings.url("ballot") + f"/sessions/{rating_session['id']}/votes",
                                         json={"kind": "satisfaction", "year": YEAR},
                                         headers={"authorization": f"Bearer {office}"})
            vote = response.json() if response.status_code == 201 else None
            return vote if vote and len(vote["subjects"]) == len(projects) else None

        rating = await wait_for("the projects to reach the ballot service", rating_vote)
        await api.call("POST", "ballot", f"/votes/{rating['id']}/open", chair)
        outcome = {p["title"]: SUPERVISION[p["title"]][2] for p in supervised}
        for deputy in rating_present:
            marks = {s["id"]: rate_project(rng, outcome[s["title"]]) for s in rating["subjects"]}
            await api.call("POST", "ballot", f"/votes/{rating['id']}/ballots", api.token(deputy, Role.DEPUTY), {"marks": marks})
        await api.call("POST", "ballot", f"/votes/{rating['id']}/close", chair)
        rated = await api.call("POST", "ballot", f"/votes/{rating['id']}/certify", chair)
        progress("rating", {"session": rating_session, "result": rated})

        # 6. Scoring: every inspection, completion and rating has reached scoring; the county publishes the assessment.
        ids = {p["id"] for p in projects}

        async def scored():
            scores = [s for s in await api.call("GET", "scoring", "/projects", office, params={"year": YEAR})
                      if s["id"] in ids]
            complete = len(scores) == len(ids) and all(s["completion"] and s["satisfaction"] for s in scores)
            return scores if complete else None

        scores = await wait_for("scores to reflect every inspection and rating", scored)
        assessment = await api.call("POST", "scoring", "/assessments", county, {"jurisdiction": town, "year": YEAR})
        progress("scoring", {"scores": scores, "assessment": assessment})

    return {
        "jurisdiction": town,
        "year": YEAR,
        "session": SESSION_NAME,
        "vote": {k: certified[k] for k in ("seated", "present", "issued", "collected", "valid", "invalid")},
        "candidates": certified["candidates"],
        "chosen": [{"title": c["title"], "for": c["for_votes"], "against": c["against"], "abstain": c["abstain"],
                    "rank": c["rank"]} for c in sorted(chosen, key=lambda c: c["rank"])],
        "dispositions": [{"title": d["title"], "disposition": d["disposition"], "label": d["disposition_label"],
                          "reason": d["disposition_reason"]} for d in dispositions],
        "projects_created": len(projects),
        "satisfaction": [{"title": r["title"], "tier": r["tier"], "label": r["tier_label"], "satisfied": r["satisfied"],
                          "basically_satisfied": r["basically_satisfied"], "dissatisfied": r["dissatisfied"],
                          "rate": r["rate"]} for r in rated["ratings"]],
        "projects": [{"title": p["title"], "lead_unit": p["lead_unit"], "completion": p["completion"],
                      "score": next(s["score"] for s in scores if s["id"] == p["id"])} for p in supervised],
        "assessment": {k: assessment[k] for k in ("version", "total_projects", "completed", "completion_rate", "bonus",
                                                  "deduction", "net_points")} | {"method": assessment["method"]["version"]},
        "ids": {"slate": slate["id"], "vote": vote["id"], "assessment": assessment["assessment_id"]},
    }


async def _ok(api: Api, service: str, path: str, who: str) -> bool:
    response = await api.client.get(api.settings.url(service) + path, headers={"authorization": f"Bearer {who}"})
    return response.status_code == 200
