"""Helpers for the QR tests: a WeChat order for a household's bills, deliver notifications."""

from __future__ import annotations

import itertools
from typing import Any

from django.test import Client
from django.utils import timezone

from wuye.payments.models import Order
from wuye.payments.services import order_create
from wuye.payments.tests.helpers import Household
from wuye.sims.wechat.server import Outgoing, WechatSim

_keys = itertools.count(1)


def wechat_order(h: Household, bill_ids: list[int], **kw: Any) -> Order:
    return order_create(
        unit=h.unit,
        bill_ids=bill_ids,
        channel="wechat",
        idempotency_key=f"qr-{next(_keys)}",
        cashier=h.cashier,
        now=kw.pop("now", None) or timezone.now(),
        **kw,
    )


def post(item: Outgoing) -> Any:
    """POST one notification to Wuye's notify view as WeChat would."""
    headers = {
        f"HTTP_{k.upper().replace('-', '_')}": v
        for k, v in item.headers.items()
        if k.lower() != "content-type"
    }
    return Client().post(
        "/pay/wechat/notify/", data=item.body, content_type="application/json", **headers
    )


def deliver(sim: WechatSim) -> list[Any]:
    """Deliver everything in the simulator's outbox; return the responses."""
    return [post(item) for item in sim.outbox_take()]
