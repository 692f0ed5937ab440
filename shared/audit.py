"""The audit trail as a hash chain, anchored outside the database.

Each service's ``audit`` rows form one chain: a row carries ``prev_hash`` (the hash of the row
before it; the first row, the service's genesis) and ``hash = sha256(prev_hash || content)``, where
``content`` is the row's canonical form (``content`` below: every column, ``before``/``after`` as
PostgreSQL's own jsonb text). A unit of work appends its audit rows at its end, holding the
schema's ``audit_head`` row locked until it commits: concurrent writers queue there, so the chain
never forks, and ``seq`` order is chain order. Taking the lock last means it is held only for the
commit, and never while the transaction waits for another lock (no deadlock).

An edited row no longer matches its hash; a deleted row breaks the next row's ``prev_hash``. A
chain recomputed from the edit onwards, or cut at its end, is consistent in itself: the *anchors*
show it. An anchor is the head (seq, hash) signed with the audit key (Ed25519,
``PIAOJUE_AUDIT_SIGNING_KEY``), one JSON line appended to a file the operator archives
(``PIAOJUE_AUDIT_ANCHOR_FILE``), by each service every ``PIAOJUE_AUDIT_ANCHOR_SECONDS`` and by
``piaojue audit anchor``. ``verify`` walks the chain and checks every anchor against it.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import structlog

from shared import tokens

log = structlog.get_logger()

# What the chain hashes of a row, as read back from PostgreSQL (jsonb as its canonical text).
COLUMNS = "seq, at, jurisdiction, actor, action, entity, entity_id, before::text AS before, after::text AS after"


def genesis(service: str) -> bytes:
    """The ``prev_hash`` of a chain's first row: a chain cannot be moved to another service."""
    return hashlib.sha256(f"piaojue audit chain {service}".encode()).digest()


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content(row: Mapping[str, Any]) -> bytes:
    """A row's canonical content: a JSON array of its columns (``before``/``after`` as jsonb text)."""
    return json.dumps([row["seq"], _utc(row["at"]), row["jurisdiction"], row["actor"], row["action"], row["entity"],
                       row["entity_id"], row["before"], row["after"]], ensure_ascii=False, separators=(",", ":")).encode()


