"""Whatever order and however often notifications arrive, each payment posts exactly once and
the money in the clearing account equals what the residents paid."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.channels.qrpay import services
from wuye.ledger.models import AccountKind, JournalLine
from wuye.payments.models import Payment
from wuye.payments.tests.helpers import household
from wuye.sims.wechat.server import WechatSim

from .helpers import post, wechat_order

pytestmark = pytest.mark.django_db


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(st.integers(1, 500_000), min_size=1, max_size=3),
    copies=st.lists(st.integers(1, 4), min_size=3, max_size=3),
    order_seed=st.randoms(use_true_random=False),
)
def test_shuffled_and_repeated_notifications_post_each_payment_once(
    wechat_sim: WechatSim, amounts: list[int], copies: list[int], order_seed: Any
) -> None:
    orders = []
    items = []
    for amount, n in zip(amounts, copies, strict=False):
        h = household()
        order = wechat_order(h, [h.bill(amount).pk])
        code = services.qr_start(order, now=timezone.now())
        wechat_sim.wallet_pay(code.code_url, "balance")
        (item,) = wechat_sim.outbox_take()
        items += [item] * n
        orders.append(order)
    order_seed.shuffle(items)

    assert {post(i).status_code for i in items} == {200}

    for order in orders:
        assert Payment.objects.filter(order=order).count() == 1
    paid = sum(Payment.objects.filter(order__in=orders).values_list("amount_fen", flat=True))
    assert paid == sum(o.amount_fen for o in orders)
    cleared = JournalLine.objects.filter(
        account=AccountKind.CLEARING,
        channel="wechat",
        community_id__in=[o.community_id for o in orders],
    ).aggregate(s=Sum("amount_fen"))["s"]
    assert cleared == paid
