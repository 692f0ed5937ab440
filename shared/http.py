"""HTTP: RFC 9457 problem+json errors, request ids, metrics, health, idempotent commands."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import UNAVAILABLE, UnitOfWork, unavailable, unit_of_work
from shared.fields import INVALID_CHARACTERS

log = structlog.get_logger()
PROBLEM = "application/problem+json"

REQUESTS = Counter("piaojue_http_requests_total", "HTTP requests", ["method", "route", "status"])
DATABASE_UNAVAILABLE = Counter("piaojue_database_unavailable_total", "Requests answered 503 because the database was unavailable")
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
    """``responses=`` for a route: the problem responses it can give, documented as problem+json.
    401 and 422 always; 400 and 413 are added to every operation that takes a body (``openapi``)."""
    return {status: _problem(status) for status in sorted({401, 422, *statuses})}


def _problem(status: int) -> dict[str, Any]:
    return {"description": _PROBLEM_TITLES[status], "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}}


def links(status: int, **targets: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from this operation's ``status`` answer to the operations it feeds, by
    operationId (the route function's name): the target's parameters as runtime expressions, e.g.
    ``links(201, get_proposal={"proposal_id": "$response.body#/id"})``, and under "requestBody"
    what goes into its body. A client, or a stateful tester, follows them from one step to the next."""
    def link(op: str, given: dict[str, Any]) -> dict[str, Any]:
        parameters = {k: v for k, v in given.items() if k != "requestBody"}
        return {"operationId": op, **({"parameters": parameters} if parameters else {}),
                **({"requestBody": given["requestBody"]} if "requestBody" in given else {})}

    return {status: {"links": {op: link(op, given) for op, given in targets.items()}}}


IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "a retry with the same key gets the first answer back instead of acting twice; "
                                  "a key is unique to one request (a UUID, say): 16 to 200 visible ASCII characters",
                   "schema": {"type": "string", "pattern": "^[!-~]{16,200}$"}}


RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}


def openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document as the service really answers: errors as problem+json (the
    ``ProblemDetail`` schema), 400 and 413 on every operation that reads a body, 503 with
    Retry-After wherever the database is used, and the Idempotency-Key header on every command.
    Generated once per process."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version, routes=app.routes)
    doc.setdefault("components", {}).setdefault("schemas", {})["ProblemDetail"] = ProblemDetail.model_json_schema()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if not path.startswith(("/health/", "/metrics")):  # everything else may find the database away
                operation["responses"].setdefault("503", _problem(503) | {"headers": {"Retry-After": RETRY_AFTER}})
            if method in ("post", "put"):  # commands: they read the body (its size is limited)
                operation["responses"].setdefault("413", _problem(413))
                operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
            if "requestBody" in operation:
                operation["responses"].setdefault("400", _problem(400))
            operation["responses"] = dict(sorted(operation["responses"].items()))
    app.openapi_schema = doc
    return doc


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


_HTTP_PROBLEMS = {400: ("unreadable-body", "无法读取请求内容 Unreadable request body"), 404: ("not-found", ""),
                  405: ("method-not-allowed", ""), 413: ("request-too-large", "请求内容过大 Request too large")}
