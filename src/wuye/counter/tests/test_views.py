"""The counter's screens through Django's test client: who may open what, and shifts."""

from __future__ import annotations

from datetime import date
from io import BytesIO

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from wuye.accounts.models import Role
from wuye.billing.models import Bill
from wuye.counter.models import Shift
from wuye.counter.services import cash_movement_record, shift_open
from wuye.estates.models import Resident
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def estate():
    company = make_company()
    community = make_community(company, name="锦绣花园")
    building = make_building(community, code="1")
    unit = make_unit(building, room_no="101", label="1-101")
    Resident.objects.create(unit=unit, name="王建国", phone="13800138000")
    fee_item = make_fee_item(company, name="物业费")
    today = timezone.localdate()
    bill = Bill.objects.create(
        company=company,
        community=community,
        unit=unit,
        fee_item=fee_item,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 2, 1),
        amount_fen=22_375,
        due_date=date(2026, 1, 31),
        issued_on=date(2026, 1, 1) if today >= date(2026, 1, 1) else today,
    )
    other_company = make_company()
    other_unit = make_unit(make_building(make_community(other_company)), label="9-909")
    return {
        "company": company,
        "community": community,
        "unit": unit,
        "bill": bill,
        "cashier": make_user(company, role=Role.CASHIER),
        "finance": make_user(company, role=Role.FINANCE),
        "auditor": make_user(company, role=Role.AUDITOR),
        "other_unit": other_unit,
    }


def _client(client, user):
    client.force_login(user)
    return client


def test_the_counter_asks_a_cashier_without_a_shift_to_open_one(client, estate):
    c = _client(client, estate["cashier"])
    response = c.get(reverse("counter:index"))
    assert response.status_code == 200
    assert "尚未开班" in response.content.decode()
    assert reverse("counter:shift_open") in response.content.decode()


def test_the_counter_is_in_the_nav_for_cashiers_but_not_for_auditors(client, estate):
    c = _client(client, estate["cashier"])
    assert 'href="/counter/"' in c.get(reverse("web:home")).content.decode()
    c.force_login(estate["auditor"])
    assert 'href="/counter/"' not in c.get(reverse("web:home")).content.decode()
    assert c.get(reverse("counter:index")).status_code == 403


def test_a_cashier_opens_a_shift_through_the_form_with_the_float_in_yuan(client, estate):
    c = _client(client, estate["cashier"])
    response = c.post(
        reverse("counter:shift_open"),
        {"community": estate["community"].pk, "counter_name": "2号窗口", "opening_float": "500"},
    )
    assert response.status_code == 302
    shift = Shift.objects.get(cashier=estate["cashier"])
    assert (shift.opening_float_fen, shift.counter_name) == (50_000, "2号窗口")
    # Opening again goes to the open shift instead.
    assert c.get(reverse("counter:shift_open"))["Location"] == reverse(
        "counter:shift", args=[shift.pk]
    )


def test_a_cashier_cannot_open_a_shift_in_another_companys_community(client, estate):
    c = _client(client, estate["cashier"])
    foreign = estate["other_unit"].community
    response = c.post(
        reverse("counter:shift_open"),
        {"community": foreign.pk, "counter_name": "x", "opening_float": "0"},
    )
    assert response.status_code == 200  # the form refuses a community it does not offer
    assert not Shift.objects.exists()


def test_search_finds_a_household_by_owner_name_phone_or_room(client, estate):
    c = _client(client, estate["cashier"])
    for text in ("王建国", "13800138000", "1-101"):
        response = c.get(reverse("counter:search"), {"q": text}, HTTP_HX_REQUEST="true")
        assert "1-101" in response.content.decode(), text
    response = c.get(reverse("counter:search"), {"q": "9-909"}, HTTP_HX_REQUEST="true")
    assert "9-909" not in response.content.decode()


