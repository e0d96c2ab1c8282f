"""The day's reconciliation as data, and as JSON, Excel (openpyxl) and PDF (reportlab).

``day_report`` gathers, for one company and settlement date, each channel's latest matching
run (counts and amounts: ours, the channel's, matched), what is still in transit (from the
ledger, ``clearing``), and every exception of the day with its state. The three renderers
only lay it out. The JSON keys are a contract (issue 6): per channel the counts and amounts
matched, and exceptions each with ``category``, ``channel``, ``reference``, ``amount_fen``.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from wuye.core.money import format_yuan
from wuye.estates.models import Company
from wuye.reconciliation.clearing import clearing_in_transit
from wuye.reconciliation.models import Category, Channel, ReconException, ReconRun

FORMATS = ("json", "xlsx", "pdf")


class ReportFormatError(ValueError):
    """The report format is not one of FORMATS."""


@dataclass
class ExceptionRow:
    id: int
    category: str
    channel: str
    reference: str
    amount_fen: int
    order_no: str
    state: str
    resolution: str
    owner: str
    detail: str
    follow_up_on: str = ""  # ISO date of an open exception being chased


@dataclass
class ChannelDay:
    channel: str
    run_id: int | None
    internal_count: int = 0
    internal_amount_fen: int = 0
    channel_count: int = 0
    channel_amount_fen: int = 0
    matched_count: int = 0
    matched_amount_fen: int = 0
    exception_count: int = 0
    open_count: int = 0
    in_transit_fen: int = 0
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    exceptions: list[ExceptionRow] = field(default_factory=list)


@dataclass
class DayReport:
    company_id: int
    company_name: str
    settle_date: date
    channels: list[ChannelDay]

    @property
    def exceptions(self) -> list[ExceptionRow]:
        return [e for c in self.channels for e in c.exceptions]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict (dates as ``YYYYMMDD`` like the files and the CLI)."""
        return {
            "company": {"id": self.company_id, "name": self.company_name},
            "settle_date": f"{self.settle_date:%Y%m%d}",
            "channels": [
                {
                    **{k: v for k, v in asdict(c).items() if k != "exceptions"},
                    "exceptions": [_exception_json(e) for e in c.exceptions],
                }
                for c in self.channels
            ],
            "exceptions": [_exception_json(e) for e in self.exceptions],
        }


def _exception_json(e: ExceptionRow) -> dict[str, Any]:
    return {
        "id": e.id,
        "category": e.category,
        "channel": e.channel,
        "reference": e.reference,
        "amount_fen": e.amount_fen,
        "order_no": e.order_no,
        "state": e.state,
        "resolution": e.resolution,
        "follow_up_on": e.follow_up_on or None,
    }


def day_report(*, company: Company, settle_date: date, channel: str | None = None) -> DayReport:
    """Return the reconciliation of ``settle_date`` for ``company`` (one channel if given).

    Every reconciliation channel appears, run or not, so a channel without a file shows as
    zero rather than disappearing.
    """
    codes = [channel] if channel else list(Channel.values)
    runs: dict[str, ReconRun] = {}
    for run in ReconRun.objects.filter(
        company=company, settle_date=settle_date, channel__in=codes
    ).order_by("started_at", "id"):
        runs[run.channel] = run  # the latest run of each channel wins
    transit: dict[str, int] = {}
    for t in clearing_in_transit(company_id=company.pk, date_from=settle_date, date_to=settle_date):
        transit[t.channel] = transit.get(t.channel, 0) + t.balance_fen
    exceptions = (
        ReconException.objects.filter(company=company, settle_date=settle_date, channel__in=codes)
        .select_related("owner")
        .order_by("channel", "category", "id")
    )
    days = {
        code: ChannelDay(channel=code, run_id=None, in_transit_fen=transit.get(code, 0))
        for code in codes
    }
    for code, run in runs.items():
        day = days[code]
        day.run_id = run.pk
        day.internal_count = run.internal_count
        day.internal_amount_fen = run.internal_fen
        day.channel_count = run.channel_count
        day.channel_amount_fen = run.channel_fen
        day.matched_count = run.matched_count
        day.matched_amount_fen = run.matched_fen
    for exc in exceptions:
        day = days.setdefault(exc.channel, ChannelDay(channel=exc.channel, run_id=None))
        day.exceptions.append(
            ExceptionRow(
                id=exc.pk,
                category=exc.category,
                channel=exc.channel,
                reference=exc.reference,
                amount_fen=exc.amount_fen,
                order_no=exc.order_no,
                state=exc.state,
                resolution=exc.resolution,
                owner=str(exc.owner) if exc.owner_id else "",
                detail=exc.detail,
                follow_up_on=exc.follow_up_on.isoformat()
                if exc.follow_up_on and exc.state == ReconException.State.OPEN
                else "",
            )
        )
        cat = day.categories.setdefault(exc.category, {"count": 0, "amount_fen": 0})
        cat["count"] += 1
        cat["amount_fen"] += exc.amount_fen
        day.exception_count += 1
        if exc.state == ReconException.State.OPEN:
            day.open_count += 1
    return DayReport(
        company_id=company.pk,
        company_name=company.name,
        settle_date=settle_date,
        channels=list(days.values()),
    )


