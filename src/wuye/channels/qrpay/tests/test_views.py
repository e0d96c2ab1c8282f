"""The counter's QR page through Django's test client, against the in-process simulator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.counter.services import shift_open
from wuye.payments.models import Order, Payment
from wuye.payments.tests.helpers import household, staff
from wuye.sims.wechat.server import WechatSim

from .helpers import deliver

pytestmark = pytest.mark.django_db


def _counter(h: Any) -> Client:
    shift_open(
        cashier=h.cashier,
        community=h.community,
        counter_name="1号窗口",
        opening_float_fen=0,
        now=timezone.now(),
    )
    c = Client()
    c.force_login(h.cashier)
    return c


def test_the_counter_hands_a_wechat_order_to_the_qr_page_which_turns_paid(
    wechat_sim: WechatSim,
) -> None:
    h = household()
    bill = h.bill(12800)
    c = _counter(h)

    response = c.post(
        reverse("counter:pay", args=[h.unit.pk]),
        {
            "bills": [bill.pk],
            "channel": "wechat",
            "idempotency_key": uuid.uuid4().hex,
        },
    )

    order = Order.objects.get(unit=h.unit)
    assert response.status_code == 302
    assert response["Location"] == reverse("qrpay:order", args=[order.pk])
    page = c.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "weixin://wxpay/bizpayurl" in html
    assert c.get(reverse("qrpay:status", args=[order.pk])).json()["state"] == "pending"
    code_url = html.split('id="qr-url">')[1].split("<")[0]
    wechat_sim.wallet_pay(code_url, "credit")
    deliver(wechat_sim)
    status = c.get(reverse("qrpay:status", args=[order.pk])).json()
    assert status["state"] == "paid" and status["funding_source"] == "信用卡/CMB_CREDIT"
    assert c.get(reverse("qrpay:order", args=[order.pk]))["Location"] == reverse(
        "counter:order", args=[order.pk]
    )


def test_the_scanner_field_takes_a_payment_code(wechat_sim: WechatSim) -> None:
    h = household()
    bill = h.bill(3000)
    c = _counter(h)
    c.post(
        reverse("counter:pay", args=[h.unit.pk]),
        {
            "bills": [bill.pk],
            "channel": "wechat",
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    order = Order.objects.get(unit=h.unit)

    response = c.post(
        reverse("qrpay:scan", args=[order.pk]), {"auth_code": wechat_sim.paycode("debit")}
    )

    assert response["Location"] == reverse("counter:order", args=[order.pk])
    assert Payment.objects.get(order=order).funding_source == "储蓄卡/CMB_DEBIT"


def test_cancel_frees_the_bills(wechat_sim: WechatSim) -> None:
    h = household()
    bill = h.bill(3000)
    c = _counter(h)
    c.post(
        reverse("counter:pay", args=[h.unit.pk]),
        {
            "bills": [bill.pk],
            "channel": "wechat",
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    order = Order.objects.get(unit=h.unit)
    c.get(reverse("qrpay:order", args=[order.pk]))

    response = c.post(reverse("qrpay:cancel", args=[order.pk]))

    assert response["Location"] == reverse("counter:household", args=[h.unit.pk])
    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED


def test_another_companys_cashier_gets_a_404(wechat_sim: WechatSim) -> None:
    h = household()
    other = household()
    from wuye.channels.qrpay.tests.helpers import wechat_order

    order = wechat_order(h, [h.bill(3000).pk])
    c = Client()
    c.force_login(staff(other.community, Role.CASHIER))

    assert c.get(reverse("qrpay:order", args=[order.pk])).status_code == 404
    assert c.get(reverse("qrpay:status", args=[order.pk])).status_code == 404


def test_the_qr_page_reads_in_english(wechat_sim: WechatSim) -> None:
    h = household()
    bill = h.bill(3000)
    c = _counter(h)
    c.post(
        reverse("counter:pay", args=[h.unit.pk]),
        {
            "bills": [bill.pk],
            "channel": "wechat",
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    order = Order.objects.get(unit=h.unit)
    c.post("/i18n/setlang/", {"language": "en", "next": "/"})

    html = c.get(reverse("qrpay:order", args=[order.pk])).content.decode()

    assert "Scan the customer's payment code" in html
    assert "WeChat Pay" in html


def test_the_qr_records_are_listed_read_only_in_the_admin(wechat_sim: WechatSim) -> None:
    from wuye.accounts.models import User

    admin_user = User.objects.create(username="root-qr", is_staff=True, is_superuser=True)
    c = Client()
    c.force_login(admin_user)

    for model in ("qrtrade", "qrnotification", "qrexception", "qrrefund"):
        assert c.get(f"/admin/qrpay/{model}/").status_code == 200
    assert c.get("/admin/qrpay/qrtrade/add/").status_code == 403
