"""The web front: pages for every person in the process, server-rendered (Jinja2, htmx and a
little plain JavaScript), on top of the services' own HTTP APIs. ``python -m web``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shared import logging as plog
from shared.http import RequestContext, health_router
from shared.settings import Settings, get_settings
from web import auth
from web.client import ServiceDown, ServiceRefused, Services
from web.pages import board, chair, county, office, propose, tellers, unit, vote
from web.session import PageSession
from web.ui import NAV, problem_page, render

log = structlog.get_logger()
STATIC = Path(__file__).parent / "static"
MAX_BODY = 6 * 1024 * 1024  # a form is a few kB, a photo at most 5 MB; more is refused before it is read


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=30)) as client:
            app.state.services = Services(settings, client)
            log.info("web started")
            yield

    app = FastAPI(title="piaojue web (页面)", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = "web"
    app.add_middleware(BodyLimit)
    app.add_middleware(PageSession, settings=settings)
    app.add_middleware(RequestContext)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(health_router(_ready))
    app.include_router(auth.router)
    for pages in (vote, chair, tellers, office, propose, unit, board, county):
        app.include_router(pages.router)

    @app.get("/")
    async def home(request: Request):
        who = request.state.visitor
        if who is None:
            if request.state.expired:
                raise auth.NotSignedIn(expired=True)
            return render(request, "home.html", {"links": [("提交民生实事建议", "/propose"), ("查询办理进展", "/track")]})
        return render(request, "home.html", {"links": NAV.get(who.role, [])})

    @app.get("/lang/{lang}")
    async def switch_language(lang: str, next: str = "/"):
        response = RedirectResponse(auth._local(next), status_code=303)
        response.set_cookie("lang", "en" if lang == "en" else "zh", max_age=365 * 86400, samesite="lax",
                            secure=settings.cookie_secure)
        return response

    @app.get("/size/{size}")
    async def switch_size(size: str, next: str = "/"):
        response = RedirectResponse(auth._local(next), status_code=303)
        response.set_cookie("size", "large" if size == "large" else "normal", max_age=365 * 86400, samesite="lax",
                            secure=settings.cookie_secure)
        return response

    _install_error_pages(app)
    return app


async def _ready(app: FastAPI) -> dict[str, bool]:
    return {"templates": (Path(__file__).parent / "templates" / "base.html").exists()}


def _expired(request: Request, role: str = ""):
    """登录已过期, in words, with the way back for this person: staff sign in again, a deputy
    checks in again with the hall's code, the big screen asks the office to turn it on again."""
    role = role or getattr(request.state, "expired_role", "")
    return render(request, "expired.html", {"next": request.url.path, "role": role}, status=401)


def _install_error_pages(app: FastAPI) -> None:
    """Every failure is a page in words, never a stack trace."""

    @app.exception_handler(auth.NotSignedIn)
    async def _not_signed_in(request: Request, exc: auth.NotSignedIn):
        if exc.expired:
            return _expired(request)
        return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)

    @app.exception_handler(auth.Forbidden)
    async def _forbidden(request: Request, exc: auth.Forbidden):
        return problem_page(request, "无权访问此页面", status=403)

    @app.exception_handler(auth.FormRefused)
    async def _form(request: Request, exc: auth.FormRefused):
        return problem_page(request, "表单已失效，请返回刷新后重试。", status=403)

    @app.exception_handler(ServiceRefused)
    async def _refused(request: Request, exc: ServiceRefused):
        if exc.status == 401 or exc.code in ("credential-revoked", "deputy-absent"):  # the token expired, or was revoked
            who = request.state.visitor
            request.state.visitor_out = None
            return _expired(request, who.role if who else "")
        return problem_page(request, exc.message, exc.detail, status=exc.status if exc.status < 500 else 502)

    @app.exception_handler(ServiceDown)
    async def _down(request: Request, exc: ServiceDown):
        log.warning("service unreachable", error=str(exc))
        return problem_page(request, "服务暂时无法连接，请稍后重试。", status=503, title="出错了")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_page(request, "页面不存在" if exc.status_code == 404 else str(exc.detail), status=exc.status_code,
                            title="出错了")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return problem_page(request, "请求内容有误，请返回检查后重试。", status=422, title="出错了")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error")
        return problem_page(request, "出错了", "请重试或联系人大办。", status=500, title="出错了")


class BodyLimit:
    """Refuses a request body over ``MAX_BODY`` before anything reads it (413, with a page)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
            if not length.isdigit() or int(length) > MAX_BODY:
                request = Request(scope, receive)
                response: Response = problem_page(request, "内容过多，无法提交", status=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def main() -> None:
    settings = get_settings()
    if settings.env == "production" and len(settings.web_secret) < 32:
        raise SystemExit("PIAOJUE_WEB_SECRET must be set (32 characters or more) in production: it signs the pages' sessions")
    parser = argparse.ArgumentParser(prog="python -m web")
    parser.add_argument("--port", type=int, default=settings.port("web"))
    parser.add_argument("--host", default=settings.http_host)
    args = parser.parse_args()
    plog.configure("web", settings.log_level)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=3)
