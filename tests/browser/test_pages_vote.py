"""The deputy's voting page under the conditions of a real sitting, and bad input on the pages:
keyboard only, the 'for' limit before submit, a double click, a connection lost mid-cast,
WeChat's browser on a phone, 200% zoom; script tags and 100 KB of text in a proposal, an expired
session or credential, a form without its CSRF token; the tellers' paper ballots, one by one and
by totals; the satisfaction rating ballot. Deputies check in with the session's code on their own phone, as in the hall."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from piaojue.screenshots import PHONE, WECHAT_UA
from shared.auth import Role, mint
from tests.browser.support import api, axe, check_in, checkin_code, open_vote, seat_tellers, sign_in, until, watch

TOWN = "taihu.kb"
DEPUTIES = [f"K{i}" for i in range(1, 11)]
TITLES = ["甲：村道亮化", "乙：饮水改造", "丙：学校人行道", "丁：文化广场"]  # 3 seats: at most 3 'for'


@pytest.fixture(scope="module")
def vote(site, site_settings):
    return open_vote(site_settings, TOWN, DEPUTIES, TITLES, seats=3)


def deputy(browser, site, vote, who: str, **kw):
    """A deputy's own phone, checked in (签到) with the session's code and a personal code."""
    context = browser.new_context(viewport=kw.pop("viewport", PHONE), locale="zh-CN", **kw)
    page = context.new_page()
    page.problems = watch(page)
    check_in(page, site, vote["code"], who)
    return page


def choose(page, labels: list[str]) -> None:
    for fieldset, label in zip(page.locator("fieldset").all(), labels, strict=True):
        fieldset.get_by_text(label, exact=True).click()


def cast_count(vote) -> int:
    return vote["get"]()["cast"]


def test_a_deputy_votes_with_the_keyboard_alone(site, browser, vote):
    page = deputy(browser, site, vote, "K1", viewport={"width": 1024, "height": 768})
    page.goto(f"{site}/vote/{vote['id']}")

    def tab_to(predicate: str, limit: int = 30) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(predicate):
                return
        raise AssertionError(f"Tab never reached {predicate}")

    tab_to("document.activeElement.name && document.activeElement.name.startsWith('m.')")
    for i in range(len(TITLES)):
        if i == 3:
            page.keyboard.press("ArrowRight")  # the fourth: 反对
        else:
            page.keyboard.press("Space")  # 赞成
        page.keyboard.press("Tab")  # on to the next candidate (a radio group is one tab stop)
    assert page.evaluate("document.activeElement.id") == "next"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="核对选票")).to_be_visible()
    expect(page.locator(".choice-list li").nth(3)).to_contain_text("反对")
    tab_to("document.activeElement.id === 'cast-button'")
    page.keyboard.press("Enter")
    expect(page.locator("#receipt")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    assert not page.problems, page.problems


def test_the_for_limit_stops_the_ballot_before_it_is_sent_with_a_clear_message(site, browser, vote):
    page = deputy(browser, site, vote, "K2")
    page.goto(f"{site}/vote/{vote['id']}")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    choose(page, ["赞成"] * 4)
    expect(page.locator("#for-count")).to_have_text("赞成票超过 3 个，请改投反对或弃权后再提交。")
    expect(page.locator("#for-count")).to_have_attribute("role", "alert")
    page.get_by_role("button", name="下一步：核对选票").click(force=True)  # aria-disabled, but pressed anyway
    expect(page.get_by_role("heading", name="核对选票")).to_have_count(0)
    assert sent == []
    choose(page, ["赞成", "赞成", "弃权", "赞成"])
    expect(page.locator("#for-count")).to_have_text("已投赞成 3 个，最多 3 个")
    page.get_by_role("button", name="下一步：核对选票").click()
    expect(page.get_by_role("heading", name="核对选票")).to_be_visible()

    # Without JavaScript the page's server refuses it the same way, in words.
    plain = deputy(browser, site, vote, "K9", java_script_enabled=False)
    plain.goto(f"{site}/vote/{vote['id']}")
    choose(plain, ["赞成"] * 4)
    plain.get_by_role("button", name="下一步：核对选票").click()
    expect(plain.get_by_role("alert")).to_have_text("赞成票超过 3 个，请改投反对或弃权后再提交。")


@pytest.mark.parametrize("script", [True, False], ids=["with-script", "without-script"])
def test_a_double_clicked_cast_is_counted_once(site, browser, vote, script):
    page = deputy(browser, site, vote, "K3" if script else "K4", java_script_enabled=script)
    page.goto(f"{site}/vote/{vote['id']}")
    choose(page, ["赞成", "反对", "弃权", "赞成"])
    page.get_by_role("button", name="下一步：核对选票").click()
    before = cast_count(vote)
    page.get_by_role("button", name="确认投票").dblclick()
    expect(page.locator("#outcome")).to_be_visible()
    assert page.locator("#outcome").get_attribute("data-outcome") in ("cast", "recorded")
    assert cast_count(vote) == before + 1
    # coming back for a second ballot is refused in words
    page.goto(f"{site}/vote/{vote['id']}")
    choose(page, ["反对"] * 4)
    page.get_by_role("button", name="下一步：核对选票").click()
    page.get_by_role("button", name="确认投票").click()
    expect(page.locator("#outcome")).to_have_text("您本轮已投过票，每位代表每轮只能投一票。")
    assert cast_count(vote) == before + 1


def test_a_connection_lost_during_the_cast_tells_the_deputy_the_ballot_was_recorded(site, browser, vote):
    page = deputy(browser, site, vote, "K5")
    page.goto(f"{site}/vote/{vote['id']}")
    choose(page, ["赞成", "赞成", "反对", "反对"])
    page.get_by_role("button", name="下一步：核对选票").click()
    before, attempts = cast_count(vote), []

    def drop_the_first_answer(route):
        attempts.append(re.search(r'name="key"\r\n\r\n([^\r]+)', route.request.post_data).group(1))
        if len(attempts) == 1:
            route.fetch()  # the ballot reaches the service …
            route.abort("connectionreset")  # … but its answer never reaches the phone
        else:
            route.continue_()

    page.route("**/cast", drop_the_first_answer)
    page.get_by_role("button", name="确认投票").click()
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "recorded", timeout=10_000)
    expect(page.get_by_role("heading", name="您的选票已记录")).to_be_visible()
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the same Idempotency-Key, resent
    assert cast_count(vote) == before + 1
    assert not page.problems, page.problems


def test_the_ballot_in_wechats_browser_on_a_phone_and_at_200_percent_zoom(site, browser, vote):
    page = deputy(browser, site, vote, "K6", viewport={"width": 360, "height": 640}, user_agent=WECHAT_UA, is_mobile=True,
                  has_touch=True)
    page.goto(f"{site}/vote")
    sizes: dict[str, int] = {}
    page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())) if r.status == 200 else None)
    page.locator(f'a.tile[href="/vote/{vote["id"]}"]').tap()  # this test's vote (others' may be listed before it)
    # The ballot's own load (its stylesheet applied), not the list's: tap() returns before the navigation.
    page.wait_for_url(f"{site}/vote/{vote['id']}", wait_until="load")
    assert sum(sizes.values()) < 40_000, sizes  # the ballot and all it loads: light enough for a slow connection
    fieldsets = page.locator("fieldset").all()
    assert len(fieldsets) == len(TITLES)  # the ballot itself, one fieldset per candidate
    for fieldset in fieldsets:
        box = fieldset.locator("label").filter(has_text="弃权").bounding_box()  # the whole label takes the tap
        assert box["height"] >= 44 and box["width"] >= 44  # large touch targets
    choose(page, ["赞成", "弃权", "赞成", "反对"])
    page.get_by_role("button", name="下一步：核对选票").tap()
    page.get_by_role("button", name="确认投票").tap()
    expect(page.locator("#receipt")).to_be_visible()
    assert not page.problems, page.problems

    # 200% zoom of a 1280-pixel window is a 640-pixel layout at twice the density: nothing scrolls sideways
    zoomed = deputy(browser, site, vote, "K7", viewport={"width": 640, "height": 400}, device_scale_factor=2)
    zoomed.goto(f"{site}/size/large?next=/vote/{vote['id']}")
    assert zoomed.evaluate("getComputedStyle(document.documentElement).fontSize") == "22px"
    assert zoomed.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    axe(zoomed, "ballot in large text")


def test_a_deputy_rates_last_years_projects_on_the_satisfaction_ballot(site, browser, site_settings):
    """满意度测评: the projects a vote chose reach the ballot service (as events, through supervision);
    at the next sitting each deputy rates each on a phone: 满意 / 基本满意 / 不满意, receipt shown."""
    town, deputies = "taihu.manyi", [f"M{i}" for i in range(1, 6)]
    chosen = open_vote(site_settings, town, deputies, ["戊：村道硬化", "己：路灯安装", "庚：公厕改造"], seats=2, mode="paper")

    def call(method, path, role=Role.OFFICE, sub="office", json=None):
        return api(site_settings, method, "ballot", path, sub, role, town, json)

    paper = call("GET", f"/votes/{chosen['id']}/ballot-paper")
    first, second, third = (c["id"] for c in paper["candidates"])
    for _ in deputies:  # the tellers enter the collected paper ballots
        call("POST", f"/votes/{chosen['id']}/paper-ballots", Role.TELLER, "T1",
             {"marks": {first: "for", second: "for", third: "against"}})
    call("POST", f"/votes/{chosen['id']}/close", Role.PRESIDING, "chair")
    call("POST", f"/votes/{chosen['id']}/certify", Role.PRESIDING, "chair")
    call("POST", f"/sessions/{chosen['session']}/close", Role.PRESIDING, "chair")

    sitting = call("POST", "/sessions", json={"name": f"{town} 满意度测评", "year": 2026, "term": 1})
    call("POST", f"/sessions/{sitting['id']}/roll-call", json={"present": deputies})
    seat_tellers(site_settings, town, sitting["id"])
    office = {"authorization": f"Bearer {mint('office', Role.OFFICE, town)}"}

    def rating_vote() -> dict | None:  # the two chosen projects come through supervision as events
        response = httpx.post(f"{site_settings.url('ballot')}/sessions/{sitting['id']}/votes", headers=office,
                              json={"kind": "satisfaction", "year": 2025})
        return response.json() if response.status_code == 201 and len(response.json()["subjects"]) == 2 else None

    rating = until(rating_vote, "the chosen projects to reach the ballot service")
    call("POST", f"/votes/{rating['id']}/open", Role.PRESIDING, "chair")

    page = deputy(browser, site, {"code": checkin_code(site_settings, town, sitting["id"])}, "M1")
    page.goto(f"{site}/vote/{rating['id']}")
    fieldsets = page.locator("fieldset").all()
    assert len(fieldsets) == 2
    for fieldset in fieldsets:
        assert [t.strip() for t in fieldset.locator("label").all_inner_texts()] == ["满意", "基本满意", "不满意"]
    choose(page, ["满意", "不满意"])
    page.get_by_role("button", name="下一步：核对选票").click()
    page.get_by_role("button", name="确认投票").click()
    expect(page.locator("#receipt")).to_be_visible()
    assert api(site_settings, "GET", "ballot", f"/votes/{rating['id']}", "office", Role.OFFICE, town)["cast"] == 1
    assert not page.problems, page.problems


# ---------------------------------------------------------------- bad input


def test_script_tags_in_a_proposal_are_shown_as_text(site, browser, people):
    resident = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    resident.problems = watch(resident)
    resident.goto(f"{site}/propose")
    resident.fill('input[name="title"]', "<script>alert('标题')</script>路灯")
    resident.fill('textarea[name="content"]', '<img src=x onerror="alert(1)"><b>加粗</b>')
    resident.get_by_role("button", name="提交").click()
    expect(resident.get_by_role("heading", name="建议已收到")).to_be_visible()
    expect(resident.locator("main")).to_contain_text("<script>alert('标题')</script>路灯")

    office = browser.new_context(locale="zh-CN").new_page()
    office.problems = watch(office)
    sign_in(office, site, "fuyu-office")
    office.goto(f"{site}/office/proposals?q=路灯")
    office.get_by_role("link", name="<script>alert('标题')</script>路灯").click()
    expect(office.locator("#content")).to_have_text('<img src=x onerror="alert(1)"><b>加粗</b>')
    assert office.locator("#content img, #content b, main script").count() == 0
    assert not resident.problems and not office.problems, (resident.problems, office.problems)  # no alert() ran


def test_a_proposal_of_100_kb_is_refused_with_a_message_in_chinese(site, browser):
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(f"{site}/propose")
    page.fill('input[name="title"]', "很长的建议")
    page.evaluate("document.querySelector('textarea[name=content]').removeAttribute('maxlength')")  # as a script could
    page.fill('textarea[name="content"]', "路" * 100_000)
    page.get_by_role("button", name="提交").click()
    expect(page.get_by_role("alert")).to_have_text("内容最多 10000 字，当前 100000 字。")


def test_an_expired_session_shows_a_clear_page_not_a_stack_trace(site, browser, site_settings):
    from web.session import COOKIE, Visitor, encode

    soon = int(time.time()) + 600
    for visitor, path, way_back in (
        (Visitor(token="x", sub="fuyu-office", role="office", jurisdiction="taihu.fuyu", idle_until=int(time.time()) - 1),
         "/office/proposals", "/signin?next=/office/proposals"),
        # the page session is alive but the service no longer takes its token
        (Visitor(token="not-a-token", sub="fuyu-office", role="office", jurisdiction="taihu.fuyu", idle_until=soon),
         "/office/proposals", "/signin?next=/office/proposals"),
        # a deputy's voting credential ran out (the sitting ended): check in again, not a password
        (Visitor(token="x", sub="K1", role="deputy", jurisdiction=TOWN, token_exp=int(time.time()) - 1, idle_until=soon),
         "/vote", "/checkin"),
    ):
        context = browser.new_context(locale="zh-CN")
        context.add_cookies([{"name": COOKIE, "value": encode(visitor, site_settings), "url": site}])
        page = context.new_page()
        response = page.goto(f"{site}{path}")
        assert response.status == 401
        expect(page.get_by_role("heading", name="登录已过期")).to_be_visible()
        expect(page.locator("main a.button")).to_have_attribute("href", way_back)
        assert "Traceback" not in page.content()
        context.close()


def test_a_form_without_its_csrf_token_is_refused(site, site_settings):
    from shared.auth import Role, mint
    from web.session import COOKIE, Visitor, encode

    visitor = Visitor(token=mint("fuyu-office", Role.OFFICE, "taihu.fuyu"), sub="fuyu-office", role="office",
                      jurisdiction="taihu.fuyu", idle_until=int(time.time()) + 600)
    with httpx.Client(base_url=site, cookies={COOKIE: encode(visitor, site_settings)}) as client:
        refused = client.post("/office/sessions", data={"name": "x", "year": "2025", "term": "1"})
        assert refused.status_code == 403 and "表单已失效" in refused.text
        forged = client.post("/office/sessions", data={"name": "x", "year": "2025", "term": "1", "csrf": "guess"})
        assert forged.status_code == 403
        page = client.get("/office/sessions")
        assert page.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Lax" in page.headers["set-cookie"]
        assert client.post("/signin/development", data={}).status_code in (403, 404, 405)  # no token is minted by the pages


# ---------------------------------------------------------------- identity: check-in and accounts


def test_a_deputy_checks_in_on_their_own_phone_and_votes_and_a_second_phone_is_refused(site, browser, vote, people):
    office = browser.new_context(locale="zh-CN").new_page()
    sign_in(office, site, "kb-office")
    office.goto(f"{site}/office/sessions/{vote['session']}")
    code = office.locator("#checkin-code").inner_text()  # shown in the hall, printed on the sheet
    assert code == vote["code"]

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", user_agent=WECHAT_UA, is_mobile=True).new_page()
    phone.problems = watch(phone)
    phone.goto(f"{site}/checkin?code={code}")
    axe(phone, "check-in")
    phone.fill('input[name="deputy_id"]', "K8")
    phone.fill('input[name="personal_code"]', "2468")
    phone.get_by_role("button", name="签到").click()
    expect(phone).to_have_url(f"{site}/vote")
    phone.locator("a.tile").first.click()
    choose(phone, ["赞成", "反对", "反对", "弃权"])
    phone.get_by_role("button", name="下一步：核对选票").click()
    phone.get_by_role("button", name="确认投票").click()
    expect(phone.locator("#receipt")).to_be_visible()  # cast with identity's voting credential
    assert not phone.problems, phone.problems

    other = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    other.goto(f"{site}/checkin?code={code}")
    other.fill('input[name="deputy_id"]', "K8")
    other.fill('input[name="personal_code"]', "2468")
    other.get_by_role("button", name="签到").click()
    expect(other.get_by_role("alert")).to_be_visible()
    expect(other).to_have_url(f"{site}/checkin")  # refused: the credential is bound to the first phone

    office.goto(f"{site}/office/sessions/{vote['session']}")
    row = office.locator("#credentials ~ .table-wrap tr", has_text="K8")
    expect(row).to_contain_text("已签到")
    row.get_by_role("button", name="撤销").click()
    expect(office.locator("#credentials ~ .table-wrap tr", has_text="K8")).to_contain_text("已撤销")

    # A deputy without a phone: the office binds the seat's tablet (recorded), signs out, the deputy checks in on it
    tablet = browser.new_context(locale="zh-CN").new_page()
    sign_in(tablet, site, "kb-office", next=f"/office/sessions/{vote['session']}")
    form = tablet.locator('form[action$="/tablet"]')
    form.locator('input[name="deputy_id"]').fill("K10")
    form.get_by_role("button", name="本机绑定为座席平板").click()
    expect(tablet.locator("#tablet-bound")).to_contain_text("K10")
    tablet.get_by_role("button", name="退出").click()
    check_in(tablet, site, code, "K10", "1357")
    expect(tablet.locator("a.tile")).to_have_count(1)
    office.goto(f"{site}/office/sessions/{vote['session']}")
    expect(office.locator("#credentials ~ .table-wrap tr", has_text="K10")).to_contain_text("座席平板")


def test_staff_sign_in_with_their_account_and_a_wrong_password_is_refused_in_words(site, browser, site_settings):
    from shared.auth import Role, mint

    admin = mint("county-admin", Role.ADMIN, "taihu")
    created = httpx.post(f"{site_settings.url('identity')}/accounts", headers={"authorization": f"Bearer {admin}"}, timeout=30,
                         json={"username": "kb-clerk", "display_name": "人大办王", "password": "Lanting-xu-2025-spring",
                               "grants": [{"role": "office", "jurisdiction": TOWN}]})
    assert created.status_code == 201, created.text
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{site}/office/proposals")  # not signed in: to the sign-in page, and back afterwards
    page.fill('input[name="username"]', "kb-clerk")
    page.fill('input[name="password"]', "wrong-password-123")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#error")).to_have_text("用户名或密码错误")
    page.fill('input[name="password"]', "Lanting-xu-2025-spring")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(f"{site}/office/proposals")
    expect(page.locator("header")).to_contain_text("人大办王")
    alive = page.request.get(f"{site}/session/alive")  # what the page calls while it is in use
    assert alive.status == 204 and "pj_session=" in alive.headers["set-cookie"]  # the page session renewed
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(f"{site}/signin")
    page.goto(f"{site}/office/proposals")
    expect(page).to_have_url(re.compile(r"/signin\?next="))


# ---------------------------------------------------------------- tellers: paper ballots


def test_a_teller_enters_paper_ballots_one_by_one_with_the_issued_and_collected_check(site, site_settings, browser, people):
    from piaojue.teller import new_key

    vote = open_vote(site_settings, "taihu.kp1", ["P1", "P2", "P3"], ["甲：路灯", "乙：水管", "丙：广场"], seats=2, mode="paper",
                     tellers={"kp1-teller": new_key(), "kp1-t2": new_key()})
    page = browser.new_context(locale="zh-CN").new_page()
    page.problems = watch(page)
    sign_in(page, site, "kp1-teller")
    page.goto(f"{site}/tellers")
    page.get_by_role("link", name=re.compile("纸质选票")).click()
    expect(page.locator("#issued")).to_have_text("3")
    expect(page.locator("#balance")).to_have_text("尚有 3 张未录入")
    axe(page, "paper ballots")
    for labels, outcome in ((["赞成", "赞成", "反对"], "有效票"), (["赞成", "赞成", "赞成"], "无效票"), (["反对", "弃权", "赞成"], "有效票")):
        for fieldset, label in zip(page.locator("#ballot-form fieldset").all(), labels, strict=True):
            fieldset.get_by_text(label, exact=True).click()
        page.get_by_role("button", name="录入这张选票").click()
        expect(page.locator("#entered")).to_contain_text(outcome)
    expect(page.locator("#collected")).to_have_text("3")
    expect(page.locator("#balance")).to_have_text("收回等于发出")
    expect(page.locator("#totals-form")).to_have_count(0)  # one by one, or by totals: not both
    assert vote["get"]()["cast"] == 3
    assert not page.problems, page.problems


def test_a_teller_enters_paper_totals_and_a_wrong_sum_is_refused_in_words(site, site_settings, browser, people):
    from piaojue.teller import new_key

    open_vote(site_settings, "taihu.kp2", ["Q1", "Q2", "Q3"], ["甲：路灯", "乙：水管", "丙：广场"], seats=2, mode="paper",
              tellers={"kp2-teller": new_key(), "kp2-t2": new_key()})
    page = browser.new_context(locale="zh-CN").new_page()
    sign_in(page, site, "kp2-teller")
    page.goto(f"{site}/tellers")
    page.get_by_role("link", name=re.compile("纸质选票")).click()
    form = page.locator("#totals-form")
    form.locator('input[name="collected"]').fill("3")
    form.locator('input[name="invalid"]').fill("4")  # more invalid than collected
    form.get_by_role("button", name="录入总数").click()
    expect(page.locator("#error")).to_be_visible()  # the ballot service's refusal, in its words
    form = page.locator("#totals-form")
    form.locator('input[name="collected"]').fill("3")
    form.locator('input[name="invalid"]').fill("0")
    for row, marks in zip(form.locator("tbody tr").all(), [(3, 0, 0), (2, 1, 0), (1, 1, 1)], strict=True):
        for cell, n in zip(row.locator("input").all(), marks, strict=True):
            cell.fill(str(n))
    form.get_by_role("button", name="录入总数").click()
    expect(page.locator("#entered")).to_have_text("已按总数录入：收回 3 张，有效 3 张，无效 0 张。")
    expect(page.locator("#balance")).to_have_text("收回等于发出")
