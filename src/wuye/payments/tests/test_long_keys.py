"""The longest idempotency key order_create allows (120) still gets its receipt.

A payment's receipt reference is ``payment:<channel>:<channel reference>``; for cash the
channel reference holds the key, so the receipt's column must take 120 characters and more.
PostgreSQL checks the length (SQLite does not), so this matters there most.
"""

from __future__ import annotations

import pytest

from wuye.payments.posting import cash_checkout
from wuye.payments.services import cash_pay, order_create
from wuye.payments.tests.helpers import NOW, household
from wuye.receipts.models import Receipt

pytestmark = pytest.mark.django_db


def test_the_fast_path_with_a_120_character_key_issues_its_receipt():
    hh = household()

    payment = cash_checkout(
        unit=hh.unit,
        bill_ids=[],
        amount_fen=1_000,
        idempotency_key="f" * 120,
        cashier=hh.cashier,
        now=NOW,
    )

    assert Receipt.objects.filter(number=payment.receipt_number).exists()


def test_the_two_step_path_with_a_120_character_key_issues_its_receipt():
    hh = household()
    order = order_create(
        unit=hh.unit,
        bill_ids=[],
        amount_fen=1_000,
        channel="cash",
        idempotency_key="t" * 120,
        cashier=hh.cashier,
        now=NOW,
    )

    payment = cash_pay(order=order, tendered_fen=1_000, now=NOW)

    assert Receipt.objects.filter(number=payment.receipt_number).exists()
