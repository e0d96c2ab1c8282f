import pytest

from wuye.accounts.selectors import AccessDenied
from wuye.billing.models import Allocation, Bill
from wuye.billing.prepayments import prepaid_offset_apply, prepayment_deposit
from wuye.billing.selectors import prepaid_balance, receivable_mismatches
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.payments.models import Payment, Refund
from wuye.payments.services import (
    RefundError,
    cash_pay,
    order_create,
    payment_capture,
    prepaid_pay,
    refund_create,
)
from wuye.payments.tests.fakes import FAKE_CHANNELS, FakeCardChannel
from wuye.payments.tests.helpers import NOW, household, key
from wuye.receipts.models import Receipt

pytestmark = pytest.mark.django_db


def _paid(hh, bills, channel="cash", **kw):
    order = order_create(
        unit=hh.unit,
        bill_ids=[b.pk for b in bills],
        channel=channel,
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
        **kw,
    )
    if channel == "cash":
        return cash_pay(order=order, tendered_fen=order.amount_fen, now=NOW)
    return prepaid_pay(order=order, now=NOW)


def _refund(hh, payment, amount, **kw):
    kw.setdefault("approved_by", hh.finance)
    return refund_create(
        payment=payment,
        amount_fen=amount,
        reason="重复缴费",
        requested_by=hh.cashier,
        now=NOW,
        **kw,
    )


def test_a_full_refund_undoes_every_allocation_and_takes_cash_from_the_drawer():
    hh = household()
    jan, feb = hh.bill(10_000, month=1), hh.bill(20_000, month=2)
    payment = _paid(hh, [jan, feb])

    refund = _refund(hh, payment, 30_000)

    assert [b.paid_fen for b in Bill.objects.filter(pk__in=[jan.pk, feb.pk])] == [0, 0]
    reversals = Allocation.objects.filter(reference=f"refund:{refund.pk}")
    assert sorted(reversals.values_list("reverses__bill_id", "amount_fen")) == [
        (jan.pk, -10_000),
        (feb.pk, -20_000),
    ]
    assert all(r.reverses.reference == f"payment:{payment.pk}" for r in reversals)
    assert account_balance(account=AccountKind.CASH, channel="cash") == 0
    assert JournalLine.objects.get(entry=refund.entry, account="cash").cashier_id == hh.cashier.pk
    assert Payment.objects.get(pk=payment.pk).state == Payment.State.REFUNDED
    assert receivable_mismatches() == []
    assert Receipt.objects.get(number=refund.receipt_number).kind == "refund"


def test_a_partial_refund_undoes_the_newest_bill_first():
    hh = household()
    jan, feb = hh.bill(10_000, month=1), hh.bill(20_000, month=2)
    payment = _paid(hh, [jan, feb])

    _refund(hh, payment, 25_000)

    assert Bill.objects.get(pk=feb.pk).paid_fen == 0
    assert Bill.objects.get(pk=jan.pk).paid_fen == 5_000
    assert Payment.objects.get(pk=payment.pk).refundable_fen == 5_000


def test_refunds_never_exceed_what_was_paid():
    hh = household()
    payment = _paid(hh, [hh.bill(10_000)])
    _refund(hh, payment, 6_000)

    with pytest.raises(RefundError, match=r"40\.00"):
        _refund(hh, Payment.objects.get(pk=payment.pk), 4_001)

    _refund(hh, Payment.objects.get(pk=payment.pk), 4_000)
    with pytest.raises(RefundError):
        _refund(hh, Payment.objects.get(pk=payment.pk), 1)
    assert Refund.objects.filter(payment=payment).count() == 2
    assert unbalanced_entry_ids() == []


def test_only_finance_approves_a_refund():
    hh = household()
    payment = _paid(hh, [hh.bill(10_000)])
    entries = JournalEntry.objects.count()

    with pytest.raises(AccessDenied):
        _refund(hh, payment, 100, approved_by=hh.cashier)

    assert JournalEntry.objects.count() == entries


