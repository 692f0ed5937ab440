"""The Fuyu year as people walk it through the pages: a resident proposes from a phone, the
office screens and builds the slate (差额), enters the roster, calls the roll and sets up the
vote; the presiding officer opens it while the hall's big screen follows; deputies vote on
phones (one in WeChat's browser); the officer closes and certifies; the office sees the
dispositions and assigns a lead unit, which reports progress; the county ranks the township and
exports the table. Every page on the way passes axe-core and breaks nothing under the CSP."""

from __future__ import annotations

import io
import re
import struct
import zlib

import httpx
from openpyxl import load_workbook
from playwright.sync_api import expect

from piaojue.screenshots import DESKTOP, PHONE, SCREEN, WECHAT_UA
from shared.auth import Role, mint
from tests.browser.support import axe, present_shares, seat_tellers, sign_in, watch

TOWN = "taihu.fuyu"
YEAR = "2025"
DEPUTIES = ["W1", "W2", "W3", "W4", "W5"]
TITLES = ["村口路灯维修", "联丰村道路硬化", "新仓村饮水管网改造", "镇区学校周边人行道"]


def person(browser, base, role: str = "", sub: str = "", jurisdiction: str = TOWN, viewport=DESKTOP, **kw):
    context = browser.new_context(viewport=viewport, locale="zh-CN", **kw)
    page = context.new_page()
    page.problems = watch(page)
    if role:
        sign_in(page, base, role, sub, jurisdiction)
    return page


def press(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def until(page, url: str, text: str, tries: int = 60) -> None:
    """Reload until the page shows ``text``: events take their time between the services."""
    for _ in range(tries):
        page.goto(url)
        if page.get_by_text(text).count():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"{url} never showed {text!r}")


