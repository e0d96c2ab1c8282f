"""Reading and writing the spreadsheets described by :mod:`wuye.imports.specs`.

Layout of every sheet Wuye writes: row 1 the Chinese headers, row 2 the English headers (in
grey italics), data from row 3. The reader finds columns by header (Chinese or English, in any
order), skips the English header row and blank rows, and ignores the template's example row.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import zip_longest
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from wuye.imports import fastxlsx
from wuye.imports.specs import DATE, DECIMAL, MONEY, TEXT, Column, Spec, cell_text

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
ERROR_FILL = PatternFill("solid", fgColor="FF9999")
EXAMPLE_FONT = Font(italic=True, color="808080")
EN_FONT = Font(italic=True, color="808080", size=9)
INSTRUCTIONS_TITLE = "说明"
ERROR_HEADER = "错误说明 / errors"


class SheetError(ValueError):
    """The file is not a readable .xlsx of the expected kind; carries zh and en reasons."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en


@dataclass(frozen=True)
class SheetRows:
    """The rows of an uploaded sheet, with where each column was found."""

    sheet_title: str
    columns: dict[str, int]  # column key -> 1-based column index
    rows: list[tuple[int, dict[str, Any]]]  # (Excel row number, raw cells by column key)
    header_row: int


def _norm(text: Any) -> str:
    return "".join(str(text or "").split()).lower()


def _open(content: bytes, spec: Spec) -> tuple[str, Iterator[tuple[int, tuple[Any, ...]]], Any]:
    """Open the sheet to import: (its title, its numbered rows, a close function).

    The streaming reader (:mod:`wuye.imports.fastxlsx`) is tried first; a workbook it cannot
    read is read by openpyxl. Raises SheetError if neither can.
    """
    def pick(names: list[str]) -> str:
        data = [n for n in names if n != INSTRUCTIONS_TITLE]
        if not data:
            raise SheetError("文件中没有数据工作表", "the workbook has no data sheet")
        return spec.sheet_title if spec.sheet_title in data else data[0]

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            book = fastxlsx.Workbook(zf)
            if book.sheets:
                title = pick(list(book.sheets))
                # Read it all here, so that a surprise half-way also falls back to openpyxl.
                rows = list(book.rows(title))
                return title, iter(rows), lambda: None
    except SheetError:
        raise
    except Exception:  # noqa: S110 - any oddity: let openpyxl try, it knows more variants
        pass
    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SheetError(
            "无法读取文件: 请上传 Excel .xlsx 文件",
            "cannot read the file: upload an .xlsx workbook",
        ) from exc
    title = pick(list(wb.sheetnames))
    numbered = enumerate(wb[title].iter_rows(values_only=True), start=1)
    return title, numbered, wb.close


def read_rows(content: bytes, spec: Spec) -> SheetRows:
    """Read the data rows of an uploaded workbook for ``spec``.

    Raises SheetError if the file is not an .xlsx workbook or a required column is missing.
    """
    title, rows_iter, close = _open(content, spec)
    try:
        by_header: dict[str, Column] = {}
        for col in spec.columns:
            by_header[_norm(col.zh)] = col
            by_header[_norm(col.en)] = col
        columns: dict[str, int] = {}
        header_row = 0
        # The header is the first row with a known column name within the first five.
        for n, values in rows_iter:
            if n > 5:
                break
            found = {}
            for i, v in enumerate(values, start=1):
                match = by_header.get(_norm(v))
                if match is not None and match.key not in found:
                    found[match.key] = i
            if found:
                columns, header_row = found, n
                break
        if not header_row:
            raise SheetError(
                f"找不到表头: 第一行应为 {'、'.join(c.zh for c in spec.columns)}",
                f"no header row: row 1 should be {', '.join(c.en for c in spec.columns)}",
            )
        missing = [c for c in spec.columns if c.required and c.key not in columns]
        if missing:
            raise SheetError(
                f"缺少必需的列: {'、'.join(c.zh for c in missing)}",
                f"missing required columns: {', '.join(c.en for c in missing)}",
            )
        en_headers = {_norm(c.en) for c in spec.columns}
        example = {k: _norm(_example_cell(spec.column(k), v)) for k, v in spec.example.items()}
        rows: list[tuple[int, dict[str, Any]]] = []
        for n, values in rows_iter:
            cells = {
                key: (values[i - 1] if i - 1 < len(values) else None)
                for key, i in columns.items()
            }
            texts = [_norm(v) for v in cells.values()]
            if not any(texts):
                continue
            if n == header_row + 1 and all(t in en_headers for t in texts if t):
                continue  # the English header row
            if example and all(
                _norm(_cell_as_written(cells.get(k))) == v for k, v in example.items()
            ):
                continue  # the template's example row, left in place
            rows.append((n, cells))
        return SheetRows(title, columns, rows, header_row)
    finally:
        close()