def test_the_prepaid_surplus_is_refunded_first_but_only_what_the_balance_still_holds():
    hh = household()
    jan, feb = hh.bill(10_000, month=1), hh.bill(5_000, month=2)
    payment = _paid(hh, [jan], amount_fen=15_000)  # 5,000 to prepaid
    prepaid_offset_apply(community_id=hh.community.pk, on_date=NOW.date())  # spends it on feb
    assert (
        prepaid_balance(unit_id=hh.unit.pk) == 0 and Bill.objects.get(pk=feb.pk).paid_fen == 5_000
    )

    _refund(hh, payment, 4_000)  # cannot take the spent surplus back: undoes jan instead

    assert Bill.objects.get(pk=jan.pk).paid_fen == 6_000
    assert prepaid_balance(unit_id=hh.unit.pk) == 0
    assert receivable_mismatches() == []


def test_a_prepaid_surplus_still_held_is_refunded_before_any_bill():
    hh = household()
    bill = hh.bill(10_000)
    payment = _paid(hh, [bill], amount_fen=12_000)

    _refund(hh, payment, 1_500)

    assert prepaid_balance(unit_id=hh.unit.pk) == 500
    assert Bill.objects.get(pk=bill.pk).paid_fen == 10_000


def test_a_prepaid_payment_is_refunded_back_to_the_balance():
    hh = household()
    bill = hh.bill(10_000)
    prepayment_deposit(
        unit=hh.unit, amount_fen=10_000, on_date=NOW.date(), reference="t", idempotency_key=key()
    )
    payment = _paid(hh, [bill], channel="prepaid")
    assert prepaid_balance(unit_id=hh.unit.pk) == 0

    _refund(hh, payment, 10_000)

    assert prepaid_balance(unit_id=hh.unit.pk) == 10_000
    assert Bill.objects.get(pk=bill.pk).paid_fen == 0
    assert receivable_mismatches() == []


def test_a_refund_the_channel_declines_writes_nothing(settings, monkeypatch):
    settings.WUYE_CHANNELS = FAKE_CHANNELS
    hh = household()
    order = order_create(
        unit=hh.unit,
        bill_ids=[hh.bill(10_000).pk],
        channel="fakecard",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
    )
    answer = PaymentResponse(ChannelResult.PROCESSED, 10_000, "RRN9")
    payment = payment_capture(order=order, response=answer, now=NOW)
    monkeypatch.setattr(FakeCardChannel, "refund_result", ChannelResult.DECLINED)
    entries = JournalEntry.objects.count()

    with pytest.raises(RefundError):
        _refund(hh, payment, 10_000)

    assert JournalEntry.objects.count() == entries
    assert Payment.objects.get(pk=payment.pk).refunded_fen == 0


def test_a_refund_of_a_surplus_due_pays_out_the_refund_payable(settings):
    settings.WUYE_CHANNELS = FAKE_CHANNELS
    from wuye.estates.models import Community

    hh = household()
    Community.objects.filter(pk=hh.community.pk).update(surplus_policy="refund")
    bill = hh.bill(10_000)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="fakecard",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
    )
    ok = ChannelResult.PROCESSED
    payment_capture(order=order, response=PaymentResponse(ok, 10_000, "A"), now=NOW)
    double = payment_capture(order=order, response=PaymentResponse(ok, 10_000, "B"), now=NOW)

    _refund(hh, double, 10_000)

    assert account_balance(account=AccountKind.REFUND_PAYABLE, household_id=hh.unit.pk) == 0
    assert account_balance(account=AccountKind.CLEARING, channel="fakecard") == 10_000
    assert Bill.objects.get(pk=bill.pk).paid_fen == 10_000


def test_totals_per_channel_count_payments_change_and_refunds():
    from wuye.payments.selectors import payment_allocations, payment_totals

    hh = household()
    a = _paid(hh, [hh.bill(10_000, month=1)])
    order = order_create(
        unit=hh.unit,
        bill_ids=[hh.bill(5_000, month=2).pk],
        channel="cash",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
    )
    cash_pay(order=order, tendered_fen=6_000, now=NOW)
    _refund(hh, a, 2_500)

    totals = payment_totals(community_id=hh.community.pk)

    cash = totals["cash"]
    assert (cash.payments, cash.paid_fen, cash.change_fen) == (2, 15_000, 1_000)
    assert (cash.refunds, cash.refunded_fen, cash.net_fen) == (1, 2_500, 12_500)
    assert [x.amount_fen for x in payment_allocations(payment=a)] == [10_000, -2_500]