def link(prev: bytes, row: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(prev + content(row)).digest()


@dataclass(frozen=True)
class Entry:
    """An audit row a unit of work will append when it ends."""

    jurisdiction: str
    actor: str
    action: str
    entity: str
    entity_id: str
    before: Any = None
    after: Any = None


async def append(conn: asyncpg.Connection, service: str, entries: Sequence[Entry]) -> None:
    """Append ``entries`` to the service's chain, inside the caller's transaction (it ends soon)."""
    head = await conn.fetchrow("SELECT seq, hash FROM audit_head FOR UPDATE")
    prev, seq = head["hash"] or genesis(service), head["seq"]
    for e in entries:
        # The row as PostgreSQL will store it: its seq (taken under the head's lock, so in chain
        # order), the transaction's time, and the jsonb's canonical text.
        row = dict(await conn.fetchrow(
            "SELECT nextval(pg_get_serial_sequence('audit', 'seq')) AS seq, now() AS at, $1::jsonb::text AS before,"
            " $2::jsonb::text AS after", e.before, e.after))
        row.update(jurisdiction=e.jurisdiction, actor=e.actor, action=e.action, entity=e.entity, entity_id=e.entity_id)
        digest = link(prev, row)
        await conn.execute(
            "INSERT INTO audit (seq, at, jurisdiction, actor, action, entity, entity_id, before, after, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb, $10, $11)",
            row["seq"], row["at"], e.jurisdiction, e.actor, e.action, e.entity, e.entity_id, row["before"], row["after"],
            prev, digest)
        prev, seq = digest, row["seq"]
    await conn.execute("UPDATE audit_head SET seq = $1, hash = $2", seq, prev)


def chain_unchained(conn: Any, schema: str) -> int:
    """Chain the rows written before the chain existed (psycopg, in ``migrate``): once, while the
    head is still empty. Returns the rows chained."""
    with conn.transaction():
        head = conn.execute(f'SELECT seq, hash FROM "{schema}".audit_head FOR UPDATE').fetchone()
        if head is None or head[1] is not None:
            return 0
        prev, seq, n = genesis(schema), 0, 0
        cursor = conn.cursor()
        rows = cursor.execute(f'SELECT {COLUMNS} FROM "{schema}".audit ORDER BY seq').fetchall()
        names = [d.name for d in cursor.description]
        for values in rows:
            row = dict(zip(names, values, strict=True))
            digest = link(prev, row)
            conn.execute(f'UPDATE "{schema}".audit SET prev_hash = %s, hash = %s WHERE seq = %s', (prev, digest, row["seq"]))
            prev, seq, n = digest, row["seq"], n + 1
        if n:
            conn.execute(f'UPDATE "{schema}".audit_head SET seq = %s, hash = %s', (seq, prev))
        return n


# ---------------------------------------------------------------- anchors


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signed_part(anchor: Mapping[str, Any]) -> bytes:
    return json.dumps({k: anchor[k] for k in ("service", "seq", "hash", "anchored_at", "kid")},
                      sort_keys=True, separators=(",", ":")).encode()


def signing_key(text: str) -> tokens.SigningKey:
    key = tokens.signing_key(text)
    if key.alg != "EdDSA":
        raise tokens.KeyError_("the audit key is an Ed25519 key (piaojue keys generate --algorithm EdDSA)")
    return key


def public_keys(text: str, signing: str = "") -> dict[str, Any]:
    """The keys anchors are checked with, by kid: a JWKS (``{"keys": [...]}``) or one JWK; without
    them, the public half of the signing key."""
    keys = []
    if text.strip():
        given = tokens.parse_jwk(text)
        keys = given["keys"] if isinstance(given.get("keys"), list) else [given]
    elif signing.strip():
        keys = [signing_key(signing).public]
    found = {}
    for jwk in keys:
        public = tokens.public_jwk(jwk)
        if public["alg"] != "EdDSA":
            raise tokens.KeyError_("audit anchors are checked with Ed25519 keys only")
        found[public["kid"]] = jwt.PyJWK({k: public[k] for k in ("kty", "crv", "x")}, "EdDSA").key
    return found


def sign_anchor(key: tokens.SigningKey, service: str, seq: int, digest: bytes | None,
                anchored_at: datetime | None = None) -> dict[str, Any]:
    anchor = {"service": service, "seq": seq, "hash": digest.hex() if digest else None,
              "anchored_at": _utc(anchored_at or datetime.now(UTC)), "kid": key.kid}
    return {**anchor, "sig": _b64(key.private.sign(_signed_part(anchor)))}


def signature_ok(anchor: Mapping[str, Any], keys: Mapping[str, Any]) -> bool:
    try:
        keys[anchor["kid"]].verify(_unb64(anchor["sig"]), _signed_part(anchor))
        return True
    except Exception:  # unknown kid, bad signature, malformed line
        return False


def read_anchors(path: Path) -> list[dict[str, Any]]:
    """Every line of an anchor file (a line that is not JSON is kept as a broken anchor)."""
    anchors = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                anchor = json.loads(line)
                anchor = anchor if isinstance(anchor, dict) else {"unreadable": line}
            except ValueError:
                anchor = {"unreadable": line}
            anchors.append({**anchor, "line": number})
    return anchors


def append_anchors(path: Path, anchors: Iterable[Mapping[str, Any]]) -> None:
    """Append lines under an exclusive lock (replicas of every service may share the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(a, ensure_ascii=False, separators=(",", ":")) + "\n" for a in anchors)
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


async def head(conn: asyncpg.Connection, schema: str) -> tuple[int, bytes | None]:
    row = await conn.fetchrow(f'SELECT seq, hash FROM "{schema}".audit_head')
    return row["seq"], row["hash"]


async def anchor(conn: asyncpg.Connection, key: tokens.SigningKey, schema: str) -> dict[str, Any]:
    seq, digest = await head(conn, schema)
    return sign_anchor(key, schema, seq, digest)


async def run_anchoring(pool: asyncpg.Pool, service: str, key: tokens.SigningKey, path: Path, every: float) -> None:
    """A service's job: append its head to the anchor file every ``every`` seconds when it moved."""
    last: tuple[int, bytes | None] | None = None
    while True:
        try:
            async with pool.acquire() as conn:
                current = await head(conn, service)
            if current != last and current[0] > 0:
                await asyncio.to_thread(append_anchors, path, [sign_anchor(key, service, *current)])
                last = current
        except Exception:
            log.exception("audit anchoring failed; will retry")
        await asyncio.sleep(every)


# ---------------------------------------------------------------- verification


@dataclass
class Finding:
    seq: int | None
    kind: str  # edited | broken-link | unchained | cut | rewritten | bad-anchor
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at row {self.seq}: {self.detail}" if self.seq is not None else f"{self.kind}: {self.detail}"


@dataclass
class Report:
    service: str
    rows: int = 0
    last_seq: int = 0
    last_hash: bytes | None = None
    anchors_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


async def verify(conn: asyncpg.Connection, schema: str, anchors: Sequence[Mapping[str, Any]] = (),
                 keys: Mapping[str, Any] | None = None) -> Report:
    """Walk ``schema``'s chain in one snapshot; then check its head row and every anchor of it.
    ``findings`` starts with the first broken link of the chain itself, if any."""
    report = Report(schema)
    mine = [a for a in anchors if a.get("service") == schema or "unreadable" in a]
    wanted = {a["seq"] for a in mine if isinstance(a.get("seq"), int)}
    seen: dict[int, bytes | None] = {}
    prev, prev_seq = genesis(schema), None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head_seq, head_hash = await head(conn, schema)
        async for row in conn.cursor(f'SELECT {COLUMNS}, prev_hash, hash FROM "{schema}".audit ORDER BY seq', prefetch=1000):
            report.rows += 1
            seq = row["seq"]
            if seq in wanted:
                seen[seq] = row["hash"]
            if report.findings:  # the first broken link is what is reported; keep reading for the anchors and the end
                report.last_seq, report.last_hash = seq, row["hash"]
                continue
            after = f"row {prev_seq}" if prev_seq is not None else "the chain's start"
            if row["hash"] is None or row["prev_hash"] is None:
                report.findings.append(Finding(seq, "unchained", "the row has no hash: written outside the chain"))
            elif row["prev_hash"] != prev:
                report.findings.append(Finding(seq, "broken-link", f"it does not follow {after}: a row between them was "
                                               "deleted, or the rows before it were changed"))
            elif link(prev, row) != row["hash"]:
                report.findings.append(Finding(seq, "edited", "its content does not match its hash: the row was edited"))
            prev, prev_seq = row["hash"] or b"", seq
            report.last_seq, report.last_hash = seq, row["hash"]
    if (head_seq, head_hash) != (report.last_seq, report.last_hash) and not (head_seq == 0 and report.rows == 0):
        if head_seq > report.last_seq:
            report.findings.append(Finding(head_seq, "cut", f"the head row says the chain ends at row {head_seq}, "
                                           f"but the last row is {report.last_seq}: rows at the end were removed"))
        else:
            report.findings.append(Finding(report.last_seq, "broken-link", f"the head row (row {head_seq}) is not the last "
                                           "row: rows were added or changed outside the chain"))
    for a in sorted(mine, key=lambda a: a.get("seq") if isinstance(a.get("seq"), int) else -1):
        report.anchors_checked += 1
        if "unreadable" in a or keys is None or not signature_ok(a, keys):
            why = "unreadable" if "unreadable" in a else "no key to check it" if keys is None else "its signature does not verify"
            report.findings.append(Finding(a.get("seq") if isinstance(a.get("seq"), int) else None, "bad-anchor",
                                           f"anchor line {a.get('line')}: {why}"))
            continue
        seq, expected = a["seq"], bytes.fromhex(a["hash"]) if a["hash"] else None
        if seq == 0:
            continue
        if seq not in seen:
            what = ("the chain ends before it: rows at the end were removed" if seq > report.last_seq
                    else "that row is missing: it was deleted")
            report.findings.append(Finding(seq, "cut", f"anchored on {a['anchored_at']} (line {a['line']}), {what}"))
        elif seen[seq] != expected:
            report.findings.append(Finding(seq, "rewritten", f"its hash differs from the one anchored on {a['anchored_at']} "
                                           f"(line {a['line']}): the chain up to this row was recomputed"))
    return report
