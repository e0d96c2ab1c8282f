"""Finance chases a missing arrival and adjusts an amount mismatch in a real browser.

The acquirer's money for a settlement date has not reached the bank: finance opens the
exception, chases it with a follow-up date and a note; it stays open, marked as being chased,
and the queue's "being chased" filter lists it with its follow-up date. A card payment the
acquirer took 3.00 more for than Wuye recorded: finance adjusts it to the channel's amount as a
refund due; the page shows the posted entry; finance undoes it and the reversal is shown too.
The ledger's invariants hold throughout.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant, user_create
from wuye.billing.tests.helpers import issue_bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.payments.services import order_create, payment_capture
from wuye.reconciliation.models import ReconException, ReconRun
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
SETTLE = date(2026, 11, 18)


def _exception(company, category: str, **kw):  # type: ignore[no-untyped-def]
    now = timezone.now()
    run = ReconRun.objects.create(
        company=company, channel="card", settle_date=SETTLE, started_at=now
    )
    return ReconException.objects.create(
        run=run,
        company=company,
        channel="card",
        settle_date=SETTLE,
        category=category,
        key=f"{category}:card:{SETTLE:%Y%m%d}:{kw.get('reference', '')}",
        created_at=now,
        last_seen_at=now,
        **kw,
    )


@pytest.fixture
def estate(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    company = make_company(name="锦绣物业服务有限公司", short_name="锦绣物业")
    community = make_community(company, name="锦绣花园", code="JX")
    item = make_fee_item(company, name="物业费", code="WYF")
    unit = make_unit(make_building(community, code="1", name="1号楼"), room_no="101", label="1-101")
    bill = issue_bill(
        unit=unit,
        fee_item=item,
        amount_fen=10_000,
        period_start=date(2026, 10, 1),
        due_date=date(2026, 10, 10),
        issued_on=date(2026, 10, 1),
    )
    finance = user_create(username="finance1", password=PASSWORD, display_name="刘财务")
    membership_grant(user=finance, company=company, role=Role.FINANCE)
    paid_at = datetime(2026, 11, 17, 10, 0, tzinfo=SHANGHAI)
    order = order_create(
        unit=unit,
        bill_ids=[bill.pk],
        channel="card",
        idempotency_key="counter-101",
        cashier=None,
        now=paid_at,
    )
    payment = payment_capture(
        order=order,
        response=PaymentResponse(ChannelResult.PROCESSED, 10_000, "000000000101"),
        now=paid_at,
    )
    missing = _exception(
        company,
        "arrival_missing",
        merchant_no="898310048990001",
        amount_fen=97_540,
        expected_fen=97_540,
        actual_fen=0,
        detail="应于 2026-11-19 前到账",
    )
    mismatch = _exception(
        company,
        "amount_mismatch",
        reference="000000000101",
        amount_fen=300,
        expected_fen=10_000,
        actual_fen=10_300,
        payment=payment,
    )
    return {"missing": missing, "mismatch": mismatch, "unit": unit}


def _ledger_ok() -> None:
    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"]


def test_finance_chases_an_arrival_and_adjusts_an_amount_mismatch(live_server, page, shot, estate):
    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "finance1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")

    # Chase the missing arrival.
    missing = estate["missing"]
    follow = timezone.localdate() + timedelta(days=2)
    page.goto(f"{base}/reconciliation/exceptions/{missing.pk}/")
    page.select_option("#action-form select[name=action]", "chase")
    page.fill("#action-form input[name=follow_up_on]", follow.isoformat())
    page.fill("#action-form textarea[name=note]", "已致电收单行, 称两日内到账")
    page.click("#action-form button[type=submit]")
    page.locator("#exc-chasing").wait_for()
    assert page.locator("#exc-state").inner_text() == "待处理"
    assert follow.isoformat() in page.locator("#exc-follow-up").inner_text()
    assert "已致电收单行" in page.locator("#history").inner_text()
    shot(page, "recon-exception-chasing")

    page.goto(f"{base}/reconciliation/exceptions/")
    page.select_option("#queue-filters select[name=state]", "chasing")
    page.click("#queue-filters button[type=submit]")
    page.wait_for_url("**state=chasing**")
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 1
    assert follow.isoformat() in rows.first.inner_text()
    assert "催查中" in rows.first.inner_text()
    missing.refresh_from_db()
    assert missing.chased_by is not None and missing.follow_up_on == follow

    # Adjust the amount mismatch to the channel's amount: the 3.00 is a refund due.
    mismatch = estate["mismatch"]
    page.goto(f"{base}/reconciliation/exceptions/{mismatch.pk}/")
    page.select_option("#action-form select[name=action]", "adjust_surplus")
    page.select_option("#action-form select[name=surplus_to]", "refund")
    page.fill("#action-form textarea[name=note]", "POS 多扣 3 元")
    page.click("#action-form button[type=submit]")
    page.locator("#exc-state", has_text="已处理").wait_for()
    entries = page.locator("#entries").inner_text()
    assert "处理凭证" in entries and "应退款" in entries and "3.00" in entries
    shot(page, "recon-exception-adjusted")
    _ledger_ok()

    page.fill("#undo-form input[name=note]", "应转预存")
    page.click("#undo-form button[type=submit]")
    page.locator("#exc-state", has_text="待处理").wait_for()
    assert "撤销冲正" in page.locator("#entries").inner_text()
    mismatch.refresh_from_db()
    assert mismatch.state == ReconException.State.OPEN
    _ledger_ok()
