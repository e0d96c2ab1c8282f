"""An administrator's walk through Wuye in a real browser (Debian's chromium).

Log in, find a household by its owner's name with the live search, open it and see its bills;
launch a billing run and watch the progress bar finish; switch the interface to English.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant, user_create
from wuye.billing.models import Bill
from wuye.estates.models import Resident
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_standard,
    make_unit,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-pass-2026"
OWNERS = ["王建国", "李秀英", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄丽"]


@pytest.fixture
def estate():
    company = make_company(name="锦绣物业服务有限公司", short_name="锦绣物业")
    community = make_community(company, name="锦绣花园", code="JX")
    fee_item = make_fee_item(company, name="物业费", code="WYF")
    make_standard(
        fee_item, community, unit_price=Decimal("2.5000"), effective_from=date(2020, 1, 1)
    )
    units = []
    for b in ("1", "2"):
        building = make_building(community, code=b, name=f"{b}号楼")
        for i, owner in enumerate(OWNERS[:4] if b == "1" else OWNERS[4:]):
            room = f"{i // 2 + 1}0{i % 2 + 1}"
            unit = make_unit(
                building, room_no=room, label=f"{b}-{room}", area_m2=Decimal("89.50") + i
            )
            Resident.objects.create(unit=unit, name=owner, phone=f"1380013800{len(units)}")
            units.append(unit)
    admin = user_create(username="jxadmin", password=PASSWORD, display_name="周管理")
    membership_grant(user=admin, company=company, role=Role.ADMIN)
    return {"company": company, "community": community, "units": units, "admin": admin}


def _login(page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "jxadmin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")


def test_admin_finds_a_household_launches_a_run_and_switches_to_english(
    live_server, page, shot, estate
):
    base = live_server.url
    today = timezone.localdate()

    # Log in: the dashboard, in Chinese.
    _login(page, base)
    assert page.locator("h1").first.inner_text().startswith("本月收费概况")
    shot(page, "01-dashboard-zh")

    # Launch a billing run for this month and watch the progress bar until it is done.
    page.click("nav.mainnav >> text=出账")
    page.select_option("select[name=community]", str(estate["community"].pk))
    page.fill("input[name=period]", f"{today:%Y-%m}")
    page.click("#run-form button[type=submit]")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    progress = page.locator("#job-progress")
    progress.wait_for()
    page.wait_for_selector('#job-progress[data-status="succeeded"]', timeout=60_000)
    assert page.locator(".progress").get_attribute("aria-valuenow") == "100"
    assert "查看出账结果" in progress.inner_text()
    shot(page, "02-billing-run-done")
    assert Bill.objects.filter(community=estate["community"]).count() == len(estate["units"])

    # Find a household by its owner's name with the live search, open it, see its bills.
    page.click("nav.mainnav >> text=小区/房屋")
    page.fill("input[name=q]", "李秀英")
    result = page.locator("#unit-results a", has_text="1-102")
    result.wait_for()
    shot(page, "03-live-search")
    result.click()
    page.wait_for_url(re.compile(r"/units/\d+/$"))
    assert "李秀英" in page.locator("body").inner_text()
    rows = page.locator("#bills tbody tr")
    assert rows.count() == 1
    assert "物业费" in rows.first.inner_text()
    assert "¥" in page.locator("#outstanding-total").inner_text()
    shot(page, "04-household-zh")

    # The same page on a tablet.
    page.set_viewport_size({"width": 820, "height": 1180})
    shot(page, "05-household-tablet")
    page.set_viewport_size({"width": 1366, "height": 768})

    # Switch to English: the same household, in English.
    page.click("form.langswitch button[value=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Residents" in page.locator("body").inner_text()
    assert "Dashboard" in page.locator("nav.mainnav").inner_text()
    shot(page, "06-household-en")
    page.click("nav.mainnav >> text=Dashboard")
    assert "Collection this month" in page.locator("h1").first.inner_text()
    page.wait_for_function("document.querySelector('#collection-chart').width > 0")
    shot(page, "07-dashboard-en")


def test_progress_bar_follows_a_running_job_until_it_finishes(live_server, page, shot, estate):
    from wuye.core.models import Job

    job = Job.objects.create(
        kind="billing_run",
        title="出账 锦绣花园 (后台运行)",
        company=estate["company"],
        status=Job.Status.RUNNING,
        progress_done=30,
        progress_total=120,
    )
    base = live_server.url
    _login(page, base)

    page.goto(f"{base}/jobs/{job.pk}/")
    bar = page.locator(".progress")
    assert bar.get_attribute("aria-valuenow") == "25"
    Job.objects.filter(pk=job.pk).update(progress_done=90)
    page.wait_for_selector('.progress[aria-valuenow="75"]')
    shot(page, "08-progress-running")
    Job.objects.filter(pk=job.pk).update(
        progress_done=120, status=Job.Status.SUCCEEDED, result={"units": 120}
    )

    page.wait_for_selector('#job-progress[data-status="succeeded"]')
    assert page.locator(".progress").get_attribute("aria-valuenow") == "100"
    page.wait_for_timeout(1500)  # polling has stopped: nothing replaces the finished card
    assert page.locator("#job-progress").get_attribute("hx-trigger") is None
