"""wuye.core.integrity: the columns the database does not check are checked here."""

from __future__ import annotations

import pytest
from django.db import connection

from wuye.core.integrity import Dangling, dangling_dimensions, unconstrained_foreign_keys
from wuye.payments.posting import cash_checkout
from wuye.payments.tests.helpers import NOW, household, key

pytestmark = pytest.mark.django_db


def test_the_payment_dimensions_are_the_unconstrained_ones():
    names = {(m._meta.db_table, f.column) for m, f in unconstrained_foreign_keys()}
    assert ("payments_payment", "community_id") in names
    assert ("ledger_journalline", "household_id") in names
    assert ("payments_payment", "order_id") not in names  # a parent stays a real foreign key


def test_a_payment_leaves_nothing_dangling_and_a_bad_id_is_found():
    hh = household()
    payment = cash_checkout(
        unit=hh.unit, bill_ids=[hh.bill(10_000).pk], idempotency_key=key(), cashier=hh.cashier,
        now=NOW,
    )
    assert dangling_dimensions() == []

    with connection.cursor() as cursor:  # what no service writes: a community that is not there
        cursor.execute(
            "UPDATE payments_payment SET community_id = %s WHERE id = %s",
            [hh.community.pk + 10_000, payment.pk],
        )

    assert dangling_dimensions() == [
        Dangling("payments_payment", "community_id", "estates_community", 1)
    ]
