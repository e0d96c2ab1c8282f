"""A cashier's day at the counter in a real browser (Debian's chromium).

Open a shift with a float; find a household by its owner's name as you type; pay its bills in
cash and see the change before paying; open the receipt; take a partial payment from another
household; finance refunds part of the first payment from the cashier's drawer; the cashier
closes the shift with the cash counted, which matches the cash expected; the day report.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant, user_create
from wuye.billing.models import Bill
from wuye.billing.tests.helpers import issue_bill
from wuye.counter.models import Shift
from wuye.estates.models import Resident
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-pass-2026"


def _month_start(day: date, back: int) -> date:
    y, m = day.year, day.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return date(y, m, 1)


@pytest.fixture
def estate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    today = timezone.localdate()
    company = make_company(name="锦绣物业服务有限公司", short_name="锦绣物业")
    community = make_community(company, name="锦绣花园", code="JX")
    item = make_fee_item(
        company, name="物业费", code="WYF", late_fee_enabled=True, late_fee_daily_ppm=500
    )
    building = make_building(community, code="1", name="1号楼")
    units = {}
    for room, owner, phone in (("101", "王建国", "13800138001"), ("102", "李秀英", "13800138002")):
        unit = make_unit(building, room_no=room, label=f"1-{room}")
        Resident.objects.create(unit=unit, name=owner, phone=phone, is_primary=True)
        units[owner] = unit
        for back, amount in ((2, 21_500), (0, 22_375)):
            start = _month_start(today, back)
            issue_bill(
                unit=unit,
                fee_item=item,
                amount_fen=amount,
                period_start=start,
                due_date=start + timedelta(days=9) if back else today + timedelta(days=20),
                issued_on=start,
            )
    cashier = user_create(username="cashier1", password=PASSWORD, display_name="陈收银")
    membership_grant(user=cashier, company=company, role=Role.CASHIER)
    finance = user_create(username="finance1", password=PASSWORD, display_name="刘财务")
    membership_grant(user=finance, company=company, role=Role.FINANCE)
    return {"community": community, "units": units, "cashier": cashier, "finance": finance}


def _login(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")


def _find(page, text: str, label: str) -> None:
    page.fill(".counter-search input[name=q]", text)
    link = page.locator("#counter-results a.pick", has_text=label)
    link.wait_for()
    link.click()
    page.wait_for_url(re.compile(r"/counter/units/\d+/$"))


def test_a_cashier_takes_cash_prints_takes_part_payment_and_closes_the_shift_after_a_refund(
    live_server, page, shot, estate
):
    base = live_server.url
    wang, li = estate["units"]["王建国"], estate["units"]["李秀英"]

    # The counter asks for a shift first; open one with 500 yuan of change.
    _login(page, base, "cashier1")
    page.click("nav.mainnav >> text=收费台")
    assert "尚未开班" in page.locator("#shiftbar").inner_text()
    page.click("#shiftbar a.button")
    page.fill("input[name=counter_name]", "1号窗口")
    page.fill("input[name=opening_float]", "500")
    page.click("#shift-open-form button[type=submit]")
    page.wait_for_url(f"{base}/counter/")
    assert "当班中" in page.locator("#shiftbar").inner_text()

    # Find a household by its owner's name as we type; its bills are all ticked, oldest first.
    _find(page, "王建", "1-101")
    rows = page.locator("#bills tbody tr")
    assert rows.count() == 2
    assert page.locator("#bills input[name=bills]:checked").count() == 2
    assert "逾期" in rows.first.inner_text()
    total_due = page.locator("#to-pay").inner_text()
    late_fee = page.locator("#bills tfoot td.num").first.inner_text()
    assert late_fee != "¥0.00"  # the overdue bill carries a late fee as of today

    # Cash: 500 handed over, the change shows before paying.
    page.fill("input[name=tendered]", "500")
    change = page.locator("#change").inner_text()
    assert change.startswith("¥") and change != "¥0.00"
    shot(page, "counter-01-household-cash")
    page.set_viewport_size({"width": 820, "height": 1180})
    shot(page, "counter-02-household-tablet")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.click("#pay-button")
    page.wait_for_selector("#paid")
    assert page.locator("#paid-amount").inner_text() == total_due
    assert page.locator("#paid-change").inner_text() == change
    assert Bill.objects.filter(unit=wang).exclude(kind="late_fee").count() == 2
    assert all(b.outstanding_fen == 0 for b in Bill.objects.filter(unit=wang))
    shot(page, "counter-03-paid")

    # The receipt: its number, its PDF (opens in a new tab) and the ESC/POS slip, when the
    # receipts screens are installed.
    assert page.locator("#receipt-number").inner_text()
    pdf_link = page.locator("#receipt-pdf")
    if pdf_link.count():
        assert pdf_link.get_attribute("target") == "_blank"
        pdf = page.request.get(base + (pdf_link.get_attribute("href") or ""))
        assert pdf.ok and pdf.body()[:4] == b"%PDF"
        slip = page.request.get(
            base + (page.locator("#receipt-escpos").get_attribute("href") or "")
        )
        assert slip.ok and len(slip.body()) > 0

    # Next household: a partial payment of 100 yuan, exact cash.
    page.click("#back-to-search")
    _find(page, "13800138002", "1-102")
    page.fill("input[name=amount]", "100")
    assert page.locator("#to-pay").inner_text() == "¥100.00"
    page.fill("input[name=tendered]", "100")
    assert page.locator("#change").inner_text() == "¥0.00"
    page.click("#pay-button")
    page.wait_for_selector("#paid")
    assert page.locator("#paid-amount").inner_text() == "¥100.00"
    # Late fee first, then the oldest bill's principal; the current bill is untouched.
    paid = {b.kind: b.paid_fen for b in Bill.objects.filter(unit=li, paid_fen__gt=0)}
    assert sum(paid.values()) == 10_000 and set(paid) == {"late_fee", "regular"}
    assert Bill.objects.filter(unit=li, paid_fen=0, kind="regular").count() == 1
    shot(page, "counter-04-partial")

    # Finance refunds 20 yuan of the first payment; the cash leaves the cashier's drawer.
    _login(page, base, "finance1")
    page.goto(f"{base}/counter/units/{wang.pk}/")
    page.locator("#payments a", has_text="退款").first.click()
    page.fill("input[name=amount]", "20")
    page.fill("input[name=reason]", "多收滞纳金, 经批准退还")
    page.select_option("select[name=shift]", index=1)
    shot(page, "counter-05-refund")
    page.click("#refund-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/counter/units/{wang.pk}/$"))
    assert "已退款" in page.locator(".messages").inner_text()
    assert "¥20.00" in page.locator("#payments").inner_text()

    # The cashier closes the shift: counted cash equals expected, no difference.
    _login(page, base, "cashier1")
    page.click("nav.mainnav >> text=收费台")
    page.click("#shiftbar a")
    expected = page.locator("#expected-now").inner_text()
    assert page.locator("#cash-expected").inner_text() == expected
    shift = Shift.objects.get(cashier=estate["cashier"])
    paid = sum(p.amount_fen for p in shift.payments.all())
    assert expected == f"¥{(50_000 + paid - 2_000) // 100:,}.{(50_000 + paid - 2_000) % 100:02d}"
    page.fill("input[name=counted]", expected.replace("¥", ""))
    page.click("#close-form button[type=submit]")
    page.wait_for_selector("#shift-state")
    assert page.locator("#shift-state").inner_text() == "已交班"
    assert page.locator("#cash-difference").inner_text() == "¥0.00"
    assert "现金" in page.locator("#channels").inner_text()
    page.emulate_media(media="print")
    shot(page, "counter-06-shift-report-print")
    page.emulate_media(media="screen")
    shift.refresh_from_db()
    assert (shift.state, shift.difference_fen) == (Shift.State.CLOSED, 0)

    # The day report, with its Excel export.
    page.goto(f"{base}/counter/day/")
    assert "1号窗口" in page.locator("#day-shifts").inner_text()
    assert page.locator("#problems").count() == 0
    with page.expect_download() as download:
        page.click("#day-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
    shot(page, "counter-07-day-report")
