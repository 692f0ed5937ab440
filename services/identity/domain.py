"""Identity rules (身份): who may hold which role where, who manages whose account, when a
sign-in is refused, and the life of a deputy's voting credential. Pure code: no I/O.

- A grant is a role in a jurisdiction. One person may hold several (a county deputy who
  supervises in a township holds a deputy grant there too); a token is issued for one grant.
- Accounts are managed by an administrator of the county (the jurisdiction above a township):
  an ``admin`` grant exists only at county level, and covers the county and its townships.
- A deputy is (jurisdiction, term, deputy id), never the id alone; a lead unit names its unit.
- Sign-in: consecutive failures lock the account for a while; a locked account is refused
  even with the right password.
- A deputy's voting credential is for one session, made on the deputy's own device: the office
  confirms presence (roll call, in the ballot service), the deputy gives the personal code only
  they know, and the first device used is bound; another device is refused. Leaving (离场) or
  the office's revocation ends it; a new check-in then makes a new one."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# display: never an account; resident: the web front's machine account for the online proposal form
ROLES = ("office", "presiding", "deputy", "teller", "lead_unit", "county", "admin", "resident")
COUNTY_ONLY = ("county", "admin")  # roles held at the county, never in a township
JURISDICTION = re.compile(r"^[a-z][a-z0-9_-]{0,31}(\.[a-z][a-z0-9_-]{0,31}){0,3}$")
MIN_PASSWORD = 10
CHECKIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from a screen across the hall


class Refused(Exception):
    """A request the rules refuse: ``code`` is stable, ``status`` the HTTP status it maps to."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def within(scope: str, jurisdiction: str) -> bool:
    return jurisdiction == scope or jurisdiction.startswith(scope + ".")


def is_county(jurisdiction: str) -> bool:
    return "." not in jurisdiction


@dataclass(frozen=True)
class Grant:
    role: str
    jurisdiction: str
    unit: str = ""
    term: int | None = None
    deputy_id: str | None = None


def check_grant(grant: Grant) -> None:
    if grant.role not in ROLES:
        raise Refused("unknown-role", f"no role {grant.role!r}; roles: {', '.join(ROLES)}")
    if not JURISDICTION.match(grant.jurisdiction):
        raise Refused("bad-jurisdiction", f"{grant.jurisdiction!r} is not a jurisdiction (e.g. taihu, taihu.fuyu)")
    if grant.role in COUNTY_ONLY and not is_county(grant.jurisdiction):
        raise Refused("county-role", f"{grant.role} is held at the county, not in a township: the county manages its townships")
    if (grant.role == "lead_unit") != bool(grant.unit):
        raise Refused("unit", "a lead unit's grant names its unit (牵头单位), and only a lead unit's does")
    if (grant.role == "deputy") != (grant.term is not None and bool(grant.deputy_id)):
        raise Refused("deputy-identity", "a deputy's grant names the term and the deputy id, and only a deputy's does")


def check_grants(grants: list[Grant]) -> None:
    if not grants:
        raise Refused("no-grant", "an account holds at least one role in a jurisdiction")
    keys = [(g.role, g.jurisdiction) for g in grants]
    if len(set(keys)) != len(keys):
        raise Refused("duplicate-grant", "each role once per jurisdiction")
    for grant in grants:
        check_grant(grant)


def manages(admin_jurisdiction: str, grants: list[Grant]) -> bool:
    """Whether an administrator of ``admin_jurisdiction`` may manage an account with these grants:
    every one of them lies within its county."""
    return all(within(admin_jurisdiction, g.jurisdiction) for g in grants)


def check_password(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Refused("weak-password", f"a password has at least {MIN_PASSWORD} characters")
    if username.lower() in password.lower() or len(set(password)) < 4:
        raise Refused("weak-password", "a password may not contain the account name or be one repeated character")


def new_password() -> str:
    """A generated password (printed once): 20 characters, easy to type."""
    return "-".join(secrets.token_urlsafe(6)[:5] for _ in range(4))


# ---------------------------------------------------------------- sign-in


@dataclass(frozen=True)
class Lockout:
    max_failures: int
    seconds: int


def locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def after_failure(failures: int, now: datetime, rule: Lockout) -> datetime | None:
    """Given the consecutive failures so far (this one included): until when the account is locked."""
    return now + timedelta(seconds=rule.seconds) if failures >= rule.max_failures else None


def pick_grant(grants: list[Grant], role: str | None, jurisdiction: str | None) -> Grant:
    """The grant a token is issued for: the one asked for, else the first."""
    for grant in grants:
        if (role is None or grant.role == role) and (jurisdiction is None or grant.jurisdiction == jurisdiction):
            return grant
    raise Refused("no-such-grant", f"this account holds no role {role or '*'} in {jurisdiction or '*'}", 403)


# ---------------------------------------------------------------- voting credentials


class Status(StrEnum):
    RESERVED = "reserved"  # a seat tablet bound by the office, waiting for the deputy
    ACTIVE = "active"
    REVOKED = "revoked"  # by the office
    ENDED = "ended"  # the deputy left (离场)


LIVE = (Status.RESERVED, Status.ACTIVE)


def new_checkin_code() -> str:
    code = "".join(secrets.choice(CHECKIN_ALPHABET) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


@dataclass(frozen=True)
class Live:
    """A deputy's live credential in a session: its status and the device it is bound to."""

    status: Status
    device_hash: str


class Outcome(StrEnum):
    NEW = "new"  # bind this device: a new credential
    ACTIVATE = "activate"  # the seat tablet the office bound: the deputy takes it up
    AGAIN = "again"  # the same device again (a reload): the same credential, a fresh token


def check_in(live: Live | None, device_hash: str, present: bool) -> Outcome:
    """What a deputy's check-in on a device does, given the live credential (if any)."""
    if not present:
        raise Refused("not-present", "请先到签到台确认出席 The office has not confirmed your presence yet "
                                     "(or recorded that you left)", 409)
    if live is None:
        return Outcome.NEW
    if live.device_hash != device_hash:
        raise Refused("credential-bound-to-another-device",
                      "本次会议的投票凭证已绑定另一台设备 Your credential for this session is bound to another device; "
                      "if that is not yours, ask the office to revoke it", 409)
    return Outcome.ACTIVATE if live.status is Status.RESERVED else Outcome.AGAIN


def check_personal_code(failures: int, matches: bool | None, max_failures: int) -> None:
    """``matches``: None when the deputy has none yet for the term (this one becomes theirs)."""
    if failures >= max_failures:
        raise Refused("personal-code-locked", "个人码已锁定 Too many wrong personal codes: the office can reset it", 423)
    if matches is False:
        raise Refused("wrong-personal-code", "个人码错误 Wrong personal code", 401)