_MAX_ERRORS = 20  # a problem reports the first few: a 10,000-item list of mistakes is not echoed back


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.code, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:_MAX_ERRORS]]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        if all("-" in e["type"] for e in errors):  # a model's own rule across fields, its type named like a problem code
            return problem_response(request, 422, errors[0]["type"], "不符合规则 Refused by the rules", detail, errors=errors)
        if any(e["type"] in (INVALID_CHARACTERS, "string_unicode") for e in errors):  # NUL, lone surrogates
            return problem_response(request, 422, "invalid-characters", "含有不可保存的字符 Unstorable characters", detail,
                                    errors=errors)
        return problem_response(request, 422, "invalid-request", "请求内容有误 Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400: a body that is not UTF-8; 413: over the route's body limit, refused before it is read.
        code, title = _HTTP_PROBLEMS.get(exc.status_code, ("http-error", ""))
        response = problem_response(request, exc.status_code, code, title or str(exc.detail), str(exc.detail) if title else "")
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Allow: every method of the path, not just those of the first route matched
            response.headers["allow"] = ", ".join(sorted({
                m for r in request.app.router.routes if isinstance(r, Route) and r.path_regex.match(request.url.path)
                for m in r.methods or ()}))
        return response

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not unavailable(exc):  # an asyncpg InterfaceError that is a bug, not an outage
            return await _unexpected(request, exc)
        log.warning("database unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
        DATABASE_UNAVAILABLE.inc()
        settings = getattr(request.app.state, "settings", None)
        return problem_response(request, 503, "database-unavailable", "数据库暂时不可用，请稍后重试 Database unavailable, retry later",
                                "the database is unavailable for now; nothing was changed unless a retry with the same "
                                "Idempotency-Key says so", retry_after=settings.retry_after_seconds if settings else 1)

    # One place for "the database is unavailable": handled per class (not by the catch-all below,
    # which Starlette runs outside the app and which closes the connection), so a 503 is an ordinary answer.
    for cls in (*UNAVAILABLE, asyncpg.InterfaceError):
        app.add_exception_handler(cls, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(request, 500, "internal-error", "服务器内部错误 Internal error", "see the service log")


_REQUEST_ID = re.compile(rb"[!-~]{1,128}")  # a caller's request id is echoed and logged: visible ASCII, short


MAX_BODY = "x-max-body-bytes"  # a route's own body limit, in its OpenAPI operation: openapi_extra=body_limit(n)


SERVER_SEND = "piaojue.server_send"  # scope key: the server's own send (shared.service.App)


def body_limit(max_bytes: int) -> dict[str, int]:
    """``openapi_extra=`` for a route that takes larger bodies than the default (a term's roster)."""
    return {MAX_BODY: max_bytes}


class RequestContext:
    """Plain ASGI middleware (cheaper than Starlette's http middleware on the hot path): a request
    id bound to the logs and echoed back; the request counted and timed per route; and the body
    limited: larger than the route's limit (``body_limit``, else ``max_body_bytes``) is refused
    with 413 before it is read, on its Content-Length, or as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = 1024 * 1024) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given.decode() if _REQUEST_ID.fullmatch(given) else uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started, status, received = time.perf_counter(), 500, -1

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        async def receive_within_limit() -> Message:  # called only by a route that reads its body
            nonlocal received
            limit = (getattr(scope.get("route"), "openapi_extra", None) or {}).get(MAX_BODY, self.max_body_bytes)
            if received < 0:  # the first read: refuse on the declared length, before any byte is read
                received = 0
                declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
                if not declared.isdigit() or int(declared) > limit:
                    raise StarletteHTTPException(413, f"请求内容最多 {limit} 字节 the body may have at most {limit} bytes")
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, f"请求内容最多 {limit} 字节 the body may have at most {limit} bytes")
            return message

        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive_within_limit, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, status).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ok, or unavailable (503)")
    checks: dict[str, bool] = Field(description="what the service needs to serve HTTP, each reachable or not: all true is ready")
    reported: dict[str, bool] = Field(default_factory=dict, description="reported, not needed to be ready: the broker "
                                      "(while it is away, events wait in the outbox and consumers reconnect on their own)")


Ready = Callable[[FastAPI], Awaitable[dict[str, bool] | tuple[dict[str, bool], dict[str, bool]]]]


def health_router(ready: Ready) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", response_model=Liveness)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    not_ready = {"description": "not ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}

    @router.get("/health/ready", response_model=Readiness, responses={503: not_ready})
    async def readiness(request: Request) -> JSONResponse:
        found = await ready(request.app)
        checks, reported = found if isinstance(found, tuple) else (found, {})
        ok = all(checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks, "reported": reported},
                            status_code=200 if ok else 503)

    @router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    async def metrics(request: Request) -> Response:
        refresh = getattr(request.app.state, "refresh_metrics", None)  # gauges read at scrape time (outbox lag, dead letters)
        if refresh is not None:
            try:
                await asyncio.wait_for(refresh(request.app), 3)
            except Exception:
                log.warning("metrics: could not read the outbox or the queues", exc_info=True)
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
    key = idempotency_key(request)
    content = b"" if secret else await request.body()
    fingerprint = hashlib.sha256(request.method.encode() + request.url.path.encode() + content).hexdigest()
    async with unit_of_work(pool, request.app.state.service, _correlation(request)) as uow:
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


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, if any: 16 to 200 visible ASCII characters (long enough to be
    unique to one request; short enough to store and index)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not re.fullmatch(IDEMPOTENCY_KEY["schema"]["pattern"], key):
        raise Problem(422, "invalid-idempotency-key", "幂等键无效 Invalid Idempotency-Key", "16 to 200 visible ASCII characters")
    return key


def _correlation(request: Request) -> UUID | None:
    given = request.headers.get("x-correlation-id")
    try:
        return UUID(given) if given else getattr(request.state, "correlation_id", None)  # tracing's, if on
    except ValueError as exc:
        raise Problem(422, "invalid-correlation-id", "关联标识无效 Invalid X-Correlation-Id", "a UUID") from exc


async def stored_answer(db: asyncpg.Connection | asyncpg.Pool, actor: str, key: str, fingerprint: str) -> JSONResponse | None:
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
