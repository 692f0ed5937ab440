"""What every supervision route shares: who is a lead unit, and turning a refusal into a problem."""

from __future__ import annotations

from datetime import date

from services.supervision.domain import SupervisionRefused
from shared.auth import Principal, Role
from shared.fields import Year
from shared.http import Problem

YearQuery = Year


def unit_of(who: Principal) -> str | None:
    """The unit (牵头实施单位) a caller speaks for, None for anyone who is not a lead unit. A lead
    unit's token names its unit (the ``unit`` claim); one without a unit speaks for none."""
    return (who.unit or "") if who.role is Role.LEAD_UNIT else None


def check_own_project(who: Principal, lead_unit: str | None) -> None:
    """A lead unit acts only on its own projects."""
    unit = unit_of(who)
    if unit is not None and unit != lead_unit:
        raise Problem(403, "not-your-project", "非本单位牵头项目 Not your unit's project",
                      f"{unit} is not the lead unit of this project")


def refused(exc: SupervisionRefused) -> Problem:
    return Problem(exc.status, exc.code, "不符合监督规则 Refused by the supervision rules", str(exc))


def today() -> date:
    return date.today()
