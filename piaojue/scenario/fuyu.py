"""The Fuyu 2024 year (孚玉镇 2024 年民生实事项目票决): the town's proposals, its congress, and how
each deputy leans. Nothing here decides an outcome: ballots are drawn from the leanings with a
fixed seed, and which projects are chosen follows from the tally the ballot service makes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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
TELLERS = ("JP01", "JP02", "JP03")  # 监票人 elected by the session; any 2 of them open a sealed round
THRESHOLD = 2


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


