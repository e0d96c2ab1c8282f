"""Build small .xlsx files the way a user's spreadsheet program would."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook, load_workbook

from wuye.imports.specs import spec_for


def xlsx(kind: str, rows: Sequence[Sequence[Any]], *, english_row: bool = True) -> bytes:
    """A workbook with ``kind``'s Chinese headers (and English ones) and ``rows`` from row 3."""
    spec = spec_for(kind)
    wb = Workbook()
    ws = wb.active
    ws.title = spec.sheet_title
    ws.append([c.zh for c in spec.columns])
    if english_row:
        ws.append([c.en for c in spec.columns])
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def sheet(content: bytes) -> Any:
    return load_workbook(io.BytesIO(content)).worksheets[0]
