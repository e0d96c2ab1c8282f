"""Receipts for ESC/POS thermal printers (58 mm: 32 columns, 80 mm: 48 columns).

Commands (alignment, emphasis, native QR code, cut) go through python-escpos. Text does not
go through its ``text()``: that encoder switches to GB18030 only when a line holds a CJK
ideograph in U+4E00–U+9FA5 and otherwise looks for a single-byte code page, so full-width
punctuation (：，（）) and rarer characters in names come out as ``?``, and it never puts the
printer in Chinese mode. We instead send, once, ``FS &`` (enter Chinese character mode, as
Chinese printers expect) and then every line GB18030-encoded with ``_raw``; GB18030 keeps
ASCII as single bytes and encodes every Unicode character, and the printer prints a CJK
character two columns wide, which the layout below counts (``display_width``). Double-size
Chinese needs ``FS !`` besides ``ESC !`` (python-escpos only sends the latter).
"""

from __future__ import annotations

from escpos.constants import QR_ECLEVEL_M
from escpos.escpos import Escpos
from escpos.printer import Dummy

from wuye.receipts.render.layout import ReceiptLayout, display_width, wrap_columns

ENCODING = "gb18030"
PAPERS = {"58": 32, "80": 48}  # paper width in mm → characters per line in font A
_QR_SIZE = {"58": 4, "80": 6}  # module size in dots: about 25 mm wide either way

ESC_INIT = b"\x1b@"
FS_CHINESE_ON = b"\x1c&"
FS_DOUBLE_ON = b"\x1c!\x0c"  # Chinese characters double width and height
FS_DOUBLE_OFF = b"\x1c!\x00"


class ReceiptPaperError(ValueError):
    """The paper width is not one of PAPERS."""


class _Writer:
    def __init__(self, printer: Escpos, columns: int) -> None:
        self.p = printer
        self.columns = columns
        self._align = ""

    def align(self, align: str) -> None:
        if align != self._align:
            self.p.set(align=align)
            self._align = align

    def raw_line(self, text: str) -> None:
        self.p._raw(text.encode(ENCODING) + b"\n")

    def text(self, text: str, *, align: str = "left") -> None:
        self.align(align)
        for line in wrap_columns(text, self.columns):
            self.raw_line(line)

    def big(self, text: str, *, double_width: bool = True) -> None:
        self.p.set(align="center", bold=True, double_height=True, double_width=double_width)
        self.p._raw(FS_DOUBLE_ON if double_width else b"\x1c!\x08")
        for line in wrap_columns(text, self.columns // (2 if double_width else 1)):
            self.raw_line(line)
        self.p._raw(FS_DOUBLE_OFF)
        self.p.set(normal_textsize=True, bold=False)
        self._align = "center"

    def pair(self, label: str, value: str) -> None:
        self.align("left")
        gap = self.columns - display_width(label) - display_width(value)
        if gap >= 1:
            self.raw_line(label + " " * gap + value)
            return
        self.raw_line(label)
        for line in wrap_columns(value, self.columns):
            self.raw_line(" " * (self.columns - display_width(line)) + line)

    def cells(self, cells: list[str]) -> None:
        """Equal columns, right-aligned (amounts)."""
        self.align("left")
        width = self.columns // len(cells)
        self.raw_line("".join(" " * max(width - display_width(c), 1) + c for c in cells))

    def rule(self, ch: str = "-") -> None:
        self.align("left")
        self.raw_line(ch * self.columns)


def receipt_escpos(layout: ReceiptLayout, *, paper: str = "80") -> bytes:
    """Return the ESC/POS bytes of the receipt for ``paper`` (``"58"`` or ``"80"`` mm).

    Raises ReceiptPaperError for another width.
    """
    if paper not in PAPERS:
        raise ReceiptPaperError(f"paper: {paper!r} is not one of {sorted(PAPERS)}")
    printer = Dummy()
    _write(printer, layout, paper=paper)
    return bytes(printer.output)


def receipt_escpos_print(layout: ReceiptLayout, *, printer: Escpos, paper: str = "80") -> None:
    """Send the receipt to ``printer`` (any python-escpos printer: USB, network, file…)."""
    printer._raw(receipt_escpos(layout, paper=paper))


def _write(printer: Escpos, layout: ReceiptLayout, *, paper: str) -> None:
    w = _Writer(printer, PAPERS[paper])
    printer._raw(ESC_INIT + FS_CHINESE_ON)
    for mark in layout.marks:
        w.big(mark)
    w.big(layout.company_name, double_width=False)
    w.text(layout.uscc_line, align="center")
    w.big(layout.title)
    w.text(layout.community_line, align="center")
    w.rule()
    for label, value in layout.head_rows:
        w.pair(label, value)
    w.rule()
    w.cells(list(layout.item_headers[2:]))
    for item in layout.items:
        w.text(f"{item.fee_item} {item.period}")
        w.cells([item.principal, item.late_fee, item.waived, item.paid])
        if item.note:
            w.text(f"  {item.note}")
    w.rule()
    for label, value in layout.total_rows:
        w.pair(label, value)
    w.text(layout.amount_words)
    if layout.note:
        w.rule()
        w.text(f"{layout.note_label}: {layout.note}")
    w.rule()
    # python-escpos cannot centre a native QR code itself; ESC a 1 does.
    w.align("center")
    printer.qr(layout.verify_url, native=True, size=_QR_SIZE[paper], ec=QR_ECLEVEL_M)
    w.text(layout.verify_caption, align="center")
    w.text(layout.verify_url, align="center")
    w.text(layout.footer, align="center")
    w.align("left")
    printer.cut()
