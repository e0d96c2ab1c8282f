"""Receipts as PDF: an 80 mm roll whose height fits the content, or an A5 page.

Chinese is drawn with a TrueType CJK font found through fontconfig and embedded as a subset,
so the PDF shows the same glyphs on any viewer or printer. If no usable font is installed the
receipt falls back to reportlab's STSong-Light CID font, which viewers supply themselves.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from wuye.receipts.render.layout import ReceiptLayout

FORMATS = ("roll80", "a5")
# fontconfig names tried in order; the first TrueType font with Chinese glyphs wins.
CJK_FONT_FAMILIES = (
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "AR PL UMing CN",
    ":lang=zh-cn",
)
FALLBACK_CID_FONT = "STSong-Light"
_FONT_NAME = "WuyeCJK"


class ReceiptFormatError(ValueError):
    """The receipt format is not one of FORMATS."""


def _fc_match(family: str) -> str | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - fixed executable, our own family names
            [exe, "-f", "%{file}", family], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


@lru_cache(maxsize=1)
def cjk_font_name() -> str:
    """Register and return the font receipts use for text (see the module docstring)."""
    for family in CJK_FONT_FAMILIES:
        path = _fc_match(family)
        if not path or not path.lower().endswith((".ttf", ".ttc")):
            continue  # OpenType/CFF outlines (.otf) are not embeddable by reportlab
        try:
            font = TTFont(_FONT_NAME, path, subfontIndex=0)
        except Exception:  # noqa: S112 - any unreadable font: try the next one
            continue
        if ord("收") not in font.face.charToGlyph:
            continue  # fontconfig answered with a Latin-only font
        pdfmetrics.registerFont(font)
        return _FONT_NAME
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_CID_FONT))
    return FALLBACK_CID_FONT


@dataclass(frozen=True)
class _Style:
    page_width: float
    margin: float
    body: float
    small: float
    title: float
    company: float
    mark: float
    qr: float
    leading: float = 1.35


ROLL80 = _Style(
    page_width=80 * mm,
    margin=4 * mm,
    body=8,
    small=7,
    title=12,
    company=10,
    mark=11,
    qr=30 * mm,
)
A5_STYLE = _Style(
    page_width=A5[0],
    margin=12 * mm,
    body=9.5,
    small=8,
    title=16,
    company=13,
    mark=14,
    qr=32 * mm,
)

_Draw = Callable[[Canvas, float], None]  # draws with its top at y


@dataclass
class _Flow:
    """Blocks stacked top to bottom; measured first so a roll's page fits them exactly."""

    style: _Style
    font: str
    blocks: list[tuple[float, _Draw]] = field(default_factory=list)

    @property
    def width(self) -> float:
        return self.style.page_width - 2 * self.style.margin

    @property
    def left(self) -> float:
        return self.style.margin

    def _w(self, text: str, size: float) -> float:
        return pdfmetrics.stringWidth(text, self.font, size)

    def _wrap(self, text: str, size: float, width: float) -> list[str]:
        lines: list[str] = []
        for paragraph in text.splitlines() or [""]:
            line = ""
            for ch in paragraph:
                if line and self._w(line + ch, size) > width:
                    lines.append(line)
                    line = ""
                line += ch
            lines.append(line)
        return lines

    def _line(self, size: float) -> float:
        return size * self.style.leading

    def text(
        self,
        text: str,
        size: float,
        *,
        align: str = "left",
        bold: bool = False,
        color: colors.Color = colors.black,
    ) -> None:
        for line in self._wrap(text, size, self.width):
            self.blocks.append((self._line(size), self._draw_text(line, size, align, bold, color)))

    def _draw_text(
        self, line: str, size: float, align: str, bold: bool, color: colors.Color
    ) -> _Draw:
        def draw(c: Canvas, y: float) -> None:
            c.saveState()
            c.setFillColor(color)
            c.setStrokeColor(color)
            t = c.beginText()
            t.setFont(self.font, size)
            if bold:  # CJK fonts come without a bold face: stroke the glyph outlines too
                t.setTextRenderMode(2)
                c.setLineWidth(size / 30)
            width = self._w(line, size)
            x = self.left
            if align == "center":
                x = self.left + (self.width - width) / 2
            elif align == "right":
                x = self.left + self.width - width
            t.setTextOrigin(x, y - size)
            t.textOut(line)
            c.drawText(t)
            c.restoreState()

        return draw

    def pair(self, label: str, value: str, size: float) -> None:
        """Label on the left, value on the right; a long value takes its own lines."""
        gap = size
        if self._w(label, size) + gap + self._w(value, size) <= self.width:
            h = self._line(size)

            def draw(c: Canvas, y: float) -> None:
                c.setFont(self.font, size)
                c.setFillColor(colors.black)
                c.drawString(self.left, y - size, label)
                c.drawRightString(self.left + self.width, y - size, value)

            self.blocks.append((h, draw))
            return
        self.text(label, size)
        for line in self._wrap(value, size, self.width):
            self.text(line, size, align="right")

    def columns(
        self, cells: list[str], fractions: list[float], size: float, *, left: int = 0
    ) -> None:
        """One table row: the first ``left`` cells left-aligned and wrapped, the rest right."""
        widths = [f * self.width for f in fractions]
        wrapped = [
            self._wrap(cell, size, w - size / 2) if i < left else [cell]
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        rows = max(len(w) for w in wrapped)
        h = rows * self._line(size)

        def draw(c: Canvas, y: float) -> None:
            c.setFont(self.font, size)
            c.setFillColor(colors.black)
            x = self.left
            for i, (lines, w) in enumerate(zip(wrapped, widths, strict=True)):
                for n, line in enumerate(lines):
                    baseline = y - size - n * self._line(size)
                    if i < left:
                        c.drawString(x, baseline, line)
                    else:
                        c.drawRightString(x + w, baseline, line)
                x += w

        self.blocks.append((h, draw))

    def rule(self, *, dashed: bool = True) -> None:
        def draw(c: Canvas, y: float) -> None:
            c.saveState()
            c.setLineWidth(0.5)
            if dashed:
                c.setDash(2, 2)
            c.line(self.left, y - 3, self.left + self.width, y - 3)
            c.restoreState()

        self.blocks.append((6.0, draw))

    def space(self, height: float) -> None:
        self.blocks.append((height, lambda c, y: None))

    def qr(self, url: str, side: float) -> None:
        def draw(c: Canvas, y: float) -> None:
            widget = QrCodeWidget(url, barLevel="M")
            x1, y1, x2, y2 = widget.getBounds()
            scale = side / max(x2 - x1, y2 - y1)
            drawing = Drawing(side, side, transform=[scale, 0, 0, scale, 0, 0])
            drawing.add(widget)
            renderPDF.draw(drawing, c, self.left + (self.width - side) / 2, y - side)

        self.blocks.append((side, draw))

    @property
    def height(self) -> float:
        return sum(h for h, _ in self.blocks)


def _build(layout: ReceiptLayout, style: _Style, *, a5: bool) -> _Flow:
    flow = _Flow(style=style, font=cjk_font_name())
    red = colors.Color(0.8, 0, 0)
    for mark in layout.marks:
        flow.text(mark, style.mark, align="center", bold=True, color=red)
    flow.text(layout.company_name, style.company, align="center", bold=True)
    flow.text(layout.uscc_line, style.small, align="center")
    flow.text(layout.title, style.title, align="center", bold=True)
    flow.text(layout.community_line, style.small, align="center")
    flow.rule()
    for label, value in layout.head_rows:
        flow.pair(label, value, style.body)
    flow.rule()
    headers = list(layout.item_headers)
    if a5:
        fractions = [0.22, 0.22, 0.14, 0.14, 0.14, 0.14]
        flow.columns(headers, fractions, style.small, left=2)
        flow.rule(dashed=False)
        for item in layout.items:
            flow.columns(
                [
                    item.fee_item,
                    item.period,
                    item.principal,
                    item.late_fee,
                    item.waived,
                    item.paid,
                ],
                fractions,
                style.body,
                left=2,
            )
            if item.note:
                flow.text(item.note, style.small)
    else:
        fractions = [0.25, 0.25, 0.25, 0.25]
        flow.columns(headers[2:], fractions, style.small)
        flow.rule(dashed=False)
        for item in layout.items:
            flow.text(f"{item.fee_item}  {item.period}", style.body)
            flow.columns(
                [item.principal, item.late_fee, item.waived, item.paid], fractions, style.body
            )
            if item.note:
                flow.text(item.note, style.small)
    flow.rule()
    for label, value in layout.total_rows:
        flow.pair(label, value, style.body)
    flow.text(layout.amount_words, style.body)
    if layout.note:
        flow.rule()
        flow.text(f"{layout.note_label}: {layout.note}", style.small)
    flow.rule()
    flow.space(2)
    flow.qr(layout.verify_url, style.qr)
    flow.text(layout.verify_caption, style.small, align="center")
    flow.text(layout.verify_url, style.small - 1, align="center")
    flow.space(2)
    flow.text(layout.footer, style.small, align="center")
    return flow


def _watermark(c: Canvas, width: float, height: float, font: str) -> None:
    c.saveState()
    c.setFillColor(colors.Color(0.85, 0, 0, alpha=0.25))
    size = min(width, height) / 5
    c.setFont(font, size)
    c.translate(width / 2, height / 2)
    c.rotate(35 if height > width else 20)
    c.drawCentredString(0, -size / 3, "作废 VOID")
    c.restoreState()


def receipt_pdf(layout: ReceiptLayout, *, fmt: str = "roll80") -> bytes:
    """Return the receipt as PDF bytes in ``fmt`` (``roll80`` or ``a5``).

    Raises ReceiptFormatError for another format.
    """
    if fmt not in FORMATS:
        raise ReceiptFormatError(f"format: {fmt!r} is not one of {FORMATS}")
    a5 = fmt == "a5"
    style = A5_STYLE if a5 else ROLL80
    flow = _build(layout, style, a5=a5)
    page_height = A5[1] if a5 else flow.height + 2 * style.margin
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(style.page_width, page_height), pageCompression=1)
    c.setTitle(f"{layout.title} {layout.number}")
    c.setAuthor(layout.company_name)
    c.setCreator("Wuye")

    y = page_height - style.margin
    for h, draw in flow.blocks:
        if a5 and y - h < style.margin:  # an A5 receipt with many lines continues overleaf
            if layout.void:
                _watermark(c, style.page_width, page_height, flow.font)
            c.showPage()
            y = page_height - style.margin
        draw(c, y)
        y -= h
    if layout.void:
        _watermark(c, style.page_width, page_height, flow.font)
    c.showPage()
    c.save()
    return buf.getvalue()
