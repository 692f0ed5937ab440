"""The web front's own rules, without a browser: the page session cookie, the message catalogue,
the formats people read, and the vendored scripts against their pins."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from shared.settings import Settings
from web import i18n
from web.session import Visitor, decode, encode
from web.vendor import MANIFEST, PINS, VENDOR

WEB = Path(__file__).resolve().parents[2] / "web"
SETTINGS = Settings(web_secret="unit-test-secret")


def visitor(**kw) -> Visitor:
    return Visitor(**{"token": "t", "sub": "D001", "role": "deputy", "jurisdiction": "taihu.fuyu",
                      "idle_until": int(time.time()) + 60, **kw})


def test_a_session_cookie_reads_back_only_when_this_deployment_signed_it_unchanged():
    cookie = encode(visitor(), SETTINGS)
    assert decode(cookie, SETTINGS) == visitor(csrf=decode(cookie, SETTINGS).csrf)
    body, sig = cookie.rsplit(".", 1)
    assert decode(cookie, Settings(web_secret="another-deployment")) is None
    forged = encode(visitor(role="presiding"), SETTINGS).rsplit(".", 1)[0]
    assert decode(f"{forged}.{sig}", SETTINGS) is None  # a role changed under the old signature
    for garbage in ("", ".", "abc", "x" * 9000, f"{body}.", "€.€"):
        assert decode(garbage, SETTINGS) is None


def test_a_session_expires_when_idle_or_when_its_token_does():
    now = time.time()
    assert not visitor(idle_until=int(now) + 10).expired(now)
    assert visitor(idle_until=int(now) - 1).expired(now)
    assert visitor(idle_until=int(now) + 600, token_exp=int(now) - 1).expired(now)
    assert visitor(idle_until=int(now) + 600, token_exp=int(now) + 60).expires_at == int(now) + 60


def test_every_phrase_the_templates_translate_has_an_english_entry():
    phrases = set()
    for file in [*(WEB / "templates").glob("*.html"), *(WEB / "pages").glob("*.py"), WEB / "ui.py"]:
        phrases |= set(re.findall(r"""_\(["']([^"']+)["']""", file.read_text()))
    missing = sorted(p for p in phrases if p not in i18n.EN and not p.isascii())
    assert not missing, f"add English for: {missing}"


def test_dates_money_and_percentages_are_written_the_chinese_way():
    assert i18n.cn_date(date(2024, 12, 28)) == "2024年12月28日"
    assert i18n.cn_date("2024-12-28T09:30:00+00:00") == "2024年12月28日"
    assert i18n.cn_date(date(2024, 12, 28), "en") == "28 Dec 2024"
    assert i18n.yuan(Decimal("98000")) == "98,000 元"
    assert i18n.yuan("3200000") == "320.00 万元"
    assert i18n.yuan(None) == "—"
    assert i18n.percent("0.8571") == "85.7%" and i18n.percent(60, ratio=False) == "60.0%"
    assert i18n.translate("第 {round} 轮", "en", round=2) == "Round 2" and i18n.translate("第 {round} 轮", "zh", round=2) == "第 2 轮"


def test_the_vendored_scripts_are_the_pinned_npm_files():
    manifest = json.loads(MANIFEST.read_text())
    assert set(manifest) == {p.target for p in PINS}
    for pin in PINS:
        entry = manifest[pin.target]
        assert (entry["package"], entry["version"], entry["integrity"]) == (pin.name, pin.version, pin.integrity)
        assert hashlib.sha256((VENDOR / pin.target).read_bytes()).hexdigest() == entry["sha256"], pin.target


def test_no_template_carries_inline_script_or_style_the_csp_would_block():
    for file in (WEB / "templates").glob("*.html"):
        text = file.read_text()
        assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))", text), file.name
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=|javascript:", text), file.name


def test_every_template_compiles():
    from web.ui import env

    for file in (WEB / "templates").glob("*.html"):
        env.get_template(file.name)
