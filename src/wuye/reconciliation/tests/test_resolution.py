"""Resolution postings: each leaves the ledger balanced and its invariants true, undo reverses,
and the clearing balance of a settlement date reaches zero once its money arrived."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.billing.models import Bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance
from wuye.payments.models import Payment
from wuye.payments.services import order_create, payment_capture
from wuye.payments.tests.fakes import FakeCardChannel
from wuye.payments.tests.helpers import Household, household, key, staff
from wuye.reconciliation.clearing import clearing_balance, clearing_in_transit
from wuye.reconciliation.resolution import (
    HouseholdNotFound,
    ResolutionError,
    arrival_post,
    channel_payment_post,
    fee_difference_post,
    internal_only_reverse,
    posting_undo,
    refund_due_post,
)

pytestmark = pytest.mark.django_db

TXN_AT = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai, 2026-11-20
TXN_DATE = date(2026, 11, 20)
SETTLE = date(2026, 11, 21)
LATER = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


class FakeWechat(FakeCardChannel):
    """A QR-like channel: money sits in CLEARING until the provider settles it."""

    code = "fakewx"
    name = "测试微信"


RECON_CHANNELS = [
    "wuye.channels.cash.adapter.CashChannel",
    "wuye.channels.prepaid.adapter.PrepaidChannel",
    "wuye.payments.tests.fakes.FakeCardChannel",
    "wuye.reconciliation.tests.test_resolution.FakeWechat",
]


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = RECON_CHANNELS
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def ledger_ok() -> dict:
    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"], report
    return report


def paid_by_channel(
    hh: Household, amount_fen: int, *, channel: str = "fakecard", ref: str = ""
) -> Payment:
    """A payment Wuye recorded normally through the channel."""
    bill = hh.bill(amount_fen, month=1)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel=channel,
        idempotency_key=key("ord"),
        cashier=hh.cashier,
        now=TXN_AT,
    )
    return payment_capture(
        order=order,
        response=PaymentResponse(ChannelResult.PROCESSED, amount_fen, ref or key("rrn")),
        now=TXN_AT,
    )


def test_a_channel_only_payment_is_posted_to_the_pending_order_it_was_for():
    hh = household()
    bill = hh.bill(12800, month=1)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="fakewx",
        idempotency_key="WY20261120000123",
        cashier=None,
        now=TXN_AT,
    )

    payment = channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakewx",
        reference="4200001234202611200123456789",
        amount_fen=12800,
        paid_at=TXN_AT,
        order_no="WY20261120000123",
    )

    bill.refresh_from_db()
    assert payment.order_id == order.pk
    assert bill.outstanding_fen == 0
    assert (
        clearing_balance(company_id=hh.community.company_id, channel="fakewx", settle_date=SETTLE)
        == 12800
    )
    ledger_ok()
    # The same record again posts nothing more.
    again = channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakewx",
        reference="4200001234202611200123456789",
        amount_fen=12800,
        paid_at=TXN_AT,
        order_no="WY20261120000123",
    )
    assert again.pk == payment.pk
    assert Payment.objects.count() == 1


def test_a_channel_only_payment_for_a_paid_order_pays_the_households_oldest_open_bills():
    hh = household()
    paid_by_channel(hh, 5000, channel="fakewx")
    older = hh.bill(3000, month=2)
    newer = hh.bill(4000, month=3)
    first_order_key = Payment.objects.get().order.idempotency_key

    channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakewx",
        reference="wx-second",
        amount_fen=5000,
        paid_at=TXN_AT,
        order_no=first_order_key,
    )

    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.outstanding_fen, newer.outstanding_fen) == (0, 2000)
    ledger_ok()


def test_a_channel_only_payment_without_a_known_household_is_refused_and_changes_nothing():
    hh = household()
    hh.bill(1000)
    with pytest.raises(HouseholdNotFound):
        channel_payment_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            reference="000001234567",
            amount_fen=1000,
            paid_at=TXN_AT,
        )
    assert Payment.objects.count() == 0


def test_finance_can_choose_the_household_of_a_channel_only_payment_and_the_surplus_is_prepaid():
    hh = household()
    bill = hh.bill(1000)

    payment = channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakecard",
        reference="000001234567",
        amount_fen=1500,
        paid_at=TXN_AT,
        unit_id=hh.unit.pk,
    )

    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    assert payment.prepaid_fen + payment.refund_due_fen == 500
    ledger_ok()


def test_a_household_of_another_company_cannot_be_chosen():
    hh = household()
    other = household()
    with pytest.raises(HouseholdNotFound):
        channel_payment_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            reference="x1",
            amount_fen=100,
            paid_at=TXN_AT,
            unit_id=other.unit.pk,
        )


def test_arrival_brings_the_settlement_dates_clearing_balance_to_zero():
    hh = household()
    paid_by_channel(hh, 128000)
    company_id = hh.community.company_id
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 128000

    arrival_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=127360,
        fee_fen=640,
        value_date=SETTLE,
        bank_reference="B202611210001",
    )

    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 0
    assert clearing_in_transit(company_id=company_id) == []
    assert account_balance(account=AccountKind.BANK, company_id=company_id) == 127360
    assert account_balance(account=AccountKind.FEE_EXPENSE, company_id=company_id) == 640
    ledger_ok()


def test_a_short_arrival_leaves_the_shortfall_in_transit():
    hh = household()
    paid_by_channel(hh, 10000)
    company_id = hh.community.company_id
    arrival_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=9900,
        fee_fen=50,
        value_date=SETTLE + timedelta(days=1),
        bank_reference="B1",
    )
    [transit] = clearing_in_transit(company_id=company_id)
    assert (transit.channel, transit.settle_date, transit.balance_fen) == ("fakecard", SETTLE, 50)


def test_the_same_bank_line_booked_twice_posts_once():
    hh = household()
    paid_by_channel(hh, 10000)
    args = dict(
        company_id=hh.community.company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=9950,
        fee_fen=50,
        value_date=SETTLE,
        bank_reference="B1",
    )
    first = arrival_post(**args)
    second = arrival_post(**args)
    assert first.pk == second.pk


def test_an_internal_only_payment_is_given_back_and_its_bill_reopens():
    hh = household()
    payment = paid_by_channel(hh, 8800)
    company_id = hh.community.company_id

    refund = internal_only_reverse(
        payment=payment, reason="对账: 渠道无此交易", user=hh.finance, now=LATER
    )

    payment.refresh_from_db()
    bill = Bill.objects.get(unit=hh.unit)
    assert refund.amount_fen == 8800
    assert payment.state == Payment.State.REFUNDED
    assert bill.outstanding_fen == 8800
    # It counts where the payment counted: nothing is left in transit for that day.
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 0
    assert clearing_in_transit(company_id=company_id) == []
    ledger_ok()


def test_only_finance_may_reverse_an_internal_only_payment():
    hh = household()
    payment = paid_by_channel(hh, 8800)
    with pytest.raises(AccessDenied):
        internal_only_reverse(
            payment=payment, reason="x", user=staff(hh.community, Role.CASHIER), now=LATER
        )
    payment.refresh_from_db()
    assert payment.refunded_fen == 0


def test_a_fee_difference_is_booked_and_undone_by_reversal():
    hh = household()
    paid_by_channel(hh, 100000)
    company_id = hh.community.company_id
    arrival_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=99400,
        fee_fen=500,  # the contract's fee; the channel took 600
        value_date=SETTLE,
        bank_reference="B9",
    )
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 100

    entry = fee_difference_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        difference_fen=100,
        reference="000001234567",
        on_date=SETTLE,
    )
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 0
    assert account_balance(account=AccountKind.FEE_EXPENSE, company_id=company_id) == 600

    posting_undo(entry=entry, user=hh.finance, now=LATER, reason="test")
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 100
    with pytest.raises(ResolutionError):
        posting_undo(entry=entry, user=hh.finance, now=LATER, reason="again")
    ledger_ok()


def test_a_refund_due_moves_the_money_out_of_transit_into_refund_payable():
    hh = household()
    company_id = hh.community.company_id
    refund_due_post(
        company_id=company_id,
        channel="fakewx",
        settle_date=SETTLE,
        reference="wx-unknown",
        amount_fen=700,
        unit=None,
        on_date=SETTLE,
    )
    # The channel's settlement will include the 7.00 it took; booking its arrival then
    # nets the settlement date to zero.
    assert clearing_balance(company_id=company_id, channel="fakewx", settle_date=SETTLE) == 700
    arrival_post(
        company_id=company_id,
        channel="fakewx",
        settle_date=SETTLE,
        bank_fen=700,
        fee_fen=0,
        value_date=SETTLE,
        bank_reference="B7",
    )
    assert clearing_balance(company_id=company_id, channel="fakewx", settle_date=SETTLE) == 0
    assert account_balance(account=AccountKind.REFUND_PAYABLE, company_id=company_id) == -700
    ledger_ok()


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_a_fee_difference_must_be_a_non_zero_integer_of_fen(bad):
    hh = household()
    with pytest.raises(ResolutionError):
        fee_difference_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            settle_date=SETTLE,
            difference_fen=bad,
            reference="r",
            on_date=SETTLE,
        )


@pytest.mark.parametrize("bad", [0, -5, 1.5])
def test_an_arrival_must_be_a_positive_integer_of_fen(bad):
    hh = household()
    with pytest.raises(ResolutionError):
        arrival_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            settle_date=SETTLE,
            bank_fen=bad,
            fee_fen=0,
            value_date=SETTLE,
            bank_reference="r",
        )
