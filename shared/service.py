"""One shape for every service process: HTTP API + event consumers + outbox relay, sharing
one asyncio loop, one database pool and one broker connection."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from shared import audit, operations, tracing
from shared import logging as plog
from shared.auth import production_problems
from shared.db import create_pool, migrate, prune
from shared.http import SERVER_SEND, RequestContext, health_router, install_error_handlers, openapi
from shared.messaging import BROKER_CONNECTED, BrokerLink, Consumer, run_relay
from shared.settings import Settings, get_settings

log = structlog.get_logger()


@dataclass
class Service:
    name: str  # also its PostgreSQL schema and the producer name on its events
    title: str  # for people: 征集 / 票决 / 监督 / 考核
    router: APIRouter
    migrations: Path
    consumers: list[Consumer] = field(default_factory=list)
    # Background work besides the relay, each run as ``task(app)`` for the life of the process.
    tasks: list[Callable[[FastAPI], Awaitable[None]]] = field(default_factory=list)


def create_app(service: Service, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refuse_unsafe_production(settings, service.name)
        traced_here = not tracing.enabled() and tracing.configure(settings, service.name)
        pool = await create_pool(settings, service.name)
        # The broker is not needed to serve HTTP (events wait in the outbox): it is connected, and the
        # consumers subscribed, in the background, and the service is ready as soon as the database is.
        link = BrokerLink(settings, service.consumers, pool, service.name)
        BROKER_CONNECTED.set_function(lambda: float(link.connected))  # read at each scrape
        app.state.pool, app.state.link, app.state.broker, app.state.settings = pool, link, link.broker, settings
        app.state.stopping = []  # called as the server begins to stop, before it waits for open responses
        connecting = asyncio.create_task(link.run(), name="broker-link")
        relay = asyncio.create_task(run_relay(pool, link, service.name, settings), name="outbox-relay")
        background = [asyncio.create_task(task(app), name=getattr(task, "__qualname__", "task"))
                      for task in (housekeeping, *service.tasks)]
        if settings.env != "production":
            log.warning("development mode: tokens signed with the development key are accepted; "
                        "set PIAOJUE_ENV=production and the keys in any real deployment")
        app.state.refresh_metrics = operations.refresh_metrics  # /metrics reads the outbox lag and the queues
        if settings.env == "production" and not (settings.audit_signing_key and settings.audit_anchor_file):
            log.warning("the audit chain's head is not anchored by this process (PIAOJUE_AUDIT_SIGNING_KEY, "
                        "PIAOJUE_AUDIT_ANCHOR_FILE): run `piaojue audit anchor` from a job instead")
        if settings.audit_signing_key and settings.audit_anchor_file:
            background.append(asyncio.create_task(audit.run_anchoring(
                pool, service.name, audit.signing_key(settings.audit_signing_key), Path(settings.audit_anchor_file),
                settings.audit_anchor_seconds), name="audit-anchoring"))
        # Everything made at start-up (modules, routes, models) lives as long as the process: keep it out
        # of the collector's full passes, which otherwise walk it all (≈0.1–0.2 s here) in the middle of requests.
        gc.freeze()
        # A young collection every 700 objects kept alive is too often for a replica holding thousands
        # of live-view streams: each state handed to them keeps a future and a handle per stream alive
        # for a moment, and each collection walks them. Every 50,000 costs the same per object.
        gc.set_threshold(50_000, 10, 10)
        log.info("service started")
        try:
            yield
        finally:
            for task in (connecting, relay, *background):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await link.stop()
            await pool.close()
            if traced_here:
                tracing.shutdown()  # flushes the spans not yet exported
            log.info("service stopped")

    app = App(title=f"piaojue {service.name} ({service.title})", lifespan=lifespan,
              generate_unique_id_function=lambda route: route.name,  # operationId = the route function's name
              # Traces are ours (shared/tracing.py: one trace from request to consumer), metrics are
              # Prometheus': FastAPI's own telemetry would add a second span per request once a tracer
              # is set, and looks for OpenTelemetry providers on every request even when none is.
              telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    app.openapi = lambda: openapi(app)
    app.state.service = service.name
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(tracing.TracingMiddleware)  # outermost; a no-op unless tracing is on
    install_error_handlers(app)
    app.include_router(health_router(_ready))
    app.include_router(service.router)
    return app


async def _ready(app: FastAPI) -> tuple[dict[str, bool], dict[str, bool]]:
    """Ready = the database answers: that is all HTTP needs. The broker is reported beside it (and as
    the ``piaojue_broker_connected`` gauge): while it is away, events wait in the outbox."""
    database = False
    with contextlib.suppress(Exception):
        database = await asyncio.wait_for(app.state.pool.fetchval("SELECT true"), 2)
    return {"database": database}, {"broker": app.state.link.connected}


async def housekeeping(app: FastAPI) -> None:
    """Prune the outbox, inbox and Idempotency-Key answers past their retention (shared.db.prune)."""
    settings: Settings = app.state.settings
    while True:
        try:
            deleted = await prune(app.state.pool, settings)
            if any(deleted.values()):
                log.info("pruned past retention", **deleted)
        except Exception:
            log.exception("pruning failed; will retry")
        await asyncio.sleep(settings.prune_interval_seconds)


class UnsafeProduction(SystemExit):
    pass


def refuse_unsafe_production(settings: Settings, service: str) -> None:
    """In production mode, stop before serving anything if the keys are missing, the development
    key's, or placeholders (shared.auth.production_problems)."""
    problems = production_problems(settings, service)
    if problems:
        for problem in problems:
            log.error("refusing to start in production mode", service=service, problem=problem)
        raise UnsafeProduction(f"{service}: refusing to start in production mode: " + "; ".join(problems))


def main(service: Service) -> None:
    """``python -m services.<name> [--port N] [--migrate]``."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog=f"python -m services.{service.name}")
    parser.add_argument("--port", type=int, default=settings.port(service.name))
    parser.add_argument("--host", default=settings.http_host)
    parser.add_argument("--migrate", action="store_true", help="apply this service's migrations first")
    args = parser.parse_args()
    plog.configure(service.name, settings.log_level)
    refuse_unsafe_production(settings, service.name)
    if args.migrate:
        applied = migrate(settings, service.name, service.migrations)
        log.info("migrations applied", applied=applied)
    app = create_app(service, settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5)
    Server(config).run()


class App(FastAPI):
    """FastAPI, keeping the server's own ``send`` in the scope (``SERVER_SEND``): a long response
    (the live view) writes its body chunks with it, past the middlewares' wrappers, which look only
    at the response's start and would otherwise run for each of thousands of streams' events."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SERVER_SEND] = send
        await super().__call__(scope, receive, send)


class Server(uvicorn.Server):
    """uvicorn, telling the app that it stops before waiting for open responses to end: long
    ones (the live view's streams) then end on their own, with a last event saying so."""

    async def shutdown(self, sockets=None) -> None:
        app = self.config.app
        for stop in getattr(app.state, "stopping", []):
            stop()
        await super().shutdown(sockets)
