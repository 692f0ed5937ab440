"""What a teller (监票人) does on their own device: make a key pair and keep the private half in a
file; at close, open their sealed share of the round's key with it and present the share.

Used by ``piaojue ballot teller-key`` and ``piaojue ballot present-share``, and by the scenario."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from services.ballot.domain import sealing


def new_key(suite_name: str = sealing.DEFAULT_SUITE) -> dict[str, str]:
    private, public = sealing.suite(suite_name).keypair()
    return {"suite": suite_name, "private_key": base64.b64encode(private).decode(),
            "public_key": base64.b64encode(public).decode(), "fingerprint": sealing.fingerprint(public)}


def write_key(path: Path, suite_name: str = sealing.DEFAULT_SUITE) -> dict[str, str]:
    """A new key pair in ``path`` (readable by its owner only); refuses to overwrite a key."""
    key = new_key(suite_name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(key, f)
    return key


def registration(key: dict[str, str]) -> dict[str, str]:
    """The body of ``PUT /tellers/me/key``: the public half only."""
    return {"public_key": key["public_key"], "suite": key["suite"]}


def open_share(key: dict[str, str], mine: dict[str, Any]) -> dict[str, str]:
    """From ``GET /votes/{id}/shares/mine``, the body of ``POST /votes/{id}/shares``."""
    share = sealing.SealedShare(mine["teller_id"], mine["index"], base64.b64decode(key["public_key"]),
                                base64.b64decode(mine["sealed"]), mine["commitment"])
    plain = sealing.open_share(mine["suite"], base64.b64decode(key["private_key"]), share,
                               sealing.round_info(mine["vote_id"], mine["round"]))
    return {"share": base64.b64encode(plain).decode()}
