"""``piaojue county-receiver``: a reference receiver of the signed assessment webhooks, for a county
assessment system (县考核) that cannot speak AMQP — and the other end of the end-to-end tests.

It checks the scheme scoring documents (services/scoring/domain/webhooks.py), written here again
on purpose from the description alone: X-Piaojue-Signature = "sha256=" + hex HMAC-SHA256(secret,
timestamp + "." + body). It refuses a bad signature (401), a timestamp outside the tolerance (400)
and a (delivery, timestamp) it has accepted before (409, a replay); it stores each assessment
version once (a retry or a redelivery of a stored version is answered 200, stored nothing)."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (jurisdiction TEXT, year INT, version INT, assessment_id TEXT, delivery TEXT,
    method_version TEXT, net_points TEXT, completion_rate TEXT, received_at REAL, envelope TEXT,
    PRIMARY KEY (jurisdiction, year, version));
CREATE TABLE IF NOT EXISTS seen (delivery TEXT, timestamp INT, PRIMARY KEY (delivery, timestamp));
"""


def _refuse(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status, media_type="application/problem+json")


def create_app(secret: str, store: Path, tolerance: int = 300) -> FastAPI:
    db = sqlite3.connect(store, check_same_thread=False, isolation_level=None)
    db.executescript(SCHEMA)
    app = FastAPI(title="county assessment receiver (县考核 webhook)")

    @app.post("/webhooks/assessments")
    async def receive(request: Request):
        body = await request.body()
        delivery = request.headers.get("x-piaojue-delivery", "")
        stamp = request.headers.get("x-piaojue-timestamp", "")
        signature = request.headers.get("x-piaojue-signature", "")
        if not (delivery and stamp.isdigit() and signature.startswith("sha256=")):
            return _refuse(400, "missing-signature", "X-Piaojue-Delivery, -Timestamp and -Signature are required")
        if abs(time.time() - int(stamp)) > tolerance:
            return _refuse(400, "stale-timestamp", f"timestamp more than {tolerance}s from now: a replay or a bad clock")
        expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return _refuse(401, "bad-signature", "the signature does not match the body and timestamp")
        with db:
            if db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (delivery, int(stamp))).rowcount == 0:
                return _refuse(409, "replayed", "this signed message was received before")
            envelope = json.loads(body)
            data = envelope["data"]
            stored = db.execute(
                "INSERT OR IGNORE INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (envelope["jurisdiction"], data["year"], data["version"], data["assessment_id"], delivery,
                 data.get("method_version"), str(data["net_points"]), str(data["completion_rate"]), time.time(),
                 body.decode()),
            ).rowcount == 1
        return {"stored": stored}

    @app.get("/assessments")
    async def stored():
        rows = db.execute("SELECT jurisdiction, year, version, assessment_id, delivery, method_version, net_points,"
                          " completion_rate, received_at FROM versions ORDER BY received_at").fetchall()
        keys = ("jurisdiction", "year", "version", "assessment_id", "delivery", "method_version", "net_points",
                "completion_rate", "received_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    return app


def serve(secret: str, store: Path, host: str, port: int, tolerance: int) -> None:
    import uvicorn

    uvicorn.run(create_app(secret, store, tolerance), host=host, port=port, log_level="warning")
