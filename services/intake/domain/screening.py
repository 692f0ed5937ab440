"""Intake (征集 → 初定): proposals, screening, the slate, and what becomes of candidates not
chosen (分类处置). Pure: no I/O."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.fields import Flag, Money, Population, Title, text


class Channel(StrEnum):
    """来源渠道."""

    DEPUTY_FORUM = "deputy_forum"  # 人大代表调研座谈会
    RECEPTION_DAY = "reception_day"  # 代表接待日
    GRID = "grid"  # 网格单元
    WECHAT_QQ = "wechat_qq"  # 微信QQ群
    ONLINE = "online"  # 线上/二维码
    PRACTICE_POINT = "practice_point"  # 全过程人民民主基层实践点
    LETTER_HOTLINE = "letter_hotline"  # 来信/热线
    DEPARTMENT = "department"  # 政府部门 "三问"


CHANNEL_LABELS = {
    Channel.DEPUTY_FORUM: "代表座谈", Channel.RECEPTION_DAY: "代表接待日", Channel.GRID: "网格",
    Channel.WECHAT_QQ: "微信QQ群", Channel.ONLINE: "线上", Channel.PRACTICE_POINT: "基层实践点",
    Channel.LETTER_HOTLINE: "来信/热线", Channel.DEPARTMENT: "政府部门",
}


class Stage(StrEnum):
    SUBMITTED = "submitted"
    MERGED = "merged"  # 合并: into another proposal, the item, which carries it as a supporter
    PRELIMINARY_REVIEW = "preliminary_review"  # 政府初审
    FEASIBILITY_REVIEWED = "feasibility_reviewed"  # 可行性论证
    APPROVED = "approved_by_party_committee"  # 党委会/党政联席会议研究确定
    CANDIDATE = "candidate"
    ON_BALLOT = "on_ballot"
    CHOSEN = "chosen"  # 票决通过
    DISPOSED = "disposed"  # 未入选, 分类处置
    REJECTED = "rejected"


# Forward moves of screening. Feasibility review is optional. Any stage before the ballot may reject.
SCREENING: dict[Stage, set[Stage]] = {
    Stage.SUBMITTED: {Stage.PRELIMINARY_REVIEW},
    Stage.PRELIMINARY_REVIEW: {Stage.FEASIBILITY_REVIEWED, Stage.APPROVED},
    Stage.FEASIBILITY_REVIEWED: {Stage.APPROVED},
    Stage.APPROVED: {Stage.CANDIDATE},
}
REJECTABLE = set(SCREENING) | {Stage.CANDIDATE}
# Before the slate: what can still be merged, screened, reconsidered.
OPEN = frozenset(REJECTABLE)

STAGE_LABELS = {
    Stage.SUBMITTED: "已提交", Stage.MERGED: "已合并", Stage.PRELIMINARY_REVIEW: "政府初审",
    Stage.FEASIBILITY_REVIEWED: "可行性论证", Stage.APPROVED: "党委研究确定", Stage.CANDIDATE: "候选项目",
    Stage.ON_BALLOT: "提交票决", Stage.CHOSEN: "票决通过", Stage.DISPOSED: "未入选（分类处置）", Stage.REJECTED: "不予采纳",
}


class Refused(Exception):
    """A rule of intake says no. ``code`` is stable (clients branch on it); the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


ScreeningRefused = Refused


def screen(current: Stage, target: Stage, reason: str = "") -> Stage:
    """One screening decision. Rejection needs a recorded reason, never a silent drop."""
    if target is Stage.REJECTED:
        if current not in REJECTABLE:
            raise ScreeningRefused("transition-not-allowed", f"a proposal {current} can no longer be rejected")
        if not reason.strip():
            raise ScreeningRefused("reason-required", "a rejection must give its reason")
        return target
    if target not in SCREENING.get(current, set()):
        raise ScreeningRefused("transition-not-allowed", f"cannot go from {current} to {target}")
    return target


