"""Signed webhooks for county systems that cannot speak AMQP: subscribers with their own secrets,
the delivery log, manual redelivery, and the alerts of deliveries that keep failing."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.scoring import store
from services.scoring.sender import utcnow
from shared.auth import Principal, Role, require
from shared.db import UnitOfWork
from shared.fields import Name, text
from shared.http import Problem, command, problems

router = APIRouter(tags=["scoring 考核: webhooks 推送"])
COUNTY = require(Role.COUNTY)
Url = text(500, pattern=r"^https?://[^\s]+$")


class SubscriberIn(BaseModel):
    name: Name
    url: Url
    secret: str | None = Field(default=None, min_length=32, max_length=200, pattern=r"^[\x21-\x7e]+$",
                               description="HMAC key; generated (and shown once) if not given")


@router.post("/webhooks/subscribers", status_code=201, responses=problems(403))
async def add_subscriber(body: SubscriberIn, request: Request, who: Principal = Depends(COUNTY)):
    """Subscribe ``url`` to every assessment version within the caller's jurisdiction. The answer
    carries the secret once; it is not shown again."""

    async def act(uow: UnitOfWork):
        row = await store.add_subscriber(uow.conn, who.jurisdiction, body.name, body.url, body.secret or secrets.token_urlsafe(32))
        await uow.audit(who.jurisdiction, who.sub, "webhook-subscribe", "webhook_subscriber", row["id"],
                        after={"name": body.name, "url": body.url})
        return dict(row)

    return await command(request, who.sub, act, 201, secret=lambda answer: {**answer, "secret": "(shown once)"})


@router.get("/webhooks/subscribers", responses=problems(403))
async def list_subscribers(request: Request, who: Principal = Depends(COUNTY)):
    async with request.app.state.pool.acquire() as conn:
        return [dict(r) for r in await store.subscribers(conn, who.jurisdiction)]


@router.get("/webhooks/deliveries", responses=problems(403))
async def delivery_log(request: Request, status: Literal["pending", "delivered"] | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 200, who: Principal = Depends(COUNTY)):
    """The delivery log: each delivery with every attempt (time, status code, error)."""
    async with request.app.state.pool.acquire() as conn:
        rows = [dict(r) for r in await store.deliveries(conn, who.jurisdiction, status, limit)]
    return {"deliveries": rows, "alerts": [r for r in rows if r["alerted_at"] and r["status"] == "pending"]}


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", responses=problems(403, 404))
async def redeliver(delivery_id: UUID, request: Request, who: Principal = Depends(COUNTY)):
    """Send this delivery again now (after a fix on the receiver's side, or to replace a lost copy)."""

    async def act(uow: UnitOfWork):
        row = await store.delivery(uow.conn, who.jurisdiction, delivery_id)
        if row is None:
            raise Problem(404, "delivery-not-found", "未找到推送记录 Delivery not found", f"no delivery {delivery_id}")
        await store.redeliver(uow.conn, delivery_id, utcnow())
        await uow.audit(who.jurisdiction, who.sub, "webhook-redeliver", "webhook_delivery", delivery_id,
                        before={"status": row["status"]}, after={"status": "pending"})
        return {"id": delivery_id, "status": "pending"}

    return await command(request, who.sub, act)
