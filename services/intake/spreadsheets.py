"""Paper lists in spreadsheets (网格员收集的群众点单): the template, reading an uploaded ``.xlsx`` or
``.csv`` into proposals with every problem named by row and column in Chinese, and the year's
export. Pure: bytes in, rows and problems out (no database, no HTTP).

A file with any problem imports nothing; the problems say what to fix. Refused: what is not a
spreadsheet (and the old binary ``.xls``), a file past the size or row limit, formulas (the value
a person saw may not be what is stored), merged header cells, dates written as numbers (Excel's
serial 45292 is ambiguous once it leaves Excel), full-width digits in number and date columns
(１２３), and text that decodes neither as UTF-8 nor as GBK. A CSV saved by Excel on a Chinese
Windows is GBK (GB18030): it is read as such and the encoding is reported."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from services.intake.domain.screening import CHANNEL_LABELS, Channel, ProposalFields

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UNZIPPED = 64 * 1024 * 1024  # an xlsx is a zip: refuse one that would inflate past this


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text, integer, money, flag, channel, date
    required: bool = False
    note: str = ""


COLUMNS = (
    Column("title", "项目名称", required=True, note="必填，200字以内"),
    Column("content", "内容描述", note="群众反映的具体问题和诉求"),
    Column("location", "地点（村/社区）", required=True, note="必填，如：王庄村"),
    Column("category", "类别", note="如：交通、饮水、照明"),
    Column("channel", "来源渠道", kind="channel", note="默认：网格；可填：" + "、".join(CHANNEL_LABELS.values())),
    Column("beneficiaries", "受益人数", kind="integer", note="半角数字，如 1200"),
    Column("estimated_budget", "估算投资（元）", kind="money", note="以元为单位的半角数字，如 350000"),
    Column("funding_secured", "资金已落实", kind="flag", note="是 / 否，默认否"),
    Column("funding_source", "资金来源"),
    Column("lead_unit", "实施主体"),
    Column("proposer", "建议人", note="个人信息，仅人大办可见，到期删除"),
    Column("contact", "联系方式", note="个人信息，仅人大办可见，到期删除"),
    Column("collected_on", "收集日期", kind="date", note="写成 2024-01-15 格式的文字或日期单元格"),
)
_BY_HEADER = {c.header: c for c in COLUMNS}
_CHANNELS = {**{label: ch for ch, label in CHANNEL_LABELS.items()}, **{ch.value: ch for ch in Channel}}
_FULLWIDTH_DIGITS = re.compile("[０-９]")
_TRUE, _FALSE = {"是", "y", "yes", "true", "1", "已落实"}, {"否", "n", "no", "false", "0", "未落实", ""}


@dataclass(frozen=True)
class RowProblem:
    row: int | None  # the spreadsheet's row number (1 is the header), None: the whole file
    column: str | None  # the header people see
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class Parsed:
    file_hash: str
    format: str  # xlsx / csv
    encoding: str | None = None  # csv: utf-8 or gbk
    rows: list[tuple[int, ProposalFields]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse(data: bytes, max_rows: int = 10_000) -> Parsed:
    """Every proposal of the file, or the problems that keep it from being imported."""
    parsed = Parsed(file_hash(data), "unknown")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        parsed.problems.append(RowProblem(None, None, "这是旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 后再上传"))
        return parsed
    if data.startswith(b"PK\x03\x04"):
        parsed.format = "xlsx"
        table = _xlsx_cells(data, parsed)
    else:
        parsed.format = "csv"
        table = _csv_cells(data, parsed)
    if table is not None:  # cell problems found so far (formulas, merged cells) do not hide the others
        _rows(table, parsed, max_rows)
    return parsed


# ---------------------------------------------------------------- reading the cells


def _xlsx_cells(data: bytes, parsed: Parsed) -> list[tuple[int, list[Any]]] | None:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if "xl/workbook.xml" not in z.namelist():
                parsed.problems.append(RowProblem(None, None, "文件不是 Excel 表格（.xlsx），请使用下载的模板"))
                return None
            if sum(i.file_size for i in z.infolist()) > MAX_UNZIPPED:
                parsed.problems.append(RowProblem(None, None, "表格内容过大，请拆分成几个文件分别导入"))
                return None
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=False)
    except Exception:  # openpyxl raises many kinds on a damaged file; all mean the same to the clerk
        parsed.problems.append(RowProblem(None, None, "文件已损坏或不是 Excel 表格（.xlsx），无法读取"))
        return None
    if not book.worksheets:
        parsed.problems.append(RowProblem(None, None, "文件中没有工作表，请使用下载的模板"))
        return None
    sheet = book.worksheets[0]
    header_row = next((r[0].row for r in sheet.iter_rows() if any(c.value not in (None, "") for c in r)), 1)
    for merged in sheet.merged_cells.ranges:
        if merged.min_row <= header_row <= merged.max_row:
            parsed.problems.append(RowProblem(header_row, None, f"表头 {merged.coord} 是合并单元格，请取消合并，每列一个表头（可直接使用模板）"))
        else:
            parsed.problems.append(RowProblem(merged.min_row, None, f"{merged.coord} 是合并单元格，请取消合并后每行填写完整"))
    table = []
    for row in sheet.iter_rows(min_row=header_row):
        cells = []
        for cell in row:
            if cell.data_type == "f":
                parsed.problems.append(RowProblem(cell.row, None, f"单元格 {cell.coordinate} 含公式「{str(cell.value)[:30]}」，"
                                                                  "请复制后“选择性粘贴为数值”"))
                cells.append(None)
            else:
                cells.append(cell.value)
        table.append((row[0].row, cells))
    return table


def _csv_cells(data: bytes, parsed: Parsed) -> list[tuple[int, list[Any]]] | None:
    if b"\x00" in data[:4096]:
        parsed.problems.append(RowProblem(None, None, "文件不是表格：请上传 Excel（.xlsx）或 CSV 文件"))
        return None
    for encoding, codec in (("utf-8", "utf-8-sig"), ("gbk", "gb18030")):
        try:
            text = data.decode(codec)
            parsed.encoding = encoding
            break
        except UnicodeDecodeError:
            continue
    else:
        parsed.problems.append(RowProblem(None, None, "无法识别文件编码：请另存为 UTF-8 或 GBK 编码的 CSV，或直接使用 Excel 模板"))
        return None
    controls = sum(1 for ch in text[:4096] if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n")
    if controls > len(text[:4096]) // 100:
        parsed.problems.append(RowProblem(None, None, "文件不是表格：请上传 Excel（.xlsx）或 CSV 文件"))
        return None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        parsed.problems.append(RowProblem(None, None, f"CSV 格式有误：{exc}"))
        return None
    table = []
    for number, cells in enumerate(rows, 1):
        for i, cell in enumerate(cells):
            if cell.startswith("="):
                parsed.problems.append(RowProblem(number, None, f"第{i + 1}列含公式「{cell[:30]}」，请改为数值或文字"))
        table.append((number, [c if not c.startswith("=") else None for c in cells]))
    return table


# ---------------------------------------------------------------- header and rows


def _header_key(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value or "")).strip().rstrip("*＊").strip()
    return text.replace("(", "（").replace(")", "）")


def _rows(table: list[tuple[int, list[Any]]], parsed: Parsed, max_rows: int) -> None:
    table = [(n, cells) for n, cells in table if any(c not in (None, "") and str(c).strip() for c in cells)]
    if not table:
        parsed.problems.append(RowProblem(None, None, "表格是空的：请在模板的表头下方逐行填写"))
        return
    header_number, header = table[0]
    before = len(parsed.problems)
    columns: dict[int, Column] = {}
    for i, value in enumerate(header):
        if value in (None, ""):
            continue
        column = _BY_HEADER.get(_header_key(value))
        if column is None:
            parsed.problems.append(RowProblem(header_number, str(value), f"不认识的表头「{value}」，请使用模板的表头"))
        elif column in columns.values():
            parsed.problems.append(RowProblem(header_number, column.header, f"表头「{column.header}」出现了两次"))
        else:
            columns[i] = column
    for column in COLUMNS:
        if column.required and column not in columns.values():
            parsed.problems.append(RowProblem(header_number, column.header, f"缺少必填列「{column.header}」"))
    data = table[1:]
    if len(data) > max_rows:
        parsed.problems.append(RowProblem(None, None, f"一次最多导入 {max_rows} 行，本文件有 {len(data)} 行，请拆分后导入"))
        return
    if len(parsed.problems) > before:  # without the right columns, the rows cannot be read
        return
    for number, cells in data:
        values, ok = {}, True
        for i, column in columns.items():
            raw = cells[i] if i < len(cells) else None
            try:
                value = _cell(column, raw)
            except ValueError as exc:
                parsed.problems.append(RowProblem(number, column.header, str(exc)))
                ok = False
                continue
            if value is not None:
                values[column.key] = value
        values.setdefault("channel", Channel.GRID)
        if not ok:
            continue
        try:
            parsed.rows.append((number, ProposalFields.model_validate(values)))
        except ValidationError as exc:
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else ""
                header = next((c.header for c in COLUMNS if c.key == key), key)
                parsed.problems.append(RowProblem(number, header, _message(error)))


def _cell(column: Column, raw: Any) -> Any:
    """One cell as the proposal takes it; a ValueError's message is what the clerk reads."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if column.required:
            raise ValueError(f"「{column.header}」为必填")
        return None
    if column.kind == "date":
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, date):
            return raw
        if isinstance(raw, int | float):
            raise ValueError(f"日期写成了数字「{raw:g}」，请写成 2024-01-15 格式（或把单元格设为日期格式）")
        text = str(raw).strip()
        _no_fullwidth(text)
        if re.fullmatch(r"\d+(\.\d+)?", text):
            raise ValueError(f"日期写成了数字「{text}」，请写成 2024-01-15 格式")
        try:
            return date.fromisoformat(text.replace("/", "-").replace(".", "-"))
        except ValueError:
            raise ValueError(f"日期「{text}」看不懂，请写成 2024-01-15 格式") from None
    if isinstance(raw, datetime | date):
        raise ValueError(f"这一列不应是日期：{raw}")
    if column.kind in ("integer", "money"):
        if isinstance(raw, bool):
            raise ValueError("应填写数字")
        if isinstance(raw, int | float | Decimal):
            number = Decimal(str(raw))
        else:
            text = str(raw).strip()
            _no_fullwidth(text)
            try:
                number = Decimal(text.replace(",", ""))
            except InvalidOperation:
                raise ValueError(f"「{text}」不是数字，请填写半角数字" + ("（以元为单位）" if column.kind == "money" else "")) from None
        if not number.is_finite():
            raise ValueError("应填写数字")
        if column.kind == "integer":
            if number != number.to_integral_value():
                raise ValueError(f"「{raw}」应为整数")
            return int(number)
        return number
    text = str(raw).strip()
    if column.kind == "flag":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"「{text}」请填写“是”或“否”")
    if column.kind == "channel":
        channel = _CHANNELS.get(text)
        if channel is None:
            raise ValueError(f"不认识的来源渠道「{text}」，可填：{'、'.join(CHANNEL_LABELS.values())}")
        return channel
    if isinstance(raw, float) and raw.is_integer():
        text = str(int(raw))
    return text


