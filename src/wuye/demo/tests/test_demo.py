"""The one-command demo loads a consistent company: users, estates, merchants, bills, ledger."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Sum
from stdnum.cn import ric, uscc

from wuye.accounts.models import Membership, User
from wuye.billing.models import Bill, BillingRun
from wuye.estates.models import Community, Company, MeterReading, Resident, Unit
from wuye.ledger.models import AccountKind, JournalLine
from wuye.ledger.selectors import account_balance
from wuye.merchants.models import Merchant
from wuye.merchants.selectors import documents_expiring, fee_for

TODAY = date(2026, 11, 22)

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> str:
    out = StringIO()
    call_command("demo", "--units", "60", "--no-serve", "--today", TODAY.isoformat(), stdout=out)
    return out.getvalue()


def test_demo_creates_one_login_per_role_and_prints_them(demo):
    roles = set(Membership.objects.values_list("role", flat=True))

    assert roles == {"admin", "cashier", "finance", "manager", "auditor"}
    assert User.objects.get(username="platform").is_superuser
    assert User.objects.get(username="finance").check_password("wuye-demo")
    for name in ("platform", "admin", "cashier", "finance", "manager", "auditor", "wuye-demo"):
        assert name in demo


def test_demo_company_has_a_valid_uscc_and_two_communities_with_the_units_asked_for(demo):
    company = Company.objects.get()

    assert uscc.is_valid(company.uscc)
    assert Community.objects.filter(company=company).count() == 2
    assert Unit.objects.count() == 60
    assert set(Unit.objects.values_list("unit_type", flat=True)) == {
        "residential",
        "commercial",
        "parking",
    }


def test_demo_residents_have_valid_encrypted_id_cards(demo):
    resident = Resident.objects.exclude(id_card="").first()

    assert ric.is_valid(resident.id_card)
    assert resident.id_card_masked.startswith(resident.id_card[:6])
    with connection.cursor() as cur:
        cur.execute("SELECT id_card FROM estates_resident WHERE id = %s", [resident.pk])
        assert resident.id_card not in cur.fetchone()[0]


def test_demo_meter_readings_never_go_down(demo):
    last: dict[int, object] = {}
    for meter_id, value in MeterReading.objects.order_by("meter_id", "read_date").values_list(
        "meter_id", "value"
    ):
        assert value >= last.get(meter_id, value)
        last[meter_id] = value


def test_demo_bills_twelve_months_per_community_and_the_ledger_balances(demo):
    assert BillingRun.objects.filter(status="done").count() == 24
    assert Bill.objects.filter(kind="opening").exists()
    assert Bill.objects.filter(kind__in=["regular", "metered"]).count() > 60 * 12

    assert JournalLine.objects.aggregate(s=Sum("amount_fen"))["s"] == 0
    outstanding = Bill.objects.aggregate(s=Sum(F("amount_fen") - F("paid_fen") - F("waived_fen")))
    assert account_balance(account=AccountKind.RECEIVABLE) == outstanding["s"]


def test_demo_merchants_charge_the_contracted_rates_and_flag_an_expiring_contract(demo):
    company = Company.objects.get()
    acquirer = Merchant.objects.get(channel="acquirer")

    assert acquirer.merchant_no == "898310048990001"
    assert (
        fee_for(merchant=acquirer, card_type="debit", amount_fen=1_000_000, on_date=TODAY) == 2000
    )
    assert fee_for(merchant=acquirer, card_type="credit", amount_fen=10_000, on_date=TODAY) == 60
    assert len(documents_expiring(company=company, within_days=30, today=TODAY)) == 1


def test_running_demo_again_on_a_loaded_database_loads_nothing_more(demo):
    out = StringIO()

    call_command("demo", "--no-serve", stdout=out)

    assert Company.objects.count() == 1
    assert Unit.objects.count() == 60
