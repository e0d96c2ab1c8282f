"""The streaming reader reads what openpyxl reads, including files as Excel and WPS save them
(shared strings with rich-text runs and phonetic guides, date styles, the 1904 calendar)."""

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from wuye.estates.models import Unit
from wuye.imports import fastxlsx
from wuye.imports.selectors import export_build
from wuye.imports.services import import_file, template_build
from wuye.imports.tests.helpers import xlsx
from wuye.testing.factories import make_community, make_company, make_unit

M = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "application/vnd.openxmlformats"
SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def excel_like(rows_xml: str, *, date1904: bool = False) -> bytes:
    """A minimal workbook laid out the way Excel writes one (shared strings, styles)."""
    strings = [
        "小区编号", "楼栋编号", "房号", "建筑面积(m²)", "交房日期", "C001",
        # rich text runs and a phonetic guide that must not leak into the value
        '<r><t>1</t></r><r><rPr><b/></rPr><t>号</t></r>',
        "0101",
    ]
    phonetic = '<rPh sb="0" eb="1"><t>x</t></rPh>'
    sst = "".join(
        f"<si>{s}</si>" if s.startswith("<r>") else f"<si><t>{s}</t>{phonetic}</si>"
        for s in strings
    )
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="{PKG}-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{SML}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SML}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SML}.sharedStrings+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{SML}.styles+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{R}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{M}" xmlns:r="{R}">'
            + ('<workbookPr date1904="1"/>' if date1904 else "<workbookPr/>")
            + '<sheets><sheet name="房屋" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{R}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{R}/sharedStrings" Target="sharedStrings.xml"/>'
            f'<Relationship Id="rId3" Type="{R}/styles" Target="styles.xml"/>'
            "</Relationships>"
        ),
        "xl/sharedStrings.xml": f'<sst xmlns="{M}">{sst}</sst>',
        "xl/styles.xml": (
            f'<styleSheet xmlns="{M}"><numFmts count="1"><numFmt numFmtId="176" '
            'formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/></numFmts>'
            '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            '</borders><cellStyleXfs count="1"><xf numFmtId="0"/></cellStyleXfs>'
            '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/>'
            '<xf numFmtId="176" applyNumberFormat="1"/></cellXfs>'
            # Excel always names its default style; without it openpyxl warns.
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            "</styleSheet>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{M}"><sheetData>{rows_xml}</sheetData></worksheet>'
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return out.getvalue()


ROWS_XML = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
    '<c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v>4</v></c></row>'
    # row 2 left out (a gap), row 3 with a date style, row 5 with a custom Chinese date format
    '<row r="3"><c r="A3" t="s"><v>5</v></c><c r="B3" t="s"><v>6</v></c>'
    '<c r="C3" t="s"><v>7</v></c><c r="D3"><v>89.5</v></c><c r="E3" s="1"><v>43831</v></c></row>'
    '<row r="5"><c r="A5" t="s"><v>5</v></c><c r="B5" t="s"><v>6</v></c>'
    '<c r="C5" t="str"><v>0102</v></c><c r="D5"><v>120</v></c><c r="E5" s="2"><v>43832</v></c>'
    '<c r="F5" t="b"><v>1</v></c></row>'
)


def fast_rows(content):
    book = fastxlsx.Workbook(zipfile.ZipFile(io.BytesIO(content)))
    title = next(n for n in book.sheets if n != "说明")
    return [(n, v) for n, v in book.rows(title)]


def openpyxl_rows(content):
    wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    ws = wb[next(n for n in wb.sheetnames if n != "说明")]
    return [
        (n, tuple(v))
        for n, v in enumerate(ws.iter_rows(values_only=True), start=1)
        if any(x is not None for x in v)
    ]