def test_the_household_panel_shows_open_bills_ticked_with_the_total_due(client, estate):
    c = _client(client, estate["cashier"])
    response = c.get(reverse("counter:household", args=[estate["unit"].pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert f'name="bills" value="{estate["bill"].pk}"' in body
    assert "checked" in body
    assert "¥223.75" in body
    assert 'name="idempotency_key"' in body


def test_another_companys_household_is_a_404(client, estate):
    c = _client(client, estate["cashier"])
    assert c.get(reverse("counter:household", args=[estate["other_unit"].pk])).status_code == 404
    response = c.post(reverse("counter:pay", args=[estate["other_unit"].pk]), {})
    assert response.status_code == 404


def test_paying_without_an_open_shift_sends_the_cashier_to_open_one(client, estate):
    c = _client(client, estate["cashier"])
    response = c.post(
        reverse("counter:pay", args=[estate["unit"].pk]),
        {"bills": [estate["bill"].pk], "channel": "cash", "idempotency_key": "k1"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("counter:shift_open")


def test_a_cashier_cannot_open_the_refund_screen(client, estate):
    c = _client(client, estate["cashier"])
    assert c.get(reverse("counter:refund", args=[1])).status_code == 403


def test_closing_a_shift_with_a_difference_and_no_note_says_so(client, estate):
    c = _client(client, estate["cashier"])
    shift = shift_open(
        cashier=estate["cashier"],
        community=estate["community"],
        counter_name="1",
        opening_float_fen=10_000,
        now=timezone.now(),
    )
    url = reverse("counter:shift_close", args=[shift.pk])
    response = c.post(url, {"counted": "99.00", "note": ""})
    assert response.status_code == 422
    assert "差异说明" in response.content.decode()
    response = c.post(url, {"counted": "99.00", "note": "少1元"})
    assert response.status_code == 302
    shift.refresh_from_db()
    assert (shift.state, shift.difference_fen) == (Shift.State.CLOSED, -100)


def test_another_cashier_cannot_see_or_close_my_shift_but_finance_sees_it(client, estate):
    shift = shift_open(
        cashier=estate["cashier"],
        community=estate["community"],
        counter_name="1",
        opening_float_fen=0,
        now=timezone.now(),
    )
    other = make_user(estate["company"], role=Role.CASHIER)
    c = _client(client, other)
    assert c.get(reverse("counter:shift", args=[shift.pk])).status_code == 404
    assert (
        c.post(reverse("counter:shift_close", args=[shift.pk]), {"counted": "0"}).status_code == 404
    )
    c.force_login(estate["finance"])
    assert c.get(reverse("counter:shift", args=[shift.pk])).status_code == 200


def test_the_shift_page_records_cash_paid_in_and_shows_expected_cash(client, estate):
    c = _client(client, estate["cashier"])
    shift = shift_open(
        cashier=estate["cashier"],
        community=estate["community"],
        counter_name="1",
        opening_float_fen=20_000,
        now=timezone.now(),
    )
    c.post(
        reverse("counter:movement", args=[shift.pk]),
        {"kind": "paid_in", "amount": "50.00", "reason": "换零钱"},
    )
    body = c.get(reverse("counter:shift", args=[shift.pk])).content.decode()
    assert "换零钱" in body
    assert 'id="cash-expected">¥250.00' in body


def test_the_day_report_exports_a_workbook_with_the_days_shifts(client, estate):
    now = timezone.now()
    shift = shift_open(
        cashier=estate["cashier"],
        community=estate["community"],
        counter_name="1号窗口",
        opening_float_fen=30_000,
        now=now,
    )
    cash_movement_record(
        shift=shift,
        kind="paid_out",
        amount_fen=10_000,
        reason="送存",
        user=estate["cashier"],
        now=now,
    )
    c = _client(client, estate["finance"])
    params = {"community": estate["community"].pk, "day": timezone.localdate(now).isoformat()}
    page = c.get(reverse("counter:day"), params)
    assert page.status_code == 200
    assert "1号窗口" in page.content.decode()

    response = c.get(reverse("counter:day_xlsx"), params)

    assert response.status_code == 200
    wb = load_workbook(BytesIO(response.content))
    cash = {row[0]: row[1] for row in wb["现金"].iter_rows(max_row=11, values_only=True)}
    assert cash["备用金"] == 300
    assert cash["现金取出"] == -100
    assert cash["应有现金"] == 200


def test_the_counter_reads_in_english_after_switching_language(client, estate):
    c = _client(client, estate["cashier"])
    c.post(reverse("set_language"), {"language": "en", "next": "/counter/"})
    body = c.get(reverse("counter:index")).content.decode()
    assert "No open shift" in body
    assert ">Counter<" in body


def test_shift_and_cash_movement_admin_lists_open_for_a_superuser(client, estate):
    now = timezone.now()
    shift = shift_open(
        cashier=estate["cashier"],
        community=estate["community"],
        counter_name="1",
        opening_float_fen=1_000,
        now=now,
    )
    cash_movement_record(
        shift=shift, kind="paid_in", amount_fen=100, reason="零钱", user=estate["cashier"], now=now
    )
    root = make_user(None, is_superuser=True, is_staff=True)
    c = _client(client, root)
    for name in ("counter_shift", "counter_cashmovement"):
        assert c.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert c.get(reverse("admin:counter_shift_change", args=[shift.pk])).status_code == 200


def test_another_companys_shifts_and_day_report_stay_hidden(client, estate):
    foreign_community = estate["other_unit"].community
    foreign_cashier = make_user(foreign_community.company, role=Role.CASHIER)
    foreign = shift_open(
        cashier=foreign_cashier,
        community=foreign_community,
        counter_name="乙窗口",
        opening_float_fen=1_000,
        now=timezone.now(),
    )
    c = _client(client, estate["finance"])

    assert c.get(reverse("counter:shift", args=[foreign.pk])).status_code == 404
    assert (
        c.post(
            reverse("counter:movement", args=[foreign.pk]),
            {"kind": "paid_in", "amount": "1", "reason": "x"},
        ).status_code
        == 404
    )
    assert "乙窗口" not in c.get(reverse("counter:shifts")).content.decode()
    params = {"community": foreign_community.pk, "day": timezone.localdate().isoformat()}
    assert "乙窗口" not in c.get(reverse("counter:day"), params).content.decode()
    xlsx = c.get(reverse("counter:day_xlsx"), params)
    assert foreign_community.code not in xlsx["Content-Disposition"]


def test_enter_on_a_search_with_one_household_opens_it(client, estate):
    c = _client(client, estate["cashier"])
    response = c.get(reverse("counter:search"), {"q": "13800138000"})
    assert response.status_code == 302
    assert response["Location"] == reverse("counter:household", args=[estate["unit"].pk])
