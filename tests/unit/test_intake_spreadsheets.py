"""Paper lists in spreadsheets: every problem named in Chinese by row and column, nothing half
read. Pure (bytes in, rows and problems out)."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from services.intake.domain.screening import Channel
from services.intake.spreadsheets import COLUMNS, EXPORT_HEADERS, export, parse, template

HEADERS = ["项目名称", "地点（村/社区）", "受益人数", "估算投资（元）", "收集日期", "来源渠道"]


def xlsx(rows, merge: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def problems(data: bytes) -> list[tuple]:
    parsed = parse(data)
    assert not parsed.problems or parsed.rows == [] or parsed.problems, parsed
    return [(p.row, p.column) for p in parsed.problems]


def test_the_template_reads_back_as_one_proposal_with_chinese_headers():
    parsed = parse(template())
    assert parsed.problems == [] and parsed.format == "xlsx"
    [(row, fields)] = parsed.rows
    assert row == 2 and fields.location == "王庄村" and fields.channel is Channel.GRID and fields.collected_on == date(2024, 1, 15)
    assert [c.value for c in openpyxl.load_workbook(io.BytesIO(template())).active[1]][0] == "项目名称*"


def test_a_good_sheet_gives_every_row_with_its_spreadsheet_row_number():
    data = xlsx([HEADERS, ["王马路修缮", "王庄村", 1200, 3000000, datetime(2024, 1, 2), "微信QQ群"], [],
                 ["路灯", "马庙村", "800", "1,500", "2024-01-03", ""]])
    parsed = parse(data)
    assert parsed.problems == []
    assert [(n, f.title, f.beneficiaries, str(f.estimated_budget), f.channel) for n, f in parsed.rows] == [
        (2, "王马路修缮", 1200, "3000000", Channel.WECHAT_QQ), (4, "路灯", 800, "1500", Channel.GRID)]


def test_a_gbk_csv_from_excel_on_a_chinese_windows_is_read_and_its_encoding_told():
    parsed = parse(",".join(HEADERS).encode("gbk") + "\r\n新仓村路灯,新仓村,800,150000,2024-01-05,网格\r\n".encode("gbk"))
    assert parsed.problems == [] and parsed.encoding == "gbk" and parsed.rows[0][1].title == "新仓村路灯"
    assert parse(("\ufeff" + ",".join(HEADERS) + "\n路灯,马庙村,,,,\n").encode()).encoding == "utf-8"


@pytest.mark.parametrize(("data", "where", "says"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", (None, None), "不是表格"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, (None, None), ".xls"),
    (b"PK\x03\x04" + b"garbage" * 10, (None, None), "无法读取"),
    ("项目名称,地点\n".encode("utf-16"), (None, None), "不是表格"),
    (b"\xff\xfe\xfa\xfb\x81\x30\x81", (None, None), "编码"),
    (b"", (None, None), "空的"),
])
def test_what_is_not_a_spreadsheet_is_refused_in_chinese(data, where, says):
    parsed = parse(data)
    assert parsed.rows == [] and [(p.row, p.column) for p in parsed.problems] == [where]
    assert says in parsed.problems[0].message


def test_formulas_merged_header_cells_and_numeric_dates_are_each_named_by_row_and_column():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    sheet.append(["路灯", "王庄村", 100, "=C2*1000", 45292, "网格"])
    out = io.BytesIO()
    book.save(out)
    parsed = parse(out.getvalue())
    assert [(p.row, p.column) for p in parsed.problems] == [(2, None), (2, "收集日期")]
    assert "公式" in parsed.problems[0].message and "D2" in parsed.problems[0].message
    assert "45292" in parsed.problems[1].message and "2024-01-15" in parsed.problems[1].message

    merged = parse(xlsx([["项目名称", "", "受益人数"], ["路灯", "", 1]], merge="A1:B1"))
    assert merged.rows == [] and "合并单元格" in merged.problems[0].message and merged.problems[0].row == 1


@pytest.mark.parametrize(("cell", "column", "says"), [
    ("１２３", "受益人数", "全角数字「１２３」"),
    ("一百", "受益人数", "不是数字"),
    ("12.5", "受益人数", "整数"),
    ("-1", "受益人数", "负数"),
    ("３０万", "估算投资（元）", "全角"),
    ("２０２４-01-02", "收集日期", "全角"),
    ("45292", "收集日期", "写成了数字"),
    ("明天", "收集日期", "看不懂"),
    ("抖音", "来源渠道", "不认识的来源渠道"),
])
def test_each_bad_cell_is_named_by_row_and_column(cell, column, says):
    row = {"项目名称": "路灯", "地点（村/社区）": "王庄村"}
    row[column] = cell
    data = (",".join(row) + "\n" + ",".join(row.values()) + "\n").encode()
    parsed = parse(data)
    assert parsed.rows == []
    [problem] = parsed.problems
    assert (problem.row, problem.column) == (2, column) and says in problem.message


def test_a_header_that_is_not_the_templates_or_a_missing_required_column_is_named():
    assert [(p.row, p.column) for p in parse("项目名称,备注\n路灯,x\n".encode()).problems] == [(1, "备注"), (1, "地点（村/社区）")]
    assert "必填" in parse("项目名称,地点（村/社区）\n路灯,\n".encode()).problems[0].message


def test_too_many_rows_is_refused_whole():
    data = ("项目名称,地点（村/社区）\n" + "路灯,王庄村\n" * 11).encode()
    parsed = parse(data, max_rows=10)
    assert parsed.rows == [] and "最多导入 10 行" in parsed.problems[0].message


def test_an_xlsx_that_would_inflate_past_the_limit_is_refused_before_it_is_opened():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "0" * (70 * 1024 * 1024))
    parsed = parse(out.getvalue())
    assert parsed.rows == [] and "过大" in parsed.problems[0].message


def test_the_export_has_the_year_columns_and_contacts_only_when_asked():
    line = ["AAAAA-BBBBB", "路灯", "", "王庄村", "", "网格", "已提交", "", 1, "网格 1", "王庄村 1", "", "", None, None, None]
    plain = openpyxl.load_workbook(io.BytesIO(export([line], contacts=False))).active
    assert [c.value for c in plain[1]] == list(EXPORT_HEADERS) and plain.max_row == 2
    with_contacts = openpyxl.load_workbook(io.BytesIO(export([[*line, "张三", "138"]], contacts=True))).active
    assert [c.value for c in with_contacts[1]][-2:] == ["建议人", "联系方式"]


def test_every_template_column_is_a_proposal_field():
    from services.intake.domain.screening import ProposalFields

    assert {c.key for c in COLUMNS} <= set(ProposalFields.model_fields)