def same(fast, slow):
    """openpyxl pads every row to the sheet's width; the fast reader stops at the last cell."""
    assert [n for n, _ in fast] == [n for n, _ in slow]
    for (_, a), (_, b) in zip(fast, slow, strict=True):
        assert tuple(a) == tuple(b[: len(a)]) and all(x is None for x in b[len(a):])


def test_an_excel_style_workbook_reads_the_same_as_with_openpyxl():
    content = excel_like(ROWS_XML)

    rows = fast_rows(content)

    same(rows, openpyxl_rows(content))
    assert rows[1] == (3, ("C001", "1号", "0101", 89.5, datetime(2020, 1, 1)))
    assert rows[2][1][4] == datetime(2020, 1, 2) and rows[2][1][5] is True


def test_the_1904_calendar_is_honoured():
    rows = fast_rows(excel_like(ROWS_XML, date1904=True))

    assert rows[1][1][4] == datetime(2024, 1, 2)


@pytest.mark.django_db
def test_files_written_by_openpyxl_and_by_wuye_read_the_same_both_ways():
    building = make_community(make_company(), code="C001").buildings.create(code="1", name="1")
    unit = make_unit(building, room_no="0101", label="1-0101", handover_date=date(2020, 6, 30))
    for content in (
        template_build(kind="units"),
        export_build(kind="units", company=unit.community.company),
        xlsx("readings", [["C001", "W1", "水表", None, date(2024, 1, 31), 1.25, "是"]]),
    ):
        same(fast_rows(content), openpyxl_rows(content))


@pytest.mark.django_db
def test_an_excel_style_file_imports_with_its_dates_and_row_numbers():
    community = make_community(make_company(), code="C001")

    report = import_file(kind="units", company_id=community.company_id,
                         content=excel_like(ROWS_XML), file_name="u.xlsx", as_of=date(2026, 1, 1))

    assert report.ok, report.errors
    assert [(u.room_no, u.area_m2, u.handover_date) for u in Unit.objects.order_by("room_no")] == [
        ("0101", Decimal("89.50"), date(2020, 1, 1)),
        ("0102", Decimal("120.00"), date(2020, 1, 2)),
    ]
    bad = excel_like(ROWS_XML.replace("<v>120</v>", "<v>12.345</v>"))
    report = import_file(kind="units", company_id=community.company_id, content=bad,
                         file_name="u.xlsx", as_of=date(2026, 1, 1))
    assert [(e.row, e.header) for e in report.errors] == [(5, "建筑面积(m²)")]


@pytest.mark.django_db
def test_a_workbook_the_streaming_reader_cannot_read_is_read_by_openpyxl(monkeypatch):
    community = make_community(make_company(), code="C001")

    def refuse(zf):
        raise ValueError("unexpected layout")

    monkeypatch.setattr(fastxlsx, "Workbook", refuse)
    report = import_file(kind="units", company_id=community.company_id,
                         content=excel_like(ROWS_XML), file_name="u.xlsx", as_of=date(2026, 1, 1))

    assert report.ok and report.created == 2


def test_iso_date_cells_are_read_as_dates():
    rows = fast_rows(excel_like(ROWS_XML.replace(
        '<c r="E3" s="1"><v>43831</v></c>', '<c r="E3" t="d"><v>2020-01-01T00:00:00</v></c>'
    )))

    assert rows[1][1][4] == datetime(2020, 1, 1)


@pytest.mark.django_db
def test_a_surprise_half_way_through_the_sheet_falls_back_to_openpyxl():
    community = make_community(make_company(), code="C001")
    odd = excel_like(
        ROWS_XML.replace('<c r="D5"><v>120</v></c>', '<c r="D5" t="n"><v>1.2E2</v></c>')
        .replace('<c r="C5" t="str">', '<c r="c5" t="str">')  # a lower-case reference
    )

    report = import_file(kind="units", company_id=community.company_id, content=odd,
                         file_name="u.xlsx", as_of=date(2026, 1, 1))

    assert report.ok, report.errors
    assert Unit.objects.count() == 2
