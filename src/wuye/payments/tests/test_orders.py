import pytest

from wuye.payments.models import Order, OrderBill
from wuye.payments.services import (
    BillInPendingOrder,
    IdempotencyKeyConflict,
    OrderNotPending,
    PaymentError,
    cash_pay,
    order_cancel,
    order_create,
)
from wuye.payments.tests.helpers import NOW, household, key
from wuye.testing.factories import make_building, make_unit

pytestmark = pytest.mark.django_db


def _order(hh, bills, **kw):
    kw.setdefault("channel", "cash")
    kw.setdefault("idempotency_key", key())
    return order_create(
        unit=hh.unit, bill_ids=[b.pk for b in bills], cashier=hh.cashier, now=NOW, **kw
    )


def test_an_order_for_chosen_bills_asks_for_their_outstanding_in_full():
    hh = household()
    first, second = hh.bill(10_000, month=1), hh.bill(25_050, month=2)

    order = _order(hh, [first, second])

    assert (order.amount_fen, order.bills_fen, order.prepay_fen) == (35_050, 35_050, 0)
    assert sorted(order.lines.values_list("bill_id", "outstanding_fen")) == [
        (first.pk, 10_000),
        (second.pk, 25_050),
    ]


def test_the_same_key_always_returns_the_same_order():
    hh = household()
    bill = hh.bill(10_000)
    k = key()

    a = _order(hh, [bill], idempotency_key=k)
    b = _order(hh, [bill], idempotency_key=k)

    assert a.pk == b.pk
    assert Order.objects.count() == 1


def test_a_key_used_for_another_household_is_refused():
    hh = household()
    other = make_unit(make_building(hh.community))
    k = key()
    _order(hh, [hh.bill(10_000)], idempotency_key=k)

    with pytest.raises(IdempotencyKeyConflict):
        order_create(
            unit=other,
            bill_ids=[],
            prepay_fen=100,
            channel="cash",
            idempotency_key=k,
            cashier=hh.cashier,
            now=NOW,
        )


def test_a_bill_in_a_pending_order_cannot_be_put_in_another_one():
    hh = household()
    bill = hh.bill(10_000)
    first = _order(hh, [bill])

    with pytest.raises(BillInPendingOrder) as refused:
        _order(hh, [bill])

    assert refused.value.bill_id == bill.pk
    assert refused.value.order_id == first.pk
    assert str(bill.pk) in str(refused.value)
    assert Order.objects.count() == 1


def test_cancelling_an_order_frees_its_bills():
    hh = household()
    bill = hh.bill(10_000)
    first = _order(hh, [bill])

    order_cancel(order=first, now=NOW)
    second = _order(hh, [bill])

    assert Order.objects.get(pk=first.pk).state == Order.State.CANCELLED
    assert OrderBill.objects.filter(bill=bill, pending=True).get().order_id == second.pk
    with pytest.raises(OrderNotPending):
        cash_pay(order=first, tendered_fen=10_000, now=NOW)


def test_a_paid_order_frees_its_bills_and_cannot_be_cancelled():
    hh = household()
    bill = hh.bill(10_000)
    order = _order(hh, [bill], amount_fen=4_000)
    cash_pay(order=order, tendered_fen=4_000, now=NOW)

    second = _order(hh, [bill])

    assert second.amount_fen == 6_000
    with pytest.raises(OrderNotPending):
        order_cancel(order=order, now=NOW)


def test_an_amount_above_the_bills_puts_the_excess_into_prepaid():
    hh = household()
    order = _order(hh, [hh.bill(10_000)], amount_fen=15_000)

    assert (order.bills_fen, order.prepay_fen) == (10_000, 5_000)


def test_a_prepayment_alone_is_an_order_too():
    hh = household()
    order = _order(hh, [], prepay_fen=30_000, prepay_fee_item_id=hh.item.pk)

    assert (order.amount_fen, order.bills_fen, order.prepay_fen) == (30_000, 0, 30_000)
    assert order.prepay_fee_item_id == hh.item.pk


@pytest.mark.parametrize(
    "kw",
    [
        {"amount_fen": 0},
        {"amount_fen": -5},
        {"amount_fen": 10.5},
        {"prepay_fen": -1},
        {"channel": "bitcoin"},
        {"idempotency_key": ""},
    ],
)
def test_bad_requests_are_refused_and_write_nothing(kw):
    hh = household()
    with pytest.raises(PaymentError):
        _order(hh, [hh.bill(10_000)], **kw)
    assert Order.objects.count() == 0


def test_bills_of_another_household_or_already_settled_are_refused():
    hh = household()
    other = household()
    foreign = other.bill(10_000)
    paid = hh.bill(10_000)
    cash_pay(order=_order(hh, [paid]), tendered_fen=10_000, now=NOW)

    with pytest.raises(PaymentError, match="不属于"):
        _order(hh, [foreign])
    with pytest.raises(PaymentError, match="已结清"):
        _order(hh, [paid])
    with pytest.raises(PaymentError, match="不存在"):
        order_create(
            unit=hh.unit,
            bill_ids=[10**9],
            channel="cash",
            idempotency_key=key(),
            cashier=hh.cashier,
            now=NOW,
        )


def test_prepaid_balance_cannot_be_used_to_prepay():
    hh = household()
    with pytest.raises(PaymentError):
        _order(hh, [], prepay_fen=100, channel="prepaid")


def test_stale_pending_orders_are_cancelled_but_not_those_awaiting_a_channel(settings):
    from datetime import timedelta

    from django.core.management import call_command

    from wuye.channels.base import ChannelResult, PaymentResponse
    from wuye.payments.services import PaymentNotFinal, orders_cancel_stale, payment_capture
    from wuye.payments.tests.fakes import FAKE_CHANNELS

    settings.WUYE_CHANNELS = FAKE_CHANNELS
    hh = household()
    old = _order(hh, [hh.bill(100, month=1)])
    waiting = _order(hh, [hh.bill(100, month=2)], channel="fakecard")
    with pytest.raises(PaymentNotFinal):
        payment_capture(
            order=waiting, response=PaymentResponse(ChannelResult.UNDEFINED, 100, ""), now=NOW
        )
    later = NOW + timedelta(hours=1)
    fresh = order_create(
        unit=hh.unit,
        bill_ids=[hh.bill(100, month=3).pk],
        channel="cash",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=later,
    )

    assert orders_cancel_stale(created_before=NOW + timedelta(minutes=30), now=later) == 1

    states = dict(Order.objects.values_list("pk", "state"))
    assert (states[old.pk], states[waiting.pk], states[fresh.pk]) == (
        "cancelled",
        "pending",
        "pending",
    )
    call_command("orders_cancel_stale", "--minutes", "1")  # the real clock: all are old now
    states = dict(Order.objects.values_list("pk", "state"))
    assert (states[waiting.pk], states[fresh.pk]) == ("pending", "cancelled")
