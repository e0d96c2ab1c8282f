"""POST /api/payments/ on PostgreSQL: how many statements one payment request sends."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from wuye.payments.models import Payment
from wuye.payments.tests.test_api import _login, _post, counter  # noqa: F401  (the fixture)

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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast path is PostgreSQL's")
def test_with_sessions_on_redis_a_payment_request_is_seven_statements(counter, settings):  # noqa: F811
    from wuye.payments.tests.test_api_sessions import CACHE_URL, CACHED_DB, _redis

    redis_client = _redis()  # skips when no Redis answers
    prefix = "wuye-test-statements"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": prefix,
        }
    }
    settings.SESSION_ENGINE = CACHED_DB
    hh, _client = counter
    client = _login(hh.cashier)  # a new client: its middleware loads the cached_db engine
    first, second = hh.bill(10_000), hh.bill(10_000, month=2)
    assert _post(client, {"unit_id": hh.unit.pk, "bill_ids": [first.pk], "idempotency_key": "a"})

    with CaptureQueriesContext(connection) as queries:
        answer = _post(
            client, {"unit_id": hh.unit.pk, "bill_ids": [second.pk], "idempotency_key": "b"}
        )
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)

    assert answer.status_code == 201, answer.content
    # The session comes from Redis: user, scope, then the checkout's 5.
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len(sqls) == 7 and not any("django_session" in q for q in sqls), sqls
