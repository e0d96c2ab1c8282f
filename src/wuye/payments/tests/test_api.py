"""POST /api/payments/: the counter's cash payment as JSON."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from wuye.counter.services import shift_open
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance
from wuye.payments.models import Order, Payment
from wuye.payments.services import order_create
from wuye.payments.tests.helpers import household, key
from wuye.receipts.models import Receipt

pytestmark = pytest.mark.django_db
URL = "/api/payments/"


@pytest.fixture
def counter():
    hh = household()
    shift_open(
        cashier=hh.cashier,
        community=hh.community,
        counter_name="1号窗口",
        opening_float_fen=0,
        now=timezone.now(),
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(hh.cashier)
    client.get("/login/")  # a page that sets the CSRF cookie
    return hh, client


def _post(client: Client, body: object, **headers: str):
    token = client.cookies["csrftoken"].value
    return client.post(
        URL,
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": token, **headers},
    )


def test_a_payment_is_taken_and_the_same_key_answers_the_same_payment(counter):
    hh, client = counter
    bill = hh.bill(10_000)
    body = {"unit_id": hh.unit.pk, "bill_ids": [bill.pk], "tendered_fen": 12_000}

    first = _post(client, {**body, "idempotency_key": "api-1"})
    again = _post(client, body, **{"Idempotency-Key": "api-1"})

    assert first.status_code == 201, first.content
    data = first.json()
    assert (data["amount_fen"], data["change_fen"], data["allocated_fen"]) == (
        10_000,
        2_000,
        10_000,
    )
    assert Receipt.objects.filter(number=data["receipt_number"]).exists()
    assert again.status_code == 200 and again.json() == data
    assert Payment.objects.count() == 1
    assert account_balance(account=AccountKind.CASH, channel="cash") == 10_000
    assert Payment.objects.get().shift.cashier_id == hh.cashier.pk


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bill_ids": []}, "unit_id"),
        ({"unit_id": "1"}, "unit_id"),
        ({"unit_id": 0, "bill_ids": "1"}, "bill_ids"),
        ({"unit_id": 0, "bill_ids": [1], "idempotency_key": ""}, "idempotency_key"),
        ({"unit_id": 0, "bill_ids": [1], "idempotency_key": "k", "amount_fen": 1.5}, "amount_fen"),
        (
            {"unit_id": 0, "bill_ids": [1], "idempotency_key": "k", "tendered_fen": -1},
            "tendered_fen",
        ),
        ({"unit_id": 0, "bill_ids": [], "idempotency_key": "k"}, "bill_ids"),
        ([1, 2], ""),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(counter, body, field):
    hh, client = counter
    if isinstance(body, dict) and body.get("unit_id") == 0:
        body["unit_id"] = hh.unit.pk

    response = _post(client, body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Order.objects.count() == 0


def test_refusals_by_the_service_are_400_or_409(counter):
    hh, client = counter
    bill = hh.bill(10_000)
    pending = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="cash",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=timezone.now(),
    )
    body = {"unit_id": hh.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "api-2"}

    taken = _post(client, body)
    short = _post(
        client,
        {**body, "idempotency_key": "api-3", "bill_ids": [], "amount_fen": 100, "tendered_fen": 50},
    )

    assert taken.status_code == 409 and str(pending.pk) in taken.json()["error"]
    assert short.status_code == 400
    assert Payment.objects.count() == 0


def test_a_household_of_another_company_is_a_404_and_no_shift_a_403(counter):
    _hh, client = counter
    other = household()
    bill = other.bill(10_000)

    foreign = _post(
        client, {"unit_id": other.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "k"}
    )
    client.force_login(other.cashier)
    client.get("/login/")
    no_shift = _post(
        client, {"unit_id": other.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "k"}
    )

    assert foreign.status_code == 404
    assert no_shift.status_code == 403
    assert Payment.objects.count() == 0


def test_without_login_csrf_or_post_it_refuses(counter):
    hh, client = counter
    anonymous = Client(enforce_csrf_checks=True)
    no_token = Client(enforce_csrf_checks=True)
    no_token.force_login(hh.cashier)

    assert anonymous.post(URL, data="{}", content_type="application/json").status_code == 403
    assert no_token.post(URL, data="{}", content_type="application/json").status_code == 403
    assert client.get(URL).status_code == 405


def _login(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/login/")
    return client


def test_the_scope_follows_the_memberships_communities_roles_and_shift(counter):
    hh, _client = counter
    from wuye.accounts.models import Membership, Role, User
    from wuye.testing.factories import make_building, make_community, make_unit

    here = hh.bill(10_000)
    # A second community of the same company, with a household and a bill.
    there = make_community(hh.community.company)
    there_unit = make_unit(make_building(there))
    there_bill = hh.bill(10_000, month=2)
    type(there_bill).objects.filter(pk=there_bill.pk).update(unit=there_unit, community=there)
    # A cashier limited to the first community, with an auditor role elsewhere (not counter).
    limited = User.objects.create(username="limited-cashier")
    member = Membership.objects.create(user=limited, company=hh.community.company, role="cashier")
    member.communities.add(hh.community)
    Membership.objects.create(user=limited, company=make_community().company, role=Role.AUDITOR)
    shift_open(
        cashier=limited,
        community=hh.community,
        counter_name="2号窗口",
        opening_float_fen=0,
        now=timezone.now(),
    )
    auditor = User.objects.create(username="auditor-only")
    Membership.objects.create(user=auditor, company=hh.community.company, role=Role.AUDITOR)
    client = _login(limited)

    outside = _post(
        client, {"unit_id": there_unit.pk, "bill_ids": [there_bill.pk], "idempotency_key": "s1"}
    )
    no_role = _post(
        _login(auditor), {"unit_id": hh.unit.pk, "bill_ids": [here.pk], "idempotency_key": "s2"}
    )
    # The company-wide cashier may see the second community, but the shift is in the first.
    elsewhere = _post(
        _login(hh.cashier),
        {"unit_id": there_unit.pk, "bill_ids": [there_bill.pk], "idempotency_key": "s3"},
    )
    inside = _post(client, {"unit_id": hh.unit.pk, "bill_ids": [here.pk], "idempotency_key": "s4"})

    assert outside.status_code == 404 and outside.json()["field"] == "unit_id"
    assert no_role.status_code == 403
    assert elsewhere.status_code == 403
    assert inside.status_code == 201, inside.content
    assert Payment.objects.get().cashier_id == limited.pk


def test_the_role_is_checked_before_the_input_and_a_superuser_pays_anywhere(counter):
    hh, _client = counter
    from wuye.accounts.models import Membership, Role, User

    auditor = User.objects.create(username="auditor-bad-input")
    Membership.objects.create(user=auditor, company=hh.community.company, role=Role.AUDITOR)
    root = User.objects.create(username="root", is_superuser=True, is_staff=True)
    bill = hh.bill(10_000)

    bad_input_no_role = _post(_login(auditor), {"unit_id": "x"})
    root_client = _login(root)
    no_shift = _post(
        root_client, {"unit_id": hh.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "r1"}
    )
    missing = _post(root_client, {"unit_id": 10**9, "bill_ids": [1], "idempotency_key": "r2"})
    shift_open(
        cashier=root,
        community=hh.community,
        counter_name="3号窗口",
        opening_float_fen=0,
        now=timezone.now(),
    )
    paid = _post(
        root_client, {"unit_id": hh.unit.pk, "bill_ids": [bill.pk], "idempotency_key": "r3"}
    )

    assert bad_input_no_role.status_code == 403
    assert no_shift.status_code == 403
    assert missing.status_code == 404 and missing.json()["field"] == "unit_id"
    assert paid.status_code == 201, paid.content
    assert Payment.objects.get().cashier_id == root.pk