def render(report: DayReport, fmt: str) -> bytes:
    """Return the report as ``json``, ``xlsx`` or ``pdf`` bytes; raise ReportFormatError."""
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2).encode("utf-8")
    if fmt == "xlsx":
        return render_xlsx(report)
    if fmt == "pdf":
        return render_pdf(report)
    raise ReportFormatError(
        _("不支持的格式 %(fmt)s (可选: %(ok)s)") % {"fmt": fmt, "ok": ", ".join(FORMATS)}
    )


def _labels() -> dict[str, str]:
    return {
        "channel": _("渠道"),
        "internal": _("我方笔数"),
        "internal_fen": _("我方金额"),
        "channel_count": _("渠道笔数"),
        "channel_fen": _("渠道金额"),
        "matched": _("已匹配笔数"),
        "matched_fen": _("已匹配金额"),
        "exceptions": _("差异笔数"),
        "open": _("待处理"),
        "transit": _("在途资金"),
        "category": _("差异类型"),
        "reference": _("流水号"),
        "order_no": _("商户订单号"),
        "amount": _("金额"),
        "state": _("状态"),
        "resolution": _("处理方式"),
        "owner": _("负责人"),
        "detail": _("说明"),
    }


def _channel_name(code: str) -> str:
    return str(dict(Channel.choices).get(code, code))


def _category_name(code: str) -> str:
    return str(dict(Category.choices).get(code, code))


def _state_name(code: str) -> str:
    return str(dict(ReconException.State.choices).get(code, code))


def _yuan(fen: int) -> str:
    return format_yuan(fen, grouping=True)


