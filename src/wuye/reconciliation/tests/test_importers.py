"""Importers: every layout's good file, each kind of damage, the same file twice, MT940 = CSV."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import pytest

from wuye.reconciliation.importers import FileRejected, file_import, sniff
from wuye.reconciliation.models import BankMovement, ChannelRecord, ChannelSettlement, SourceFile
from wuye.reconciliation.samples import (
    BankRow,
    CardRow,
    QrRow,
    acquirer_csv,
    alipay_zip,
    bank_csv,
    bank_mt940,
    wechat_bill,
)

from .conftest import ACCOUNT, ALIPAY_PID, CARD_MID, WECHAT_MCH

DAY = date(2026, 11, 20)
SETTLE = date(2026, 11, 23)


def card_rows() -> list[CardRow]:
    return [
        CardRow("000001234567", 128000, 640, datetime(2026, 11, 20, 9, 30, 15), SETTLE),
        CardRow(
            "000001234568",
            50000,
            300,
            datetime(2026, 11, 20, 10, 1),
            SETTLE,
            card_type="CREDIT",
            stan="000002",
        ),
        CardRow(
            "000001234570",
            -30000,
            -180,
            datetime(2026, 11, 20, 10, 15),
            SETTLE,
            orig_rrn="000001234561",
            stan="000003",
        ),
    ]


def test_sample_acquirer_file_matches_the_contract_example():
    data = acquirer_csv(
        [
            CardRow(
                "000001234567",
                128000,
                640,
                datetime(2026, 11, 20, 9, 30, 15),
                date(2026, 11, 21),
                stan="000017",
            ),
            CardRow(
                "000001234570",
                -30000,
                -180,
                datetime(2026, 11, 20, 10, 15),
                date(2026, 11, 21),
                stan="000018",
                masked_pan="625900******0030",
                card_type="CREDIT",
                orig_rrn="000001234561",
            ),
        ]
    ).decode()
    assert data.splitlines()[-1] == "TRAILER,2,980.00,4.60,975.40"
    assert (
        "20261121,20261120,093015,898310048990001,10000001,000001,000017,000001234567,"
        "A1B2C3,PURCHASE,622202******0017,DEBIT,1280.00,6.40,1273.60," in data
    )


def test_acquirer_file_imports_every_row_and_the_settlement(company):
    result = file_import(acquirer_csv(card_rows()), company=company, name="acq.csv")
    assert result.created
    sf = result.source
    assert (sf.kind, sf.row_count, sf.total_fen, sf.net_fen) == ("acquirer", 3, 148000, 147240)
    recs = list(ChannelRecord.objects.filter(source=sf).order_by("line_no"))
    assert [r.reference for r in recs] == ["000001234567", "000001234568", "000001234570"]
    first, _, refund = recs
    assert (first.channel, first.merchant_no, first.settle_date) == ("card", CARD_MID, SETTLE)
    assert (first.amount_fen, first.fee_milli_fen, first.net_fen) == (128000, 640_000, 127360)
    assert first.masked_pan == "622202******0017" and first.card_type == "debit"
    assert first.txn_at.isoformat() == "2026-11-20T01:30:15+00:00"  # 09:30:15 in Shanghai
    assert first.line_no == 2
    assert (refund.kind, refund.amount_fen, refund.orig_reference) == (
        "refund",
        -30000,
        "000001234561",
    )
    s = ChannelSettlement.objects.get(source=sf)
    assert (s.channel, s.merchant_no, s.settle_date) == ("card", CARD_MID, SETTLE)
    assert (s.gross_fen, s.fee_fen, s.net_fen, s.row_count) == (148000, 760, 147240, 3)


def test_every_record_carries_its_files_source_and_company_and_the_file_is_protected(company):
    # The database no longer checks these two foreign keys per row (migration 0003): the
    # importer is what keeps them right, and Django's PROTECT what keeps them alive.
    from django.db.models import ProtectedError

    sources = [
        file_import(acquirer_csv(card_rows()), company=company, name="acq.csv").source,
        file_import(wechat_bill(qr_rows(WECHAT_MCH)), company=company, name="wx.csv").source,
    ]
    for sf in sources:
        recs = ChannelRecord.objects.filter(source=sf)
        assert recs.count() == sf.row_count > 0
        assert set(recs.values_list("source_id", "company_id")) == {(sf.pk, company.pk)}
    assert ChannelRecord.objects.exclude(source__in=sources).count() == 0
    with pytest.raises(ProtectedError):
        sources[0].delete()
    assert ChannelRecord.objects.filter(source=sources[0]).count() == 3


def test_the_same_file_twice_adds_nothing(company):
    data = acquirer_csv(card_rows())
    first = file_import(data, company=company, name="a.csv")
    again = file_import(data, company=company, name="a-copy.csv")
    assert not again.created and again.source.pk == first.source.pk
    assert ChannelRecord.objects.count() == 3 and SourceFile.objects.count() == 1


def _damaged(data: bytes, old: str, new: str) -> bytes:
    text = data.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


@pytest.mark.parametrize(
    "old,new,line,field",
    [
        ("1280.00,6.40,1273.60", "1280.0,6.40,1273.60", 2, "amount"),
        ("1280.00,6.40,1273.60", "1280.00,6.40,1273.50", 2, "net_amount"),
        ("622202******0017,CREDIT", "6222021234560017,CREDIT", 3, "card_no"),
        ("PURCHASE,622202******0017,CREDIT", "SALE,622202******0017,CREDIT", 3, "txn_type"),
        ("20261123,20261120,101500", "20261123,20261131,101500", 4, "txn_date"),
        (",-300.00,-1.80,-298.20,000001234561", ",-300.00,-1.80,-298.20,", 4, "orig_rrn"),
        ("TRAILER,3,1480.00", "TRAILER,3,1480.01", 5, "amount"),
        ("TRAILER,3,", "TRAILER,4,", 5, "count"),
    ],
)
def test_damaged_acquirer_file_names_line_and_field_and_imports_nothing(
    company, old, new, line, field
):
    data = _damaged(acquirer_csv(card_rows()), old, new)
    with pytest.raises(FileRejected) as exc:
        file_import(data, company=company, name="bad.csv")
    assert (exc.value.file, exc.value.line, exc.value.field) == ("bad.csv", line, field)
    assert "bad.csv" in str(exc.value)
    assert not SourceFile.objects.exists() and not ChannelRecord.objects.exists()


def test_acquirer_file_without_trailer_or_with_bad_encoding_is_rejected(company):
    data = acquirer_csv(card_rows())
    no_trailer = b"\n".join(data.splitlines()[:-1]) + b"\n"
    with pytest.raises(FileRejected, match="TRAILER"):
        file_import(no_trailer, company=company, kind="acquirer", name="x.csv")
    latin = data.replace(b"622202******0017,DEBIT", b"622202******0017,D\xe9BIT")
    with pytest.raises(FileRejected) as exc:
        file_import(latin, company=company, kind="acquirer", name="x.csv")
    assert exc.value.line == 2 and "UTF-8" in str(exc.value)
    extra = _damaged(data, "1280.00,6.40,1273.60,", "1280.00,6.40,1273.60,,x")
    with pytest.raises(FileRejected) as exc:
        file_import(extra, company=company, kind="acquirer", name="x.csv")
    assert exc.value.line == 2
    assert not SourceFile.objects.exists()


def test_a_merchant_of_another_company_is_rejected(company):
    data = _damaged(acquirer_csv(card_rows()[:1]), CARD_MID, "898310048999999")
    with pytest.raises(FileRejected, match="898310048999999"):
        file_import(data, company=company, name="x.csv")


def qr_rows(merchant: str) -> list[QrRow]:
    return [
        QrRow(
            "4200001234202611200123456789",
            "WY20261120000123",
            128000,
            486_400,
            datetime(2026, 11, 20, 9, 30, 15),
            merchant,
        ),
        QrRow(
            "4200001234202611200123456790",
            "WY20261120000124",
            33333,
            126_100,
            datetime(2026, 11, 20, 11, 0),
            merchant,
            funding_source="CMB_CREDIT",
        ),
        QrRow(
            "50300001234202611200000001",
            "WY20261119000007",
            -10000,
            -38_000,
            datetime(2026, 11, 20, 15, 0),
            merchant,
            orig_reference="4200001234202611190000000007",
            refund_no="RF20261120000001",
        ),
    ]


def test_wechat_bill_imports_with_exact_fees_and_day_fee_rounded_once(company):
    sf = file_import(wechat_bill(qr_rows(WECHAT_MCH)), company=company, name="wx.csv").source
    assert sf.kind == "wechat" and sf.row_count == 3
    recs = list(ChannelRecord.objects.filter(source=sf).order_by("line_no"))
    assert [r.fee_milli_fen for r in recs] == [486_400, 126_100, -38_000]
    assert recs[0].order_no == "WY20261120000123" and recs[1].funding_source == "CMB_CREDIT"
    assert (recs[2].kind, recs[2].amount_fen, recs[2].orig_reference) == (
        "refund",
        -10000,
        "4200001234202611190000000007",
    )
    assert recs[2].reference == "50300001234202611200000001"
    s = ChannelSettlement.objects.get(source=sf)
    # 4.86400 + 1.26100 - 0.38000 = 5.74500 yuan -> 575 fen, rounded once for the day
    # (row by row it would be 486 + 126 - 38 = 574).
    assert (s.gross_fen, s.fee_fen, s.net_fen) == (151333, 575, 150758)
    assert s.settle_date == date(2026, 11, 21)  # the bill of the 20th settles on the 21st


@pytest.mark.parametrize(
    "old,new,line,field",
    [
        ("`1280.00,`0.00,`0,`0", "`1280.0,`0.00,`0,`0", 2, "应结订单金额"),
        ("`4.86400", "`4.864", 2, "手续费"),
        ("`2026-11-20 11:00:00", "`2026-11-20 25:00:00", 3, "交易时间"),
        ("`SUCCESS,`CMB_CREDIT", "`CLOSED,`CMB_CREDIT", 3, "交易状态"),
        ("`3,`1613.33", "`3,`1613.34", 6, "应结订单总金额"),
        ("`5.74500", "`5.74501", 6, "手续费总金额"),
    ],
)
def test_damaged_wechat_bill_names_line_and_field(company, old, new, line, field):
    data = _damaged(wechat_bill(qr_rows(WECHAT_MCH)), old, new)
    with pytest.raises(FileRejected) as exc:
        file_import(data, company=company, name="wx.csv")
    assert (exc.value.line, exc.value.field) == (line, field)
    assert not ChannelRecord.objects.exists()


def test_wechat_bill_without_backticks_or_summary_is_rejected(company):
    data = wechat_bill(qr_rows(WECHAT_MCH))
    with pytest.raises(FileRejected) as exc:
        file_import(
            data.replace(b"`WY20261120000124", b"WY20261120000124"), company=company, name="wx.csv"
        )
    assert exc.value.line == 3 and exc.value.field == "商户订单号"
    cut = b"\r\n".join(data.splitlines()[:-2])
    with pytest.raises(FileRejected, match="汇总"):
        file_import(cut, company=company, kind="wechat", name="wx.csv")


def test_alipay_bill_imports_from_its_gbk_zip(company):
    data = alipay_zip(
        [
            QrRow(
                "2026112022001400000000000001",
                "WY20261120000200",
                50000,
                190_000,
                datetime(2026, 11, 20, 9, 0),
                ALIPAY_PID,
            ),
            QrRow(
                "RF20261120000009",
                "WY20261118000001",
                -20000,
                -76_000,
                datetime(2026, 11, 20, 16, 0),
                ALIPAY_PID,
                orig_reference="2026111822001400000000000005",
            ),
        ],
        merchant_no=ALIPAY_PID,
        day=DAY,
    )
    assert sniff(data) == "alipay"
    sf = file_import(data, company=company, name="ali.zip").source
    pay, refund = ChannelRecord.objects.filter(source=sf).order_by("line_no")
    assert (pay.channel, pay.merchant_no, pay.reference, pay.amount_fen, pay.fee_milli_fen) == (
        "alipay",
        ALIPAY_PID,
        "2026112022001400000000000001",
        50000,
        190_000,
    )
    assert (refund.amount_fen, refund.reference, refund.orig_reference) == (
        -20000,
        "RF20261120000009",
        "2026111822001400000000000005",
    )
    s = ChannelSettlement.objects.get(source=sf)
    assert (s.gross_fen, s.fee_fen, s.net_fen) == (30000, 114, 29886)


def _rezip(data: bytes, edit) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, edit(zin.read(info)))
    return out.getvalue()


def test_damaged_alipay_bill_is_rejected(company):
    data = alipay_zip(qr_rows(ALIPAY_PID)[:1], merchant_no=ALIPAY_PID, day=DAY)
    bad_total = _rezip(
        data, lambda b: b.replace("共1280.00元".encode("gbk"), "共1280.01元".encode("gbk"))
    )
    with pytest.raises(FileRejected, match="交易合计"):
        file_import(bad_total, company=company, name="ali.zip")
    utf8 = _rezip(data, lambda b: b.decode("gbk").encode("utf-8"))
    with pytest.raises(FileRejected):
        file_import(utf8, company=company, name="ali.zip")
    bad_amount = _rezip(data, lambda b: b.replace(b"1280.00\t,1280.00", b"12x0.00\t,1280.00"))
    with pytest.raises(FileRejected) as exc:
        file_import(bad_amount, company=company, name="ali.zip")
    assert exc.value.line == 6 and exc.value.field == "订单金额（元）"
    with pytest.raises(FileRejected, match="zip"):
        file_import(b"PK\x03\x04garbage", company=company, kind="alipay", name="ali.zip")
    assert not SourceFile.objects.exists()


def bank_rows() -> list[BankRow]:
    return [
        BankRow("B202611210001", "C", 147240, date(2026, 11, 23), f"POS清算 20261123 {CARD_MID}"),
        BankRow("B202611210002", "D", 5000, date(2026, 11, 23), "手续费", counterparty_name="银行"),
        BankRow(
            "B202611210003",
            "C",
            145240,
            date(2026, 11, 23),
            f"微信支付结算 {WECHAT_MCH} 20261121",
            counterparty_name="财付通支付科技有限公司",
        ),
        BankRow("B202611210004", "C", 99, date(2026, 11, 23), "利息"),
    ]


FIELDS = (
    "account_no",
    "serial_no",
    "txn_date",
    "value_date",
    "direction",
    "amount_fen",
    "balance_fen",
    "counterparty_name",
    "counterparty_account",
    "memo",
    "channel",
    "merchant_no",
    "settle_date",
)


def _movements(sf) -> list[tuple]:
    return list(BankMovement.objects.filter(source=sf).order_by("line_no").values_list(*FIELDS))


def test_bank_csv_imports_and_recognises_settlement_credits(company):
    sf = file_import(
        bank_csv(bank_rows(), opening_fen=8_800_000),
        company=company,
        account_no=ACCOUNT,
        name="bank.csv",
    ).source
    rows = _movements(sf)
    assert len(rows) == 4
    assert rows[0][4:7] == ("C", 147240, 8_947_240)
    assert rows[0][10:] == ("card", CARD_MID, date(2026, 11, 23))
    assert rows[2][10:] == ("wechat", WECHAT_MCH, date(2026, 11, 21))
    assert rows[1][10:] == ("", "", None) and rows[3][10:] == ("", "", None)


def test_mt940_imports_to_the_same_movements_as_the_csv(company, django_db_blocker):
    csv_sf = file_import(
        bank_csv(bank_rows(), opening_fen=8_800_000),
        company=company,
        account_no=ACCOUNT,
        name="bank.csv",
    ).source
    from_csv = _movements(csv_sf)
    BankMovement.objects.all().delete()
    mt = bank_mt940(bank_rows(), account_no=ACCOUNT, opening_fen=8_800_000)
    assert sniff(mt) == "bank_mt940"
    mt_sf = file_import(mt, company=company, name="bank.sta").source
    assert _movements(mt_sf) == from_csv
    # The CSV of the same day after the MT940 adds nothing.
    BankMovement.objects.filter(source=csv_sf).delete()
    again = file_import(
        bank_csv(bank_rows(), opening_fen=8_800_000) + b"\n",
        company=company,
        account_no=ACCOUNT,
        name="bank2.csv",
    )
    assert again.created and again.source.row_count == 0
    assert BankMovement.objects.count() == 4


@pytest.mark.parametrize(
    "old,new,line,field",
    [
        ("20261123,20261123,B202611210002,D", "20261123,20261123,B202611210002,X", 3, "direction"),
        ("B202611210003", "B202611210001", 4, "serial_no"),
        ("1452.40,90874.80", "1452.40,90874.81", 4, "balance"),
        ("50.00,", "-50.00,", 3, "amount"),
        ("20261123,20261123,B202611210004", "20261123,20261323,B202611210004", 5, "value_date"),
    ],
)
def test_damaged_bank_csv_names_line_and_field(company, old, new, line, field):
    data = _damaged(bank_csv(bank_rows(), opening_fen=8_800_000), old, new)
    with pytest.raises(FileRejected) as exc:
        file_import(data, company=company, account_no=ACCOUNT, name="bank.csv")
    assert (exc.value.line, exc.value.field) == (line, field)
    assert not BankMovement.objects.exists()


def test_damaged_mt940_is_rejected(company):
    data = bank_mt940(bank_rows(), account_no=ACCOUNT, opening_fen=8_800_000)
    bad_close = data.replace(b":62F:C261123CNY90875,79", b":62F:C261123CNY90875,78")
    assert bad_close != data
    with pytest.raises(FileRejected) as exc:
        file_import(bad_close, company=company, name="bank.sta")
    assert exc.value.field == ":62F:"
    dup = data.replace(b"NTRFB202611210003", b"NTRFB202611210001")
    with pytest.raises(FileRejected) as exc:
        file_import(dup, company=company, name="bank.sta")
    assert exc.value.line == 9 and "B202611210001" in str(exc.value)
    assert not BankMovement.objects.exists()


def test_unknown_layout_is_rejected(company):
    with pytest.raises(FileRejected, match="无法识别"):
        file_import(b"hello,world\n", company=company, name="x.txt")
