"""导出 Excel: a list as an .xlsx download (openpyxl), headers in Chinese, ISO dates in the data."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(filename: str, sheet: str, headers: list[str], rows: list[list[Any]]) -> Response:
    book = Workbook()
    ws = book.active
    ws.title = sheet[:31]
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        # A text cell that starts like a formula is kept as text (no formula injection).
        ws.append([f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" else v for v in row])
    for column in ws.columns:
        ws.column_dimensions[column[0].column_letter].width = min(60, max(10, *(len(str(c.value or "")) * 2 for c in column)))
    buffer = io.BytesIO()
    book.save(buffer)
    return Response(buffer.getvalue(), media_type=XLSX,
                    headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})
