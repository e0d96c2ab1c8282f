"""Sessions for POST /api/payments/: database sessions (the default) and ``cached_db`` on a
shared Redis (``WUYE_CACHE_URL``). Logging in, paying, and that a logout, a password change
or a deactivated account ends the session for every other connection (another worker reads
the same Redis and the same database: here, another thread with its own connections).

The Redis tests use ``WUYE_TEST_CACHE_URL`` (default ``redis://127.0.0.1:6379/3``) with a key
prefix of their own, and are skipped when no Redis answers there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from wuye.counter.services import shift_open
from wuye.payments.models import Payment
from wuye.payments.tests.helpers import household

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/payments/"
PASSWORD = "sessions-test-password-7"
CACHE_URL = os.environ.get("WUYE_TEST_CACHE_URL", "redis://127.0.0.1:6379/3")
CACHED_DB = "django.contrib.sessions.backends.cached_db"


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        pytest.skip("the redis package is not installed")
    client = redis.Redis.from_url(CACHE_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {CACHE_URL}")
    return client


@pytest.fixture(params=["db", "cache"])
def sessions(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Run the test with database sessions, then with cached_db sessions on Redis."""
    if request.param == "db":
        yield "db"
        return
    client = _redis()
    prefix = f"wuye-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": prefix,
        }
    }
    settings.SESSION_ENGINE = CACHED_DB
    yield "cache"
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def cashier(sessions: str) -> Any:
    hh = household()
    hh.cashier.set_password(PASSWORD)
    hh.cashier.save()
    shift_open(
        cashier=hh.cashier,
        community=hh.community,
        counter_name="1号窗口",
        opening_float_fen=0,
        now=timezone.now(),
    )
    return hh


def _login(username: str) -> Client:
    """Log in through the login form, as a browser does."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        "/login/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
    )
    assert answer.status_code == 302, answer.content
    return client


def _same_session(client: Client) -> Client:
    """Another client holding the same cookies (the same browser, another request)."""
    other = Client(enforce_csrf_checks=True)
    for name in ("sessionid", "csrftoken"):
        other.cookies[name] = client.cookies[name].value
    return other


def _post(client: Client, body: object) -> Any:
    return client.post(
        URL,
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )


def _in_another_thread(client: Client, body: object) -> Any:
    """The request served by another thread: its own database and cache connections."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["answer"] = _post(client, body)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    return out["answer"]


def test_a_login_through_the_form_pays_and_only_the_database_setting_reads_the_session_table(
    cashier: Any, sessions: str
) -> None:
    bill = cashier.bill(10_000)
    client = _login(cashier.cashier.username)

    with CaptureQueriesContext(connection) as queries:
        answer = _post(
            client, {"unit_id": cashier.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "s1"}
        )

    assert answer.status_code == 201, answer.content
    assert Payment.objects.get().cashier_id == cashier.cashier.pk
    read_session = any("django_session" in q["sql"] for q in queries.captured_queries)
    assert read_session is (sessions == "db")


def test_a_logout_ends_the_session_for_every_other_connection(cashier: Any, sessions: str) -> None:
    bill = cashier.bill(10_000)
    client = _login(cashier.cashier.username)
    other = _same_session(client)
    session_key = client.cookies["sessionid"].value
    assert _in_another_thread(other, {"unit_id": cashier.unit.pk}).status_code == 400

    logout = client.post("/logout/", headers={"X-CSRFToken": client.cookies["csrftoken"].value})
    after = _in_another_thread(
        other, {"unit_id": cashier.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "s2"}
    )

    assert logout.status_code == 302
    assert after.status_code == 401
    assert Payment.objects.count() == 0
    if sessions == "cache":  # gone from Redis for any process, not only from this one's view
        raw = _redis()
        assert not [k for k in raw.scan_iter(f"*{session_key}*")]


@pytest.mark.parametrize("change", ["password", "deactivated"])
def test_a_password_change_or_a_deactivated_account_ends_the_session(
    cashier: Any, sessions: str, change: str
) -> None:
    bill = cashier.bill(10_000)
    client = _login(cashier.cashier.username)
    body = {"unit_id": cashier.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "s3"}
    user = type(cashier.cashier).objects.get(pk=cashier.cashier.pk)
    if change == "password":  # e.g. an administrator resets it
        user.set_password("another-password-8")
    else:
        user.is_active = False
    user.save()

    assert _in_another_thread(client, body).status_code == 401
    assert _post(client, body).status_code == 401
    assert Payment.objects.count() == 0


@pytest.mark.parametrize("url", ["", "redis://127.0.0.1:6379/0"])
def test_the_setting_follows_wuye_cache_url(url: str, tmp_path: Any) -> None:
    env = {**os.environ, "WUYE_DATA_DIR": str(tmp_path), "WUYE_CACHE_URL": url}
    code = (
        "import wuye.settings as s; "
        "print(s.SESSION_ENGINE if hasattr(s, 'SESSION_ENGINE') else 'default', "
        "getattr(s, 'CACHES', {}).get('default', {}).get('LOCATION', 'none'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()

    if url:
        assert out == [CACHED_DB, url]
    else:  # Django's defaults: database sessions, no shared cache needed (the SQLite demo)
        assert out == ["default", "none"]
