"""The end-of-day report as an Excel workbook (openpyxl): amounts as numbers in yuan."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from wuye.counter.selectors import Report

YUAN_FORMAT = "#,##0.00"


def _yuan(fen: int | None) -> Decimal | None:
    """Fen as an exact Decimal yuan for the cell (never a float computed from fen)."""
    return None if fen is None else Decimal(fen).scaleb(-2)


def day_report_xlsx(report: Report) -> bytes:
    """Return the day report as .xlsx bytes: sheets per channel, cash and shifts, payments."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = _("按渠道")
    bold = Font(bold=True)
    ws.append([_("日结报表"), report.community.name, report.day.isoformat()])
    ws["A1"].font = bold
    ws.append([])
    head = [
        _("渠道"),
        _("收款笔数"),
        _("收款金额"),
        _("退款笔数"),
        _("退款金额"),
        _("净额"),
        _("往期账单"),
        _("当期账单"),
        _("预存"),
        _("多付待退"),
    ]
    ws.append(head)
    for cell in ws[3]:
        cell.font = bold
    total = report.total
    for c in [*report.channels, total]:
        ws.append(
            [
                c.name or _("合计"),
                c.payments_count,
                _yuan(c.payments_fen),
                c.refunds_count,
                _yuan(c.refunds_fen),
                _yuan(c.net_fen),
                _yuan(c.old_bills_fen),
                _yuan(c.current_bills_fen),
                _yuan(c.prepaid_fen),
                _yuan(c.surplus_fen),
            ]
        )
    for row in ws.iter_rows(min_row=4, min_col=3):
        for cell in row:
            cell.number_format = YUAN_FORMAT

    cash = wb.create_sheet(_("现金"))
    m = report.cash
    for label, fen in [
        (_("备用金"), m.opening_float_fen),
        (_("现金收款"), m.cash_payments_fen),
        (_("现金退款"), -m.cash_refunds_fen),
        (_("现金存入"), m.paid_in_fen),
        (_("现金取出"), -m.paid_out_fen),
        (_("其他"), m.other_fen),
        (_("应有现金"), m.expected_fen),
        (_("实点现金"), m.counted_fen),
        (_("长短款"), m.difference_fen),
        (_("其中: 实收现金"), m.tendered_fen),
        (_("其中: 找零"), -m.change_given_fen),
    ]:
        cash.append([label, _yuan(fen)])
    cash.append([])
    cash.append(
        [
            _("班次"),
            _("收银员"),
            _("收费台"),
            _("开班"),
            _("交班"),
            _("备用金"),
            _("应有现金"),
            _("实点现金"),
            _("长短款"),
            _("差异说明"),
        ]
    )
    for s in report.shifts:
        cash.append(
            [
                s.pk,
                str(s.cashier),
                s.counter_name,
                timezone.localtime(s.opened_at).strftime("%Y-%m-%d %H:%M"),
                timezone.localtime(s.closed_at).strftime("%Y-%m-%d %H:%M") if s.closed_at else "",
                _yuan(s.opening_float_fen),
                _yuan(s.expected_cash_fen),
                _yuan(s.counted_cash_fen),
                _yuan(s.difference_fen),
                s.difference_note,
            ]
        )
    for row in cash.iter_rows(min_col=2, max_col=2, max_row=11):
        for cell in row:
            cell.number_format = YUAN_FORMAT

    detail = wb.create_sheet(_("明细"))
    detail.append(
        [
            _("时间"),
            _("类型"),
            _("渠道"),
            _("房屋"),
            _("金额"),
            _("往期账单"),
            _("当期账单"),
            _("预存"),
            _("单号"),
        ]
    )
    for f in report.facts:
        sign = -1 if f.kind == "refund" else 1
        detail.append(
            [
                timezone.localtime(f.at).strftime("%Y-%m-%d %H:%M:%S") if f.at else "",
                _("退款") if f.kind == "refund" else _("收款"),
                f.channel,
                f.label,
                _yuan(sign * f.amount_fen),
                _yuan(f.old_bills_fen),
                _yuan(f.current_bills_fen),
                _yuan(f.prepaid_fen),
                f.reference,
            ]
        )
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
