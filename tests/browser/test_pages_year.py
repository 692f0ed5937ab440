"""The Fuyu year as people walk it through the pages, everyone signed in through the identity
service: a resident proposes from a phone, the office screens and builds the slate (差额),
enters the roster, calls the roll and sets up the vote; the tellers register their keys and the
presiding officer names them; the office turns the hall's PC into the big screen (display
credential); deputies check in on their phones with the hall's code and vote (one in WeChat's
browser); the officer closes, two tellers present their key shares, the officer certifies and
a deputy checks the receipt; the office sees the dispositions and assigns a lead unit, which
reports progress and answers a rectification item; the county ranks the township and exports
the table. Every page on the way passes axe-core and breaks nothing under the CSP."""

from __future__ import annotations

import io
import re
import struct
import zlib

import httpx
from openpyxl import load_workbook
from playwright.sync_api import expect

from piaojue.screenshots import DESKTOP, PHONE, SCREEN, WECHAT_UA
from piaojue.teller import write_key
from shared.auth import Role, mint
from tests.browser.support import axe, check_in, sign_in, watch

TOWN = "taihu.fuyu"
YEAR = "2025"
DEPUTIES = ["W1", "W2", "W3", "W4", "W5"]
TITLES = ["村口路灯维修", "联丰村道路硬化", "新仓村饮水管网改造", "镇区学校周边人行道"]


def person(browser, base, account: str = "", viewport=DESKTOP, start: str = "/", **kw):
    """A person's own browser; signed in with their account when they have one, then on the page
    they came for (``start``: the sign-in page sends them on, as after following a link)."""
    context = browser.new_context(viewport=viewport, locale="zh-CN", **kw)
    page = context.new_page()
    page.problems = watch(page)
    if account:
        sign_in(page, base, account, next=start)
    return page