def render_xlsx(report: DayReport) -> bytes:
    """Return an Excel workbook: a summary sheet per channel and an exceptions sheet.

    Amounts are written as numbers of yuan (fen / 100 exactly, formatted ``#,##0.00``) so
    Excel can sum them; the fen are in their own column for machines.
    """
    from decimal import Decimal

    from openpyxl import Workbook
    from openpyxl.styles import Font

    labels = _labels()
    wb = Workbook()
    ws = wb.active
    ws.title = _("汇总")
    ws.append([_("对账日报"), report.company_name, f"{report.settle_date:%Y-%m-%d}"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([])
    head = [
        labels["channel"],
        labels["internal"],
        labels["internal_fen"],
        labels["channel_count"],
        labels["channel_fen"],
        labels["matched"],
        labels["matched_fen"],
        labels["exceptions"],
        labels["open"],
        labels["transit"],
    ]
    ws.append(head)
    for cell in ws[3]:
        cell.font = Font(bold=True)
    money_cols = (3, 5, 7, 10)
    for c in report.channels:
        ws.append(
            [
                _channel_name(c.channel),
                c.internal_count,
                Decimal(c.internal_amount_fen) / 100,
                c.channel_count,
                Decimal(c.channel_amount_fen) / 100,
                c.matched_count,
                Decimal(c.matched_amount_fen) / 100,
                c.exception_count,
                c.open_count,
                Decimal(c.in_transit_fen) / 100,
            ]
        )
        for col in money_cols:
            ws.cell(row=ws.max_row, column=col).number_format = "#,##0.00"
    for letter, width in zip("ABCDEFGHIJ", (12, 10, 14, 10, 14, 12, 14, 10, 10, 14), strict=True):
        ws.column_dimensions[letter].width = width

    ex = wb.create_sheet(_("差异明细"))
    ex.append(
        [
            "id",
            labels["channel"],
            labels["category"],
            labels["reference"],
            labels["order_no"],
            labels["amount"],
            "amount_fen",
            labels["state"],
            labels["resolution"],
            labels["owner"],
            labels["detail"],
        ]
    )
    for cell in ex[1]:
        cell.font = Font(bold=True)
    for e in report.exceptions:
        ex.append(
            [
                e.id,
                _channel_name(e.channel),
                _category_name(e.category),
                e.reference,
                e.order_no,
                Decimal(e.amount_fen) / 100,
                e.amount_fen,
                _state_name(e.state),
                e.resolution,
                e.owner,
                e.detail,
            ]
        )
        ex.cell(row=ex.max_row, column=6).number_format = "#,##0.00"
    for letter, width in zip(
        "ABCDEFGHIJK", (8, 10, 16, 32, 24, 12, 12, 10, 14, 12, 40), strict=True
    ):
        ex.column_dimensions[letter].width = width
    ex.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def render_pdf(report: DayReport) -> bytes:
    """Return an A4 PDF: the channel summary table, then the exceptions, in the CJK font the
    receipts embed."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from wuye.receipts.render.pdf import cjk_font_name

    font = cjk_font_name()
    labels = _labels()
    title = ParagraphStyle("t", fontName=font, fontSize=15, leading=20)
    body = ParagraphStyle("b", fontName=font, fontSize=8.5, leading=11)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"{_('对账日报')} {report.settle_date:%Y-%m-%d}",
    )
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), font, 8.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa7b4")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    summary = [
        [
            labels["channel"],
            labels["internal"],
            labels["internal_fen"],
            labels["channel_count"],
            labels["channel_fen"],
            labels["matched"],
            labels["matched_fen"],
            labels["exceptions"],
            labels["open"],
            labels["transit"],
        ]
    ]
    for c in report.channels:
        summary.append(
            [
                _channel_name(c.channel),
                str(c.internal_count),
                _yuan(c.internal_amount_fen),
                str(c.channel_count),
                _yuan(c.channel_amount_fen),
                str(c.matched_count),
                _yuan(c.matched_amount_fen),
                str(c.exception_count),
                str(c.open_count),
                _yuan(c.in_transit_fen),
            ]
        )
    t1 = Table(summary, repeatRows=1)
    t1.setStyle(style)
    t1.setStyle(TableStyle([("ALIGN", (1, 1), (-1, -1), "RIGHT")]))
    story: list[Any] = [
        Paragraph(
            f"{report.company_name} · {_('对账日报')} · {report.settle_date:%Y-%m-%d}", title
        ),
        Spacer(1, 5 * mm),
        t1,
        Spacer(1, 7 * mm),
        Paragraph(_("差异明细"), title),
        Spacer(1, 3 * mm),
    ]
    rows: list[list[Any]] = [
        [
            "#",
            labels["channel"],
            labels["category"],
            labels["reference"],
            labels["order_no"],
            labels["amount"],
            labels["state"],
            labels["owner"],
            labels["detail"],
        ]
    ]
    for e in report.exceptions:
        rows.append(
            [
                str(e.id),
                _channel_name(e.channel),
                _category_name(e.category),
                e.reference,
                e.order_no,
                _yuan(e.amount_fen),
                _state_name(e.state),
                e.owner,
                Paragraph(e.detail or "", body),
            ]
        )
    if len(rows) == 1:
        rows.append(["", "", _("无差异"), "", "", "", "", "", ""])
    t2 = Table(
        rows,
        repeatRows=1,
        colWidths=[12 * mm, 18 * mm, 28 * mm, 52 * mm, 42 * mm, 22 * mm, 18 * mm, 20 * mm, None],
    )
    t2.setStyle(style)
    t2.setStyle(TableStyle([("ALIGN", (5, 1), (5, -1), "RIGHT")]))
    story.append(t2)
    doc.build(story)
    return out.getvalue()
