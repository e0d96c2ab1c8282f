"""What goes on a receipt, in order, as text: the one layout that the PDF and ESC/POS print.

Labels are gettext strings (Chinese source), so a receipt renders in the active language; the
reprint and void marks are bilingual on purpose, since they must be understood by anyone.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from wuye.core.money import format_yuan
from wuye.receipts.content import ReceiptContent
from wuye.receipts.models import Receipt
from wuye.receipts.selectors import receipt_content, receipt_verify_url

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_GROUP_UNITS = ("", "万", "亿", "万亿")


def amount_in_chinese(amount_fen: int) -> str:
    """Return the amount in Chinese capital numerals (人民币大写): 10200 → 壹佰零贰元整."""
    if amount_fen < 0:
        return "负" + amount_in_chinese(-amount_fen)
    yuan, rest = divmod(amount_fen, 100)
    jiao, fen = divmod(rest, 10)
    out = _integer_in_chinese(yuan) + "元" if yuan else ""
    if not jiao and not fen:
        return (out or "零元") + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if fen:
        out += _DIGITS[fen] + "分"
    return out


def _group_in_chinese(n: int) -> str:
    out, zero = "", False
    for power, unit in ((3, "仟"), (2, "佰"), (1, "拾"), (0, "")):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + unit
    return out


def _integer_in_chinese(n: int) -> str:
    groups: list[int] = []
    while n:
        n, group = divmod(n, 10000)
        groups.append(group)
    out, pending_zero = "", False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or group < 1000):
            out += "零"
        out += _group_in_chinese(group) + _GROUP_UNITS[index]
        pending_zero = False
    return out


def display_width(text: str) -> int:
    """Return the columns ``text`` takes on a printer or terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap_columns(text: str, columns: int) -> list[str]:
    """Split ``text`` into lines of at most ``columns`` display columns (breaks anywhere)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line, width = "", 0
        for ch in paragraph:
            w = display_width(ch)
            if width + w > columns and line:
                lines.append(line)
                line, width = "", 0
            line += ch
            width += w
        lines.append(line)
    return lines


def money(amount_fen: int) -> str:
    return format_yuan(amount_fen, grouping=True)


@dataclass(frozen=True)
class ItemRow:
    fee_item: str
    period: str
    principal: str
    late_fee: str
    waived: str
    paid: str
    note: str


@dataclass(frozen=True)
class ReceiptLayout:
    """The receipt as ordered text blocks; renderers decide fonts and positions."""

    company_name: str
    uscc_line: str
    title: str
    community_line: str
    marks: tuple[str, ...]
    void: bool
    reprint_no: int
    head_rows: tuple[tuple[str, str], ...]
    item_headers: tuple[str, str, str, str, str, str]
    items: tuple[ItemRow, ...]
    total_rows: tuple[tuple[str, str], ...]
    amount_words: str
    note_label: str
    note: str
    verify_url: str
    verify_caption: str
    footer: str
    number: str
    amount: str


def receipt_layout(receipt: Receipt, *, reprint_no: int = 0) -> ReceiptLayout:
    """Return the layout of ``receipt``; ``reprint_no`` > 0 marks the face as that reprint."""
    content = receipt_content(receipt)
    return layout_for(
        content,
        number=receipt.number,
        kind=receipt.kind,
        issued_at_text=f"{timezone.localtime(receipt.issued_at):%Y-%m-%d %H:%M:%S}",
        void=receipt.state == Receipt.State.VOID,
        reprint_no=reprint_no,
        verify_url=receipt_verify_url(receipt),
    )


def layout_for(
    content: ReceiptContent,
    *,
    number: str,
    kind: str,
    issued_at_text: str,
    void: bool,
    reprint_no: int,
    verify_url: str,
) -> ReceiptLayout:
    """Return the layout of ``content`` under ``number`` (the pure part of receipt_layout)."""
    marks: list[str] = []
    if void:
        marks.append("作废 / VOID")
    if reprint_no > 0:
        marks.append(f"补打 / REPRINT #{reprint_no}")
    head = [
        (_("收据号"), number),
        (_("开具时间"), issued_at_text),
        (_("房屋"), content.household_label),
        (_("缴款人"), content.payer_name),
    ]
    channel = content.channel_label
    if content.funding_source:
        channel = f"{channel} ({content.funding_source})"
    # Payments may hand refunds over as negative amounts; the refund receipt prints the sum
    # refunded, as a positive amount under its own heading.
    total_fen = abs(content.amount_fen) if kind == Receipt.Kind.REFUND else content.amount_fen
    totals: list[tuple[str, str]] = [
        (_("合计") if kind == Receipt.Kind.PAYMENT else _("退款金额"), money(total_fen)),
        (_("支付方式"), channel),
    ]
    if content.masked_pan:
        totals.append((_("卡号"), content.masked_pan))
    if content.rrn:
        totals.append((_("参考号"), content.rrn))
    if content.auth_code:
        totals.append((_("授权码"), content.auth_code))
    if content.tendered_fen is not None:
        totals.append((_("实收现金"), money(content.tendered_fen)))
    if content.change_fen is not None:
        totals.append((_("找零"), money(content.change_fen)))
    if content.prepaid_credit_fen:
        totals.append((_("转入预存"), money(content.prepaid_credit_fen)))
    if content.prepaid_balance_after_fen is not None:
        totals.append((_("预存余额"), money(content.prepaid_balance_after_fen)))
    totals.append((_("收款时间"), f"{timezone.localtime(content.paid_at):%Y-%m-%d %H:%M:%S}"))
    if content.cashier_name:
        totals.append((_("收款员"), content.cashier_name))
    community_line = content.community_name
    if content.community_phone:
        # gettext outside f-strings: xgettext does not look inside them.
        community_line += "  " + " ".join((_("电话"), content.community_phone))
    return ReceiptLayout(
        company_name=content.company_name,
        uscc_line=" ".join((_("统一社会信用代码"), content.company_uscc)),
        title=_("收款收据") if kind == Receipt.Kind.PAYMENT else _("退款收据"),
        community_line=community_line,
        marks=tuple(marks),
        void=void,
        reprint_no=reprint_no,
        head_rows=tuple(head),
        item_headers=(
            _("收费项目"),
            _("账期"),
            _("本金"),
            _("滞纳金"),
            _("减免"),
            pgettext("receipt", "实收"),
        ),
        items=tuple(
            ItemRow(
                fee_item=line.fee_item,
                period=line.period,
                principal=money(line.principal_fen),
                late_fee=money(line.late_fee_fen),
                waived=money(line.waived_fen),
                paid=money(line.paid_fen),
                note=line.note,
            )
            for line in content.lines
        ),
        total_rows=tuple(totals),
        amount_words=" ".join((_("人民币大写"), amount_in_chinese(total_fen))),
        note_label=_("销账说明"),
        note=content.allocation_note,
        verify_url=verify_url,
        verify_caption=_("扫码验证收据真伪"),
        footer=_("本收据为缴费凭证，请妥善保管。"),
        number=number,
        amount=money(total_fen),
    )
