"""Ledger invariants under random sequences of billing operations (hypothesis, stateful).

Operations: issue a bill (the billing run's ledger shape), pay part of it, deposit prepaid
money (general or earmarked), offset prepaid balances, request and approve or reject waivers
on principal and on late fees, charge late fees, let time pass; and bad requests that must be
refused without changing anything. After every step:

- every journal entry balances;
- each household's RECEIVABLE balance equals the outstanding of its bills, and its statement
  as of today says the same;
- no prepaid balance (household × earmark) is negative;
- no bill is settled beyond its amount, and its allocations add up to paid + waived;
- the late fee owed on a bill is never below what was charged on it nor above its principal.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from wuye.accounts.models import Membership, Role, User
from wuye.billing.latefees import (
    late_fee_as_of,
    late_fee_charge,
    late_fee_charged,
    late_fees_for_units,
)
from wuye.billing.models import Allocation, Bill, Waiver
from wuye.billing.prepayments import prepaid_offset_apply, prepayment_deposit
from wuye.billing.selectors import household_statement
from wuye.billing.tests.helpers import issue_bill, pay_bill
from wuye.billing.waivers import (
    WaiverError,
    waiver_approve,
    waiver_reject,
    waiver_request,
)
from wuye.ledger.models import AccountKind, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.testing.factories import (
    make_building,
    make_community,
    make_fee_item,
    make_unit,
)

START = date(2026, 1, 1)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
amounts = st.integers(min_value=1, max_value=200_000)
fractions = st.integers(min_value=1, max_value=100)


def _staff(company, role):
    """A user with ``role`` in ``company``, without hashing a password (fast)."""
    user = User.objects.create(username=f"{role}-{company.pk}")
    Membership.objects.create(user=user, company=company, role=role)
    return user


class BillingLedger(RuleBasedStateMachine):
    bills = Bundle("bills")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        community = make_community()
        company = community.company
        building = make_building(community)
        self.community = community
        self.units = [make_unit(building) for _ in range(2)]
        self.fee_items = [
            make_fee_item(company, late_fee_enabled=True, late_fee_daily_ppm=3_000),
            make_fee_item(
                company, name="停车费", kind="parking", prepay_offset=False,
                late_fee_enabled=True, late_fee_daily_ppm=500, late_fee_grace_days=10,
                late_fee_cap_percent=20,
            ),
        ]
        self.cashier = _staff(company, Role.CASHIER)
        self.finance = _staff(company, Role.FINANCE)
        self.today = START
        self.revision = 0
        self.deposits = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- operations -------------------------------------------------------------------

    @rule(
        target=bills, unit=st.integers(0, 1), item=st.integers(0, 1), amount=amounts,
        then_offset=st.booleans(),
    )
    def bill(self, unit, item, amount, then_offset):
        """Issue a bill; like the billing run, then offset prepaid balances (or not)."""
        self.revision += 1
        issued = issue_bill(
            unit=self.units[unit], fee_item=self.fee_items[item], amount_fen=amount,
            period_start=START, issued_on=self.today, due_date=self.today + timedelta(days=15),
            revision=self.revision,
        )
        if then_offset:
            self.offset()
        return issued

    @rule(days=st.integers(1, 90))
    def time_passes(self, days):
        self.today += timedelta(days=days)

    @rule(bill=bills, fraction=fractions)
    def pay(self, bill, fraction):
        bill.refresh_from_db()
        amount = -(-bill.outstanding_fen * fraction // 100)
        if amount > 0:
            pay_bill(bill=bill, amount_fen=amount, on_date=self.today)

    @rule(
        unit=st.integers(0, 1), item=st.sampled_from([None, 0, 1]), amount=amounts,
        then_offset=st.booleans(),
    )
    def deposit(self, unit, item, amount, then_offset):
        self.deposits += 1
        prepayment_deposit(
            unit=self.units[unit], amount_fen=amount,
            fee_item=None if item is None else self.fee_items[item],
            on_date=self.today, reference="", idempotency_key=f"dep-{self.deposits}",
        )
        if then_offset:
            self.offset()

    @rule()
    def offset(self):
        applied = prepaid_offset_apply(community_id=self.community.pk, on_date=self.today)
        event("offset applied" if applied else "offset found nothing")

    @rule(bill=bills, fraction=fractions, approve=st.booleans())
    def waive_principal(self, bill, fraction, approve):
        bill.refresh_from_db()
        amount = -(-bill.outstanding_fen * fraction // 100)
        if amount <= 0:
            return
        waiver = waiver_request(
            bill=bill, target=Waiver.Target.PRINCIPAL, amount_fen=amount, reason="测试",
            requested_by=self.cashier,
        )
        self._decide(waiver, approve)

    @rule(bill=bills, fraction=st.none() | fractions, approve=st.booleans())
    def waive_late_fee(self, bill, fraction, approve):
        if bill.kind == Bill.Kind.LATE_FEE:
            return
        owed = late_fee_as_of(bill=bill, as_of=self.today) - late_fee_charged(bill=bill)
        amount = None if fraction is None else -(-owed * fraction // 100)
        if amount == 0:
            return
        waiver = waiver_request(
            bill=bill, target=Waiver.Target.LATE_FEE, amount_fen=amount, reason="测试",
            requested_by=self.cashier,
        )
        self._decide(waiver, approve)

    def _decide(self, waiver, approve):
        event(f"{waiver.target} waiver {'approved' if approve else 'rejected'}")
        if approve:
            waiver_approve(waiver=waiver, approver=self.finance, on_date=self.today, now=NOW)
        else:
            waiver_reject(waiver=waiver, approver=self.finance, now=NOW)

    @rule(target=bills, bill=bills, days=st.integers(0, 60))
    def charge_late_fee(self, bill, days):
        self.today += timedelta(days=days)
        late = late_fee_charge(bill=bill, as_of=self.today, user_id=None)
        event("late fee charged" if late else "no late fee to charge")
        return multiple() if late is None else multiple(late)

    @rule(bill=bills, extra=st.integers(1, 1_000))
    def over_waive_is_refused(self, bill, extra):
        bill.refresh_from_db()
        before = self._snapshot()
        with pytest.raises(WaiverError):
            waiver_request(
                bill=bill, target=Waiver.Target.PRINCIPAL,
                amount_fen=max(bill.outstanding_fen, 0) + extra, reason="超额",
                requested_by=self.cashier,
            )
        assert self._snapshot() == before

    @rule(bill=bills)
    def self_approval_is_refused(self, bill):
        bill.refresh_from_db()
        if bill.outstanding_fen <= 0:
            return
        waiver = waiver_request(
            bill=bill, target=Waiver.Target.PRINCIPAL, amount_fen=1, reason="自批",
            requested_by=self.finance,
        )
        before = self._snapshot()
        with pytest.raises(WaiverError):
            waiver_approve(waiver=waiver, approver=self.finance, on_date=self.today, now=NOW)
        assert self._snapshot() == before

    def _snapshot(self):
        return (
            JournalLine.objects.count(),
            Allocation.objects.count(),
            Bill.objects.aggregate(p=Sum("paid_fen"), w=Sum("waived_fen")),
        )

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def every_entry_balances(self):
        assert unbalanced_entry_ids() == []

    @invariant()
    def receivables_equal_outstanding_bills(self):
        for unit in self.units:
            outstanding = sum(b.outstanding_fen for b in Bill.objects.filter(unit=unit))
            receivable = account_balance(account=AccountKind.RECEIVABLE, household_id=unit.pk)
            assert receivable == outstanding
            statement = household_statement(unit_id=unit.pk, as_of=self.today)
            assert statement.outstanding_fen == outstanding

    @invariant()
    def prepaid_balances_are_never_negative(self):
        rows = (
            JournalLine.objects.filter(account=AccountKind.PREPAID)
            .values("household_id", "fee_item_id")
            .annotate(s=Sum("amount_fen"))
        )
        for row in rows:
            assert row["s"] <= 0, row  # credit balance

    @invariant()
    def bills_are_never_over_settled(self):
        settled = dict(
            Allocation.objects.values("bill_id")
            .annotate(s=Sum("amount_fen"))
            .values_list("bill_id", "s")
        )
        for bill in Bill.objects.all():
            assert 0 <= bill.paid_fen + bill.waived_fen <= bill.amount_fen
            assert settled.get(bill.pk, 0) == bill.paid_fen + bill.waived_fen

    @invariant()
    def late_fees_stay_between_charged_and_principal(self):
        owed = late_fees_for_units(unit_ids=[u.pk for u in self.units], as_of=self.today)
        charged = dict(
            Bill.objects.filter(kind=Bill.Kind.LATE_FEE)
            .values("parent_id")
            .annotate(s=Sum("amount_fen"))
            .values_list("parent_id", "s")
        )
        for bill in Bill.objects.exclude(kind=Bill.Kind.LATE_FEE):
            assert charged.get(bill.pk, 0) <= owed.get(bill.pk, 0) <= max(bill.amount_fen, 0)


@pytest.mark.django_db
def test_ledger_invariants_hold_under_random_operations():
    run_state_machine_as_test(
        BillingLedger,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        ),
    )
