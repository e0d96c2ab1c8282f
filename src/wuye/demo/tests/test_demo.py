"""The one-command demo loads a consistent company: users, estates, merchants, bills, ledger.

Each test loads a small demo (60 units, 24 billing runs) through the real command.
"""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Sum
from django.utils import timezone
from stdnum.cn import ric, uscc

from wuye.accounts.models import Membership, User
from wuye.billing.latefees import late_fees_for_units
from wuye.billing.models import Bill, BillingRun, FeeStandard, Waiver
from wuye.billing.selectors import (
    negative_prepaid_balances,
    prepaid_balance,
    receivable_mismatches,
)
from wuye.core.integrity import dangling_dimensions
from wuye.core.periods import add_months
from wuye.counter.models import CashMovement, Shift
from wuye.counter.selectors import drawer_cash, shift_report
from wuye.demo.history import DEMO_CARD_PASSWORD
from wuye.estates.models import Community, Company, MeterReading, Resident, Unit
from wuye.ledger.models import AccountKind, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.merchants.models import Merchant
from wuye.merchants.selectors import documents_expiring, fee_for
from wuye.payments.models import OrderBill, Payment, PrepaidCard, Refund
from wuye.receipts.models import Receipt

TODAY = date(2026, 11, 22)

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> str:
    out = StringIO()
    call_command(
        "demo",
        *("--units", "60", "--no-serve", "--no-channels", "--today", TODAY.isoformat()),
        stdout=out,
    )
    return out.getvalue()


def test_demo_adds_card_qr_and_notice_histories_through_their_channels():
    """The whole command: the terminal registered, card, WeChat Pay and Alipay payments (one by
    Huabei), and the ledger still balanced (each history is tested in its own part)."""
    out = StringIO()
    call_command("demo", "--units", "60", "--no-serve", "--today", TODAY.isoformat(), stdout=out)

    from wuye.terminals.models import Terminal

    assert Terminal.objects.filter(tid="10000001").exists()
    channels = set(Payment.objects.values_list("channel", flat=True))
    assert {"cash", "prepaid", "card", "wechat", "alipay"} <= channels
    assert Payment.objects.filter(channel="alipay", funding_source__contains="PCREDIT").exists()
    assert Refund.objects.filter(channel="card").exists()  # the void or the later refund
    assert unbalanced_entry_ids() == []


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
    assert dangling_dimensions() == []  # the columns without a database foreign key
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


def test_demo_history_has_closed_shifts_payments_a_refund_a_void_and_overdue_households(demo):
    cashiers = {u.username: u for u in User.objects.filter(username__in=["cashier", "cashier2"])}
    finance = User.objects.get(username="finance")
    shifts = list(Shift.objects.order_by("opened_at"))
    # The counter history's own (card, QR and notice payments have their tests in their parts).
    payments = list(Payment.objects.filter(channel__in=["cash", "prepaid"]))
    partly_paid = Bill.objects.filter(
        paid_fen__gt=0, paid_fen__lt=F("amount_fen") - F("waived_fen")
    )
    overdue = Bill.objects.filter(
        due_date__lt=TODAY, paid_fen__lt=F("amount_fen") - F("waived_fen")
    )
    refund = Refund.objects.get(channel__in=["cash", "prepaid"])
    void = Receipt.objects.get(state="void")
    card = PrepaidCard.objects.order_by("pk").first()
    opened = set(Shift.objects.values_list("community_id", "cashier_id"))

    # Every working day of the last three months and this one, one closed shift per community.
    assert {timezone.localdate(s.opened_at) for s in shifts} >= {
        date(2026, 8, 3),
        date(2026, 11, 20),
    }
    assert all(timezone.localdate(s.opened_at).weekday() < 5 for s in shifts)
    assert len(opened) == 2 and {c for _, c in opened} == {u.pk for u in cashiers.values()}
    assert all(s.state == "closed" for s in shifts)
    for s in shifts:  # each report adds up, as closed
        assert shift_report(shift=s).check() == [], s
    short = Shift.objects.exclude(difference_fen=0).get()
    assert short.difference_fen == -1000 and short.difference_note
    assert CashMovement.objects.filter(kind="paid_out", reason="解款存入银行").exists()
    for u in cashiers.values():  # the drawers are empty between shifts
        assert sum(drawer_cash(cashier_id=u.pk, community_id=c) for c, _ in opened) == 0

    # Payments in office hours, each in the month after its newest bill, never in the future.
    assert len(payments) > 20
    for p in payments:
        local = timezone.localtime(p.paid_at)
        assert date(2026, 8, 1) <= local.date() < TODAY and 8 <= local.hour < 18, p
        chosen = OrderBill.objects.filter(order_id=p.order_id).values("bill_id")
        newest = Bill.objects.filter(pk__in=chosen).order_by("-period_start").first()
        if newest is not None:
            assert newest.period_start < local.date().replace(day=1) <= add_months(
                newest.period_start, 1
            ) or newest.period_start < date(2026, 7, 1), p
    assert any(p.channel == "cash" and (p.change_fen or 0) > 0 for p in payments)
    assert any(p.channel == "prepaid" for p in payments)
    assert any(p.prepaid_fen > 0 for p in payments)  # a prepayment beyond the bills
    assert partly_paid.exists()
    assert card is not None and check_password(DEMO_CARD_PASSWORD, card.password_hash)
    assert Payment.objects.filter(channel="prepaid", unit_id=card.unit_id).exists()

    # Paid, prepaid and overdue households (late fees accruing), and a recent month mostly open.
    paid_units = {p.unit_id for p in payments}
    owing_units = set(overdue.values_list("unit_id", flat=True))
    assert paid_units - owing_units  # some have paid everything due
    assert len(owing_units - paid_units) >= 5
    assert late_fees_for_units(unit_ids=owing_units, as_of=TODAY)
    assert any(prepaid_balance(unit_id=u) > 0 for u in paid_units)
    rate = {
        period: paid / (amount - waived)
        for period, amount, paid, waived in Bill.objects.filter(kind__in=["regular", "metered"])
        .values_list("period_start")
        .annotate(Sum("amount_fen"), Sum("paid_fen"), Sum("waived_fen"))
    }
    assert rate[date(2026, 10, 1)] < 0.5 < rate[date(2026, 1, 1)]

    # A full refund of a cash payment approved by finance; its receipt voided the same way.
    assert refund.approved_by == finance and refund.amount_fen == refund.payment.amount_fen
    assert refund.payment.channel == "cash" and refund.shift is not None
    assert void.number == refund.payment.receipt_number
    assert void.void_requested_by == cashiers["cashier"] and void.void_approved_by == finance

    # The ledger still holds together.
    assert unbalanced_entry_ids() == []
    assert receivable_mismatches() == []
    assert negative_prepaid_balances() == []
    assert "收费历史" in demo and "135790" in demo
