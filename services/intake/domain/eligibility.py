"""Eligibility (项目范围/负面清单): the year's rules of a jurisdiction, as data. Pure: no I/O.

A proposal is checked when it is submitted and at every screening decision. A failed check is
a recorded reason with its rule, shown to the proposer, never a silent drop. The office may
override a check, only with a recorded reason; otherwise the proposal cannot move forward and
is rejected with the rule's reason."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from services.intake.domain.screening import Refused
from shared.fields import Identifier, Money, Name, Reason, Title, items


class Kind(StrEnum):
    KEYWORDS = "keywords"  # any of the words in any of the fields: excluded (负面清单)
    REQUIRED = "required"  # each of the fields must be filled in
    BUDGET_AT_MOST = "budget_at_most"  # 估算投资 above the amount: not a township livelihood project
    WITHIN_YEAR = "within_year"  # a multi-year project must list the year's milestones (年度实施节点)


# The fields a rule may look at, with the names people read.
FIELDS = {"title": "项目名称", "content": "内容", "location": "地点", "category": "类别", "funding_source": "资金来源",
          "lead_unit": "实施主体", "estimated_budget": "估算投资", "beneficiaries": "受益人数"}


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Identifier
    kind: Kind
    label: Title  # 规则名称, e.g. 楼堂馆所
    reason: Reason  # what the proposer reads when it fails
    fields: tuple[Identifier, ...] = items(len(FIELDS), default=("title", "content"))
    keywords: tuple[Name, ...] = items(100, default=())
    amount: Money | None = None

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        unknown = [f for f in self.fields if f not in FIELDS]
        if unknown:
            raise ValueError(f"unknown fields {unknown}; rules look at {', '.join(FIELDS)}")
        if self.kind is Kind.KEYWORDS and not self.keywords:
            raise ValueError("a keywords rule needs keywords")
        if self.kind is Kind.BUDGET_AT_MOST and self.amount is None:
            raise ValueError("a budget_at_most rule needs an amount")
        return self


class Rules(BaseModel):
    """The eligibility rules of one jurisdiction and year."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rules: tuple[Rule, ...] = items(100)

    @model_validator(mode="after")
    def _unique(self) -> Rules:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("each rule id once")
        return self


# The default negative list (负面清单) of DOMAIN.md §1, used until a jurisdiction sets its own.
DEFAULT = Rules(rules=(
    Rule(id="office-buildings", kind=Kind.KEYWORDS, label="楼堂馆所及办公设备",
         reason="属于党政机关办公楼、办公用房或办公设备购置，不在民生实事项目范围内",
         fields=("title", "content", "category"), keywords=("办公楼", "办公用房", "办公设备", "公务用车", "楼堂馆所")),
    Rule(id="adds-debt", kind=Kind.KEYWORDS, label="新增政府债务",
         reason="项目需举债、垫资或融资建设，会增加政府债务", keywords=("举债", "垫资", "融资建设", "贷款建设", "BT模式")),
    Rule(id="adds-burden", kind=Kind.KEYWORDS, label="增加群众负担",
         reason="项目需向群众集资或摊派，会增加群众负担", keywords=("集资", "摊派")),
    Rule(id="private-funded", kind=Kind.KEYWORDS, label="以社会资本投资为主",
         reason="项目主要由企业或社会资本投资，不属于财政资金保障的民生实事",
         fields=("content", "funding_source"), keywords=("企业投资", "企业出资", "社会资本为主", "私人投资")),
    Rule(id="stalled", kind=Kind.KEYWORDS, label="停建缓建项目",
         reason="属于停建、缓建或烂尾项目", keywords=("停工", "停建", "缓建", "烂尾")),
    Rule(id="within-year", kind=Kind.WITHIN_YEAR, label="当年可完成",
         reason="跨年度项目须列明当年度实施节点，否则无法在当年完成和考核"),
))  # Required fields beyond the title are each jurisdiction's choice (a ``required`` rule).


class Failure(BaseModel):
    """A failed check, as recorded with the proposal and shown to the proposer."""

    rule: str
    label: str
    reason: str
    detail: str = ""  # which word or field
    overridden: bool = False
    override_reason: str = ""


def check(fields: dict[str, Any], rules: Rules = DEFAULT) -> list[Failure]:
    """The checks a proposal fails (empty: eligible)."""
    failures = []
    for rule in rules.rules:
        detail = _fails(rule, fields)
        if detail is not None:
            failures.append(Failure(rule=rule.id, label=rule.label, reason=rule.reason, detail=detail))
    return failures


def _fails(rule: Rule, fields: dict[str, Any]) -> str | None:
    if rule.kind is Kind.KEYWORDS:
        for field in rule.fields:
            found = [k for k in rule.keywords if k in str(fields.get(field) or "")]
            if found:
                return f"{FIELDS[field]}含「{found[0]}」"
        return None
    if rule.kind is Kind.REQUIRED:
        missing = [FIELDS[f] for f in rule.fields if fields.get(f) in (None, "") or not str(fields.get(f)).strip()]
        return f"缺少：{'、'.join(missing)}" if missing else None
    if rule.kind is Kind.BUDGET_AT_MOST:
        budget = fields.get("estimated_budget")
        if budget is not None and rule.amount is not None and Decimal(str(budget)) > rule.amount:
            return f"估算投资 {budget} 元超过 {rule.amount} 元"
        return None
    if rule.kind is Kind.WITHIN_YEAR:
        return "跨年度项目未列明年度实施节点" if fields.get("multi_year") and not str(fields.get("milestones") or "").strip() else None
    raise AssertionError(rule.kind)


def with_overrides(failures: list[Failure], overrides: dict[str, str]) -> list[Failure]:
    """The failures with the office's overrides (rule id → reason) marked."""
    return [f.model_copy(update={"overridden": True, "override_reason": overrides[f.rule]}) if f.rule in overrides else f
            for f in failures]


def blocking(failures: list[Failure]) -> list[Failure]:
    return [f for f in failures if not f.overridden]


def require_eligible(failures: list[Failure]) -> None:
    """A screening step forward needs every failed check overridden (or the proposal rejected)."""
    open_ = blocking(failures)
    if open_:
        raise Refused("ineligible", "不符合项目范围: " + "；".join(f"{f.label}（{f.reason}）" for f in open_))


def rejection_reason(failures: list[Failure]) -> str:
    """The reason the proposer reads when the office rejects it for its failed checks."""
    return "；".join(f"{f.label}：{f.reason}" for f in blocking(failures))


def override(failures: list[Failure], rule: str, reason: str) -> None:
    """An override needs a failed check to override and a reason."""
    if rule not in {f.rule for f in failures}:
        raise Refused("no-such-failure", f"the proposal does not fail the rule {rule}")
    if not reason.strip():
        raise Refused("reason-required", "an override must give its reason")
