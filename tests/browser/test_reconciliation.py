"""Finance reconciles a day in a real browser (Debian's chromium).

Upload the acquirer's settlement file and the bank statement together; run the day (matching
then the rules, as a background job); the exact arrival is booked by a rule; the card payment
the acquirer took but Wuye never recorded waits in the queue; finance opens it, names the
household's room and posts it to that household's bill. The day's money in transit is then
zero and the ledger's invariants hold.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant, user_create
from wuye.billing.tests.helpers import issue_bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.merchants.models import Channel as MerchantChannel
from wuye.merchants.services import fee_rate_set, merchant_create
from wuye.payments.services import order_create, payment_capture
from wuye.reconciliation.clearing import clearing_balance
from wuye.reconciliation.models import ReconException
from wuye.reconciliation.samples import BankRow, CardRow, acquirer_csv, bank_csv
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-pass-2026"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TRADE = date(2026, 11, 17)
SETTLE = date(2026, 11, 18)
MID = "898310048990001"


@pytest.fixture
def estate(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    company = make_company(name="锦绣物业服务有限公司", short_name="锦绣物业")
    merchant = merchant_create(
        company=company,
        channel=MerchantChannel.ACQUIRER,
        name=company.name,
        merchant_no=MID,
        bank_name="招商银行上海分行",
        bank_account_name=company.name,
        bank_account_no="31000000000000009",
    )
    fee_rate_set(
        merchant=merchant,
        card_type="debit",
        rate_ppm=5000,
        cap_fen=2000,
        effective_from=date(2026, 1, 1),
    )
    community = make_community(company, name="锦绣花园", code="JX")
    item = make_fee_item(company, name="物业费", code="WYF")
    building = make_building(community, code="1", name="1号楼")
    bills = {}
    for room, amount in (("101", 128_000), ("102", 50_000)):
        unit = make_unit(building, room_no=room, label=f"1-{room}")
        bills[room] = issue_bill(
            unit=unit,
            fee_item=item,
            amount_fen=amount,
            period_start=date(2026, 10, 1),
            due_date=date(2026, 10, 10),
            issued_on=date(2026, 10, 1),
        )
    finance = user_create(username="finance1", password=PASSWORD, display_name="刘财务")
    membership_grant(user=finance, company=company, role=Role.FINANCE)
    # Wuye recorded the card payment of 1-101; the acquirer also took 500.00 for 1-102 (the
    # terminal lost the answer), which Wuye never recorded.
    paid_at = datetime(2026, 11, 17, 10, 0, tzinfo=SHANGHAI)
    order = order_create(
        unit=bills["101"].unit,
        bill_ids=[bills["101"].pk],
        channel="card",
        idempotency_key="counter-101",
        cashier=None,
        now=paid_at,
    )
    payment_capture(
        order=order,
        response=PaymentResponse(
            ChannelResult.PROCESSED,
            128_000,
            "000000000101",
            details={"rrn": "000000000101", "card_type": "debit", "masked_pan": "622202******0017"},
        ),
        now=paid_at,
    )
    return {"company": company, "community": community, "bills": bills}


def _files(tmp_path):  # type: ignore[no-untyped-def]
    acq = tmp_path / "acq-20261118.csv"
    acq.write_bytes(
        acquirer_csv(
            [
                CardRow("000000000101", 128_000, 640, datetime(2026, 11, 17, 10, 0), SETTLE),
                CardRow(
                    "000000000102",
                    50_000,
                    250,
                    datetime(2026, 11, 17, 10, 5),
                    SETTLE,
                    stan="000002",
                ),
            ]
        )
    )
    bank = tmp_path / "bank-20261118.csv"
    bank.write_bytes(
        bank_csv(
            [BankRow("B202611180001", "C", 177_110, SETTLE, f"POS清算 {SETTLE:%Y%m%d} {MID}")],
            opening_fen=1_000_000,
        )
    )
    return [str(acq), str(bank)]


def test_finance_uploads_runs_the_day_and_posts_a_channel_only_payment(
    live_server, page, shot, estate, tmp_path
):
    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "finance1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/reconciliation/?date={SETTLE:%Y-%m-%d}")
    page.set_input_files("#upload-form input[type=file]", _files(tmp_path))
    page.select_option("#upload-form select[name=kind]", "")
    page.fill("#upload-form input[name=account_no]", "31000000000000009")
    page.click("#upload-form button[type=submit]")
    page.locator(".messages li", has_text="acq-20261118.csv").wait_for()
    page.locator(".messages li", has_text="bank-20261118.csv").wait_for()
    assert page.locator(".messages li.error").count() == 0

    page.fill("#run-form input[name=date]", f"{SETTLE:%Y-%m-%d}")
    page.select_option("#run-form select[name=channel]", "card")
    page.click("#run-form button[type=submit]")
    page.locator("#job-progress[data-status=succeeded]").wait_for()
    card_tile = page.locator("#channel-tiles .tile[data-channel=card]")
    assert "1 笔已匹配" in card_tile.inner_text()
    assert (
        "Automatic" in page.locator("#arrivals").inner_text()
        or "自动" in page.locator("#arrivals").inner_text()
    )
    shot(page, "recon-day-after-run")

    page.click("text=差异队列")
    page.locator("#queue a", has_text="000000000102").click()
    page.wait_for_url(f"{base}/reconciliation/exceptions/*/")
    page.select_option("#action-form select[name=action]", "post_payment")
    page.select_option("#action-form select[name=community]", str(estate["community"].pk))
    page.fill("#action-form input[name=room]", "1-102")
    page.fill("#action-form textarea[name=note]", "业主持签购单来访")
    page.click("#action-form button[type=submit]")
    page.locator("#exc-state", has_text="已处理").wait_for()
    assert "业主持签购单来访" in page.locator("#history").inner_text()
    shot(page, "recon-exception-resolved")

    exc = ReconException.objects.get(category="channel_only")
    assert exc.payment is not None and exc.payment.unit_id == estate["bills"]["102"].unit_id
    bill = estate["bills"]["102"]
    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    company_id = estate["company"].pk
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 0
    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"]

    page.goto(f"{base}/reconciliation/?date={SETTLE:%Y-%m-%d}")
    assert "¥0.00" in page.locator("#channel-tiles .tile[data-channel=card] .transit").inner_text()