def png() -> bytes:
    """A real 2×2 PNG, made here."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xb4\x23\x18" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def inspect(settings, project_id: str, problem: str) -> None:
    """The office records a concentrated inspection (集中视察) with a finding (its page is not built yet)."""
    token = mint("fuyu-office", Role.OFFICE, TOWN)
    response = httpx.post(f"{settings.url('supervision')}/projects/{project_id}/inspections", timeout=30,
                          headers={"authorization": f"Bearer {token}"},
                          json={"kind": "concentrated_inspection", "inspected_on": "2025-06-30", "findings": [{"problem": problem}]})
    assert response.status_code == 201, response.text


def test_the_year_through_the_pages(site, site_settings, browser):
    # --- a resident proposes from a phone
    resident = person(browser, site, viewport=PHONE, user_agent=WECHAT_UA, is_mobile=True, has_touch=True)
    resident.goto(f"{site}/propose")
    axe(resident, "propose")
    resident.fill('input[name="title"]', TITLES[0])
    resident.fill('textarea[name="content"]', "村口三盏路灯坏了半年，晚上看不见路。")
    resident.fill('input[name="location"]', "城西社区")
    press(resident, "提交")
    expect(resident.get_by_role("heading", name="建议已收到")).to_be_visible()
    code = resident.locator("#tracking-code").inner_text()
    resident.get_by_role("link", name="查询办理进展").click()  # what became of it, by the code
    expect(resident.locator("#found")).to_contain_text("已提交")
    axe(resident, "track")

    # --- the office enters the grid worker's notebook, screens, and rejects one with a reason
    office = person(browser, site, "office", "fuyu-office")
    for title in [*TITLES[1:], "镇政府办公楼装修"]:
        office.goto(f"{site}/office/proposals/new")
        office.fill('input[name="year"]', YEAR)
        office.select_option('select[name="channel"]', "grid")
        office.fill('input[name="title"]', title)
        office.fill('input[name="estimated_budget"]', "800000")
        press(office, "保存")
        expect(office.get_by_role("heading", name=title)).to_be_visible()
    axe(office, "proposal")
    office.fill('textarea[name="reason"]', "办公楼装修属负面清单，不纳入民生实事")
    press(office, "不予采纳")
    expect(office.locator("dd .badge")).to_have_text("不予采纳")
    expect(office.locator("tbody")).to_contain_text("办公楼装修属负面清单")  # the reason, in the history

    office.goto(f"{site}/office/proposals")
    axe(office, "proposals")
    office.select_option('select[name="stage"]', "submitted")  # htmx swaps the table in place
    for title in TITLES:
        expect(office.locator("#results tbody")).to_contain_text(title)
    expect(office.locator("#results tbody")).not_to_contain_text("镇政府办公楼装修")
    expect(office).to_have_url(re.compile(r"stage=submitted"))
    for title in TITLES:
        office.goto(f"{site}/office/proposals?q={title}")
        office.click(f"#results >> text={title}")
        for stage in ("政府初审", "党委研究确定", "候选项目"):
            office.click(f"button:has-text('→ {stage}')")
            expect(office.locator("dd .badge")).to_have_text(stage)

    # --- the slate: an equal one is refused with the reason, a competitive one (差额) published
    office.goto(f"{site}/office/slates/new")
    axe(office, "new slate")
    office.fill('input[name="title"]', "孚玉镇2025年民生实事候选项目")
    office.fill('input[name="year"]', YEAR)
    office.fill('input[name="seats"]', "4")
    expect(office.locator("#margin")).to_have_text("已选候选 4 个，应选 4 个，差额 0 个")
    press(office, "发布候选清单")
    expect(office.get_by_role("alert")).to_contain_text("不符合规则")
    office.fill('input[name="seats"]', "3")
    press(office, "发布候选清单")
    expect(office.get_by_role("heading", name="孚玉镇2025年民生实事候选项目")).to_be_visible()
    expect(office.get_by_text("差额 1")).to_be_visible()
    slate_url = office.url

    # --- roster, session, roll call (4 of 5: a quorum), the vote
    office.goto(f"{site}/office/roster?term=1")
    office.fill('input[name="quota"]', "5")
    office.fill('textarea[name="deputies"]', "\n".join(f"{d} 代表{d}" for d in DEPUTIES))
    press(office, "保存名单")
    expect(office.locator(".figures")).to_contain_text("5")
    axe(office, "roster")
    office.goto(f"{site}/office/sessions")
    office.fill('input[name="name"]', "孚玉镇第十九届人民代表大会第五次会议")
    office.fill('input[name="year"]', YEAR)
    office.fill('input[name="term"]', "1")
    office.click("button:has-text('新建会议')")
    session_url = office.url
    for deputy in DEPUTIES[:4]:
        office.check(f'input[name="present"][value="{deputy}"]')
    press(office, "保存签到")
    expect(office.locator("#present")).to_have_text("4")
    axe(office, "session")
    until(office, session_url, "孚玉镇2025年民生实事候选项目")  # the slate has reached the ballot service
    office.click("button:has-text('新建表决')")
    expect(office.get_by_text("第 0 轮")).to_be_visible()
    session_id = session_url.rsplit("/", 1)[1]
    office.goto(f"{session_url}/sheet")
    expect(office.locator("tbody tr")).to_have_count(5)

    keys = seat_tellers(site_settings, TOWN, session_id)  # 监票人 and their keys, through the API (their page comes later)

    # --- the presiding officer opens the vote; the big screen follows
    chair = person(browser, site, "presiding", "fuyu-presidium")
    chair.goto(f"{site}/chair/sessions/{session_id}")
    axe(chair, "console")
    screen = person(browser, site, "presiding", "fuyu-presidium", viewport=SCREEN)
    screen.goto(f"{site}/screen/{session_id}")
    press(chair, "开始表决")
    expect(chair.locator('[data-live="issued"]')).to_have_text("4")
    expect(screen.locator('[data-live="issued"]')).to_have_text("4", timeout=10_000)
    axe(screen, "big screen")

    # --- deputies vote on phones: three 'for' at most (3 seats)
    for i, deputy in enumerate(DEPUTIES[:4]):
        phone = person(browser, site, "deputy", deputy, viewport=PHONE, user_agent=WECHAT_UA if i == 0 else None,
                       is_mobile=True, has_touch=True)
        phone.goto(f"{site}/vote")
        phone.click("a.tile")
        if i == 0:
            axe(phone, "ballot")
        labels = ["赞成", "赞成", "赞成", "反对"] if i < 3 else ["赞成", "反对", "赞成", "赞成"]
        expect(phone.locator("fieldset")).to_have_count(len(labels))  # the ballot drawn before it is read (.all() does not wait)
        for fieldset, label in zip(phone.locator("fieldset").all(), labels, strict=True):
            fieldset.get_by_text(label, exact=True).click()
        press(phone, "下一步：核对选票")
        expect(phone.get_by_role("heading", name="核对选票")).to_be_visible()
        if i == 0:
            axe(phone, "confirm")
        press(phone, "确认投票")
        expect(phone.locator("#receipt")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
        if i == 0:
            axe(phone, "receipt")
        assert not phone.problems, phone.problems
        phone.context.close()
    expect(chair.locator('[data-live="cast"]')).to_have_text("4", timeout=10_000)  # live, from the stream
    expect(screen.locator('[data-live="cast"]')).to_have_text("4", timeout=10_000)
    assert chair.locator("text=村口路灯维修").count() == 0  # never a partial tally while open

    # --- close, certify; the big screen shows who is chosen
    press(chair, "结束表决并计票")
    vote_id = next(s for s in httpx.get(f"{site_settings.url('ballot')}/sessions", timeout=30, headers={
        "authorization": f"Bearer {mint('office', Role.OFFICE, TOWN)}"}).json() if s["id"] == session_id)["votes"][-1]["id"]
    present_shares(site_settings, TOWN, vote_id, keys)  # the tellers open the sealed ballots
    chair.reload()
    expect(chair.locator(".badge.chosen")).to_have_count(3)
    expect(screen.locator(".mark")).to_have_count(3, timeout=10_000)
    press(chair, "确认结果")
    expect(chair.get_by_text("已确认").first).to_be_visible()
    chair.get_by_role("link", name="结果公告").click()
    expect(chair.locator("tbody tr")).to_have_count(4)
    axe(chair, "announcement")

    # --- dispositions, projects, the lead unit's report
    until(office, slate_url, "项目库")  # not funded, 800,000 元 is not small: intake's rules put it in the library
    expect(office.get_by_text("票决通过")).to_have_count(3)
    axe(office, "slate with dispositions")
    resident.goto(f"{site}/track?code={code}")  # the resident follows it to the vote's outcome
    expect(resident.locator("#found")).to_contain_text("票决通过")
    until(office, f"{site}/board?year={YEAR}", TITLES[0])
    axe(office, "board")
    office.click(f"a:has-text('{TITLES[0]}')")
    office.fill('input[name="lead_unit"]', "镇城建办")
    press(office, "保存")
    expect(office.locator("dl")).to_contain_text("镇城建办")

    unit = person(browser, site, "lead_unit", "镇城建办")
    unit.goto(f"{site}/unit")
    axe(unit, "unit")
    unit.click(f"text={TITLES[0]}")
    unit.fill('input[name="percent_done"]', "60")
    unit.fill('input[name="funds_spent"]', "300000")
    unit.fill('textarea[name="narrative"]', "路灯已采购，安装过半")
    unit.click("button:has-text('报告进度')")
    expect(unit.locator("tbody")).to_contain_text("60%")
    expect(unit.locator("tbody")).to_contain_text("30.00 万元")
    axe(unit, "unit project")

    # --- an inspection finds a problem; the unit answers the rectification item
    project_id = unit.url.rsplit("/", 1)[1]
    inspect(site_settings, project_id, "路灯亮度不足，夜间仍看不清")
    unit.goto(f"{site}/unit")
    expect(unit.locator("#items ~ section")).to_contain_text("路灯亮度不足")
    unit.fill('textarea[name="text"]', "已更换为 60W 灯具")
    press(unit, "提交整改反馈")
    expect(unit.locator("#items ~ section")).to_contain_text("已反馈待验证")
    axe(unit, "rectification items")

    # --- the county ranks the township and exports the table
    county = person(browser, site, "county", "taihu-kaohe", "taihu")
    until(county, f"{site}/board?year={YEAR}", TITLES[0])  # the projects have reached scoring too
    county.goto(f"{site}/county?year={YEAR}")
    county.fill('input[name="township"]', TOWN)
    county.click("button:has-text('发布考核结果')")
    expect(county.locator("#ranking tbody tr")).to_have_count(1)
    expect(county.locator("#ranking")).to_contain_text(TOWN)
    expect(county.locator("#chart-net svg")).to_have_count(1)  # ECharts drew, from our own static file
    axe(county, "county")
    with county.expect_download() as download:
        county.click("text=导出 Excel")
    with open(download.value.path(), "rb") as file:  # the download keeps no .xlsx name, which openpyxl wants
        sheet = load_workbook(io.BytesIO(file.read())).active
    assert [c.value for c in sheet[1]][:2] == ["名次", "乡镇"] and sheet["B2"].value == TOWN  # the scoring service's sheet

    for page in (resident, office, chair, screen, unit, county):
        assert not page.problems, page.problems
        page.context.close()
