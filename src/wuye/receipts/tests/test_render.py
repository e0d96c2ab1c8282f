import io
import re
import shutil
import subprocess

import pytest
from django.utils import translation
from escpos.printer import Dummy, File
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.lib.units import mm

from wuye.receipts.render.escpos import ReceiptPaperError, receipt_escpos, receipt_escpos_print
from wuye.receipts.render.layout import (
    amount_in_chinese,
    display_width,
    layout_for,
    wrap_columns,
)
from wuye.receipts.render.pdf import ReceiptFormatError, cjk_font_name, receipt_pdf
from wuye.receipts.tests.helpers import sample_content

URL = "http://127.0.0.1:8000/r/AbCdEfGhIjKlMnOpQrStUvWx/"


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


def _layout(*, void=False, reprint_no=0, **content):
    return layout_for(
        sample_content(**content),
        number="C001-2026-000123",
        kind="payment",
        issued_at_text="2026-11-22 10:30:00",
        void=void,
        reprint_no=reprint_no,
        verify_url=URL,
    )


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (0, "零元整"),
        (5, "伍分"),
        (80_000, "捌佰元整"),
        (10_200, "壹佰零贰元整"),
        (1_005, "壹拾元零伍分"),
        (123_456, "壹仟贰佰叁拾肆元伍角陆分"),
        (100_000_001, "壹佰万元零壹分"),
        (1_000_100_000, "壹仟万壹仟元整"),  # a full lower group needs no 零
        (10_001_000_000, "壹亿零壹万元整"),
        (100_010_050, "壹佰万零壹佰元伍角"),
    ],
)
def test_amounts_are_written_in_chinese_capitals(fen, words):
    assert amount_in_chinese(fen) == words


def test_cjk_characters_take_two_columns_when_wrapping():
    assert display_width("收据No.1") == 8
    assert wrap_columns("收款收据ABC", 5) == ["收款", "收据A", "BC"]


@pytest.mark.parametrize("fmt", ["roll80", "a5"])
def test_the_pdf_says_everything_the_payer_needs(fmt):
    content = {"masked_pan": "622202******0123", "funding_source": "借记卡", "rrn": "123456789012"}

    text = _pdf_text(receipt_pdf(_layout(**content), fmt=fmt))

    for expected in [
        "上海示范物业服务有限公司",
        "91310000000000001X",
        "阳光花园",
        "3-2-1502",
        "张伟",
        "物业费",
        "2026-01",
        "268.50",
        "1.34",
        "269.84",
        "停车费",
        "50.00",
        "400.00",
        "800.00",
        "现金 (借记卡)",
        "622202******0123",
        "123456789012",
        "李娜",
        "1,000.00",  # tendered
        "200.00",  # change
        "130.16",  # surplus to prepaid
        "转入预存",
        "先滞纳金后本金",
        "C001-2026-000123",
        "2026-11-22 10:30:00",
        "捌佰元整",
        "扫码验证",
    ]:
        assert expected in text, expected
    assert "补打" not in text
    assert "VOID" not in text


def test_a_reprint_and_a_void_say_so_on_their_face():
    text = _pdf_text(receipt_pdf(_layout(void=True, reprint_no=2), fmt="roll80"))

    assert "补打 / REPRINT #2" in text
    assert "作废 / VOID" in text


def test_the_roll_is_80_mm_wide_and_as_tall_as_its_content_and_a5_is_a5():
    short = PdfReader(io.BytesIO(receipt_pdf(_layout(lines=()), fmt="roll80"))).pages[0]
    long_ = PdfReader(io.BytesIO(receipt_pdf(_layout(), fmt="roll80"))).pages[0]
    a5 = PdfReader(io.BytesIO(receipt_pdf(_layout(), fmt="a5"))).pages[0]

    assert float(short.mediabox.width) == pytest.approx(80 * mm)
    assert float(short.mediabox.height) < float(long_.mediabox.height) < 300 * mm
    assert (float(a5.mediabox.width), float(a5.mediabox.height)) == pytest.approx(
        (148 * mm, 210 * mm), abs=1
    )


def test_the_chinese_font_is_embedded_when_one_is_installed():
    if cjk_font_name() == "STSong-Light":
        pytest.skip("no TrueType CJK font on this machine (fonts-wqy-zenhei)")
    data = receipt_pdf(_layout(), fmt="a5")

    assert b"/FontFile2" in data  # an embedded TrueType subset


def test_an_a5_receipt_with_many_lines_continues_on_a_second_page():
    from wuye.receipts.content import ReceiptLine

    lines = tuple(ReceiptLine("物业费", f"2024-{m:02d}", 100, 0, 0, 100) for m in range(1, 13)) * 4

    reader = PdfReader(io.BytesIO(receipt_pdf(_layout(lines=lines), fmt="a5")))

    assert len(reader.pages) == 2
    assert "C001-2026-000123" in _pdf_text(receipt_pdf(_layout(lines=lines), fmt="a5"))