def _example_cell(col: Column, value: Any) -> str:
    return _cell_as_written(col.display(value))


def _cell_as_written(value: Any) -> str:
    """Canonical text of a cell for comparing with the example row (numbers normalised)."""
    if isinstance(value, bool):
        return cell_text(value)
    if isinstance(value, int | float | Decimal):
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return format(d.normalize(), "f")
    return cell_text(value)


def _styled(ws: Any, value: Any, *, font: Font | None = None, fill: PatternFill | None = None,
            number_format: str | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _write_headers(ws: Any, cols: Sequence[Column]) -> None:
    for i, col in enumerate(cols, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(col.width, len(col.zh) * 2 + 2)
    ws.freeze_panes = "A3"
    ws.append([
        _styled(ws, col.zh, font=Font(bold=True, color="C00000" if col.required else "000000"),
                fill=HEADER_FILL)
        for col in cols
    ])
    ws.append([_styled(ws, col.en, font=EN_FONT) for col in cols])


def _number_format(col: Column) -> str | None:
    if col.type == DATE:
        return "yyyy-mm-dd"
    if col.type == TEXT:
        # Text keeps leading zeros of room numbers and every digit of ID-card numbers.
        return "@"
    if col.type == DECIMAL:
        return "0." + "0" * col.places
    if col.type == MONEY:
        return "0.00"
    return None


def _add_validations(ws: Any, cols: Sequence[Column], last_row: int) -> None:
    for i, col in enumerate(cols, start=1):
        labels = col.allowed_labels()
        if not labels:
            continue
        dv = DataValidation(
            type="list",
            formula1='"' + ",".join(labels) + '"',
            allow_blank=not col.required,
            showErrorMessage=True,
            errorTitle=col.zh,
            error="请从下拉列表中选择 / choose from the list",
        )
        letter = get_column_letter(i)
        dv.add(f"{letter}3:{letter}{max(last_row, 1000)}")
        ws.data_validations.append(dv)


def _instructions(wb: Workbook, spec: Spec) -> None:
    ws = wb.create_sheet(INSTRUCTIONS_TITLE)
    for letter, width in zip("ABCDE", (18, 22, 8, 60, 60), strict=True):
        ws.column_dimensions[letter].width = width
    bold = Font(bold=True)
    ws.append([_styled(ws, f"{spec.title_zh}导入说明", font=Font(bold=True, size=14)),
               f"{spec.title_en}: how to fill this template"])
    ws.append([])
    lines = [
        ("1. 在“" + spec.sheet_title + "”工作表第 3 行起每行填一条; 第 1 行中文表头、第 2 行英文"
         "表头不要改动。灰色斜体的第 3 行是示例, 可以覆盖或删除(原样保留会被忽略)。",
         "Fill one record per row from row 3 of the data sheet; keep the Chinese (row 1) and "
         "English (row 2) headers. The grey example in row 3 may be overwritten or deleted "
         "(left as is, it is ignored)."),
        ("2. 红色表头为必填列。先点“试导入”检查: 整个文件全部正确才会导入, 有任何错误则一行也"
         "不导入, 并给出错误报告(出错的单元格标红并附批注)。",
         "Red headers are required. Try a dry run first: a file is imported only when every "
         "row is valid; otherwise nothing is imported and an error report marks each bad cell "
         "in red with a comment."),
        ("3. 同一文件重复导入不会产生重复数据。",
         "Importing the same file again changes nothing."),
    ]
    for zh, en in lines:
        ws.append([zh, "", "", "", en])
    for zh, en in zip_longest(spec.notes_zh, spec.notes_en, fillvalue=""):
        ws.append(["· " + zh, "", "", "", en])
    ws.append([])
    ws.append([_styled(ws, v, font=bold, fill=HEADER_FILL)
               for v in ("列名", "Column", "必填", "格式与说明", "Format and notes")])
    for col in spec.columns:
        ws.append([col.zh, col.en, "是" if col.required else "", col.describe_zh(),
                   col.describe_en()])


def workbook_bytes(
    spec: Spec,
    rows: Iterable[Mapping[str, Any]],
    *,
    with_example: bool = False,
    with_instructions: bool = True,
    columns: tuple[Column, ...] | None = None,
) -> bytes:
    """Write ``rows`` (dicts of parsed values by column key) as an .xlsx in ``spec``'s layout.

    The workbook is streamed (openpyxl's write-only mode), which takes about a third of the
    time of building it in memory.
    """
    cols = list(columns or spec.columns)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(spec.sheet_title)
    _write_headers(ws, cols)
    formats = [_number_format(c) for c in cols]
    # Plain values stream about twice as fast as styled cells: only amounts get a format
    # (dates get theirs from openpyxl; areas and readings show as the numbers they are).
    styled = [i for i, c in enumerate(cols) if c.type == MONEY]
    n = 2
    if with_example and spec.example:
        ws.append([
            _styled(ws, col.display(spec.example.get(col.key)), font=EXAMPLE_FONT,
                    number_format=formats[i])
            for i, col in enumerate(cols)
        ])
        n += 1
        # Empty rows preformatted as text, so typed room and ID numbers keep every digit.
        for _ in range(200):
            ws.append([_styled(ws, None, number_format=f) if f == "@" else None
                       for f in formats])
    else:
        for row in rows:
            values: list[Any] = [col.display(row.get(col.key)) for col in cols]
            for i in styled:
                if values[i] is not None:
                    values[i] = _styled(ws, values[i], number_format=formats[i])
            ws.append(values)
            n += 1
    _add_validations(ws, cols, n)
    if with_instructions:
        _instructions(wb, spec)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def error_workbook_bytes(
    content: bytes,
    *,
    sheet_title: str,
    columns: Mapping[str, int],
    header_row: int,
    errors: Iterable[tuple[int, str | None, str]],
) -> bytes:
    """Return a copy of the uploaded workbook with each bad cell filled red and commented.

    ``errors`` are ``(row, column key or None, message)``; a row-level error marks the row's
    first cell. Every bad row also gets its reasons in an extra last column.
    """
    wb = load_workbook(io.BytesIO(content))
    ws = wb[sheet_title]
    extra = ws.max_column + 1
    head = ws.cell(row=header_row, column=extra, value=ERROR_HEADER)
    head.font = Font(bold=True, color="C00000")
    ws.column_dimensions[get_column_letter(extra)].width = 60
    by_cell: dict[tuple[int, int], list[str]] = {}
    by_row: dict[int, list[str]] = {}
    for row, key, message in errors:
        if row <= 0:
            continue
        col = columns.get(key, 1) if key else 1
        by_cell.setdefault((row, col), []).append(message)
        by_row.setdefault(row, []).append(message)
    for (row, col), messages in by_cell.items():
        cell = ws.cell(row=row, column=col)
        cell.fill = ERROR_FILL
        cell.comment = Comment("\n".join(messages), "Wuye", width=300, height=120)
    for row, messages in by_row.items():
        c = ws.cell(row=row, column=extra, value="; ".join(messages))
        c.font = Font(color="C00000")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
