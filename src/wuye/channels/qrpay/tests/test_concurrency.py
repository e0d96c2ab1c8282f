"""Races on PostgreSQL: the same notification at once, and a notification meeting the poll job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from wuye.channels.qrpay import services
from wuye.channels.qrpay.models import QrNotification
from wuye.ledger.models import JournalEntry
from wuye.payments.models import Payment
from wuye.payments.tests.helpers import household
from wuye.sims.wechat.server import WechatSim

from .helpers import wechat_order

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
THREADS = 5


def _race(fns: list[Callable[[], Any]]) -> tuple[list[Any], list[Exception]]:
    barrier = threading.Barrier(len(fns))
    results: list[Any] = []
    errors: list[Exception] = []

    def work(fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results.append(fn())
        except Exception as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def _paid(sim: WechatSim) -> tuple[Any, Any]:
    h = household()
    order = wechat_order(h, [h.bill(12800).pk])
    code = services.qr_start(order, now=timezone.now())
    sim.wallet_pay(code.code_url)
    (item,) = sim.outbox_take()
    return order, item


def test_the_same_notification_five_times_at_once_posts_once(wechat_sim: WechatSim) -> None:
    order, item = _paid(wechat_sim)
    entries = JournalEntry.objects.count()

    def notify() -> int:
        return services.notification_handle("wechat", item.headers, item.body, now=timezone.now())[
            0
        ]

    results, errors = _race([notify] * THREADS)

    assert errors == [] and results == [200] * THREADS
    assert Payment.objects.filter(order=order).count() == 1
    assert JournalEntry.objects.count() == entries + 1
    assert QrNotification.objects.filter(outcome=QrNotification.Outcome.POSTED).count() == 1


def test_a_notification_meeting_the_poll_job_posts_once(wechat_sim: WechatSim) -> None:
    order, item = _paid(wechat_sim)
    later = timezone.now() + timezone.timedelta(seconds=61)

    def notify() -> Any:
        return services.notification_handle("wechat", item.headers, item.body, now=later)[0]

    def poll() -> Any:
        return services.qr_poll_due(now=later)

    _results, errors = _race([notify, poll, notify, poll])

    assert errors == []
    assert Payment.objects.filter(order=order).count() == 1


def test_a_double_payments_notification_five_times_at_once_refunds_once(
    wechat_sim: WechatSim,
) -> None:
    from wuye.channels.qrpay.models import QrException, QrRefund
    from wuye.estates.models import Community
    from wuye.payments.models import Refund

    h = household()
    Community.objects.filter(pk=h.community.pk).update(
        surplus_policy=Community.SurplusPolicy.REFUND
    )
    order = wechat_order(h, [h.bill(12800).pk])
    now = timezone.now()
    first = services.qr_start(order, now=now)
    second = services.qr_start(order, now=now + timezone.timedelta(minutes=16))
    wechat_sim.wallet_pay(first.code_url)
    for item in wechat_sim.outbox_take():
        services.notification_handle("wechat", item.headers, item.body, now=now)
    wechat_sim.wallet_pay(second.code_url)
    (item,) = wechat_sim.outbox_take()

    def notify() -> int:
        return services.notification_handle("wechat", item.headers, item.body, now=now)[0]

    results, errors = _race([notify] * THREADS)

    assert errors == [] and results == [200] * THREADS
    assert Payment.objects.filter(order=order).count() == 2
    assert QrRefund.objects.count() == 1 and Refund.objects.count() == 1
    assert len(wechat_sim.state.refunds) == 1
    assert not QrException.objects.exists()