def test_an_unknown_format_is_refused():
    with pytest.raises(ReceiptFormatError):
        receipt_pdf(_layout(), fmt="letter")


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_the_pdf_renders_to_an_image(tmp_path):
    path = tmp_path / "r.pdf"
    path.write_bytes(receipt_pdf(_layout(reprint_no=1), fmt="roll80"))

    subprocess.run(
        ["pdftoppm", "-r", "100", "-png", "-singlefile", str(path), str(tmp_path / "r")],
        check=True,
    )

    assert (tmp_path / "r.png").stat().st_size > 10_000


def _escpos_text(data: bytes) -> str:
    return data.decode("gb18030", errors="replace")


@pytest.mark.parametrize(("paper", "columns"), [("58", 32), ("80", 48)])
def test_escpos_bytes_carry_the_receipt_in_gb18030_and_fit_the_paper(paper, columns):
    data = receipt_escpos(_layout(), paper=paper)
    text = _escpos_text(data)

    assert data.startswith(b"\x1b@\x1c&")  # initialise, then Chinese character mode
    assert b"C001-2026-000123" in data
    assert b"800.00" in data
    assert b"3-2-1502" in data
    assert "上海示范物业服务有限公司".encode("gb18030") in data
    assert "张伟".encode("gb18030") in data
    for word in ["收款收据", "物业费", "停车费", "滞纳金", "转入预存", "捌佰元整", "李娜"]:
        assert word in text
    printed_lines = re.sub(rb"\x1b[a!E]\S|\x1c!\S|\x1c&|\x1b@", b"", data).split(b"\n")
    assert all(
        display_width(line.decode("gb18030")) <= columns
        for line in printed_lines
        if b"\x1d" not in line
    )
    assert data.endswith(b"\x1dV\x00")  # full cut


def test_escpos_prints_a_native_qr_code_with_the_verification_url():
    data = receipt_escpos(_layout(), paper="80")

    store = b"\x1d(k" + (len(URL) + 3).to_bytes(2, "little") + b"1P0" + URL.encode()
    assert store in data
    assert b"\x1d(k\x03\x001Q0" in data  # print the stored symbol


def test_escpos_reprint_and_void_marks_are_printed():
    text = _escpos_text(receipt_escpos(_layout(void=True, reprint_no=3), paper="58"))

    assert "作废 / VOID" in text
    assert "REPRINT #3" in text.replace("\n", "")


def test_escpos_goes_to_any_python_escpos_printer(tmp_path):
    dummy = Dummy()
    receipt_escpos_print(_layout(), printer=dummy, paper="80")
    device = tmp_path / "printer.bin"
    printer = File(devfile=str(device))
    receipt_escpos_print(_layout(), printer=printer, paper="58")
    printer.close()

    assert dummy.output == receipt_escpos(_layout(), paper="80")
    assert device.read_bytes() == receipt_escpos(_layout(), paper="58")


def test_an_unknown_paper_is_refused():
    with pytest.raises(ReceiptPaperError):
        receipt_escpos(_layout(), paper="110")


def test_a_refund_receipt_prints_the_refunded_sum_under_its_own_heading():
    layout = layout_for(
        sample_content(amount_fen=-80_000, tendered_fen=None, change_fen=None),
        number="C001-2026-000124",
        kind="refund",
        issued_at_text="2026-11-23 09:00:00",
        void=False,
        reprint_no=0,
        verify_url=URL,
    )

    text = _pdf_text(receipt_pdf(layout, fmt="roll80"))

    assert "退款收据" in text
    assert ("退款金额", "800.00") in layout.total_rows
    assert "捌佰元整" in text and "负" not in text


def test_the_receipt_speaks_english_when_printed_in_english():
    with translation.override("en"):
        text = _pdf_text(receipt_pdf(_layout(), fmt="a5"))

    assert "Payment receipt" in text
    assert "Payer" in text
    assert "上海示范物业服务有限公司" in text  # the data stays as given


def _parse_capitals(words: str) -> int:
    """Read Chinese capitals back into fen (the test's own, independent reading)."""
    digits = {ch: i for i, ch in enumerate("零壹贰叁肆伍陆柒捌玖")}
    small = {"拾": 10, "佰": 100, "仟": 1000}
    total = section = number = 0
    yuan_fen = 0
    for ch in words.removesuffix("整"):
        if ch in digits:
            number = digits[ch]
        elif ch in small:
            section += number * small[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 10_000
            section = number = 0
        elif ch == "亿":
            total = (total + section + number) * 100_000_000
            section = number = 0
        elif ch == "元":
            yuan_fen = (total + section + number) * 100
            total = section = number = 0
        elif ch == "角":
            yuan_fen += number * 10
            number = 0
        elif ch == "分":
            yuan_fen += number
            number = 0
    return yuan_fen


@given(st.integers(min_value=0, max_value=99_999_999_999_99))
def test_chinese_capitals_read_back_to_the_same_amount(fen):
    words = amount_in_chinese(fen)

    assert _parse_capitals(words) == fen
    assert "零零" not in words
    assert words.endswith(("整", "分", "角"))
