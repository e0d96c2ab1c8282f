"""Matching: files built with known differences; each is found exactly once, in its category;
re-runs change nothing; arrival is judged on China's working-day calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.payments.models import Payment
from wuye.payments.services import order_create, payment_capture
from wuye.payments.tests.fakes import FakeCardChannel
from wuye.payments.tests.helpers import Household, household, key
from wuye.reconciliation.importers import file_import
from wuye.reconciliation.matching import reconcile_day, reconcile_run
from wuye.reconciliation.models import ReconException, ReconExceptionEvent, ReconRun
from wuye.reconciliation.samples import (
    BankRow,
    CardRow,
    QrRow,
    acquirer_csv,
    alipay_zip,
    bank_csv,
    wechat_bill,
)

from .conftest import ACCOUNT, ALIPAY_PID, CARD_MID, WECHAT_MCH, merchants_setup

pytestmark = pytest.mark.django_db

PAID_AT = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # Friday 09:30 in Shanghai
LOCAL = datetime(2026, 11, 20, 9, 30)
SETTLE = date(2026, 11, 21)  # the day after the trade day
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


class Card(FakeCardChannel):
    code = "card"


class Wechat(FakeCardChannel):
    code = "wechat"


class Alipay(FakeCardChannel):
    code = "alipay"


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = [
        "wuye.channels.cash.adapter.CashChannel",
        "wuye.reconciliation.tests.test_matching.Card",
        "wuye.reconciliation.tests.test_matching.Wechat",
        "wuye.reconciliation.tests.test_matching.Alipay",
    ]


def pay(hh: Household, channel: str, amount_fen: int, reference: str, **details) -> Payment:
    # One bill per month and household: each payment pays a bill of its own.
    month = hh.__dict__["months_used"] = hh.__dict__.get("months_used", 0) + 1
    bill = hh.bill(amount_fen, month=month)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel=channel,
        idempotency_key=details.pop("order_no", key("WY")),
        cashier=hh.cashier,
        now=PAID_AT,
    )
    return payment_capture(
        order=order,
        response=PaymentResponse(ChannelResult.PROCESSED, amount_fen, reference, details=details),
        now=PAID_AT,
    )


def card_pay(hh, amount_fen, rrn, card_type="debit") -> Payment:
    return pay(hh, "card", amount_fen, f"10000001-20261120-{rrn}", rrn=rrn, card_type=card_type)


@pytest.fixture
def hh() -> Household:
    hh = household()
    merchants_setup(hh.community.company)
    return hh


def card_day(hh: Household) -> None:
    """A card day with one difference of each kind (see the test for which)."""
    card_pay(hh, 128000, "000000000001")  # matched: 0.5% = 6.40
    card_pay(hh, 500000, "000000000002")  # matched: 0.5% = 25.00, capped at 20.00
    card_pay(hh, 50000, "000000000003", card_type="credit")  # fee mismatch: 3.50 for 3.00
    card_pay(hh, 30000, "000000000004")  # amount mismatch: the file says 300.01
    card_pay(hh, 20000, "000000000005")  # internal only: not in the file
    rows = [
        CardRow("000000000001", 128000, 640, LOCAL, SETTLE),
        CardRow("000000000002", 500000, 2000, LOCAL, SETTLE),
        CardRow("000000000003", 50000, 350, LOCAL, SETTLE, card_type="CREDIT"),
        CardRow("000000000004", 30001, 150, LOCAL, SETTLE),
        CardRow("000000000009", 15000, 75, LOCAL, SETTLE),  # channel only
        CardRow("000000000001", 128000, 640, LOCAL, SETTLE),  # duplicate of the first
    ]
    company = hh.community.company
    file_import(acquirer_csv(rows), company=company, name="acq.csv")


def found(run: ReconRun) -> set[tuple[str, str, int]]:
    return {
        (e.category, e.reference, e.amount_fen)
        for e in ReconException.objects.filter(
            company_id=run.company_id, channel=run.channel
        ).exclude(state=ReconException.State.AUTO_RESOLVED)
    }


def test_card_day_finds_each_difference_exactly(hh):
    card_day(hh)
    company = hh.community.company
    net = 128000 + 500000 + 50000 + 30001 + 15000 + 128000 - (640 + 2000 + 350 + 150 + 75 + 640)
    file_import(
        bank_csv(
            [BankRow("B1", "C", net - 100, date(2026, 11, 24), f"POS清算 20261121 {CARD_MID}")]
        ),
        company=company,
        account_no=ACCOUNT,
        name="bank.csv",
    )
    run = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)

    assert found(run) == {
        ("duplicate", "000000000001", 128000),
        ("fee_mismatch", "000000000003", 50),
        ("amount_mismatch", "000000000004", 1),
        ("internal_only", "10000001-20261120-000000000005", 20000),
        ("channel_only", "000000000009", 15000),
        ("arrival_short", "", -100),
        # Friday's takings are due by Monday 23rd (T+1 working day); they came on the 24th.
        ("arrival_late", "", net - 100),
    }
    assert (run.internal_count, run.internal_fen) == (5, 728000)
    assert (run.channel_count, run.matched_count, run.matched_fen) == (6, 3, 678000)
    assert run.exception_count == 7
    assert run.categories["fee_mismatch"] == {"count": 1, "amount_fen": 50}
    fee = ReconException.objects.get(category="fee_mismatch")
    assert (fee.expected_fen, fee.actual_fen) == (300, 350)
    assert fee.payment.rrn == "000000000003" and fee.channel_record.line_no == 4
    mismatch = ReconException.objects.get(category="amount_mismatch")
    assert (mismatch.expected_fen, mismatch.actual_fen) == (30000, 30001)
    assert ReconExceptionEvent.objects.filter(action="found").count() == 7


def test_rerunning_a_day_adds_nothing_and_closes_what_is_gone(hh):
    card_day(hh)
    company = hh.community.company
    first = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    ids = set(ReconException.objects.values_list("pk", flat=True))
    assert ReconException.objects.filter(category="arrival_missing").count() == 1
    dismissed = ReconException.objects.get(category="duplicate")
    dismissed.state = ReconException.State.DISMISSED
    dismissed.save()

    second = reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    assert second.pk != first.pk
    assert set(ReconException.objects.values_list("pk", flat=True)) == ids
    assert ReconException.objects.get(pk=dismissed.pk).state == "dismissed"
    assert ReconException.objects.filter(state="open").count() == len(ids) - 1

    # The bank credit arrives in full and on time: the missing arrival closes by itself.
    net = settlement_net(company)
    file_import(
        bank_csv([BankRow("B1", "C", net, date(2026, 11, 23), f"POS清算 20261121 {CARD_MID}")]),
        company=company,
        account_no=ACCOUNT,
        name="bank.csv",
    )
    reconcile_run(company=company, settle_date=SETTLE, channel="card", now=NOW)
    missing = ReconException.objects.get(category="arrival_missing")
    assert (missing.state, missing.resolution) == ("auto_resolved", "gone")
    assert missing.events.filter(action="gone").exists()
    assert not ReconException.objects.filter(category__startswith="arrival_", state="open")
    assert set(ReconException.objects.values_list("pk", flat=True)) == ids


def settlement_net(company) -> int:
    from wuye.reconciliation.models import ChannelSettlement

    return ChannelSettlement.objects.get(company=company, channel="card").net_fen


def test_qr_payments_match_by_provider_id_or_by_our_order_number(hh):
    company = hh.community.company
    pay(hh, "wechat", 128000, "4200000000000000000001", funding_source="OTHERS")
    # We never learned the provider's id for this one: our order number still finds it.
    pay(hh, "wechat", 33300, "WX-PENDING-7", order_no="WY20261120000777")
    pay(hh, "wechat", 20000, "4200000000000000000003", funding_source="CMB_CREDIT")
    file_import(
        wechat_bill(
            [
                QrRow("4200000000000000000001", "WY-x", 128000, 486_400, LOCAL, WECHAT_MCH),
                QrRow(
                    "4200000000000000000002", "WY20261120000777", 33300, 126_540, LOCAL, WECHAT_MCH
                ),
                # 0.6% of a credit-card payment is 1.20; the bill charges the 0.38% rate.
                QrRow(
                    "4200000000000000000003",
                    "WY-y",
                    20000,
                    76_000,
                    LOCAL,
                    WECHAT_MCH,
                    funding_source="CMB_CREDIT",
                ),
            ]
        ),
        company=company,
        name="wx.csv",
    )
    run = reconcile_run(
        company=company, settle_date=SETTLE, channel="wechat", as_of=date(2026, 11, 23), now=NOW
    )
    assert found(run) == {("fee_mismatch", "4200000000000000000003", -44)}
    assert run.matched_count == 3
    # Past the due date the missing credit is reported.
    run = reconcile_run(company=company, settle_date=SETTLE, channel="wechat", now=NOW)
    assert ("arrival_missing", "", 128000 + 33300 + 20000 - 689) in found(run)


def test_a_payment_the_channel_settled_a_day_later_is_not_a_difference_twice(hh):
    company = hh.community.company
    card_pay(hh, 10000, "000000000011")
    later = date(2026, 11, 22)
    file_import(
        acquirer_csv([CardRow("000000000011", 10000, 50, LOCAL, later)]),
        company=company,
        name="acq.csv",
    )
    runs = reconcile_day(company=company, settle_date=SETTLE, channels=["card"], now=NOW)
    assert runs[0].internal_count == 1 and runs[0].matched_count == 0
    assert not ReconException.objects.exclude(category="arrival_missing").exists()
    run = reconcile_run(company=company, settle_date=later, channel="card", now=NOW)
    assert run.matched_count == 1
    assert (
        not ReconException.objects.filter(settle_date=later)
        .exclude(category="arrival_missing")
        .exists()
    )


def test_every_channel_runs_with_nothing_to_match(hh):
    runs = reconcile_day(company=hh.community.company, settle_date=SETTLE, now=NOW)
    assert [r.channel for r in runs] == ["card", "wechat", "alipay"]
    assert all(r.exception_count == 0 and r.finished_at for r in runs)


def test_a_qr_row_known_only_by_our_trade_number_matches_through_the_qr_trade(hh):
    from wuye.channels.qrpay.models import QrTrade

    company = hh.community.company
    payment = pay(hh, "alipay", 8800, "ALI-REF-UNKNOWN-TO-THE-BILL")
    QrTrade.objects.create(
        order=payment.order,
        channel="alipay",
        kind="native",
        out_trade_no="WY202611200000000123001",
        amount_fen=8800,
        created_at=PAID_AT,
        expires_at=PAID_AT,
        next_query_at=PAID_AT,
        payment=payment,
    )
    file_import(
        alipay_zip(
            [
                QrRow(
                    "2026112022001400000000000001",
                    "WY202611200000000123001",
                    8800,
                    33_000,
                    LOCAL,
                    ALIPAY_PID,
                ),
            ],
            merchant_no=ALIPAY_PID,
            day=date(2026, 11, 20),
        ),
        company=company,
        name="ali.zip",
    )
    run = reconcile_run(
        company=company, settle_date=SETTLE, channel="alipay", as_of=SETTLE, now=NOW
    )
    assert run.matched_count == 1 and found(run) == set()
