"""Browser tests: Debian's Chromium driven by Playwright (no browser download), one browser per
test session, the four services and the web front started once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from piaojue import processes
from piaojue.screenshots import CHROMIUM, launch
from tests.e2e.conftest import Cluster


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run deploy/local/setup.sh (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(settings, tmp_path_factory):
    """The services and the pages, on this run's database and vhost; the pages' base URL."""
    cluster = Cluster(settings, tmp_path_factory.mktemp("service-logs"))
    cluster.start(*processes.EVERYTHING)
    try:
        yield settings.url("web")
    finally:
        cluster.stop()
