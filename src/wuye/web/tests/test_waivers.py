"""Waivers (减免) through the screens: a cashier asks, someone else in finance decides."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.billing.models import Bill, Waiver
from wuye.testing.factories import make_user
from wuye.web.tests.scenario import login, make_estate

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate():
    return make_estate(tag="甲", today=timezone.localdate(), merchant_no="1900000001")


def _ask(client, estate, **data):
    payload = {"target": "principal", "amount": "23.75", "reason": "维修期间停水"} | data
    return client.post(reverse("web:waiver_new", args=[estate.bill.pk]), payload)


def test_cashier_asks_for_a_waiver_and_it_waits_for_approval(client, estate):
    login(client, make_user(estate.company, Role.CASHIER))

    resp = _ask(client, estate)

    waiver = Waiver.objects.get()
    assert resp.status_code == 302
    assert (waiver.state, waiver.amount_fen, waiver.reason) == ("pending", 2375, "维修期间停水")
    assert Bill.objects.get(pk=estate.bill.pk).waived_fen == 0


def test_finance_approves_and_the_bill_is_waived_with_a_ledger_entry(client, estate):
    from wuye.ledger.models import AccountKind
    from wuye.ledger.selectors import account_balance

    login(client, make_user(estate.company, Role.CASHIER))
    _ask(client, estate)
    waiver = Waiver.objects.get()
    login(client, make_user(estate.company, Role.FINANCE))

    resp = client.post(reverse("web:waiver_approve", args=[waiver.pk]))

    waiver.refresh_from_db()
    assert resp.status_code == 302
    assert waiver.state == "approved"
    assert Bill.objects.get(pk=estate.bill.pk).waived_fen == 2375
    assert account_balance(account=AccountKind.WAIVER_EXPENSE, household_id=estate.unit.pk) == 2375


def test_nobody_approves_their_own_waiver(client, estate):
    finance = make_user(estate.company, Role.FINANCE)
    login(client, finance)
    _ask(client, estate)
    waiver = Waiver.objects.get()

    client.post(reverse("web:waiver_approve", args=[waiver.pk]))
    page = client.get(reverse("web:waivers")).content.decode()

    waiver.refresh_from_db()
    assert waiver.state == "pending"
    assert "不能审批自己的申请" in page


def test_a_waiver_larger_than_what_is_owed_is_refused_with_the_reason(client, estate):
    login(client, make_user(estate.company, Role.CASHIER))

    resp = _ask(client, estate, amount="500.00")

    assert resp.status_code == 400
    assert not Waiver.objects.exists()


@pytest.mark.parametrize("amount", ["12.345", "abc", "-5"])
def test_a_bad_amount_is_refused_naming_it(client, estate, amount):
    login(client, make_user(estate.company, Role.CASHIER))

    resp = _ask(client, estate, amount=amount)

    assert resp.status_code == 400
    assert amount in resp.content.decode()
    assert not Waiver.objects.exists()


def test_rejecting_records_the_decision_and_waives_nothing(client, estate):
    login(client, make_user(estate.company, Role.CASHIER))
    _ask(client, estate)
    waiver = Waiver.objects.get()
    login(client, make_user(estate.company, Role.MANAGER))

    client.post(reverse("web:waiver_reject", args=[waiver.pk]), {"reason": "证据不足"})

    waiver.refresh_from_db()
    assert waiver.state == "rejected"
    assert Bill.objects.get(pk=estate.bill.pk).waived_fen == 0


def test_auditor_reads_waivers_but_cannot_ask_or_decide(client, estate):
    login(client, make_user(estate.company, Role.CASHIER))
    _ask(client, estate)
    waiver = Waiver.objects.get()
    login(client, make_user(estate.company, Role.AUDITOR))

    assert client.get(reverse("web:waivers")).status_code == 200
    assert _ask(client, estate).status_code == 403
    assert client.post(reverse("web:waiver_approve", args=[waiver.pk])).status_code == 403
