"""HTTP: RFC 9457 problem+json errors, request ids, metrics, health, idempotent commands."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import UnitOfWork, unit_of_work
from shared.fields import INVALID_CHARACTERS

log = structlog.get_logger()
PROBLEM = "application/problem+json"

REQUESTS = Counter("piaojue_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "piaojue_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class Problem(Exception):
    """An error a caller can act on. ``code`` is stable; ``title`` is for people (中文 first)."""

    def __init__(self, status: int, code: str, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(f"{code}: {detail or title}")
        self.status, self.code, self.title, self.detail, self.extra = status, code, title, detail, extra


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, as every error is answered (``application/problem+json``)."""

    type: str
    code: str = Field(description="stable: what a client branches on")
    title: str
    status: int
    detail: str = ""
    instance: str
    request_id: str | None = None


_PROBLEM_TITLES = {400: "Bad request", 401: "Not signed in or invalid token", 403: "Not allowed", 404: "Not found",
                   409: "Conflicts with the current state", 413: "Request too large",
                   415: "Unsupported media type", 422: "Invalid request", 423: "Locked until reset",
                   429: "Too many requests", 503: "Temporarily unavailable; retry after Retry-After"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problem responses it can give, documented as problem+json."""
    return {status: {"description": _PROBLEM_TITLES[status],
                     "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}}
            for status in sorted({401, 422, *statuses})}


def problem_response(request: Request, status: int, code: str, title: str, detail: str = "", **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:piaojue:problem:{code}",
        "code": code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request.state.request_id if hasattr(request.state, "request_id") else None,
        **extra,
    }
    headers = {"retry-after": str(extra["retry_after"])} if "retry_after" in extra else None  # 429: when to try again
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.code, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        if any(e["type"] in (INVALID_CHARACTERS, "string_unicode") for e in errors):  # NUL, lone surrogates
            return problem_response(request, 422, "invalid-characters", "含有不可保存的字符 Unstorable characters", detail,
                                    errors=errors)
        return problem_response(request, 422, "invalid-request", "请求内容有误 Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(request, 500, "internal-error", "服务器内部错误 Internal error", "see the service log")


class RequestContext:
    """Plain ASGI middleware (cheaper than Starlette's http middleware on the hot path): a request
    id bound to the logs and echoed back, and the request counted and timed per route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((v.decode() for k, v in scope["headers"] if k == b"x-request-id"), None) or uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, status).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def health_router(ready: Callable[[FastAPI], Awaitable[dict[str, bool]]]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def readiness(request: Request) -> JSONResponse:
        checks = await ready(request.app)
        ok = all(checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def command(
    request: Request, actor: str, act: Callable[[UnitOfWork], Awaitable[Any]], status: int = 200,
    secret: Callable[[Any], Any] | None = None,
) -> JSONResponse:
    """Run a state-changing request in one transaction (state + audit + outbox).

    With an ``Idempotency-Key`` header, the first answer is stored in that same transaction and a
    retry of the same request gets it back without acting again; the same key on a different
    request is refused. For a request whose content must not be kept next to the caller (a secret
    ballot), ``secret`` redacts the stored answer and the body is left out of the fingerprint."""
    pool: asyncpg.Pool = request.app.state.pool
    key = request.headers.get("idempotency-key")
    content = b"" if secret else await request.body()
    fingerprint = hashlib.sha256(request.method.encode() + request.url.path.encode() + content).hexdigest()
    correlation = request.headers.get("x-correlation-id")
    async with unit_of_work(pool, request.app.state.service, UUID(correlation) if correlation else None) as uow:
        if key:
            # Claim the key. A concurrent retry of the same request waits here for the first to end,
            # then finds its answer (or, if the first failed, claims the key itself).
            claimed = await uow.conn.fetchval(
                "INSERT INTO idempotency (principal, key, fingerprint, status, body) VALUES ($1, $2, $3, 0, 'null')"
                " ON CONFLICT DO NOTHING RETURNING true", actor, key, fingerprint,
            )
            if not claimed:
                return await stored_answer(uow.conn, actor, key, fingerprint)
        body = jsonable_encoder(await act(uow))
        if key:
            await uow.conn.execute(
                "UPDATE idempotency SET status = $3, body = $4 WHERE principal = $1 AND key = $2",
                actor, key, status, secret(body) if secret else body,
            )
    return JSONResponse(body, status_code=status)


async def stored_answer(db: asyncpg.Connection, actor: str, key: str, fingerprint: str) -> JSONResponse | None:
    """The first answer to the request this Idempotency-Key was used for, if any; the key used
    for a different request is refused."""
    row = await db.fetchrow("SELECT fingerprint, status, body FROM idempotency WHERE principal = $1 AND key = $2", actor, key)
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise Problem(
            422, "idempotency-key-reused", "幂等键已用于其他请求 Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request",
        )
    return JSONResponse(row["body"], status_code=row["status"], headers={"idempotent-replayed": "true"})
