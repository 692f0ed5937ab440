"""The live view on the pages when access changes: the office revokes the hall display's
credential (the big screen stops showing the session), the session closes (the console shows it
closed, once), and a console whose sign-in is renewed while it follows the live view keeps
following it.

Staff access tokens last minutes and the page session renews them with the refresh token; the
ballot service ends a stream when the token it was opened with runs out (``token-expired``). So
that a renewal happens within a test, identity, the ballot service and the pages run here once
more (replicas on the same database and broker) with access tokens of a few seconds."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import expect

from piaojue import processes
from piaojue.screenshots import PHONE, SCREEN
from shared.auth import Role
from tests.browser.support import add_accounts, api, axe, check_in, open_vote, sign_in, until, watch

TOWN = "taihu.kr"
DEPUTIES = ["R1", "R2", "R3"]
TOKEN_SECONDS = 6  # under the front's two-minute margin: every page request renews it


@pytest.fixture(scope="module")
def short(site, settings, tmp_path_factory):
    """The pages (with identity and the ballot service) on ports of their own, their access tokens short."""
    short = settings.model_copy(update={"base_port": settings.base_port + 40})
    env = {**os.environ, "PIAOJUE_BASE_PORT": str(short.base_port), "PIAOJUE_DB_POOL_MAX": "3",
           "PIAOJUE_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS)}
    procs = processes.start(short, ("identity", "ballot", processes.WEB), env=env, log_dir=tmp_path_factory.mktemp("short-logs"))
    try:
        processes.wait_ready(short, procs, broker=True)
        yield short.url("web")
    finally:
        processes.stop(procs)


def test_the_office_revokes_the_big_screens_credential_and_the_screen_stops_showing_the_session(site, browser, site_settings):
    town = "taihu.ks"
    add_accounts(site_settings, [("ks-office", "人大办", "office", town, "")])
    vote = open_vote(site_settings, town, ["S1", "S2"], ["甲：村道亮化", "乙：饮水改造"], seats=1)
    session = vote["session"]

    # On the hall's PC the office turns the browser into the big screen (本机用作大屏).
    screen = browser.new_context(viewport=SCREEN, locale="zh-CN").new_page()
    screen_problems = watch(screen)
    sign_in(screen, site, "ks-office", next=f"/office/sessions/{session}")
    screen.click("#make-screen")
    expect(screen).to_have_url(f"{site}/screen/{session}")
    expect(screen.locator('[data-live="issued"]')).to_have_text("2")

    # From the office's own PC: the screen's credential is listed, and revoked with its reason.
    office = browser.new_context(locale="zh-CN").new_page()
    office_problems = watch(office)
    sign_in(office, site, "ks-office", next=f"/office/sessions/{session}")
    row = office.locator("#displays ~ .table-wrap tr[data-display]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("使用中")
    axe(office, "the session's page with its big screen")
    credential = row.get_attribute("data-display")
    row.locator('input[name="reason"]').fill("大屏电脑已撤走")
    row.get_by_role("button", name="撤销大屏凭证").click()
    expect(office.locator(f'tr[data-display="{credential}"]')).to_contain_text("已撤销")
    expect(office.locator(f'tr[data-display="{credential}"]').get_by_role("button")).to_have_count(0)

    # The screen's stream ends (credential-revoked): it reloads, and says its credential is gone.
    expect(screen.get_by_role("alert")).to_contain_text("大屏凭证已失效")
    screen.goto(f"{site}/screen/{session}")  # its page session is gone: the office would sign in here again
    expect(screen).to_have_url(re.compile(r"/signin\?next="))

    # Bad input: a credential that is not this session's screen is refused in words, nothing changes.
    csrf = office.locator('form[action^="/office/sessions/"] input[name="csrf"]').first.input_value()
    for bad in (credential, "00000000-0000-4000-8000-000000000000"):
        answer = office.request.post(f"{site}/office/sessions/{session}/display/{bad}/revoke", form={"csrf": csrf, "reason": "再撤"})
        assert answer.status in (404, 409) and ("已撤销" in answer.text() or "未找到" in answer.text()), (answer.status, answer.text())
    office.reload()
    expect(office.locator("#displays ~ .table-wrap tr[data-display]")).to_have_count(1)
    assert not screen_problems and not office_problems, (screen_problems, office_problems)


def test_the_console_shows_its_session_closed_once_and_stops_following_it(site, browser, site_settings):
    town = "taihu.kc"
    add_accounts(site_settings, [("kc-office", "人大办", "office", town, "")])
    api(site_settings, "PUT", "ballot", "/terms/1/roster", "office", Role.OFFICE, town,
        {"quota": 2, "deputies": [{"deputy_id": d, "name": d} for d in ("C1", "C2")]})
    session = api(site_settings, "POST", "ballot", "/sessions", "office", Role.OFFICE, town, {"name": "闭会测试", "year": 2025, "term": 1})
    console = browser.new_context(locale="zh-CN").new_page()
    problems = watch(console)
    streams: list[int] = []
    console.on("response", lambda r: streams.append(r.status) if "/live/" in r.url else None)
    sign_in(console, site, "kc-office", next=f"/chair/sessions/{session['id']}")
    until(lambda: live_requests(console, streams), "the console to open its stream")

    # The session closes: the stream's last event says so, the page reloads once to show it closed
    # and follows no more (its stream would only end again: a reload every few milliseconds).
    api(site_settings, "POST", "ballot", f"/sessions/{session['id']}/close", "chair", Role.PRESIDING, town)
    expect(console.locator("[data-session]")).to_have_attribute("data-session-status", "closed")
    console.evaluate("window.settled = true")  # gone if the page reloads again
    console.wait_for_load_state("networkidle")  # half a second without a request
    assert console.evaluate("window.settled === true")
    assert live_requests(console, streams) == [200], streams
    assert not problems, problems


def test_a_console_whose_sign_in_is_renewed_while_it_streams_keeps_its_stream(short, browser, site_settings):
    add_accounts(site_settings, [("kr-presidium", "大会主席团", "presiding", TOWN, "")])
    vote = open_vote(site_settings, TOWN, DEPUTIES, ["甲：村道亮化", "乙：饮水改造"], seats=1)

    chair = browser.new_context(locale="zh-CN").new_page()
    problems = watch(chair)
    streams: list[int] = []  # the status of each /live request the console made
    chair.on("response", lambda r: streams.append(r.status) if "/live/" in r.url else None)
    sign_in(chair, short, "kr-presidium", next=f"/chair/sessions/{vote['session']}")
    card = chair.locator(f'section[data-vote="{vote["id"]}"]')
    expect(card.locator('[data-live="cast"]')).to_have_text("0")
    chair.evaluate("window.notReloaded = true")  # gone if the page reloads
    until(lambda: live_requests(chair, streams), "the console to open its stream")
    first_cookie = session_cookie(chair)

    # The page renews its sign-in while the stream is open, twice at once (the quiet call of a page
    # in use while another tab of the same sign-in reconnects): one renewal, shared, so identity
    # does not take it for a stolen refresh token and end the sign-in. The token the stream was
    # opened with then runs out: the stream says so and the page comes back with the renewed
    # sign-in, resuming where it was.
    both = chair.evaluate("Promise.all([1, 2].map(() => fetch('/session/alive', {credentials: 'same-origin'})))"
                          ".then(answers => answers.map(a => a.status))")
    assert both == [204, 204], both
    assert session_cookie(chair) != first_cookie
    until(lambda: len(live_requests(chair, streams)) >= 2, "the console to follow the stream again after its token ran out",
          timeout=TOKEN_SECONDS * 4)
    renewed_at = time.monotonic()

    phone = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    check_in(phone, short, vote["code"], "R1")
    phone.locator("a.tile").first.click()
    phone.locator("fieldset").first.get_by_text("赞成", exact=True).click()
    phone.get_by_role("button", name="下一步：核对选票").click()
    phone.get_by_role("button", name="确认投票").click()
    expect(phone.locator("#receipt")).to_be_visible()

    expect(card.locator('[data-live="cast"]')).to_have_text("1")  # followed, not reloaded
    assert chair.evaluate("window.notReloaded === true")
    live_requests(chair, streams)
    assert all(status == 200 for status in streams), streams  # never signed out, never refused
    # One stream per token: a reconnection when each runs out, no storm.
    elapsed = time.monotonic() - renewed_at
    assert len(streams) <= 2 + elapsed / TOKEN_SECONDS + 1, (streams, elapsed)
    assert not problems, problems


def session_cookie(page) -> str:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "pj_session"), "")


def live_requests(page, seen: list[int]) -> list[int]:
    """The statuses seen so far (sync Playwright delivers a page's events during its own calls only)."""
    page.evaluate("0")
    return seen
