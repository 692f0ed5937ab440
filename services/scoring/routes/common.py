"""What the scoring routes share."""

from __future__ import annotations

from shared.auth import Principal, in_scope
from shared.http import Problem


def check_scope(who: Principal, jurisdiction: str) -> None:
    if not in_scope(who.jurisdiction, jurisdiction):
        raise Problem(403, "out-of-jurisdiction", "超出管辖范围 Outside your jurisdiction",
                      f"{jurisdiction} is not within {who.jurisdiction}")
