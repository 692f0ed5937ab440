"""The live view on the pages when access changes: a console whose sign-in is renewed while it
follows the live view keeps following it.

Staff access tokens last minutes and the page session renews them with the refresh token; the
ballot service ends a stream when the token it was opened with runs out (``token-expired``). So
that a renewal happens within a test, identity, the ballot service and the pages run here once
more (replicas on the same database and broker) with access tokens of a few seconds."""

from __future__ import annotations

import os
import time

import pytest
from playwright.sync_api import expect

from piaojue import processes
from piaojue.screenshots import PHONE
from tests.browser.support import add_accounts, check_in, open_vote, sign_in, until, watch

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
