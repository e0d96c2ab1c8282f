"""A lean reader of one worksheet's cell values, for large uploads.

openpyxl builds an object per cell (and parses every inline string as rich text), which makes
reading 60,000 rows take several seconds. This reader streams the sheet's XML with
ElementTree and yields plain values: shared and inline strings as ``str``, numbers as ``int``
or ``float`` (exactly what openpyxl returns), booleans, and numbers in date formats as
``datetime`` (using openpyxl's own date-format test and epoch conversion). Anything it does
not understand raises an exception, and the caller falls back to openpyxl.

Uploads are untrusted XML. ElementTree never fetches external entities, and the expat it is
built on (2.4.1 and later; 2.5 here) refuses entity-expansion bombs, which is the same
exposure openpyxl has without defusedxml.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, iterparse, parse

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CELL_REF = re.compile(r"^([A-Z]+)(\d+)$")


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - 64)
    return n


def _text(si: Element) -> str:
    """The text of a shared or inline string: its runs, without phonetic (rPh) guides."""
    direct = si.find(f"{NS}t")
    if direct is not None:
        return direct.text or ""
    return "".join(t.text or "" for r in si.findall(f"{NS}r") for t in r.findall(f"{NS}t"))


class Workbook:
    """The parts of an .xlsx needed to read values: sheets, shared strings, date styles."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        root = self._xml("xl/workbook.xml")
        pr = root.find(f"{NS}workbookPr")
        self.epoch = (
            CALENDAR_MAC_1904
            if pr is not None and pr.get("date1904") in ("1", "true")
            else CALENDAR_WINDOWS_1900
        )
        rels = {
            r.get("Id"): r.get("Target", "")
            for r in self._xml("xl/_rels/workbook.xml.rels").iter(f"{PKG_REL_NS}Relationship")
        }
        self.sheets: dict[str, str] = {}
        for sheet in root.iter(f"{NS}sheet"):
            target = rels[sheet.get(f"{REL_NS}id")]
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join("xl", target)
            )
            self.sheets[sheet.get("name", "")] = path
        self.strings: list[str] = []
        if "xl/sharedStrings.xml" in zf.namelist():
            self.strings = [_text(si) for si in self._xml("xl/sharedStrings.xml").iter(f"{NS}si")]
        self.date_styles: set[int] = set()
        if "xl/styles.xml" in zf.namelist():
            styles = self._xml("xl/styles.xml")
            custom = {
                int(f.get("numFmtId", "0")): f.get("formatCode", "")
                for f in styles.iter(f"{NS}numFmt")
            }
            xfs = styles.find(f"{NS}cellXfs")
            for i, xf in enumerate(xfs if xfs is not None else []):
                fmt_id = int(xf.get("numFmtId", "0"))
                fmt = custom.get(fmt_id) or BUILTIN_FORMATS.get(fmt_id, "")
                if fmt and is_date_format(fmt):
                    self.date_styles.add(i)

    def _xml(self, name: str) -> Element:
        with self.zf.open(name) as fh:
            return parse(fh).getroot()  # noqa: S314 - see module docstring

    def rows(self, title: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """Yield ``(row number, values)`` for each row that has cells, in sheet order."""
        strings, dates, epoch = self.strings, self.date_styles, self.epoch
        with self.zf.open(self.sheets[title]) as fh:
            row_no = 0
            values: dict[int, Any] = {}
            col_no = 0
            for _event, el in iterparse(fh, events=("end",)):  # noqa: S314
                tag = el.tag
                if tag == f"{NS}c":
                    ref = el.get("r")
                    if ref:
                        m = CELL_REF.match(ref)
                        if m is None:
                            raise ValueError(f"bad cell reference {ref!r}")
                        col_no = _column_index(m.group(1))
                    else:
                        col_no += 1
                    kind = el.get("t", "n")
                    v = el.find(f"{NS}v")
                    raw = v.text if v is not None else None
                    value: Any
                    if kind == "s":
                        value = strings[int(raw)] if raw is not None else None
                    elif kind == "inlineStr":
                        is_ = el.find(f"{NS}is")
                        value = _text(is_) if is_ is not None else None
                    elif kind in ("str", "e"):
                        value = raw
                    elif kind == "b":
                        value = None if raw is None else raw == "1"
                    elif kind == "d":
                        value = None if raw is None else datetime.fromisoformat(raw)
                    elif raw is None:
                        value = None
                    else:
                        number: int | float = (
                            float(raw) if any(c in raw for c in ".eE") else int(raw)
                        )
                        style = int(el.get("s", "0"))
                        value = from_excel(number, epoch) if style in dates else number
                    if value is not None:
                        values[col_no] = value
                    el.clear()
                elif tag == f"{NS}row":
                    r = el.get("r")
                    row_no = int(r) if r else row_no + 1
                    if values:
                        width = max(values)
                        yield row_no, tuple(values.get(i) for i in range(1, width + 1))
                    values = {}
                    col_no = 0
                    el.clear()

