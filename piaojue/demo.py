"""``piaojue demo``: the Fuyu 2024 scenario, printed stage by stage as tables."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from piaojue import processes, scenario
from piaojue.services import migrate_all
from shared.settings import SERVICES, Settings, get_settings

CHANNELS = {"deputy_forum": "代表座谈", "wechat_qq": "微信QQ群", "grid": "网格", "practice_point": "基层实践点"}
SATISFACTION = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
COMPLETION = {"completed": "完成", "basically_completed": "基本完成", "not_completed": "未完成", None: "—"}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([f"\n{title}", line, fmt(cells[0]), line, *map(fmt, cells[1:]), line])


def printer(stage: str, data: dict[str, Any]) -> None:
    if stage == "intake":
        i = data["intake"]
        print(table(f"一、征集 Intake: {i['proposals_received']} proposals received "
                    f"({'、'.join(f'{c} {n}' for c, n in i['by_channel'].items())}); {i['imported_rows']} from a grid worker's "
                    "spreadsheet",
                    ["#", "项目 project", "来源渠道 channel", "地点 location", "估算投资(元)", "支持 supporters", "状态 stage"],
                    [[n + 1, c["title"], c["channel_label"], c["location"], c["estimated_budget"], c["on_slate_supporters"],
                      "候选 → 票决 on the ballot"] for n, c in enumerate(data["slate"]["candidates"])]))
        print(table("合并 Merged: the same request in other words (suggested by the duplicate detector)",
                    ["项目 item", "支持 supporters", "来源 channels", "合并的提案 merged"],
                    [[m["title"], m["supporters"], "、".join(f"{c} {n}" for c, n in m["by_channel"].items()),
                      "；".join(m["merged"])] for m in i["merged_items"]]))
        print(table("不符合项目范围 Ineligible (负面清单)", ["提案 proposal", "原因 reason"],
                    [[x["title"], x["reason"]] for x in i["ineligible"]]))
        slate = data["slate"]
        print(f"候选清单 slate: {slate['title']} — {len(slate['candidates'])} 个候选, 应选 {slate['seats']} 个 (差额); "
              f"公示 {i['notice']['days']} 天, {i['notice']['objections']} 条意见已答复")
    elif stage == "library":
        print(table("项目库 Project library → next year's intake (screened again)",
                    ["项目 project", "结转至 to", "状态 stage", "支持 supporters", "上年票数 votes (for/against/abstain)"],
                    [[p["title"], p["year"], p["stage"], p["supporters"]["count"],
                      "/".join(str(p["history"]["votes"][k]) for k in ("for", "against", "abstain")) if p["history"]["votes"] else "—"]
                     for p in data["next_year"]]))
    elif stage == "ballot":
        a, r = data["attendance"], data["result"]
        print(table(f"二、票决 Ballot: {data['session']['name']}",
                    ["名额 quota", "实有代表 seated", "出席 present", "法定人数 quorum", "发出 issued", "收回 collected",
                     "有效 valid", "无效 invalid"],
                    [[data["roster"]["quota"], a["seated"], a["present"], "达到 met" if a["quorum"] else "未达 not met", r["issued"],
                      r["collected"], r["valid"], r["invalid"]]]))
        rows = sorted(r["candidates"], key=lambda c: -c["for_votes"])
        print(table("计票结果 Tally (passing: 赞成票超过实有代表半数 more than half of seated deputies)",
                    ["名次 rank", "候选项目 candidate", "赞成 for", "反对 against", "弃权 abstain", "通过 passed",
                     "入选 chosen"],
                    [[c["rank"] or "", c["title"], c["for_votes"], c["against"], c["abstain"],
                      "是" if c["passed"] else "否", "✔ 入选" if c["chosen"] else ""] for c in rows]))
        print(f"主持人确认 certified by {r['certified_by']} at {r['certified_at']}")
    elif stage == "outcome":
        print(table("三、结果生效 Certified result → events",
                    ["项目 project", "去向 outcome"],
                    [[p["title"], "监督项目 supervision project created"] for p in data["projects"]]
                    + [[d["title"], f"{d['disposition_label']} ({d['disposition']}): {d['disposition_reason']}"]
                       for d in data["dispositions"]]))
    elif stage == "supervision":
        print(table("四、监督 Supervision: lead units, progress, mid-term and final assessments",
                    ["项目 project", "牵头单位 lead unit", "完成情况 completion", "验收 accepted"],
                    [[p["title"], p["lead_unit"], COMPLETION[p["completion"]], p["accepted_on"] or "—"]
                     for p in data["projects"]]))
    elif stage == "county":
        print(table("七、县考核 County ranking (净分, 完成率, 投资完成率)",
                    ["名次 rank", "乡镇 township", "版本 version", "净分 net", "完成率 rate", "投资完成率 investment", "考核办法 method"],
                    [[r["rank"], r["jurisdiction"], r["version"], r["net_points"], f"{float(r['completion_rate']):.1%}",
                      f"{float(r['investment_rate']):.1%}", r["method_version"]] for r in data["ranking"]]))
        if "webhook_deliveries" in data:
            w = data["webhook_deliveries"]
            print(f"签名推送 signed webhooks: {w['delivered']} delivered, {w['verified_and_stored']} verified and stored by "
                  f"the county receiver ({', '.join(w['versions'])})")
    elif stage == "rating":
        r = data["result"]
        print(table(f"五、满意度测评 Satisfaction rating: {data['session']['name']} (发出 {r['issued']}, 收回 {r['collected']}; "
                    f"满意 needs more than half of {r['seated']} seated)",
                    ["项目 project", "满意", "基本满意", "不满意", "满意率 rate", "测评结果 tier"],
                    [[x["title"], x["satisfied"], x["basically_satisfied"], x["dissatisfied"], f"{x['rate']:.1%}",
                      x["tier_label"] + (" → 整改 rectification" if x["tier"] == "dissatisfied" else "")]
                     for x in r["ratings"]]))
    elif stage == "scoring":
        print(table("六、考核 Scoring: project scores (期中30% 期末50% 满意度25%, renormalised)",
                    ["项目 project", "得分 score", "完成情况 completion", "测评 rating"],
                    [[s["title"], s["score"], COMPLETION[s["completion"]], SATISFACTION.get(s["satisfaction"], "—")]
                     for s in data["scores"]]))
        a = data["assessment"]
        print(table(f"{a['jurisdiction']} {a['year']} 年度考核 Township assessment, version {a['version']} ({a['reason']}), "
                    f"method {a['method_version']}",
                    ["票决项目 projects", "完成 completed", "完成率 rate", "加分 bonus", "扣分 deduction", "整改逾期 overdue",
                     "整改扣分", "净分 net", "投资完成率"],
                    [[a["total_projects"], a["completed"], f"{float(a['completion_rate']):.1%}", a["bonus"],
                      a["deduction"], a["overdue_rectifications"], a["rectification_deduction"], a["net_points"],
                      f"{float(a['investment_rate']):.1%}"]]))


def _demo_settings(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """A fresh database of its own, so that every run of the demo tells the same story."""
    parts = urlsplit(settings.database_url)
    name = parts.path.lstrip("/") + "_demo"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    return settings.model_copy(update={"database_url": url}), {"PIAOJUE_DATABASE_URL": url}


def _receiver(settings: Settings, logs: Path) -> tuple[subprocess.Popen, str, str]:
    """The county's webhook receiver (piaojue county-receiver) in a process of its own."""
    secret, port = secrets.token_urlsafe(32), settings.base_port + 9
    out = open(logs / "county-receiver.log", "ab")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([sys.executable, "-m", "piaojue.cli", "county-receiver", "--port", str(port),
                             "--store", str(logs / "county-received.sqlite3")],
                            env={**os.environ, "PIAOJUE_COUNTY_WEBHOOK_SECRET": secret}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url, secret
        except httpx.HTTPError:
            time.sleep(0.1)
    processes.stop({"receiver": proc})
    raise RuntimeError("the county receiver did not start")


def run_demo(as_json: bool = False, town: str = scenario.TOWN) -> int:
    settings = get_settings()
    up = [s for s in SERVICES if processes.ready(settings, s)]
    procs = {}
    say = (lambda *a: print(*a, file=sys.stderr)) if as_json else print
    if len(up) not in (0, len(SERVICES)):
        say(f"some services are running ({', '.join(up)}) but not all: start them all (piaojue up) or none")
        return 2
    try:
        if not up:
            settings, env = _demo_settings(settings)
            migrate_all(settings)
            logs = Path(tempfile.mkdtemp(prefix="piaojue-demo-"))
            say(f"starting the five services and the pages at {settings.url('web')}/ "
                f"(database {settings.database_url.rsplit('/', 1)[1]}, logs in {logs}) …")
            procs = processes.start(settings, processes.EVERYTHING, env={**os.environ, **env}, log_dir=logs)
            processes.wait_ready(settings, procs, broker=True)
        else:
            say("using the services already running")
            logs = Path(tempfile.mkdtemp(prefix="piaojue-demo-"))
        receiver, url, secret = _receiver(settings, logs)
        procs["county-receiver"] = receiver
        outcome = asyncio.run(scenario.run(settings, (lambda *_: None) if as_json else printer, town, url, secret))
    except scenario.ScenarioError as exc:
        say(f"demo failed: {exc}")
        return 1
    finally:
        processes.stop(procs)
    if as_json:
        print(json.dumps(outcome, ensure_ascii=False, indent=2, default=str))
    else:
        print(f"\n{len(outcome['chosen'])} projects chosen, {outcome['projects_created']} created in supervision, "
              f"{len(outcome['dispositions'])} dispositions; completion rate "
              f"{float(outcome['assessment']['completion_rate']):.1%}; supervision {outcome['supervision']}.")
    return 0