def press(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def until(page, url: str, text: str, tries: int = 60) -> None:
    """Reload until the page shows ``text``: events take their time between the services."""
    for _ in range(tries):
        page.goto(url)
        if page.get_by_text(text).count():
            return
        page.wait_for_timeout(100)
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


def test_the_year_through_the_pages(site, site_settings, browser, people, tmp_path):
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
    office = person(browser, site, "fuyu-office", start="/office/proposals/new")

    def screen_to_candidate() -> None:
        for stage in ("政府初审", "党委研究确定", "候选项目"):
            office.click(f"button:has-text('→ {stage}')")
            expect(office.locator("dd .badge")).to_have_text(stage)

    for i, title in enumerate(["镇政府办公楼装修", *TITLES[1:]]):  # entered, and screened on its own page straight away
        if i:
            office.goto(f"{site}/office/proposals/new")
        office.fill('input[name="year"]', YEAR)
        office.select_option('select[name="channel"]', "grid")
        office.fill('input[name="title"]', title)
        office.fill('input[name="estimated_budget"]', "800000")
        press(office, "保存")
        expect(office.get_by_role("heading", name=title)).to_be_visible()
        if title == "镇政府办公楼装修":
            axe(office, "proposal")
            office.fill('textarea[name="reason"]', "办公楼装修属负面清单，不纳入民生实事")
            press(office, "不予采纳")
            expect(office.locator("dd .badge")).to_have_text("不予采纳")
            expect(office.locator("tbody")).to_contain_text("办公楼装修属负面清单")  # the reason, in the history
        else:
            screen_to_candidate()

    office.goto(f"{site}/office/proposals")  # the resident's proposal waits among the submitted ones
    axe(office, "proposals")
    office.select_option('select[name="stage"]', "submitted")  # htmx swaps the table in place
    expect(office.locator("#results tbody")).to_contain_text(TITLES[0])
    expect(office.locator("#results tbody")).not_to_contain_text(TITLES[1])
    expect(office).to_have_url(re.compile(r"stage=submitted"))
    office.click(f"#results >> text={TITLES[0]}")
    screen_to_candidate()

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
    until(office, session_url, "/checkin?code=")  # identity has heard of the session: its check-in code
    hall_code = office.locator("#checkin-code").inner_text()
    session_id = session_url.rsplit("/", 1)[1]
    office.goto(f"{session_url}/sheet")  # printable: the code and the link, never a credential
    expect(office.locator("tbody tr")).to_have_count(5)
    expect(office.locator("main")).to_contain_text(hall_code)

    # --- the tellers register their keys (made on their own computers), the presiding officer names them
    tellers = {}
    for name in ("fuyu-t1", "fuyu-t2", "fuyu-t3"):
        write_key(tmp_path / f"{name}.json")
        teller = tellers[name] = person(browser, site, name, start="/tellers")
        teller.set_input_files('input[name="key_file"]', tmp_path / f"{name}.json")
        press(teller, "登记公钥")
        expect(teller.locator("#registered")).to_contain_text("公钥已登记")
    axe(teller, "tellers")
    chair = person(browser, site, "fuyu-presidium", start=f"/chair/sessions/{session_id}")
    chair.fill('input[name="tellers"]', "fuyu-t1 fuyu-t2 fuyu-t3")
    chair.fill('input[name="threshold"]', "2")
    press(chair, "指定监票人")
    expect(chair.locator("#tellers")).to_contain_text("fuyu-t1、fuyu-t2、fuyu-t3")
    axe(chair, "console")

    # --- the office turns the hall's PC into the big screen: the session's read-only display credential
    screen = person(browser, site, "fuyu-office", viewport=SCREEN, start=f"/office/sessions/{session_id}")
    screen.click("#make-screen")
    expect(screen).to_have_url(f"{site}/screen/{session_id}")
    expect(screen.locator("h1")).to_have_text("孚玉镇第十九届人民代表大会第五次会议")
    screen.goto(f"{site}/office/proposals")  # the display credential reads this session, nothing else
    expect(screen.get_by_role("alert")).to_have_text("无权访问此页面")
    screen.goto(f"{site}/screen")
    expect(screen).to_have_url(f"{site}/screen/{session_id}")

    # --- the presiding officer opens the vote; the big screen follows
    press(chair, "开始表决")
    expect(chair.locator('[data-live="issued"]')).to_have_text("4")
    expect(screen.locator('[data-live="issued"]')).to_have_text("4", timeout=10_000)
    axe(screen, "big screen")

    # --- deputies check in on their phones with the hall's code and vote: three 'for' at most (3 seats)
    receipts = {}
    for i, deputy in enumerate(DEPUTIES[:4]):
        phone = person(browser, site, viewport=PHONE, user_agent=WECHAT_UA if i == 0 else None, is_mobile=True, has_touch=True)
        check_in(phone, site, hall_code, deputy)
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
        receipts[deputy] = phone.locator("#receipt").inner_text()
        if i == 0:
            axe(phone, "receipt")
            first_phone = phone  # W1 checks the receipt after certification
        assert not phone.problems, phone.problems
        if i:
            phone.context.close()
    office.goto(session_url)
    expect(office.locator("#credentials ~ .table-wrap tbody tr", has_text="已签到")).to_have_count(4)  # who checked in, never a credential
    expect(chair.locator('[data-live="cast"]')).to_have_text("4", timeout=10_000)  # live, from the stream
    expect(screen.locator('[data-live="cast"]')).to_have_text("4", timeout=10_000)
    assert chair.locator("text=村口路灯维修").count() == 0  # never a partial tally while open

    # --- close; two tellers present their key shares (a key file, and the same pasted as text)
    press(chair, "结束表决并计票")
    expect(chair.get_by_text("待监票人开启").first).to_be_visible()
    t1, t2 = tellers["fuyu-t1"], tellers["fuyu-t2"]
    t1.goto(f"{site}/tellers")
    t1.get_by_role("link", name=re.compile("项目票决")).click()
    expect(t1.locator("#fingerprint")).to_be_visible()
    axe(t1, "present a share")
    t1.set_input_files('input[name="key_file"]', tmp_path / "fuyu-t1.json")
    press(t1, "出示份额")
    expect(t1.locator("#progress")).to_have_text("已出示 1 份，需要 2 份。")
    t2.goto(t1.url.split("?")[0])
    t2.fill('textarea[name="key_text"]', (tmp_path / "fuyu-t2.json").read_text())
    press(t2, "出示份额")
    expect(t2.locator("#status")).to_have_text("已计票")  # counted: the sealed ballots opened
    # The console reloads itself when the stream shows the vote counted (a reload here as well
    # raced it: net::ERR_ABORTED).
    expect(chair.locator(".badge.chosen")).to_have_count(3)
    expect(screen.locator(".mark")).to_have_count(3, timeout=10_000)
    press(chair, "确认结果")
    expect(chair.get_by_text("已确认").first).to_be_visible()
    chair.get_by_role("link", name="结果公告").click()
    expect(chair.locator("tbody tr")).to_have_count(4)
    axe(chair, "announcement")

    # --- a deputy checks the receipt: the ballot was opened and counted
    first_phone.goto(f"{site}/vote")
    first_phone.click("#check-receipt")
    first_phone.fill('input[name="tracker"]', receipts["W1"])
    press(first_phone, "核对")
    expect(first_phone.locator("#receipt-outcome")).to_contain_text("您的选票已计入")
    axe(first_phone, "receipt check")
    first_phone.fill('input[name="tracker"]', "0" * 64)
    press(first_phone, "核对")
    expect(first_phone.locator("#receipt-outcome")).to_have_attribute("data-outcome", "missing")
    first_phone.context.close()

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

    unit = person(browser, site, "fuyu-chengjian", start="/unit")
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
    county = person(browser, site, "taihu-kaohe")
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

    for page in (resident, office, chair, screen, unit, county, *tellers.values()):
        assert not page.problems, page.problems
        page.context.close()