def _no_fullwidth(text: str) -> None:
    found = "".join(_FULLWIDTH_DIGITS.findall(text))
    if found:
        raise ValueError(f"含全角数字「{found}」，请改为半角数字「{unicodedata.normalize('NFKC', found)}」")


def _message(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "string_too_long":
        return f"太长了：最多 {ctx.get('max_length')} 个字"
    if kind in ("less_than_equal", "decimal_max_digits", "decimal_max_places"):
        return "数值过大或小数位过多"
    if kind == "greater_than_equal":
        return "不能是负数"
    if kind == "invalid_characters":
        return "含有无法保存的字符"
    return f"内容有误：{error['msg']}"


# ---------------------------------------------------------------- writing


def template() -> bytes:
    """The template to download: Chinese headers, one example row, and the notes on a second sheet."""
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "群众点单"
    sheet.append([c.header + ("*" if c.required else "") for c in COLUMNS])
    sheet.append(["王马公路路面修缮", "路面坑洼，雨天积水", "王庄村", "交通", "网格", "2000", "3000000", "否", "", "镇交通站",
                  "", "", "2024-01-15"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for i, column in enumerate(COLUMNS):
        sheet.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width = max(12, 2 * len(column.header) + 4)
    channels = DataValidation(type="list", formula1='"' + ",".join(CHANNEL_LABELS.values()) + '"', allow_blank=True)
    sheet.add_data_validation(channels)
    channels.add(f"{openpyxl.utils.get_column_letter(COLUMNS.index(_BY_HEADER['来源渠道']) + 1)}2:"
                 f"{openpyxl.utils.get_column_letter(COLUMNS.index(_BY_HEADER['来源渠道']) + 1)}10000")
    notes = book.create_sheet("填写说明")
    notes.append(["列", "说明"])
    for column in COLUMNS:
        notes.append([column.header, column.note])
    notes.append(["", "第一行是表头，请勿修改或合并；从第二行起每行一条；不要使用公式；数字用半角。"])
    return _save(book)


EXPORT_HEADERS = ("查询码", "项目名称", "内容描述", "地点（村/社区）", "类别", "来源渠道", "阶段", "原因", "支持人数", "支持来源",
                  "支持村/社区", "合并至", "来自项目库", "可行性得分", "估算投资（元）", "受益人数")
CONTACT_HEADERS = ("建议人", "联系方式")


def export(rows: Iterable[list[Any]], contacts: bool) -> bytes:
    """The year's proposals (rows in ``EXPORT_HEADERS`` order, then the contacts when asked)."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("提案")
    sheet.append(list(EXPORT_HEADERS + (CONTACT_HEADERS if contacts else ())))
    for row in rows:
        sheet.append(row)
    return _save(book)


def _save(book) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
