"""Columnar channel rows (Parquet per file) and duplicates marked on import.

Large files keep their rows in Parquet (``store.COLUMNAR_MIN_ROWS``); these tests lower the
threshold to one row so that the small files of test_matching go the same way, and check that
matching finds exactly what it finds with the rows in the database, that only the rows an
exception links to become ``ChannelRecord`` rows, and that a file of a rolled-back import is
never read.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from wuye.payments.tests.helpers import Household, household
from wuye.reconciliation import store
from wuye.reconciliation.importers import file_import
from wuye.reconciliation.matching import reconcile_run
from wuye.reconciliation.models import ChannelRecord, ReconException, SourceFile
from wuye.reconciliation.samples import CardRow, QrRow, acquirer_csv, wechat_bill

from .conftest import WECHAT_MCH, merchants_setup
from .test_matching import (  # noqa: F401 - _channels is an autouse fixture
    LOCAL,
    NOW,
    SETTLE,
    _channels,
    card_day,
    card_pay,
    found,
    pay,
)


@pytest.fixture
def hh() -> Household:
    hh = household()
    merchants_setup(hh.community.company)
    return hh


pytestmark = pytest.mark.django_db

CARD_DAY = {
    ("duplicate", "000000000001", 128000),
    ("fee_mismatch", "000000000003", 50),
    ("amount_mismatch", "000000000004", 1),
    ("internal_only", "10000001-20261120-000000000005", 20000),
    ("channel_only", "000000000009", 15000),
    ("arrival_missing", "", 128000 + 500000 + 50000 + 30001 + 15000 + 128000 - 3855),
}


@pytest.fixture
def columnar(settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(store, "COLUMNAR_MIN_ROWS", 1)
    return tmp_path


def test_a_columnar_file_matches_as_the_database_rows_do_and_copies_only_exception_rows(
    hh, columnar
):
    card_day(hh)
    company = hh.community.company
    sf = SourceFile.objects.get()
    assert sf.columnar and sf.row_count == 6
    assert store.parquet_path(company.pk, sf.sha256).exists()
    assert not ChannelRecord.objects.exists()

    run = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    assert found(run) == CARD_DAY
    assert (run.channel_count, run.matched_count, run.matched_fen) == (6, 3, 678000)
    # The four exceptions about a channel row link to a copy of it; nothing else was copied.
    linked = ReconException.objects.exclude(channel_record=None)
    assert linked.count() == 4 and ChannelRecord.objects.count() == 4
    fee = ReconException.objects.get(category="fee_mismatch")
    rec = fee.channel_record
    assert (rec.source_id, rec.line_no, rec.reference, rec.card_type) == (
        sf.pk,
        4,
        "000000000003",
        "credit",
    )
    assert (rec.amount_fen, rec.fee_milli_fen, rec.net_fen) == (50000, 350_000, 49650)
    assert rec.txn_at.isoformat() == "2026-11-20T01:30:00+00:00"  # 09:30 in Shanghai
    dup = ReconException.objects.get(category="duplicate")
    assert dup.channel_record.line_no == 7 and dup.channel_record.is_duplicate

    again = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    assert found(again) == CARD_DAY and ChannelRecord.objects.count() == 4
    assert ReconException.objects.count() == len(CARD_DAY)


def test_the_same_columnar_file_twice_adds_nothing(hh, columnar):
    data = acquirer_csv([CardRow("000000000001", 128000, 640, LOCAL, SETTLE)])
    company = hh.community.company
    first = file_import(data, company=company, name="a.csv")
    again = file_import(data, company=company, name="b.csv")
    assert first.created and not again.created and again.source.pk == first.source.pk
    assert SourceFile.objects.count() == 1
    assert list((columnar / "recon" / str(company.pk)).iterdir()) == [
        store.parquet_path(company.pk, first.source.sha256)
    ]


def test_the_parquet_file_of_a_rolled_back_import_is_never_read(hh, columnar):
    company = hh.community.company
    card_pay(hh, 128000, "000000000001")
    data = acquirer_csv([CardRow("000000000001", 128000, 640, LOCAL, SETTLE)])
    with pytest.raises(RuntimeError), transaction.atomic():
        sf = file_import(data, company=company, name="a.csv").source
        path = store.parquet_path(company.pk, sf.sha256)
        raise RuntimeError("rolled back after the file was written")
    assert path.exists() and not SourceFile.objects.exists()

    run = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    assert found(run) == {("internal_only", "10000001-20261120-000000000001", 128000)}
    assert run.channel_count == 0

    assert file_import(data, company=company, name="a.csv").created
    run = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    assert run.matched_count == 1 and found(run) == {("arrival_missing", "", 127360)}


@pytest.mark.parametrize("columnar_rows", [False, True])
def test_a_reference_already_imported_near_its_date_is_marked_a_duplicate(
    hh, settings, tmp_path, monkeypatch, columnar_rows
):
    settings.DATA_DIR = tmp_path
    if columnar_rows:
        monkeypatch.setattr(store, "COLUMNAR_MIN_ROWS", 1)
    company = hh.community.company
    card_pay(hh, 128000, "000000000001")
    card_pay(hh, 5000, "000000000002")
    file_import(
        acquirer_csv([CardRow("000000000001", 128000, 640, LOCAL, SETTLE)]),
        company=company,
        name="day1.csv",
    )
    # The next day's file repeats yesterday's row (the acquirer sent it twice).
    later = SETTLE + timedelta(days=1)
    file_import(
        acquirer_csv(
            [
                CardRow("000000000001", 128000, 640, LOCAL, later, stan="000002"),
                CardRow("000000000002", 5000, 25, LOCAL, later, stan="000003"),
            ]
        ),
        company=company,
        name="day2.csv",
    )
    run = reconcile_run(company=company, settle_date=later, channel="card", now=NOW)
    cats = {(c, r) for c, r, _a in found(run) if c != "arrival_missing"}
    assert cats == {("duplicate", "000000000001")}
    assert run.matched_count == 1
    first = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    assert first.matched_count == 1


def test_qr_bill_repeating_a_transaction_marks_the_second_row(hh):
    company = hh.community.company
    pay(hh, "wechat", 10000, "4200000001", order_no="WX1")
    when = LOCAL
    rows = [
        QrRow("4200000001", "WX1", 10000, 38_000, when, WECHAT_MCH),
        QrRow("4200000001", "WX1", 10000, 38_000, when, WECHAT_MCH),
    ]
    file_import(wechat_bill(rows), company=company, name="wx.csv")
    recs = list(ChannelRecord.objects.order_by("line_no"))
    assert [r.is_duplicate for r in recs] == [False, True]
    run = reconcile_run(company=company, settle_date=SETTLE, channel="wechat", now=NOW)
    assert {(c, r) for c, r, _a in found(run) if c.startswith(("dup", "int", "chan"))} == {
        ("duplicate", "4200000001")
    }
    assert run.matched_count == 1


def test_two_payments_of_ours_with_one_rrn_are_one_match_and_one_duplicate(hh):
    company = hh.community.company
    card_pay(hh, 128000, "000000000001")
    # Another terminal's payment with the same RRN: our side repeats the key.
    pay(hh, "card", 128000, "10000002-20261120-000000000001", rrn="000000000001")
    card_pay(hh, 5000, "000000000007")
    pay(hh, "card", 5000, "10000002-20261120-000000000007", rrn="000000000007")
    file_import(
        acquirer_csv([CardRow("000000000001", 128000, 640, LOCAL, SETTLE)]),
        company=company,
        name="acq.csv",
    )
    run = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    cats = sorted((c, r) for c, r, _a in found(run) if c != "arrival_missing")
    assert cats == [
        ("duplicate", "10000002-20261120-000000000001"),
        ("duplicate", "10000002-20261120-000000000007"),
        ("internal_only", "10000001-20261120-000000000007"),
    ]
    assert run.matched_count == 1
