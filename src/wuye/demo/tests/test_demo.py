"""The one-command demo loads a consistent company: users, estates, merchants, bills, ledger.

Each test loads a small demo (60 units, 24 billing runs) through the real command.
"""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Sum
from stdnum.cn import ric, uscc

from wuye.accounts.models import Membership, User
from wuye.billing.models import Bill, BillingRun, FeeStandard, Waiver
from wuye.billing.selectors import negative_prepaid_balances, receivable_mismatches
from wuye.estates.models import Community, Company, MeterReading, Resident, Unit
from wuye.ledger.models import AccountKind, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.merchants.models import Merchant
from wuye.merchants.selectors import documents_expiring, fee_for

TODAY = date(2026, 11, 22)

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> str:
    out = StringIO()
    call_command("demo", "--units", "60", "--no-serve", "--today", TODAY.isoformat(), stdout=out)
    return out.getvalue()


def test_demo_creates_the_company_its_users_and_estates_and_prints_the_logins(demo):
    company = Company.objects.get()
    roles = set(Membership.objects.values_list("role", flat=True))
    resident = Resident.objects.exclude(id_card="").first()
    with connection.cursor() as cur:
        cur.execute("SELECT id_card FROM estates_resident WHERE id = %s", [resident.pk])
        raw_id_card = cur.fetchone()[0]

    assert uscc.is_valid(company.uscc)
    assert roles == {"admin", "cashier", "finance", "manager", "auditor"}
    assert User.objects.get(username="platform").is_superuser
    assert User.objects.get(username="finance").check_password("wuye-demo")
    for name in ("platform", "admin", "cashier", "finance", "manager", "auditor", "wuye-demo"):
        assert name in demo
    assert Community.objects.filter(company=company).count() == 2
    assert Unit.objects.count() == 60
    assert {"residential", "commercial", "parking"} <= set(
        Unit.objects.values_list("unit_type", flat=True)
    )
    # Some handed over mid-month during the billed year (prorated), some vacant or unsold.
    recent = Unit.objects.filter(handover_date__gte=date(2025, 11, 1))
    assert recent.exclude(handover_date__day=1).exists()
    assert Unit.objects.exclude(state="occupied").exists()
    assert ric.is_valid(resident.id_card)
    assert resident.id_card not in raw_id_card
    assert resident.id_card_masked == resident.id_card[:6] + "********" + resident.id_card[-4:]


def test_demo_bills_twelve_months_per_community_and_the_ledger_balances(demo):
    last: dict[int, object] = {}
    for meter_id, value in MeterReading.objects.order_by("meter_id", "read_date").values_list(
        "meter_id", "value"
    ):
        assert value >= last.get(meter_id, value)
        last[meter_id] = value
    periods = set(BillingRun.objects.values_list("period_start", flat=True))
    outstanding = Bill.objects.aggregate(s=Sum(F("amount_fen") - F("paid_fen") - F("waived_fen")))

    assert BillingRun.objects.filter(status="done").count() == 24
    assert min(periods) == date(2025, 11, 1) and max(periods) == date(2026, 10, 1)
    metered = set(Bill.objects.filter(kind="metered").values_list("period_start", flat=True))
    assert metered == periods  # water and power billed every month, the first one too
    assert FeeStandard.objects.filter(effective_from=date(2026, 5, 1)).exists()  # price change
    assert Bill.objects.filter(kind="opening").exists()
    assert Bill.objects.filter(kind__in=["regular", "metered"]).count() > 60 * 12
    assert Waiver.objects.filter(state="approved").exists()
    assert JournalLine.objects.aggregate(s=Sum("amount_fen"))["s"] == 0
    assert account_balance(account=AccountKind.RECEIVABLE) == outstanding["s"]
    assert account_balance(account=AccountKind.PREPAID) <= 0  # a credit balance, never owed
    assert unbalanced_entry_ids() == []
    assert receivable_mismatches() == []  # per household, not only in total
    assert negative_prepaid_balances() == []


def test_demo_merchants_charge_the_contracted_rates_and_flag_an_expiring_contract(demo):
    company = Company.objects.get()
    acquirer = Merchant.objects.get(channel="acquirer")
    wechat = Merchant.objects.get(channel="wechat")

    assert acquirer.merchant_no == "898310048990001"
    assert (
        fee_for(merchant=acquirer, card_type="debit", amount_fen=1_000_000, on_date=TODAY) == 2000
    )
    assert fee_for(merchant=acquirer, card_type="credit", amount_fen=10_000, on_date=TODAY) == 60
    assert fee_for(merchant=wechat, card_type="qr_balance", amount_fen=10_000, on_date=TODAY) == 38
    assert len(documents_expiring(company=company, within_days=30, today=TODAY)) == 1


def test_running_demo_again_on_a_loaded_database_loads_nothing_more(demo):
    bills = Bill.objects.count()

    call_command("demo", "--no-serve", stdout=StringIO())

    assert Company.objects.count() == 1
    assert Unit.objects.count() == 60
    assert Bill.objects.count() == bills
