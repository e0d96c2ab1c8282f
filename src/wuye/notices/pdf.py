"""Bill notices as PDF: one A4 or A5 page per household, Chinese in the receipts' CJK font,
with the QR code of the notice's pay page."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable

from reportlab.graphics.barcode import qrencoder
from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from wuye.core.money import format_yuan
from wuye.notices.selectors import NoticePage
from wuye.receipts.render.pdf import cjk_font_name

SIZES = {"A4": A4, "A5": A5}


class NoticeFormatError(ValueError):
    """The page size is not A4 or A5."""


def qr_modules(text: str) -> list[list[bool]]:
    """Return the QR matrix of ``text`` (error correction M), dark modules True."""
    qr = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    qr.addData(text)
    qr.make()
    return [[bool(m) for m in row] for row in qr.modules]


def _qr(canvas: Canvas, text: str, x: float, y: float, size: float) -> None:
    # Straight onto the canvas, one filled rectangle per run of dark modules: the graphics
    # widget builds a validated shape per run and encodes twice, ten times slower in a batch.
    rows = qr_modules(text)
    border = 2
    box = size / (len(rows) + 2 * border)
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(rows):
        c = 0
        for dark, run in itertools.groupby(row):
            n = len(list(run))
            if dark:
                top = y + size - (r + border + 1) * box
                canvas.rect(x + (c + border) * box, top, n * box, box, stroke=0, fill=1)
            c += n
    canvas.restoreState()


def _right(canvas: Canvas, font: str, size: float, x: float, y: float, text: str) -> None:
    canvas.setFont(font, size)
    canvas.drawRightString(x, y, text)


def _page(canvas: Canvas, page: NoticePage, width: float, height: float, font: str) -> None:
    scale = width / A4[0]  # A5 is A4 scaled by 1/√2
    margin = 16 * mm * scale
    fs = max(8.0, 11 * scale)
    y = height - margin - 8 * mm * scale
    canvas.setFont(font, 20 * scale)
    canvas.drawCentredString(width / 2, y, "缴费通知单")
    y -= 8 * mm * scale
    canvas.setFont(font, fs)
    canvas.drawCentredString(width / 2, y, f"{page.company} · {page.community}")
    y -= 12 * mm * scale
    info = [
        ("房屋", page.household),
        ("业主", page.resident or "—"),
        ("截止日期", f"{page.as_of:%Y-%m-%d}"),
        ("通知单号", f"N{page.notice_id:08d}"),
    ]
    for label, value in info:
        canvas.drawString(margin, y, f"{label}: {value}")
        y -= 6.5 * mm * scale
    y -= 3 * mm * scale
    cols = [margin, margin + 42 * mm * scale, margin + 70 * mm * scale]
    right = [width - margin - 62 * mm * scale, width - margin - 32 * mm * scale, width - margin]
    canvas.line(margin, y + 4 * mm * scale, width - margin, y + 4 * mm * scale)
    canvas.drawString(cols[0], y, "收费项目")
    canvas.drawString(cols[1], y, "账期")
    canvas.drawString(cols[2], y, "应缴日期")
    for x, head in zip(right, ("欠费(元)", "滞纳金(元)", "小计(元)"), strict=True):
        _right(canvas, font, fs, x, y, head)
    y -= 2.5 * mm * scale
    canvas.line(margin, y, width - margin, y)
    y -= 5.5 * mm * scale
    bottom = margin + 62 * mm * scale
    for i, line in enumerate(page.lines):
        if y < bottom:
            canvas.drawString(margin, y, f"… 另有 {len(page.lines) - i} 笔, 见付款页")
            y -= 6 * mm * scale
            break
        canvas.setFont(font, fs)
        canvas.drawString(cols[0], y, line.fee_item)
        canvas.drawString(cols[1], y, line.period)
        canvas.drawString(cols[2], y, f"{line.due_date:%Y-%m-%d}")
        for x, fen in zip(
            right, (line.outstanding_fen, line.late_fee_fen, line.total_fen), strict=True
        ):
            _right(canvas, font, fs, x, y, format_yuan(fen))
        y -= 6 * mm * scale
    canvas.line(margin, y + 3 * mm * scale, width - margin, y + 3 * mm * scale)
    y -= 3 * mm * scale
    canvas.setFont(font, fs)
    canvas.drawString(margin, y, "合计")
    for x, fen in zip(
        right, (page.outstanding_fen, page.late_fee_fen, page.total_fen), strict=True
    ):
        _right(canvas, font, fs, x, y, format_yuan(fen))
    y -= 10 * mm * scale
    canvas.setFont(font, 14 * scale)
    canvas.drawString(margin, y, f"应缴合计: ¥{format_yuan(page.total_fen, grouping=True)}")
    qr_size = 42 * mm * scale
    qr_y = margin + 8 * mm * scale
    _qr(canvas, page.pay_url, width - margin - qr_size, qr_y, qr_size)
    canvas.setFont(font, fs)
    canvas.drawString(
        margin, qr_y + qr_size - 6 * mm * scale, "请使用微信或支付宝扫描右侧二维码缴费,"
    )
    canvas.drawString(
        margin, qr_y + qr_size - 12 * mm * scale, "支付成功后账单即时销账; 也可到物业服务中心缴纳。"
    )
    canvas.drawString(
        margin, qr_y + qr_size - 18 * mm * scale, "滞纳金按缴费当日计算, 以付款页显示为准。"
    )
    canvas.setFont(font, max(6.0, 7 * scale))
    canvas.drawString(margin, qr_y, page.pay_url)


def notices_pdf(pages: Iterable[NoticePage], *, size: str = "A4") -> bytes:
    """Return one PDF with a page per notice. Raise NoticeFormatError for an unknown size."""
    if size not in SIZES:
        raise NoticeFormatError(f"size: A4 or A5, not {size!r}")
    width, height = SIZES[size]
    font = cjk_font_name()
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(width, height), pageCompression=1)
    canvas.setTitle("缴费通知单")
    count = 0
    for page in pages:
        _page(canvas, page, width, height, font)
        canvas.showPage()
        count += 1
    if count == 0:
        canvas.setFont(font, 12)
        canvas.drawString(20 * mm, height - 30 * mm, "没有需要通知的欠费")
        canvas.showPage()
    canvas.save()
    return buf.getvalue()
