"""Chinese first, English as a switch: the pages are written in Chinese and ``_("…")`` looks a
phrase up here for English (a phrase missing here shows in Chinese). Formats: dates 2024年12月28日,
money in 元 or 万元 with separators, percentages with one decimal."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

LANGS = ("zh", "en")

EN = {
    # sign-in, the big screen, tellers, receipts (issue 9, second pass)
    "本机已绑定为 {d} 的座席平板：请退出，由代表在本机输入个人码签到。":
        "This computer is bound as {d}'s seat tablet: sign out and let the deputy check in here with their personal code.",
    "已重置 {d} 的个人码：代表下次签到时设置新的个人码。": "{d}'s personal code is reset: the deputy sets a new one at the next check-in.",
    "本机绑定为座席平板": "Bind this computer as a seat tablet", "重置个人码": "Reset the personal code",
    "没有手机的代表：在座席平板上登录人大办账号，绑定后退出，代表在平板上签到。人大办不接触代表的投票凭证。":
        "A deputy without a phone: sign in as the office on the seat's tablet, bind it, sign out; the deputy checks in on the tablet. "
        "The office never touches a deputy's voting credential.",
    "一人多个身份时选择": "If you hold several roles, choose one", "默认": "Default",
    "账号由县人大统一开通；忘记密码请联系管理员重置。": "Accounts are opened by the county congress; if you forget your password, ask an administrator to reset it.",
    "本机用作大屏": "Use this computer as the big screen",
    "在会场大屏电脑上点此：本机改用本次会议的只读大屏凭证，人大办账号在本机退出。":
        "On the hall's screen computer: this browser gets the session's read-only display credential and the office's account signs out here.",
    "大屏凭证": "Big screen credentials", "开启人": "Turned on by", "开启时间": "Turned on at", "使用中": "In use",
    "撤销大屏凭证": "Revoke the screen's credential",
    "大屏凭证已失效，请人大办在本机重新登录并打开大屏。": "The screen's credential has expired: the office signs in on this computer and turns the screen on again.",
    "本次会议的签到凭证已失效（会议结束、离场或被撤销）。如仍在会场，请用会场公布的签到码重新签到。":
        "Your check-in for this session has ended (the sitting ended, you left, or it was revoked). If you are still in the hall, check in again with the code shown there.",
    "重新签到": "Check in again",
    "监票": "Tellers", "我担任监票人的会议": "Sessions where I am a teller", "暂无会议指定您为监票人。": "No session names you as a teller yet.",
    "开启选票需 {k} 人出示份额": "{k} shares open the ballots", "我的监票密钥": "My teller key",
    "在您自己的电脑上生成密钥：piaojue ballot teller-key 监票密钥.json。私钥留在该文件中；这里只登记公钥。":
        "Make your key on your own computer: piaojue ballot teller-key my-key.json. The private key stays in that file; only the public key is registered here.",
    "密钥文件（只读取其中的公钥）": "Key file (only its public key is read)", "或粘贴公钥": "or paste the public key",
    "登记公钥": "Register the public key", "公钥已登记": "Public key registered", "指纹": "Fingerprint",
    "发出与收回": "Issued and collected", "收回（已录入）": "Collected (entered)", "核对": "Check",
    "收回多于发出：本轮无效": "More collected than issued: this round is void", "收回等于发出": "Collected equals issued",
    "尚有 {n} 张未录入": "{n} not yet entered", "已录入第 {n} 张": "Ballot {n} entered",
    "无效票（赞成超过应选数）": "Invalid (more 'for' marks than seats)", "有效票": "Valid",
    "已按总数录入：收回 {c} 张，有效 {v} 张，无效 {i} 张。": "Totals entered: {c} collected, {v} valid, {i} invalid.",
    "逐张录入": "Ballot by ballot", "按收回的选票逐张录入。": "Enter the collected ballots one by one.",
    "按收回的选票逐张录入；赞成超过 {limit} 个的选票记为无效票。":
        "Enter the collected ballots one by one; a ballot with more than {limit} 'for' marks is recorded invalid.",
    "录入这张选票": "Enter this ballot", "按总数录入": "By totals",
    "已人工计票时，按计票单填写各项目的赞成、反对、弃权票数。与逐张录入二选一。":
        "When counted by hand: each item's for, against and abstain from the tally sheet. Either this or ballot by ballot.",
    "录入总数": "Enter the totals", "录入完毕后由主持人结束表决并计票。": "When all are entered, the presiding officer closes the vote.",
    "出示密钥份额": "Present your key share", "已出示 {n} 份，需要 {k} 份。": "{n} presented, {k} needed.",
    "您的密钥指纹": "Your key's fingerprint", "密钥文件": "Key file",
    "或粘贴密钥文件内容，或在自己电脑上已开启的份额（piaojue ballot present-share … --print-only）":
        "or paste the key file's text, or the share opened on your own computer (piaojue ballot present-share … --print-only)",
    "密钥只用于本次开启您的份额，不保存、不记录。": "The key only opens your share for this request: it is neither kept nor logged.",
    "出示份额": "Present the share", "计票结果": "Count", "当前没有需要监票人操作的事项。": "Nothing for the tellers to do now.",
    "监票人账号（空格分隔）": "Tellers' accounts (separated by spaces)", "开启所需人数": "Shares needed to open",
    "指定监票人": "Name the tellers",
    "核对回执": "Check my receipt", "已确认的表决": "Certified votes",
    "结果确认后，用投票时记下的回执码核对您的选票已被开启并计入。核对不会显示您的选择。":
        "After certification, check with the receipt code you wrote down that your ballot was opened and counted. The check does not show your choices.",
    "您的选票已计入": "Your ballot was counted",
    "未找到该回执码：请核对是否输入完整、是否选对了表决。如确认无误，请告知监票人。":
        "Receipt code not found: check that it is complete and that you chose the right vote. If it is right, tell the tellers.",
    "暂无已确认的表决。": "No certified vote yet.", "结果确认后，在“投票”页点“核对回执”。": "After certification, open 'Vote' and choose 'Check my receipt'.",
    # the sealed vote (ballot): closed, awaiting the tellers' shares
    "待监票人开启": "Awaiting the tellers", "已作废": "Void",
    "投票已结束：监票人出示各自的密钥份额后开启选票并计票。":
        "Voting has ended: the ballots are opened and counted once the tellers present their key shares.",
    # frame
    "票决": "Piaojue", "民生实事项目人大代表票决": "Livelihood projects chosen by deputies' vote", "跳到正文": "Skip to content",
    "退出": "Sign out", "登录": "Sign in", "大字": "Large text", "标准字号": "Normal text", "首页": "Home",
    "导航": "Navigation", "语言": "Language", "中文": "中文", "打印": "Print", "导出 Excel": "Export to Excel",
    "返回": "Back", "保存": "Save", "提交": "Submit", "查询": "Search", "全部": "All", "上一页": "Previous",
    "下一页": "Next", "第 {page} / {pages} 页，共 {total} 条": "Page {page} of {pages}, {total} in all",
    "操作失败": "Not done", "出错了": "Something went wrong", "请重试或联系人大办。": "Try again, or ask the congress office.",
    "登录已过期": "Your session has expired", "为了安全，长时间未操作后需要重新登录。您尚未提交的内容没有保存。":
        "For safety you must sign in again after a while without activity. Anything not yet submitted was not saved.",
    "重新登录": "Sign in again", "页面不存在": "Page not found", "无权访问此页面": "You may not open this page",
    "表单已失效，请返回刷新后重试。": "The form has expired; go back, reload and try again.",
    "内容过多，无法提交": "Too much content to submit",
    "登录有效至 {time}": "Signed in until {time}",
    # sign-in
    "开发环境登录": "Development sign-in", "身份": "Role", "辖区": "Jurisdiction", "账号": "User", "姓名": "Name",
    "仅用于开发和测试：正式部署使用统一身份认证登录。":
        "For development and tests only: a real deployment signs in through the identity service.",
    "人大办": "Congress office", "主持人": "Presiding officer", "人大代表": "Deputy", "监票人": "Teller", "牵头单位": "Lead unit",
    "县人大/县考核": "County", "群众": "Resident",
    "密码": "Password",
    "人大代表请在会场扫描签到码，用手机签到后投票。": "Deputies: scan the check-in code in the hall and check in on your phone to vote.",
    "请输入账号和密码。": "Enter your account and password.", "签到码": "Check-in code", "代表编号": "Deputy id", "个人码": "Personal code",
    "请输入会场公布的签到码、您的代表编号和个人码（首次签到时设置，4–12 位数字）。签到后本手机即可投票，其他设备不能使用。":
        "Enter the check-in code shown in the hall, your deputy id and your personal code (set at your first check-in, "
        "4–12 digits). Then this phone can vote; no other device can.",
    "签到码生成中，请稍后刷新。": "The check-in code is on its way: reload in a moment.", "手机签到情况": "Check-ins",
    "撤销": "Revoke", "座席平板": "seat tablet", "已签到": "Checked in", "待签到": "Reserved", "已撤销": "Revoked", "已离场": "Left",
    # roles' home
    "我的工作": "My work", "投票": "Vote", "会议主持": "Presiding", "提案管理": "Proposals", "候选项目清单": "Slates",
    "代表名单": "Roster", "会议与表决": "Sessions and votes", "项目进度": "Project progress", "项目看板": "Project board",
    "考核比较": "County comparison", "提交民生实事建议": "Propose a livelihood project",
    # voting
    "选票": "Ballot", "赞成": "For", "反对": "Against", "弃权": "Abstain", "满意": "Satisfied", "基本满意": "Basically satisfied",
    "不满意": "Dissatisfied", "应选 {seats} 项，最多可投 {limit} 个赞成票。": "{seats} to be chosen: at most {limit} 'for' marks.",
    "已投赞成 {n} 个，最多 {limit} 个": "{n} 'for' marks of at most {limit}",
    "赞成票超过 {limit} 个，请改投反对或弃权后再提交。": "More than {limit} 'for' marks: change some to against or abstain.",
    "请逐项选择后提交，未选择的项目视为未投。": "Choose for each item; an item left blank counts as not marked.",
    "下一步：核对选票": "Next: check my ballot", "核对选票": "Check your ballot", "确认投票": "Cast my ballot",
    "返回修改": "Change", "投出后不能更改。": "Once cast, a ballot cannot be changed.", "未选择": "Not marked",
    "投票成功": "Your ballot is cast", "您的选票已记录": "Your ballot was recorded", "回执码": "Receipt code",
    "请记下回执码：结果确认后可用它核对您的选票已被计入。回执码只显示这一次，不会显示您的选择。":
        "Write down the receipt code: after certification you can check that your ballot was counted. "
        "It is shown only once and does not show your choices.",
    "网络中断前您的选票已经记录，本轮不会重复计票。回执码只在第一次显示，无法再次显示。":
        "Your ballot had been recorded before the connection dropped; it is counted once. The receipt code is shown only the first time.",
    "您本轮已投过票，每位代表每轮只能投一票。": "You have already voted in this round: one ballot per deputy and round.",
    "正在提交…": "Casting…", "网络中断，正在确认您的选票是否已记录…": "Connection lost: checking whether your ballot was recorded…",
    "仍无法连接。您的选票可能尚未记录，请检查网络后点击重试（不会重复投票）。":
        "Still no connection. Your ballot may not be recorded: check the network and press retry (it cannot be cast twice).",
    "重试": "Retry", "当前没有进行中的表决。": "No vote is open now.", "第 {round} 轮": "Round {round}",
    "满意度测评": "Satisfaction rating", "项目票决": "Project vote", "表决尚未开始或已结束。": "This vote is not open.",
    "您没有本轮选票（开始表决时未签到）。": "You have no ballot in this round (you were not present when it opened).",
    # chair / screen
    "出席": "Present", "实有代表": "Seated", "法定人数": "Quorum", "已达到": "Met", "未达到": "Not met", "发出": "Issued",
    "已投": "Cast", "收回": "Collected", "有效": "Valid", "无效": "Invalid", "开始表决": "Open the vote",
    "开始第 {round} 轮": "Open round {round}", "结束表决并计票": "Close and count", "确认结果": "Certify the result",
    "大屏": "Big screen", "结果公告": "Result announcement", "入选": "Chosen", "未入选": "Not chosen", "名次": "Rank",
    "候选项目": "Candidate", "草拟": "Draft", "进行中": "Open", "已计票": "Counted", "已确认": "Certified",
    "投票进行中": "Voting in progress",
    "计票中不显示得票，结束后公布。": "No counts are shown while voting is open; they are announced at the close.",
    "需另行票决": "A further round is needed", "通过": "Passed", "得票": "Votes",
    # office
    "提案": "Proposal", "标题": "Title", "内容": "Content", "地点": "Location", "类别": "Category", "来源渠道": "Channel",
    "阶段": "Stage", "年度": "Year", "估算投资": "Estimated cost", "受益人数": "Beneficiaries", "筛选": "Filter",
    "关键词": "Keyword", "审查": "Screening", "理由": "Reason", "不予采纳": "Reject", "审查记录": "Screening history",
    "已提交": "Submitted", "政府初审": "Preliminary review", "可行性论证": "Feasibility reviewed", "已合并": "Merged",
    "党委研究确定": "Approved by the party committee", "提交票决": "Sent to the vote", "未入选（分类处置）": "Not chosen (disposed of)",
    "票决通过": "Chosen by vote", "查询码": "Tracking code", "提议人数": "Supporters",
    "资格审查": "Eligibility", "已说明理由放行": "overridden with a reason", "公示中": "Under public notice", "截止": "until",
    "已提交票决": "Sent to the vote", "已票决": "Decided", "提前提交的理由（公示期未满时必填）": "Reason to send before the notice ends",
    "人提议": "asked for it", "公示天数（选填）": "Days of public notice (optional)",
    "新建候选项目清单": "New slate", "应选数": "Seats", "候选数": "Candidates", "差额": "Competitive margin",
    "已选候选 {n} 个，应选 {seats} 个，差额 {diff} 个": "{n} candidates for {seats} seats: margin {diff}",
    "发布候选清单": "Publish the slate", "处置结果": "Disposition", "处置理由": "Reason for the disposition",
    "名额": "Quota", "届": "Term", "每行一位：代表编号 姓名": "One per line: deputy id, name", "保存名单": "Save the roster",
    "会议名称": "Session name", "新建会议": "New session", "签到": "Roll call", "保存签到": "Save roll call",
    "签到表": "Check-in sheet", "签名": "Signature", "新建表决": "New vote", "表决方式": "Mode", "电子表决": "Electronic",
    "纸质选票": "Paper", "通过标准": "Passing rule", "实有代表过半数": "More than half of seated deputies",
    "出席代表过半数": "More than half of those present", "按得票排序": "By ranking", "表决": "Vote", "会议": "Session",
    "牵头实施单位": "Lead unit", "指定牵头单位": "Assign the lead unit", "负责人": "Responsible leader", "预算": "Budget",
    "完成时限": "Deadline",
    # resident
    "您的建议": "Your proposal", "所在村（社区）": "Village or community", "联系方式（选填，不公开）": "Contact (optional, never published)",
    "建议已收到": "Proposal received", "感谢您的建议！镇人大办将按程序研究办理。": "Thank you! The township congress office will consider it.",
    "内容最多 {n} 字，当前 {m} 字。": "Content may have at most {n} characters; this has {m}.",
    "请填写标题。": "Please give a title.", "请保存查询码，可随时查看办理进展。": "Keep the tracking code to follow your proposal.",
    "查询办理进展": "Track a proposal", "提交时间": "Submitted", "项目库": "Project library",
    # unit / board / county
    "完成百分比": "Percent done", "已用资金（元）": "Funds spent (yuan)", "进展说明": "Progress narrative", "报告进度": "Report progress",
    "进度报告": "Progress reports", "报告时间": "Reported", "完成情况": "Completion", "已完成": "Completed",
    "基本完成": "Basically completed", "未完成": "Not completed", "实施中": "Under way", "验收日期": "Accepted on",
    "进度": "Progress", "乡镇": "Township", "完成率": "Completion rate", "投资完成率": "Investment completed",
    "加分": "Bonus", "扣分": "Deduction", "净得分": "Net points",
    "票决项目数": "Voted projects", "排名": "Rank", "净得分排名": "Ranking by net points", "完成率比较": "Completion rates",
    "图表的文字版本见右侧表格。": "The table beside the chart gives the same figures as text.",
    "发布考核结果": "Publish the assessment", "尚无考核结果。": "No assessment yet.", "得分": "Score", "测评": "Rating",
    "整改事项": "Rectification items", "已逾期": "Overdue", "整改情况": "What was done", "提交整改反馈": "Send the response",
    "暂无整改事项。": "No rectification items.", "提出": "Raised", "反馈": "Responded", "验证销号": "Verified and closed",
    "退回": "Sent back", "重新整改": "Reopened", "进度下降的理由（如有）": "Reason if progress went down",
    "现场照片（选填，不超过 5 MB）": "Site photo (optional, at most 5 MB)", "现场照片": "Site photo",
    "照片不能超过 5 MB。": "A photo may be at most 5 MB.", "请填写整改情况。": "Say what was done.",
    "尚无项目。": "No projects yet.", "项目": "Project", "最新进度": "Latest progress",
    "计划": "Plan", "状态": "State", "计划节点": "Planned milestones", "补报": "Backdated",
    "每行：日期 百分比 说明": "one per line: date, percent, description",
    "计划节点每行：日期 百分比 说明（如 2025-06-30 50 主体完工）":
        "Milestones: one per line, date, percent, description (e.g. 2025-06-30 50 structure done)",
    "严重滞后": "Far behind plan", "滞后": "Behind plan", "正常推进": "On plan", "已完成并验收": "Completed and accepted",
}


def translate(text: str, lang: str, **values: Any) -> str:
    phrase = EN.get(text, text) if lang == "en" else text
    return phrase.format(**values) if values else phrase


def cn_date(value: date | datetime | str | None, lang: str = "zh") -> str:
    if value in (None, ""):
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
    return value.strftime("%d %b %Y") if lang == "en" else f"{value.year}年{value.month}月{value.day}日"


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def yuan(value: Any, lang: str = "zh") -> str:
    """元 with thousands separators; 万元 from 100,000 元 (tables stay narrow)."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    if amount >= 100_000:
        return f"{amount / 10_000:,.2f} 万元" if lang == "zh" else f"¥{amount / 10_000:,.2f} × 10⁴"
    return f"{amount:,.0f} 元" if lang == "zh" else f"¥{amount:,.0f}"


def percent(value: Any, ratio: bool = True) -> str:
    """One decimal; ``ratio``: 0.857 → 85.7%, else 85.7 → 85.7%."""
    number = _decimal(value)
    if number is None:
        return "—"
    return f"{number * 100 if ratio else number:.1f}%"
