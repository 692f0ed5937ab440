"""Browser tests: Debian's Chromium driven by Playwright (no browser download), one browser and
one set of services with the web front for the browser tests of a run (each test works in a
township of its own, or asserts only what it made), on ports of their own (base + 20) so they
never meet the end-to-end tests' clusters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from piaojue import processes
from piaojue.screenshots import CHROMIUM, launch

# What a page is expected to show, it shows within 15 s: a busy CI machine (or one shared by
# several runs) can take more than Playwright's 5 s to count a sealed round or relay an event;
# a passing expectation returns as soon as it holds, so this costs nothing when all is well.
EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def site_settings(settings):
    return settings.model_copy(update={"base_port": settings.base_port + 20})


@pytest.fixture(scope="session")
def cluster(site_settings, tmp_path_factory):
    """The services and the pages, started on this run's database and vhost (not yet ready)."""
    # a small pool each: the machine's PostgreSQL is shared, and these pages need few connections
    env = {**os.environ, "PIAOJUE_BASE_PORT": str(site_settings.base_port), "PIAOJUE_DB_POOL_MAX": "4"}
    procs = processes.start(site_settings, processes.EVERYTHING, env=env, log_dir=tmp_path_factory.mktemp("site-logs"))
    try:
        yield procs
    finally:
        processes.stop(procs)


@pytest.fixture(scope="session")
def browser(cluster):
    """Chromium, launched while the services start."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run deploy/local/setup.sh (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def site(cluster, browser, site_settings):
    """The pages' base URL, once everything answers."""
    processes.wait_ready(site_settings, cluster, broker=True)  # the consumers linked: events flow
    return site_settings.url("web")


PEOPLE = [  # (account, name, role, jurisdiction, unit): made once at identity, as the county's administrator would
    ("fuyu-office", "孚玉镇人大办", "office", "taihu.fuyu", ""),
    ("fuyu-presidium", "孚玉镇大会主席团", "presiding", "taihu.fuyu", ""),
    ("fuyu-t1", "监票人甲", "teller", "taihu.fuyu", ""),
    ("fuyu-t2", "监票人乙", "teller", "taihu.fuyu", ""),
    ("fuyu-t3", "监票人丙", "teller", "taihu.fuyu", ""),
    ("fuyu-chengjian", "镇城建办", "lead_unit", "taihu.fuyu", "镇城建办"),
    ("taihu-kaohe", "县人大考核组", "county", "taihu", ""),
    ("kb-office", "人大办", "office", "taihu.kb", ""),
    ("kp1-teller", "监票人", "teller", "taihu.kp1", ""),
    ("kp2-teller", "监票人", "teller", "taihu.kp2", ""),
]


@pytest.fixture(scope="session")
def people(site, site_settings):
    """Everyone's account, at the identity service (password: piaojue.screenshots.PASSWORD)."""
    from piaojue.screenshots import add_accounts

    add_accounts(site_settings, PEOPLE)
    return {p[0]: p for p in PEOPLE}
