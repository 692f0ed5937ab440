"""Rendering: one Jinja2 environment (autoescaping everything: proposal text is untrusted), the
frame every page shares (navigation by role, language, text size), and the pages shown when
something goes wrong."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.auth import Role
from web import i18n
from web.auth import csrf_token
from web.session import Visitor

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["pct"] = i18n.percent

# What each role finds in the navigation: (label, path).
NAV = {
    Role.DEPUTY: [("投票", "/vote")],
    Role.PRESIDING: [("会议主持", "/chair")],
    Role.OFFICE: [("提案管理", "/office/proposals"), ("候选项目清单", "/office/slates"), ("代表名单", "/office/roster"),
                  ("会议与表决", "/office/sessions"), ("项目看板", "/board")],
    Role.LEAD_UNIT: [("项目进度", "/unit")],
    Role.COUNTY: [("考核比较", "/county"), ("项目看板", "/board")],
    Role.TELLER: [("监票", "/tellers")],
    Role.DISPLAY: [("大屏", "/screen")],
}


def lang_of(request: Request) -> str:
    lang = request.cookies.get("lang", "zh")
    return lang if lang in i18n.LANGS else "zh"


def render(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200,
           page_class: str = "", light: bool = False) -> HTMLResponse:
    """``light``: a page for a phone on a slow connection (the ballot): no htmx, only its own small script."""
    lang = lang_of(request)
    who: Visitor | None = request.state.visitor
    context = context or {}

    def _(text: str, **values: Any) -> str:
        return i18n.translate(text, lang, **values)

    frame = {
        "_": _, "lang": lang, "who": who, "csrf": csrf_token(request), "path": request.url.path,
        "nav": NAV.get(Role(who.role), []) if who else [], "role_label": _role_label(who), "large": request.cookies.get("size") == "large",
        "date": lambda v: i18n.cn_date(v, lang), "yuan": lambda v: i18n.yuan(v, lang),
        "until": (lambda: datetime.fromtimestamp(who.expires_at).strftime("%H:%M")) if who else None,
        "page_class": page_class, "light": light,
    }
    return HTMLResponse(env.get_template(template).render(**frame, **context), status_code=status)


def _role_label(who: Visitor | None) -> str:
    from web.auth import ROLE_LABELS

    return ROLE_LABELS.get(Role(who.role), who.role) if who else ""


def problem_page(request: Request, message: str, detail: str = "", status: int = 409, title: str = "操作失败") -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message, "detail": detail}, status=status)


def pages(total: int, page: int, size: int) -> dict[str, int]:
    count = max(1, math.ceil(total / size))
    page = min(max(1, page), count)
    return {"page": page, "pages": count, "total": total, "start": (page - 1) * size, "end": page * size}
