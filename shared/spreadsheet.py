"""Spreadsheets (xlsx) for people who file them: one sheet per table, a bold header row."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from openpyxl import Workbook
from openpyxl.styles import Font

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # xlsx has no time zones: times are UTC
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    return value if value is None or isinstance(value, str | int | float | date) else str(value)


def workbook(sheets: dict[str, tuple[Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """``{sheet title: (headers, rows)}`` as the bytes of an xlsx file."""
    book = Workbook()
    book.remove(book.active)
    for title, (headers, rows) in sheets.items():
        sheet = book.create_sheet(title[:31])
        sheet.append(list(headers))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([_cell(v) for v in row])
        for i, header in enumerate(headers):
            sheet.column_dimensions[sheet.cell(1, i + 1).column_letter].width = max(12, len(str(header)) * 2)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
