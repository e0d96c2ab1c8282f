"""POST /api/payments/ on PostgreSQL: how many statements one payment request sends."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from wuye.payments.models import Payment
from wuye.payments.tests.test_api import _post, counter  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast path is PostgreSQL's")
def test_a_payment_request_is_eight_statements(counter):  # noqa: F811
    hh, client = counter
    first, second = hh.bill(10_000), hh.bill(10_000, month=2)
    # The community's first receipt of the year creates its receipt sequence (not counted).
    assert _post(client, {"unit_id": hh.unit.pk, "bill_ids": [first.pk], "idempotency_key": "a"})

    with CaptureQueriesContext(connection) as queries:
        answer = _post(
            client, {"unit_id": hh.unit.pk, "bill_ids": [second.pk], "idempotency_key": "b"}
        )

    assert answer.status_code == 201, answer.content
    assert Payment.objects.filter(receipt_number=answer.json()["receipt_number"]).exists()
    # Session, user, one for the counter role, household, scope and open shift, then the
    # checkout: BEGIN, one SELECT, two pipelined writes, COMMIT.
    assert len(queries.captured_queries) == 8, [q["sql"][:80] for q in queries.captured_queries]
