"""Data isolation between companies: a user of company A never sees or touches company B.

Every list and detail screen and the admin are walked as A's administrator (and A's other
roles) with B's ids: details are 404, lists do not mention B, and nothing of B changes.
Runs on SQLite and PostgreSQL like every database test.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant
from wuye.billing.models import Bill
from wuye.core.models import Job
from wuye.estates.models import Community, Resident
from wuye.testing.factories import make_user
from wuye.web.tests.scenario import Estate, login, make_estate

pytestmark = pytest.mark.django_db


@pytest.fixture
def today() -> date:
    return timezone.localdate()


@pytest.fixture
def a(today) -> Estate:
    return make_estate(tag="甲", today=today, merchant_no="1900000001")


@pytest.fixture
def b(today) -> Estate:
    return make_estate(tag="乙", today=today, merchant_no="1900000002")


def _detail_urls(e: Estate) -> list[str]:
    return [
        reverse("web:community", args=[e.community.pk]),
        reverse("web:building", args=[e.building.pk]),
        reverse("web:household", args=[e.unit.pk]),
        reverse("web:run", args=[e.run.pk]),
        reverse("web:job", args=[e.job.pk]),
    ]


LIST_URLS = [
    "web:home",
    "web:communities",
    "web:bills",
    "web:waivers",
    "web:runs",
    "web:merchants",
    "web:jobs",
]


def test_detail_pages_of_another_company_are_404(client, a, b):
    login(client, a.admin)

    for url in _detail_urls(b):
        assert client.get(url).status_code == 404, url
    for url in _detail_urls(a):
        assert client.get(url).status_code == 200, url


def test_lists_never_mention_another_companys_records(client, a, b):
    login(client, a.admin)

    for name in LIST_URLS:
        html = client.get(reverse(name)).content.decode()
        assert "甲" in html or name in ("web:jobs", "web:runs", "web:waivers"), name
        for secret in ["乙花园", "乙物业", "1-101乙", "乙支付服务协议", "1900000002"]:
            assert secret not in html, (name, secret)


def test_search_does_not_find_another_companys_households(client, a, b):
    login(client, a.admin)

    for text in ["业主乙", "沪A乙", "1-101乙", "13800138000"]:
        html = client.get(reverse("web:unit_search"), {"q": text}).content.decode()
        assert reverse("web:household", args=[b.unit.pk]) not in html, text


def test_bill_filters_and_export_with_another_companys_ids_show_nothing_of_it(client, a, b):
    login(client, a.admin)
    query = {"community": b.community.pk, "fee_item": b.fee_item.pk}

    page = client.get(reverse("web:bills"), query)
    export = b"".join(client.get(reverse("web:bills_export"), query).streaming_content).decode()

    assert "1-101乙" not in page.content.decode()
    assert "1-101乙" not in export
    assert "1-101甲" in export  # the foreign filter is refused, not applied


def test_launching_a_billing_run_for_another_companys_community_is_refused(client, a, b):
    login(client, a.admin)
    jobs_before = Job.objects.count()

    resp = client.post(
        reverse("web:run_launch"),
        {
            "community": b.community.pk,
            "period": "2026-01",
            "cycle_months": "1",
            "issued_on": "2026-01-01",
        },
    )

    assert resp.status_code == 400
    assert Job.objects.count() == jobs_before


@pytest.mark.parametrize("role", [Role.CASHIER, Role.FINANCE, Role.MANAGER, Role.AUDITOR])
def test_every_role_of_company_a_gets_404_on_company_b(client, a, b, role):
    user = make_user(a.company, role)
    login(client, user)

    for url in _detail_urls(b):
        assert client.get(url).status_code in (403, 404), (role, url)


def test_a_user_in_both_companies_sees_both(client, a, b):
    user = make_user(a.company, Role.MANAGER)
    membership_grant(user=user, company=b.company, role=Role.MANAGER)
    login(client, user)

    html = client.get(reverse("web:communities")).content.decode()

    assert "甲花园" in html and "乙花园" in html


# --- the admin ---------------------------------------------------------------------------------


def _admin_user(e: Estate):
    user = make_user(None, username=f"staff-{e.company.pk}")
    membership_grant(user=user, company=e.company, role=Role.ADMIN)
    return user


ADMIN_OBJECTS = [
    ("estates", "company", "company"),
    ("estates", "community", "community"),
    ("estates", "building", "building"),
    ("estates", "unit", "unit"),
    ("estates", "resident", "resident"),
    ("estates", "parkingspace", "parking"),
    ("billing", "feeitem", "fee_item"),
    ("billing", "bill", "bill"),
    ("billing", "billingrun", "run"),
    ("core", "job", "job"),
    ("merchants", "merchant", "merchant"),
    ("merchants", "merchantdocument", "document"),
    ("accounts", "user", "admin"),
]


def test_admin_change_pages_of_another_company_are_404(client, a, b):
    login(client, _admin_user(a))

    for app, model, attr in ADMIN_OBJECTS:
        foreign = getattr(b, attr)
        own = getattr(a, attr)
        url = reverse(f"admin:{app}_{model}_change", args=[foreign.pk])
        assert client.get(url).status_code == 404, url
        assert client.get(reverse(f"admin:{app}_{model}_change", args=[own.pk])).status_code == 200


def test_admin_lists_hold_only_own_company_rows(client, a, b):
    login(client, _admin_user(a))

    for app, model, attr in ADMIN_OBJECTS:
        resp = client.get(reverse(f"admin:{app}_{model}_changelist"))
        assert resp.status_code == 200, model
        pks = {o.pk for o in resp.context["cl"].queryset}
        assert getattr(b, attr).pk not in pks, model
        assert getattr(a, attr).pk in pks, model


def test_admin_cannot_move_a_community_into_another_company(client, a, b):
    login(client, _admin_user(a))
    url = reverse("admin:estates_community_change", args=[a.community.pk])

    resp = client.post(
        url,
        {
            "company": b.company.pk,
            "code": a.community.code,
            "name": "被移走",
            "surplus_policy": "prepay",
        },
    )

    a.community.refresh_from_db()
    assert resp.status_code == 200  # the form is shown again with the error
    assert a.community.company_id == a.company.pk
    assert a.community.name == "甲花园"


def test_admin_cannot_delete_another_companys_resident(client, a, b):
    login(client, _admin_user(a))

    resp = client.post(
        reverse("admin:estates_resident_delete", args=[b.resident.pk]), {"post": "yes"}
    )

    assert resp.status_code == 404
    assert Resident.objects.filter(pk=b.resident.pk).exists()


def test_admin_cannot_change_bills_or_journal_entries(client, a):
    login(client, _admin_user(a))

    resp = client.post(reverse("admin:billing_bill_change", args=[a.bill.pk]), {"amount_fen": "1"})

    assert resp.status_code == 403
    assert Bill.objects.get(pk=a.bill.pk).amount_fen == 22375
    assert client.get(reverse("admin:ledger_journalentry_add")).status_code == 403


def test_admin_who_is_only_cashier_has_no_admin_site(client, a):
    cashier = make_user(a.company, Role.CASHIER)
    login(client, cashier)

    resp = client.get(reverse("admin:estates_community_changelist"))

    assert resp.status_code == 302
    assert Community.objects.filter(pk=a.community.pk).exists()


def test_admin_filters_offer_only_own_company_choices(client, a, b):
    login(client, _admin_user(a))

    html = client.get(reverse("admin:estates_unit_changelist")).content.decode()

    assert "甲花园" in html
    assert "乙花园" not in html


def test_waivers_of_another_company_cannot_be_asked_seen_or_decided(client, a, b):
    from wuye.billing.models import Waiver

    other = Waiver.objects.create(
        bill=b.bill, target="principal", amount_fen=100, reason="乙的申请", requested_by=b.admin
    )
    finance = make_user(a.company, Role.FINANCE)
    login(client, finance)

    asked = client.post(
        reverse("web:waiver_new", args=[b.bill.pk]),
        {"target": "principal", "amount": "1.00", "reason": "x"},
    )
    listed = client.get(reverse("web:waivers"), {"state": "all"}).content.decode()
    approved = client.post(reverse("web:waiver_approve", args=[other.pk]))

    other.refresh_from_db()
    assert asked.status_code == 404
    assert "乙的申请" not in listed
    assert approved.status_code == 404
    assert other.state == "pending"
    assert Waiver.objects.count() == 1
