"""What the Fuyu office faces at intake beyond the ten proposals of the town report: people asking
for the same thing in other words, a proposal outside the project scope, and a grid worker's
spreadsheet of proposals collected on paper. Nothing here decides an outcome: the duplicate
detector suggests, the office merges what it suggested."""

from __future__ import annotations

import io

# The township's gazetteer (地名), as its office keeps it: the short names people use.
PLACES = [
    {"name": "王庄村", "aliases": ["王庄"]},
    {"name": "马庙村", "aliases": ["马庙"]},
    {"name": "城西社区", "kind": "community", "aliases": ["城西"]},
    {"name": "城东社区", "kind": "community", "aliases": ["城东"]},
    {"name": "联丰村", "aliases": ["联丰"]},
    {"name": "新仓村", "aliases": ["新仓"]},
    {"name": "山区五村", "kind": "area", "aliases": ["山区"]},
    {"name": "龙山村", "aliases": ["龙山"], "within": "山区五村"},
    {"name": "金鸡村", "aliases": ["金鸡"], "within": "山区五村"},
    {"name": "余河村", "aliases": ["余河"]},
    {"name": "王马公路", "kind": "road", "aliases": ["王马路", "王马线"], "ends": ["王庄村", "马庙村"]},
    {"name": "G105国道", "kind": "road", "aliases": ["G105", "105国道", "G105沿线"]},
]

# The year's rules: the default negative list, and a location is required.
ELIGIBILITY_EXTRA = {"id": "required", "kind": "required", "label": "必填内容", "reason": "缺少项目地点，请补充村（社区）名称",
                     "fields": ["title", "location"]}
NOTICE_DAYS = 7  # 公示期
FEASIBILITY = {"demand": 80, "buildability": 75, "urgency": 70, "funding": 60}  # the review's scores, the same for each

# The same requests as two of the ten, in other words, from other channels: (title, channel,
# location, content, the item it repeats).
DUPLICATES = (
    ("王马路太烂了", "wechat_qq", "马庙村", "坑坑洼洼，下雨天全是泥", "王马公路升级改造"),
    ("王庄到马庙的公路需要升级改造", "deputy_forum", "王庄村", "路面窄，会车困难", "王马公路升级改造"),
    ("龙山村自来水水压不足", "reception_day", "龙山村", "地势高的几户经常停水", "农村饮水安全提升工程"),
    ("城西社区居民办事的地方太挤", "letter_hotline", "城西社区", "老人办医保要站着排长队", "党群服务中心建设"),
    ("G105沿线的征地拆迁进度太慢", "letter_hotline", "G105沿线", "沿线群众盼着国道早日通车", "G105国道改扩建项目沿线征地拆迁"),
)

# Outside the project scope (负面清单): turned away with the rule's reason, never silently.
INELIGIBLE = ("镇政府办公楼维修改造", "department", "镇政府", "办公楼外墙脱落、屋顶漏水，办公条件差")

# A grid worker's list (网格员收集的群众点单), collected on paper and typed into the template.
GRID_SHEET = (
    ("王马线路面修缮", "两村之间的主干道破损严重", "王庄村", "交通", "网格", 1200, None, "李网格", "139****0001", "2023-11-20"),
    ("新仓村路灯安装", "村道没有照明", "新仓村", "照明", "网格", 800, 150000, "王网格", "139****0002", "2023-11-21"),
    ("余河村水渠修复", "渠道垮塌，水放不到田里", "余河村", "农业", "网格", 600, 280000, "王网格", "139****0002", "2023-11-22"),
    ("联丰村垃圾清运点", "", "联丰村", "环卫", "网格", 2000, 90000, "赵网格", "139****0003", "2023-11-23"),
    ("金鸡村卫生室改造", "房屋漏雨", "金鸡村", "医疗", "网格", 900, 300000, "赵网格", "139****0003", "2023-11-24"),
)
SHEET_HEADERS = ("项目名称", "内容描述", "地点（村/社区）", "类别", "来源渠道", "受益人数", "估算投资（元）", "建议人", "联系方式", "收集日期")


def grid_sheet() -> bytes:
    """The grid worker's list as an .xlsx, with the template's headers."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(SHEET_HEADERS))
    for row in GRID_SHEET:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
