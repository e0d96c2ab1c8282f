"""A day of card and QR payments, every kind of difference, from files to a balanced ledger.

Wuye takes the day's card, WeChat Pay and Alipay payments through the payments services (the
path a terminal's or a provider's answer takes); the channels' files for the settlement date
are written in the contract's layouts (``reconciliation.samples``) with every difference
injected; they are uploaded through ``file_import`` as finance would; the day is run (matching,
then the rules). Each difference is found exactly once with its category, channel and
reference; the rules post the channel-only QR payment whose order we know and book the late
but exact WeChat credit; the ledger's invariants hold; and clearing shows exactly the money
still in transit: the card day (its credit came short) and the Alipay day (no credit).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from wuye.billing.tests.helpers import issue_bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.payments.models import Payment
from wuye.payments.services import order_create, payment_capture
from wuye.reconciliation.clearing import clearing_balance
from wuye.reconciliation.importers import file_import
from wuye.reconciliation.models import ReconException
from wuye.reconciliation.rules import reconcile_day
from wuye.reconciliation.samples import (
    BankRow,
    CardRow,
    QrRow,
    acquirer_csv,
    alipay_zip,
    bank_csv,
    wechat_bill,
)
from wuye.reconciliation.tests.conftest import ACCOUNT, ALIPAY_PID, CARD_MID, WECHAT_MCH
from wuye.testing.factories import make_building, make_community, make_fee_item, make_unit

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
TRADE = date(2026, 11, 17)  # a Tuesday
SETTLE = date(2026, 11, 18)
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=SH)  # a week later: every arrival is due


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 17, hour, minute, tzinfo=SH)


class Estate:
    def __init__(self, company) -> None:  # type: ignore[no-untyped-def]
        self.company = company
        self.community = make_community(company)
        self.item = make_fee_item(company)
        self.building = make_building(self.community)
        self.n = 0

    def household_bill(self, amount_fen: int):  # type: ignore[no-untyped-def]
        self.n += 1
        unit = make_unit(self.building, room_no=f"{self.n:03d}", label=f"9-{self.n:03d}")
        return issue_bill(
            unit=unit,
            fee_item=self.item,
            amount_fen=amount_fen,
            period_start=date(2026, 10, 1),
            due_date=date(2026, 10, 10),
            issued_on=date(2026, 10, 1),
        )

    def pay(self, channel: str, amount_fen: int, reference: str, at: datetime, **details):  # type: ignore[no-untyped-def]
        bill = self.household_bill(amount_fen)
        order = order_create(
            unit=bill.unit,
            bill_ids=[bill.pk],
            channel=channel,
            idempotency_key=f"WY{reference}",
            cashier=None,
            now=at,
        )
        return payment_capture(
            order=order,
            response=PaymentResponse(
                ChannelResult.PROCESSED, amount_fen, reference, details=details
            ),
            now=at,
        )


def _ledger_ok() -> None:
    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"], report


def test_a_day_with_every_kind_of_difference(company):
    estate = Estate(company)
    card = {"card_type": "debit", "masked_pan": "622202******0017"}
    # --- what Wuye recorded on the trade day ---------------------------------------------
    estate.pay("card", 100_000, "000000000001", _at(9), rrn="000000000001", **card)  # matched
    estate.pay("card", 20_000, "000000000002", _at(9, 5), rrn="000000000002", **card)  # fee
    estate.pay("card", 30_000, "000000000003", _at(9, 10), rrn="000000000003", **card)  # ours only
    estate.pay("card", 40_000, "000000000004", _at(9, 15), rrn="000000000004", **card)  # amount
    # Charged once here, twice in the acquirer's file.
    estate.pay("card", 60_000, "000000000006", _at(9, 25), rrn="000000000006", **card)
    estate.pay(
        "wechat",
        10_000,
        "4200000000000000000001",
        _at(10),
        provider_txn_id="4200000000000000000001",
        funding_source="OTHERS",
    )
    estate.pay(
        "alipay",
        20_000,
        "2026111722001000000001",
        _at(11),
        provider_txn_id="2026111722001000000001",
        funding_source="ALIPAYACCOUNT",
    )
    # A WeChat payment whose notification never came: the order waits, its bill unpaid.
    lost_bill = estate.household_bill(25_000)
    order_create(
        unit=lost_bill.unit,
        bill_ids=[lost_bill.pk],
        channel="wechat",
        idempotency_key="WY-LOST-0001",
        cashier=None,
        now=_at(10, 30),
    )

    # --- what the channels and the bank sent, every difference injected -------------------
    card_file = acquirer_csv(
        [
            CardRow("000000000001", 100_000, 500, datetime(2026, 11, 17, 9, 0), SETTLE),
            CardRow(
                "000000000002", 20_000, 200, datetime(2026, 11, 17, 9, 5), SETTLE, stan="000002"
            ),
            CardRow(
                "000000000004", 40_200, 201, datetime(2026, 11, 17, 9, 15), SETTLE, stan="000004"
            ),
            CardRow(
                "000000000005", 50_000, 250, datetime(2026, 11, 17, 9, 20), SETTLE, stan="000005"
            ),
            CardRow(
                "000000000006", 60_000, 300, datetime(2026, 11, 17, 9, 25), SETTLE, stan="000006"
            ),
            CardRow(
                "000000000006", 60_000, 300, datetime(2026, 11, 17, 9, 25), SETTLE, stan="000007"
            ),
        ]
    )
    card_net = (100_000 + 20_000 + 40_200 + 50_000 + 120_000) - (500 + 200 + 201 + 250 + 600)
    wx_file = wechat_bill(
        [
            QrRow(
                "4200000000000000000001",
                "WY4200000000000000000001",
                10_000,
                38_000,
                datetime(2026, 11, 17, 10, 0),
                WECHAT_MCH,
            ),
            QrRow(
                "4200000000000000000002",
                "WY-LOST-0001",
                25_000,
                95_000,
                datetime(2026, 11, 17, 10, 30),
                WECHAT_MCH,
            ),
        ]
    )
    wx_net = 35_000 - 133
    ali_file = alipay_zip(
        [
            QrRow(
                "2026111722001000000001",
                "WY2026111722001000000001",
                20_000,
                76_000,
                datetime(2026, 11, 17, 11, 0),
                ALIPAY_PID,
            )
        ],
        merchant_no=ALIPAY_PID,
        day=TRADE,
    )
    bank_file = bank_csv(
        [
            BankRow("B1", "C", card_net - 1_000, SETTLE, f"POS清算 {SETTLE:%Y%m%d} {CARD_MID}"),
            BankRow(
                "B2", "C", wx_net, date(2026, 11, 20), f"微信支付结算 {SETTLE:%Y%m%d} {WECHAT_MCH}"
            ),
        ],
        opening_fen=5_000_000,
    )
    for name, data in (
        ("acq.csv", card_file),
        ("wx.csv", wx_file),
        ("ali.zip", ali_file),
        ("bank.csv", bank_file),
    ):
        file_import(data, company=company, name=name, account_no=ACCOUNT)

    # --- run the day ---------------------------------------------------------------------
    summary = reconcile_day(company=company, settle_date=SETTLE, now=NOW)

    found = {
        (e.category, e.channel, e.reference or e.merchant_no)
        for e in ReconException.objects.filter(company=company, settle_date=SETTLE)
    }
    assert found == {
        ("fee_mismatch", "card", "000000000002"),
        ("internal_only", "card", "000000000003"),
        ("amount_mismatch", "card", "000000000004"),
        ("channel_only", "card", "000000000005"),
        ("duplicate", "card", "000000000006"),
        ("arrival_short", "card", CARD_MID),
        ("channel_only", "wechat", "4200000000000000000002"),
        ("arrival_late", "wechat", WECHAT_MCH),
        ("arrival_missing", "alipay", ALIPAY_PID),
    }
    states = {
        (e.category, e.channel): e.state
        for e in ReconException.objects.filter(company=company, settle_date=SETTLE)
    }
    # The rules: the lost WeChat notification is posted; the late but exact credit is booked.
    assert states[("channel_only", "wechat")] == ReconException.State.AUTO_RESOLVED
    assert states[("arrival_late", "wechat")] == ReconException.State.AUTO_RESOLVED
    assert states[("channel_only", "card")] == ReconException.State.OPEN  # nobody to post to
    assert states[("arrival_short", "card")] == ReconException.State.OPEN
    assert summary["rules"] == {
        "payments_posted": 1,
        "arrivals_booked": 1,
        "left_open": 1,
        "arrived": 0,
    }
    lost_bill.refresh_from_db()
    assert lost_bill.outstanding_fen == 0
    assert Payment.objects.get(reference="4200000000000000000002").order.idempotency_key == (
        "WY-LOST-0001"
    )
    _ledger_ok()

    # Money in transit: the card day (short credit not booked) and the Alipay day (no credit).
    assert clearing_balance(company_id=company.pk, channel="wechat", settle_date=SETTLE) == 0
    assert clearing_balance(company_id=company.pk, channel="card", settle_date=SETTLE) == (
        100_000 + 20_000 + 30_000 + 40_000 + 60_000
    )
    assert clearing_balance(company_id=company.pk, channel="alipay", settle_date=SETTLE) == 20_000

    # Running the day again finds the same differences and adds nothing.
    reconcile_day(company=company, settle_date=SETTLE, now=NOW)
    assert ReconException.objects.filter(company=company, settle_date=SETTLE).count() == 9
    _ledger_ok()
