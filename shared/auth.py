"""Bearer tokens: each carries a subject, a role and a jurisdiction (辖区).

Jurisdictions are dotted paths: the county ``taihu`` contains the township ``taihu.fuyu``.
A caller sees its own jurisdiction and everything below it, nothing else."""

from __future__ import annotations

import time
from enum import StrEnum

import jwt
from fastapi import Request
from pydantic import BaseModel

from shared.http import Problem
from shared.settings import get_settings


class Role(StrEnum):
    OFFICE = "office"  # 人大办: runs intake, sessions and supervision records of its jurisdiction
    PRESIDING = "presiding"  # 主持人/主席团: certifies results
    DEPUTY = "deputy"  # 人大代表: votes, inspects
    TELLER = "teller"  # 监票人/计票人: enters paper ballots
    LEAD_UNIT = "lead_unit"  # 牵头实施单位: reports progress
    COUNTY = "county"  # 县人大/县考核: compares and assesses townships
    RESIDENT = "resident"  # 群众: submits a proposal through the online form (线上), nothing else


class Principal(BaseModel):
    sub: str
    role: Role
    jurisdiction: str
    name: str = ""

    def sees(self, jurisdiction: str) -> bool:
        return in_scope(self.jurisdiction, jurisdiction)


def in_scope(scope: str, jurisdiction: str) -> bool:
    return jurisdiction == scope or jurisdiction.startswith(scope + ".")


# SQL twin of in_scope, for WHERE clauses: pass the caller's jurisdiction as the parameter.
def scope_sql(param: str, column: str = "jurisdiction") -> str:
    return f"({column} = {param} OR starts_with({column}, {param} || '.'))"


def mint(sub: str, role: Role | str, jurisdiction: str, name: str = "", ttl_s: int = 30 * 86400,
         secret: str | None = None) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": str(role), "jurisdiction": jurisdiction, "name": name, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret or get_settings().auth_secret, algorithm="HS256")


def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "需要登录 Authentication required", "Send Authorization: Bearer <token>.")
    try:
        claims = jwt.decode(token, get_settings().auth_secret, algorithms=["HS256"])
        return Principal.model_validate(claims)
    except (jwt.PyJWTError, ValueError) as exc:
        raise Problem(401, "invalid-token", "令牌无效 Invalid token", str(exc)) from exc


def require(*roles: Role):
    """A FastAPI dependency: the caller, who must hold one of ``roles``."""

    async def dependency(request: Request) -> Principal:  # async: FastAPI would run a plain def in a thread
        who = principal(request)
        if roles and who.role not in roles:
            raise Problem(
                403, "forbidden-role", "无权操作 Not allowed for this role",
                f"role {who.role} may not do this; needs one of {', '.join(roles)}",
            )
        return who

    return dependency


async def fetch_in_scope(conn, who: Principal, table: str, id_: object, what: str, label: str, lock: str = ""):
    """The row of ``table`` with this id, if the caller's jurisdiction covers it; else a 404 (not a
    403: another jurisdiction's ids are not even confirmed to exist). ``lock``: e.g. "FOR UPDATE"."""
    row = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 AND {scope_sql('$2')} {lock}", id_, who.jurisdiction)
    if row is None:
        raise Problem(404, f"{what}-not-found", f"未找到{label} {what.capitalize()} not found",
                      f"no {what} {id_} in your jurisdiction")
    return row
