"""``piaojue screenshots DIR``: every page, for the demo town, at phone and desktop sizes, as PNG
files named after the page (``vote-ballot.phone.png``, ``county.desktop.png``, …).

It plays the Fuyu year (on a database of its own, like the demo, unless the services are
already running), opens one more vote and leaves it open so that the ballot, the console and
the big screen have something live to show, then walks the pages in Debian's Chromium."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from piaojue import processes, scenario
from piaojue.scenario.client import AlreadyPlayed, Api, set_tellers
from piaojue.scenario.fuyu import TERM, YEAR, deputies
from piaojue.services import migrate_all
from shared.auth import Role
from shared.settings import Settings, get_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-extensions", "--disable-sync", "--no-first-run", "--mute-audio", "--hide-scrollbars"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
SCREEN = {"width": 1920, "height": 1080}
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2585 "
             "MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")


def launch(playwright):
    """Debian's Chromium (the registries here do not serve Playwright's own browser builds)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


PASSWORD = "Fuyu-pages-2024-demo"  # the demo's and the tests' accounts (made through identity's API below)


def add_accounts(settings: Settings, people: list[tuple[str, str, str, str, str]], password: str = PASSWORD) -> None:
    """Accounts at the identity service, as the county's administrator makes them
    (``POST /accounts``; ``piaojue users add`` does the same): (username, display name, role,
    jurisdiction, unit). One that exists already is left as it is. A few at a time: each
    password is hashed with argon2id, which takes its time on purpose."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.auth import mint

    def add(person: tuple[str, str, str, str, str]) -> None:
        username, display_name, role, jurisdiction, unit = person
        admin = mint("county-admin", Role.ADMIN, jurisdiction.split(".")[0])
        response = httpx.post(f"{settings.url('identity')}/accounts", headers={"authorization": f"Bearer {admin}"}, timeout=60,
                              json={"username": username, "display_name": display_name, "password": password,
                                    "grants": [{"role": role, "jurisdiction": jurisdiction, "unit": unit}]})
        if response.status_code not in (201, 409):
            raise RuntimeError(f"account {username}: {response.status_code} {response.text}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, people))


def sign_in(page, base: str, username: str, password: str = PASSWORD, next: str = "/") -> None:
    """The sign-in page, as a person uses it: account and password, checked by identity; then on
    to ``next`` (where the person was going)."""
    page.goto(f"{base}/signin?next={next}")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('form[action="/signin"] button[type="submit"]')
    page.wait_for_url(lambda url: "/signin" not in url)


def check_in(page, base: str, code: str, deputy_id: str, personal_code: str = "2468") -> None:
    """签到 on the deputy's own phone: the hall's check-in code, the deputy id, a personal code."""
    page.goto(f"{base}/checkin?code={code}")
    page.fill('input[name="deputy_id"]', deputy_id)
    page.fill('input[name="personal_code"]', personal_code)
    page.click('form[action="/checkin"] button[type="submit"]')
    page.wait_for_url(f"{base}/vote")


SLATES = {  # the next year's sitting (演示): four votes, each on a slate of its own
    "live": ["城东社区健身步道", "联丰村文化礼堂修缮", "新仓村污水管网延伸", "镇区农贸市场雨棚"],
    "certified": ["城西幼儿园围墙加固", "老街排水沟清淤", "双港村便民桥维修", "镇敬老院适老化改造"],
    "sealed": ["城北公交候车亭", "横山村垃圾分类亭", "河滨步道照明", "镇卫生院停车场"],
    "paper": ["东风村水塘护坡", "沿河村道拓宽", "镇区公厕改造", "前进村晒场硬化"],
}


async def fresh_slate(api: Api, office: str, year: int, titles: list[str]) -> dict[str, Any]:
    """A slate of its own (the year's slate is already voted and certified): proposals entered
    and screened, the slate published (and sent, if under notice), received by the ballot service."""
    from piaojue.scenario.client import wait_for
    from piaojue.scenario.intake import SCREENING

    ids = []
    for title in titles:
        proposal = await api.call("POST", "intake", "/proposals", office, {"year": year, "title": title, "channel": "grid",
                                                                            "location": "孚玉镇"})
        for stage in SCREENING:
            await api.call("POST", "intake", f"/proposals/{proposal['id']}/screening", office, {"to": stage})
        ids.append(proposal["id"])
    slate = await api.call("POST", "intake", "/slates", office, {"title": f"孚玉镇{year}年民生实事候选项目（{titles[0]}等）",
                                                                  "year": year, "seats": 3, "proposal_ids": ids})
    if slate["notices"] and slate["status"] != "published":  # under public notice (the year's setting): sent after it
        slate = await api.call("POST", "intake", f"/slates/{slate['id']}/send", office,
                               {"override_reason": f"公示已于{year}年1月2日至8日张贴期满，本系统补录"})
    await wait_for("the slate to reach the ballot service", lambda: api.ok("ballot", f"/slates/{slate['id']}", office))
    return slate


async def live_vote(settings: Settings, town: str) -> dict[str, Any]:
    """The next year's sitting, for the pages that show a vote under way: one vote open with some
    ballots cast (ballot, console, big screen), one certified with a deputy's receipt (the receipt
    check), one closed and awaiting the tellers' shares, one on paper with some ballots entered
    (the tellers' page)."""
    from piaojue.scenario.client import close_vote
    from piaojue.scenario.fuyu import TELLERS

    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(settings, client, town)
        office, chair = api.token("fuyu-office", Role.OFFICE), api.token("fuyu-presidium", Role.PRESIDING)
        slates = {name: await fresh_slate(api, office, YEAR + 1, titles) for name, titles in SLATES.items()}
        session = await api.call("POST", "ballot", "/sessions", office,
                                 {"name": "孚玉镇第十九届人民代表大会第六次会议（演示）", "year": YEAR + 1, "term": TERM})
        present = [d["deputy_id"] for d in deputies()][:50]
        await api.call("POST", "ballot", f"/sessions/{session['id']}/roll-call", office, {"present": present})
        keys: dict[str, dict[str, str]] = {}
        await set_tellers(api, chair, session, keys)  # 监票人: a secret electronic round opens only with them
        rng = random.Random(1)
        votes, receipt = {}, ""
        for name, slate in slates.items():
            votes[name] = vote = await api.call("POST", "ballot", f"/sessions/{session['id']}/votes", office,
                                                {"slate_id": slate["id"], "mode": "paper" if name == "paper" else "electronic"})
            await api.call("POST", "ballot", f"/votes/{vote['id']}/open", chair)
            paper = await api.call("GET", "ballot", f"/votes/{vote['id']}/ballot-paper", office)

            def marks(paper: dict = paper) -> dict[str, str]:
                liked = rng.sample([c["id"] for c in paper["candidates"]], k=3)
                return {c["id"]: "for" if c["id"] in liked else rng.choice(["against", "abstain"]) for c in paper["candidates"]}

            if name == "paper":  # a teller has entered a dozen of the collected ballots
                for _ in range(12):
                    await api.call("POST", "ballot", f"/votes/{vote['id']}/paper-ballots", api.token(TELLERS[0], Role.TELLER),
                                   {"marks": marks()})
                continue
            voters = present[10:41] if name == "live" else present[:45]
            for deputy in voters:
                cast = await api.call("POST", "ballot", f"/votes/{vote['id']}/ballots",
                                      api.token(deputy, Role.DEPUTY, session=session["id"], term=TERM), {"marks": marks()})
                receipt = cast["receipt"] if deputy == present[0] and name == "certified" else receipt
            if name == "certified":
                await close_vote(api, chair, vote, keys)
                await api.call("POST", "ballot", f"/votes/{vote['id']}/certify", chair)
            elif name == "sealed":
                await api.call("POST", "ballot", f"/votes/{vote['id']}/close", chair)
        projects = await api.call("GET", "supervision", "/projects", office, params={"year": YEAR})
        sessions = await api.call("GET", "ballot", "/sessions", office)
        code = (await api.call("GET", "intake", "/proposals", office, params={"year": YEAR}))[0]["code"]
        from piaojue.scenario.client import wait_for

        path = f"/sessions/{session['id']}/checkin-code"  # once identity has heard of the session
        await wait_for("identity to know the session", lambda: api.ok("identity", path, office))
        checkin = await api.call("GET", "identity", path, office)
        return {"session": session["id"], "vote": votes["live"]["id"], "slate": slates["live"]["id"], "projects": projects,
                "code": code, "checkin": checkin["code"], "deputy": present[0], "receipt": receipt,
                "sealed_vote": votes["sealed"]["id"], "paper_vote": votes["paper"]["id"], "teller": TELLERS[0],
                "certified_session": next(s["id"] for s in sessions if s["name"].endswith("第四次会议")),
                "certified_vote": next(v["id"] for s in sessions if s["name"].endswith("第四次会议") for v in s["votes"])}


@contextmanager
def running_town(town: str = scenario.TOWN):
    """Services and pages with the Fuyu year in them: the running ones, or a fresh set of our own."""
    settings = get_settings()
    up = [s for s in processes.EVERYTHING if processes.ready(settings, s)]
    procs = {}
    try:
        if len(up) != len(processes.EVERYTHING):
            if up:
                raise SystemExit(f"some services are running ({', '.join(up)}) but not all: start them all (piaojue up) or none")
            from piaojue.demo import _demo_settings

            settings, env = _demo_settings(settings)
            migrate_all(settings)
            logs = Path(tempfile.mkdtemp(prefix="piaojue-screenshots-"))
            print(f"starting the services and the pages (logs in {logs}) …", file=sys.stderr)
            procs = processes.start(settings, processes.EVERYTHING, env={**os.environ, **env}, log_dir=logs)
            processes.wait_ready(settings, procs, broker=True)
        with suppress(AlreadyPlayed):  # the running services already hold the year: use it
            asyncio.run(scenario.run(settings, town=town))
        yield settings, asyncio.run(live_vote(settings, town))
    finally:
        processes.stop(procs)


def shots(ids: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(file name, who, path) of every page, in the order people meet them. ``who``: an account,
    ``deputy`` (checked in on the phone with the hall's code), ``display`` (the hall's PC turned
    into the big screen by the office), or nobody."""
    project = ids["projects"][0]
    return [
        ("signin", "", "/signin"),
        ("propose", "", "/propose"),
        ("checkin", "", f"/checkin?code={ids['checkin']}"),
        ("track", "", f"/track?code={ids['code']}"),
        ("vote-list", "deputy", "/vote"),
        ("vote-ballot", "deputy", f"/vote/{ids['vote']}"),
        ("vote-receipt", "deputy", "/vote/receipt"),
        ("office-home", "fuyu-office", "/"),
        ("office-proposals", "fuyu-office", "/office/proposals?year=2024"),
        ("office-slates", "fuyu-office", "/office/slates"),
        ("office-slate", "fuyu-office", f"/office/slates/{ids['slate']}"),
        ("office-roster", "fuyu-office", f"/office/roster?term={TERM}"),
        ("office-sessions", "fuyu-office", "/office/sessions"),
        ("office-session", "fuyu-office", f"/office/sessions/{ids['session']}"),
        ("office-checkin-sheet", "fuyu-office", f"/office/sessions/{ids['session']}/sheet"),
        ("chair-console", "fuyu-presidium", f"/chair/sessions/{ids['session']}"),
        ("chair-results", "fuyu-presidium", f"/chair/sessions/{ids['certified_session']}"),
        ("chair-announcement", "fuyu-presidium", f"/chair/votes/{ids['certified_vote']}/announcement"),
        ("screen-live", "display", f"/screen/{ids['session']}"),
        ("screen-results", "fuyu-presidium", f"/screen/{ids['certified_session']}"),
        ("tellers", ids["teller"], "/tellers"),
        ("tellers-paper", ids["teller"], f"/tellers/votes/{ids['paper_vote']}"),
        ("tellers-shares", ids["teller"], f"/tellers/votes/{ids['sealed_vote']}"),
        ("unit", "fuyu-unit", "/unit"),
        ("unit-project", "fuyu-unit", f"/unit/projects/{project['id']}"),
        ("board", "fuyu-office", f"/board?year={YEAR}"),
        ("board-project", "fuyu-office", f"/board/projects/{project['id']}"),
        ("county", "taihu-kaohe", f"/county?year={YEAR}"),
    ]


def _people(town: str, ids: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    unit = ids["projects"][0]["lead_unit"] or "镇城建办"
    return [("fuyu-office", "孚玉镇人大办", "office", town, ""), ("fuyu-presidium", "大会主席团", "presiding", town, ""),
            (ids["teller"], "监票人", "teller", town, ""), ("fuyu-unit", unit, "lead_unit", town, unit),
            ("taihu-kaohe", "县人大考核组", "county", town.split(".")[0], "")]


def _enter(context, base: str, who: str, ids: dict[str, Any]) -> None:
    """Signs this person in, in their own browser, as they would."""
    page = context.new_page()
    if who == "deputy":
        check_in(page, base, ids["checkin"], ids["deputy"])
    elif who == "display":
        sign_in(page, base, "fuyu-office")
        page.goto(f"{base}/office/sessions/{ids['session']}")
        page.click("#make-screen")
        page.wait_for_url(f"{base}/screen/{ids['session']}")
    elif who:
        sign_in(page, base, who)
    page.close()


def take(out: Path, town: str = scenario.TOWN) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with running_town(town) as (settings, ids), sync_playwright() as pw:
        base = settings.url("web")
        add_accounts(settings, _people(town, ids))
        browser = launch(pw)
        signed: dict[str, list] = {}  # each person's cookies, signed in once (the phone and the PC of one person)
        try:
            for size_name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                contexts: dict[str, Any] = {}
                for name, who, path in shots(ids):
                    if name.startswith("screen-") and size_name == "phone":
                        continue
                    if who not in contexts:
                        contexts[who] = browser.new_context(viewport=viewport, locale="zh-CN",
                                                            user_agent=WECHAT_UA if size_name == "phone" else None)
                        if who in signed:
                            contexts[who].add_cookies(signed[who])
                        else:
                            _enter(contexts[who], base, who, ids)
                            signed[who] = contexts[who].cookies()
                    page = contexts[who].new_page()
                    if name.startswith("screen-"):
                        page.set_viewport_size(SCREEN)
                    page.goto(base + path)
                    if name == "vote-receipt" and ids["receipt"]:
                        page.fill('input[name="tracker"]', ids["receipt"])
                        page.click('form[action="/vote/receipt"] button[type="submit"]')
                    page.wait_for_load_state("networkidle") if name == "county" else page.wait_for_load_state()
                    file = out / f"{name}.{'screen' if name.startswith('screen-') else size_name}.png"
                    # The big screen does not scroll; the ballot is shown as the deputy first sees it
                    # (its counter sticks to the bottom of the screen); every other page whole.
                    page.screenshot(path=str(file), full_page=not name.startswith(("screen-", "vote-ballot")))
                    page.close()
                    written.append(file)
                    print(f"{file}  ({file.stat().st_size // 1024} kB)")
                for context in contexts.values():
                    context.close()
        finally:
            browser.close()
    return written
