"""Concurrent requests (threads, each with its own connection) on PostgreSQL."""

import threading

import pytest
from django.db import close_old_connections, connection

from wuye.billing.models import Bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.payments.models import Order, Payment
from wuye.payments.services import (
    BillInPendingOrder,
    cash_pay,
    order_create,
    payment_capture,
)
from wuye.payments.tests.fakes import FAKE_CHANNELS
from wuye.payments.tests.helpers import NOW, household, key

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
THREADS = 6


def _race(fn):
    """Run ``fn`` in THREADS threads released together; return results and errors."""
    barrier = threading.Barrier(THREADS)
    results, errors = [], []

    def work():
        try:
            barrier.wait()
            results.append(fn())
        except Exception as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_the_same_request_sent_concurrently_creates_one_order_and_charges_once():
    hh = household()
    bill = hh.bill(10_000)
    k = key()

    def pay():
        order = order_create(
            unit=hh.unit,
            bill_ids=[bill.pk],
            channel="cash",
            idempotency_key=k,
            cashier=hh.cashier,
            now=NOW,
        )
        return cash_pay(order=order, tendered_fen=10_000, now=NOW).pk

    results, errors = _race(pay)

    assert errors == []
    assert len(set(results)) == 1
    assert Order.objects.count() == 1 and Payment.objects.count() == 1
    assert Bill.objects.get(pk=bill.pk).paid_fen == 10_000
    assert account_balance(account=AccountKind.CASH, channel="cash") == 10_000


def test_one_bill_in_concurrent_orders_gets_into_exactly_one():
    hh = household()
    bill = hh.bill(10_000)

    results, errors = _race(
        lambda: (
            order_create(
                unit=hh.unit,
                bill_ids=[bill.pk],
                channel="cash",
                idempotency_key=key(),
                cashier=hh.cashier,
                now=NOW,
            ).pk
        )
    )

    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, BillInPendingOrder) and e.bill_id == bill.pk for e in errors)
    assert Order.objects.count() == 1


def test_the_same_channel_answer_captured_concurrently_posts_once(settings):
    settings.WUYE_CHANNELS = FAKE_CHANNELS
    hh = household()
    bill = hh.bill(10_000)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="fakecard",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
    )
    answer = PaymentResponse(ChannelResult.PROCESSED, 10_000, "RRN-1")

    results, errors = _race(lambda: payment_capture(order=order, response=answer, now=NOW).pk)

    assert errors == [] and len(set(results)) == 1
    assert Payment.objects.count() == 1
    assert account_balance(account=AccountKind.CLEARING, channel="fakecard") == 10_000
    assert unbalanced_entry_ids() == []
