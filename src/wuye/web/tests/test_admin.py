"""The admin: every model registered, residents' ID numbers masked, the journal read-only."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.services import membership_grant
from wuye.estates.models import Resident
from wuye.estates.services import resident_set_id_card
from wuye.testing.factories import make_user
from wuye.web.tests.scenario import login, make_estate

pytestmark = pytest.mark.django_db

ID_CARD = "11010519491231002X"


@pytest.fixture
def estate():
    return make_estate(tag="甲", today=timezone.localdate(), merchant_no="1900000001")


@pytest.fixture
def staff(estate):
    user = make_user(None, username="staff")
    membership_grant(user=user, company=estate.company, role=Role.ADMIN)
    return user


def test_every_model_of_the_core_apps_is_in_the_admin():
    labels = ["core", "accounts", "estates", "merchants", "billing", "ledger", "imports"]

    missing = [
        m._meta.label
        for label in labels
        for m in apps.get_app_config(label).get_models()
        if m not in admin.site._registry
    ]

    assert missing == []


def test_every_admin_list_opens_for_a_company_administrator(client, staff):
    login(client, staff)

    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(_request(staff)):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


def test_resident_admin_shows_only_the_masked_id_card(client, estate, staff):
    resident_set_id_card(resident=estate.resident, id_card=ID_CARD)
    login(client, staff)

    html = client.get(
        reverse("admin:estates_resident_change", args=[estate.resident.pk])
    ).content.decode()

    assert "110105********002X" in html
    assert ID_CARD not in html


def test_resident_admin_stores_a_typed_id_card_encrypted_masked_and_hashed(client, estate, staff):
    login(client, staff)
    url = reverse("admin:estates_resident_change", args=[estate.resident.pk])

    resp = client.post(
        url,
        {
            "unit": estate.unit.pk,
            "name": "业主甲",
            "role": "owner",
            "phone": "13800138000",
            "new_id_card": ID_CARD,
            "is_primary": "on",
        },
    )

    r = Resident.objects.get(pk=estate.resident.pk)
    assert resp.status_code == 302
    assert r.id_card == ID_CARD
    assert r.id_card_masked == "110105********002X"
    assert len(r.id_card_hash) == 64


def test_resident_admin_refuses_a_bad_id_card_without_echoing_it(client, estate, staff):
    login(client, staff)
    url = reverse("admin:estates_resident_change", args=[estate.resident.pk])

    resp = client.post(
        url,
        {
            "unit": estate.unit.pk,
            "name": "业主甲",
            "role": "owner",
            "phone": "13800138000",
            "new_id_card": "110105194912310021",
        },
    )

    assert resp.status_code == 200
    assert "身份证号无效" in resp.content.decode()
    assert Resident.objects.get(pk=estate.resident.pk).id_card_masked == "110101********1234"


def test_company_administrator_cannot_make_anyone_superuser(client, estate, staff):
    login(client, staff)
    url = reverse("admin:accounts_user_change", args=[estate.admin.pk])

    page = client.get(url).content.decode()

    assert 'name="is_superuser"' not in page


def test_admin_is_in_english_when_english_is_chosen(client, staff):
    login(client, staff)
    client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})

    html = client.get(reverse("admin:estates_unit_changelist")).content.decode()

    assert "Floor area (m²)" in html
    assert "Unit type" in html


def test_company_administrator_needs_no_django_permissions_to_use_the_admin(client, estate):
    user = make_user(estate.company, Role.ADMIN, is_staff=True)  # no group, no permissions
    login(client, user)

    units = client.get(reverse("admin:estates_unit_changelist"))
    entries = client.get(reverse("admin:ledger_journalentry_changelist"))
    add_entry = client.get(reverse("admin:ledger_journalentry_add"))

    assert units.status_code == 200
    assert estate.unit.label in units.content.decode()
    assert entries.status_code == 200
    assert add_entry.status_code == 403


def test_staff_user_with_only_a_cashier_role_sees_nothing_in_the_admin(client, estate):
    user = make_user(estate.company, Role.CASHIER, is_staff=True)
    login(client, user)

    assert client.get(reverse("admin:estates_unit_changelist")).status_code == 403
