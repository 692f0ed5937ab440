"""Signed webhooks to the county assessment system (县考核): the signature, the retry schedule and
when to raise the alarm. Pure: no I/O.

Scheme (documented for receivers): headers ``X-Piaojue-Delivery`` (delivery id),
``X-Piaojue-Timestamp`` (Unix seconds at sending) and ``X-Piaojue-Signature`` =
``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + body). A receiver recomputes it, refuses a
timestamp older than a few minutes, and refuses a (delivery, timestamp) it has already accepted."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

DELIVERY, TIMESTAMP, SIGNATURE = "X-Piaojue-Delivery", "X-Piaojue-Timestamp", "X-Piaojue-Signature"
FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(minutes=15)  # retries go on at this interval until delivered: nothing is dropped
ALERT_AFTER = 5  # consecutive failed attempts before the county's operators are alerted


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {DELIVERY: delivery_id, TIMESTAMP: str(timestamp), SIGNATURE: signature(secret, timestamp, body),
            "Content-Type": "application/json"}


def next_wait(failures: int) -> timedelta:
    """Exponential back-off after the ``failures``-th failed attempt: 10 s, 20 s, 40 s, … capped."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    return min(LONGEST_WAIT, FIRST_RETRY * 2 ** min(failures - 1, 20))


def alert_due(failures: int, alert_after: int = ALERT_AFTER) -> bool:
    """Alert once, when the consecutive failures reach ``alert_after``."""
    return failures == alert_after


def delivered(status: int | None) -> bool:
    return status is not None and 200 <= status < 300
