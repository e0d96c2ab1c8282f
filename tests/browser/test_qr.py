"""A cashier takes a WeChat Pay QR payment in a real browser (Debian's chromium).

The cashier ticks the bills, chooses 微信支付 and gets the order's dynamic QR; the resident
pays it in the WeChat Pay simulator's wallet page with a debit card; the simulator sends the
signed, encrypted notification to the live server; the counter page turns paid by itself and
shows the receipt, whose page names the funding source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant, user_create
from wuye.billing.models import Bill
from wuye.billing.tests.helpers import issue_bill
from wuye.counter.services import shift_open
from wuye.estates.models import Resident
from wuye.payments.models import Payment
from wuye.sims.wechat import sim_from_settings
from wuye.sims.wechat.server import WechatSim
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-pass-2026"


@pytest.fixture
def wechat(settings: Any, live_server: Any, tmp_path: Any) -> Iterator[WechatSim]:
    settings.WUYE_WECHAT_KEY_DIR = str(tmp_path / "wechat")
    settings.WUYE_WECHAT_NOTIFY_URL = f"{live_server.url}/pay/wechat/notify/"
    sim = sim_from_settings(deliver="http", persist=False, backoff_scale=0.01)
    port = sim.start()
    settings.WUYE_WECHAT_BASE_URL = f"http://127.0.0.1:{port}"
    yield sim
    sim.stop()


@pytest.fixture
def estate(settings: Any) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    today = timezone.localdate()
    company = make_company(name="锦绣物业服务有限公司", short_name="锦绣物业")
    community = make_community(company, name="锦绣花园", code="JX")
    item = make_fee_item(company, name="物业费", code="WYF")
    unit = make_unit(
        make_building(community, code="3", name="3号楼"), room_no="1802", label="3-1802"
    )
    Resident.objects.create(unit=unit, name="赵丽华", phone="13900000018", is_primary=True)
    start = today.replace(day=1)
    issue_bill(
        unit=unit,
        fee_item=item,
        amount_fen=38_650,
        period_start=start,
        due_date=today + timedelta(days=20),
        issued_on=start,
    )
    cashier = user_create(username="cashier1", password=PASSWORD, display_name="陈收银")
    membership_grant(user=cashier, company=company, role=Role.CASHIER)
    shift_open(
        cashier=cashier,
        community=community,
        counter_name="1号窗口",
        opening_float_fen=0,
        now=timezone.now(),
    )
    return {"unit": unit}


def test_a_cashier_takes_a_wechat_qr_payment_and_the_page_turns_paid_with_the_receipt(
    live_server: Any, page: Any, shot: Any, estate: dict[str, Any], wechat: WechatSim
) -> None:
    base = live_server.url
    unit = estate["unit"]
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "cashier1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")

    # The cashier picks the household's bills and chooses WeChat Pay.
    page.goto(f"{base}/counter/units/{unit.pk}/")
    assert page.locator("#bills input[name=bills]:checked").count() == 1
    page.locator("label", has_text="微信支付").click()
    page.click("#pay-button")
    page.wait_for_selector("#qr-image svg")
    assert page.locator(".qr-amount").inner_text() == "¥386.50"
    code_url = page.locator("#qr-url").inner_text()
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    shot(page, "qr-01-counter-code")
    page.set_viewport_size({"width": 820, "height": 1180})
    shot(page, "qr-02-counter-code-tablet")
    page.set_viewport_size({"width": 1366, "height": 768})

    # The resident pays it in the simulator's wallet with a debit card.
    wallet = page.context.new_page()
    assert wechat.server is not None
    wallet.goto(f"http://127.0.0.1:{wechat.server.server_address[1]}/wallet")
    wallet.fill("#code_url", code_url)
    wallet.select_option("#funding", "debit")
    wallet.click("#pay")
    assert "支付成功" in wallet.locator("#result").inner_text()
    wallet.close()

    # The notification reaches Wuye; the counter page turns paid by itself with the receipt.
    page.wait_for_selector("#paid", timeout=20_000)
    assert re.search(r"/counter/orders/\d+/", page.url)
    number = page.locator("#receipt-number").inner_text()
    assert number
    shot(page, "qr-03-paid")
    payment = Payment.objects.get(unit=unit)
    assert payment.channel == "wechat" and payment.funding_source == "储蓄卡/CMB_DEBIT"
    assert all(b.outstanding_fen == 0 for b in Bill.objects.filter(unit=unit))
    # The printed receipt names the funding source.
    import io

    from pypdf import PdfReader

    pdf = page.request.get(base + (page.locator("#receipt-pdf").get_attribute("href") or ""))
    assert pdf.ok
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.body())).pages)
    assert "CMB_DEBIT" in text
