"""A resident pays a bill notice from its QR link with Huabei, in a real browser.

The notice's pay URL (what its printed QR code holds) opens the pay page on the live server;
the resident chooses 支付宝, gets the order's dynamic code, opens it in the Alipay
simulator's wallet and pays with 花呗; the simulator posts its signed notification to the live
server, and the pay page turns to "已支付" by itself, naming the funding source.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from wuye.billing.tests.helpers import issue_bill
from wuye.estates.models import Resident
from wuye.notices.services import notice_create, notice_pay_url
from wuye.payments.models import Payment
from wuye.sims.alipay.notifier import http_post
from wuye.sims.alipay.testing import RunningSim, running_sim
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alipay(settings: Any, live_server: Any) -> Iterator[RunningSim]:
    settings.WUYE_PUBLIC_BASE_URL = live_server.url
    with running_sim(
        settings,
        transport=http_post,
        notify_url=f"{live_server.url}/pay/alipay/notify/",
        threaded=True,
    ) as running:
        yield running


def test_a_resident_pays_a_notice_with_huabei_and_sees_it_paid(
    live_server: Any, page: Any, shot: Any, alipay: RunningSim
) -> None:
    today = timezone.localdate()
    company = make_company(name="申和物业服务有限公司")
    community = make_community(company, name="申和·锦绣苑", code="JXY")
    item = make_fee_item(company, name="物业费", code="WYF")
    unit = make_unit(make_building(community, code="3"), room_no="1802", label="3-1802")
    Resident.objects.create(unit=unit, name="赵丽华", is_primary=True)
    start = today.replace(day=1)
    issue_bill(
        unit=unit,
        fee_item=item,
        amount_fen=38_650,
        period_start=start,
        due_date=today + timedelta(days=20),
        issued_on=start,
    )
    notice = notice_create(unit=unit, as_of=today, now=timezone.now())
    url = notice_pay_url(notice)
    assert url.startswith(live_server.url)

    page.goto(url)
    page.get_by_text("3-1802").first.wait_for()
    page.get_by_role("button", name="支付宝").click()
    page.locator(".qr svg").wait_for()
    shot(page, "notice-pay-qr")
    wallet_url = page.locator("#open-wallet").get_attribute("href")
    assert wallet_url.startswith(alipay.server.url + "/qr/")

    wallet = page.context.new_page()
    wallet.goto(wallet_url)
    wallet.get_by_role("button", name="花呗付款").click()
    wallet.locator("#paid").wait_for()
    wallet.close()

    page.locator("#paid").wait_for(state="visible")
    assert "花呗/PCREDIT" in page.locator("#paid").inner_text()
    shot(page, "notice-paid")
    payment = Payment.objects.get(unit=unit)
    assert payment.funding_source == "花呗/PCREDIT"
    assert payment.amount_fen == 38_650
    page.goto(url)
    assert "已支付" in page.locator("#paid").inner_text()
