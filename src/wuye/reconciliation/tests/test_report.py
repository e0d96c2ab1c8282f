"""The day's report: JSON shape (the issue's keys), Excel sheets and a PDF with Chinese text."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from django.core.management.base import CommandError, OutputWrapper

from wuye.payments.tests.helpers import household
from wuye.reconciliation.cli import report as cli_report
from wuye.reconciliation.models import Category, ReconRun
from wuye.reconciliation.report import ReportFormatError, day_report, render
from wuye.reconciliation.tests.test_resolution import (
    CARD_CHANNELS,
    LATER,
    SETTLE,
    paid_by_channel,
    recon_exception,
)

pytestmark = pytest.mark.django_db

CATEGORIES = {c.value for c in Category}


@pytest.fixture
def day(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    company = hh.community.company
    paid_by_channel(hh, 128000, channel="card")
    run = ReconRun.objects.create(
        company=company,
        channel="card",
        settle_date=SETTLE,
        started_at=LATER,
        internal_count=3,
        internal_fen=150000,
        channel_count=3,
        channel_fen=148000,
        matched_count=2,
        matched_fen=128000,
        exception_count=2,
    )
    recon_exception(company.pk, "channel_only", reference="000001234599", amount_fen=20000, run=run)
    recon_exception(
        company.pk, "internal_only", channel="wechat", reference="4200009", amount_fen=2200
    )
    return company


def test_the_json_report_has_per_channel_matched_counts_and_exceptions_with_the_issue_keys(day):
    data = json.loads(render(day_report(company=day, settle_date=SETTLE), "json"))

    assert data["settle_date"] == "20261121"
    card = next(c for c in data["channels"] if c["channel"] == "card")
    assert (card["matched_count"], card["matched_amount_fen"]) == (2, 128000)
    assert card["in_transit_fen"] == 128000
    assert {"wechat", "alipay"} <= {c["channel"] for c in data["channels"]}
    assert len(data["exceptions"]) == 2
    for exc in data["exceptions"]:
        assert {"category", "channel", "reference", "amount_fen"} <= exc.keys()
        assert exc["category"] in CATEGORIES
        assert isinstance(exc["amount_fen"], int)
    assert card["exceptions"] == [e for e in data["exceptions"] if e["channel"] == "card"]
    assert card["exceptions"][0]["category"] == "channel_only"
    assert card["exceptions"][0]["amount_fen"] == 20000


def test_the_excel_report_has_a_summary_and_an_exceptions_sheet(day):
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(render(day_report(company=day, settle_date=SETTLE), "xlsx")))

    summary, exceptions = wb.worksheets
    assert summary.title == "汇总" and exceptions.title == "差异明细"
    rows = list(exceptions.iter_rows(min_row=2, values_only=True))
    assert sorted(r[6] for r in rows) == [2200, 20000]
    card_row = next(r for r in summary.iter_rows(min_row=4, values_only=True) if r[0] == "银行卡")
    assert float(card_row[6]) == 1280.00


def test_the_pdf_report_names_the_day_and_its_exceptions(day):
    from pypdf import PdfReader

    data = render(day_report(company=day, settle_date=SETTLE), "pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert data.startswith(b"%PDF")
    assert "2026-11-21" in text
    assert "000001234599" in text


def test_an_unknown_format_is_refused():
    with pytest.raises(ReportFormatError):
        render(SimpleNamespace(), "csv")  # type: ignore[arg-type]


def _run(**opts):  # type: ignore[no-untyped-def]
    out = io.StringIO()
    cmd = SimpleNamespace(stdout=OutputWrapper(out))
    cli_report.handle(cmd, **opts)
    return out.getvalue()


def test_the_command_prints_json_and_writes_files(day, tmp_path):
    printed = json.loads(_run(date="20261121", format="json", company=str(day.pk)))
    assert printed["settle_date"] == "20261121"
    target = tmp_path / "day.xlsx"
    _run(date="20261121", format="xlsx", out=str(target), company=str(day.pk))
    assert target.read_bytes()[:2] == b"PK"


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"date": "2026-11-21", "format": "json"}, "--date"),
        ({"date": "20261121", "format": "pdf"}, "--out"),
        ({"date": "20261121", "format": "json", "company": "999999"}, "--company"),
    ],
)
def test_bad_command_options_say_which_option(day, opts, message):
    with pytest.raises(CommandError, match=message):
        _run(**opts)


def test_wuye_reconcile_report_runs_through_the_command(day, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("reconcile", "report", "--date", "20261121", "--company", str(day.pk), stdout=out)
    assert json.loads(out.getvalue())["settle_date"] == "20261121"
    target = tmp_path / "day.pdf"
    call_command(
        "reconcile",
        "report",
        "--date",
        "20261121",
        "--format",
        "pdf",
        "--out",
        str(target),
        "--company",
        str(day.pk),
        stdout=StringIO(),
    )
    assert target.read_bytes().startswith(b"%PDF")