class SlateRules(BaseModel):
    """差额: competitive by default: candidates ≥ seats + 1 and ≥ 1.2 × seats."""

    model_config = ConfigDict(frozen=True)
    min_ratio: Decimal = Decimal("1.2")
    allow_equal: bool = False  # 等额, only when the congress explicitly allows it


def check_slate(candidates: int, seats: int, rules: SlateRules = SlateRules()) -> None:
    if seats < 1:
        raise ScreeningRefused("invalid-seats", "a slate needs at least one seat")
    if candidates < seats:
        raise ScreeningRefused("too-few-candidates", f"{candidates} candidates cannot fill {seats} seats")
    if rules.allow_equal:
        return
    need = max(seats + 1, math.ceil(rules.min_ratio * seats))
    if candidates < need:
        raise ScreeningRefused(
            "slate-not-competitive", f"a competitive slate (差额) for {seats} seats needs at least {need} candidates"
        )


class Disposition(StrEnum):
    """分类处置 of a candidate not chosen."""

    ORDINARY_WORKS = "ordinary_works"  # 一般民生工程: funded and feasible, done anyway
    PROJECT_LIBRARY = "project_library"  # 项目库: urgent but not ripe, carried into next year
    HANDED_TO_VILLAGE = "handed_to_village"  # 交村社区统筹: small in cost or narrow in benefit
    DROPPED = "dropped"


DISPOSITION_LABELS = {
    Disposition.ORDINARY_WORKS: "一般民生工程", Disposition.PROJECT_LIBRARY: "项目库",
    Disposition.HANDED_TO_VILLAGE: "交村社区统筹", Disposition.DROPPED: "不予实施",
}


class DispositionRules(BaseModel):
    model_config = ConfigDict(frozen=True)
    small_budget: Decimal = Decimal("500000")  # 元: below this a village can take it on
    narrow_beneficiaries: int = 1000  # people


def dispose(funding_secured: bool, budget: Decimal | None, beneficiaries: int | None,
            rules: DispositionRules = DispositionRules()) -> tuple[Disposition, str]:
    """The town's sorting of the candidates not chosen (分类处置): funded and feasible → ordinary
    works; small in cost or narrow in benefit → the village; what remains is urgent but not ripe
    → the project library. Screening already confirmed the need, so urgency is not asked again."""
    if funding_secured:
        return Disposition.ORDINARY_WORKS, "资金已落实、可行，按一般民生工程实施"
    if (budget is not None and budget < rules.small_budget) or (
        beneficiaries is not None and beneficiaries < rules.narrow_beneficiaries
    ):
        return Disposition.HANDED_TO_VILLAGE, "投资小或受益面窄，交村社区统筹协调处理"
    return Disposition.PROJECT_LIBRARY, "条件尚不成熟但群众急需，纳入项目库逐年实施"


Short = text(100, min_length=0)


class ProposalFields(BaseModel):
    """What a proposal records. The proposer and contact are personal information (PIPL): kept
    apart from the rest, never published, erased after the retention period."""

    title: Title
    content: text(10_000, min_length=0) = ""
    channel: Channel
    location: Short = ""  # village/community
    category: text(50, min_length=0) = ""
    beneficiaries: Population | None = None  # 受益面, people
    estimated_budget: Money | None = None  # 估算投资, 元
    funding_secured: Flag = False  # 资金来源已落实
    funding_source: Short = ""
    lead_unit: Short = ""  # 实施主体
    multi_year: Flag = False  # 跨年度项目
    milestones: text(2_000, min_length=0) = ""  # 年度实施节点, for a multi-year project
    collected_on: Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))] | None = None  # 收集日期
    proposer: Short = ""
    contact: Short = ""

    PRIVATE: ClassVar[tuple[str, ...]] = ("proposer", "contact")

    def public(self) -> dict:
        """The fields that may be stored with the proposal and shown: all but the personal ones."""
        return self.model_dump(mode="json", exclude=set(self.PRIVATE))
