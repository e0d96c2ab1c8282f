from datetime import date

import pytest

from wuye.billing.latefees import (
    late_fee_as_of,
    late_fee_charge,
    late_fees_for_units,
    outstanding_day_sum,
)
from wuye.billing.models import Allocation, Bill
from wuye.billing.tests.helpers import issue_bill
from wuye.core.models import AuditEvent
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.selectors import account_balance
from wuye.testing.factories import make_fee_item, make_unit, make_user

pytestmark = pytest.mark.django_db

DUE = date(2026, 1, 31)


def _bill(amount_fen=10_000, **item_kw):
    unit = make_unit()
    item_kw.setdefault("late_fee_enabled", True)
    item_kw.setdefault("late_fee_daily_ppm", 500)  # 万分之五 per day
    item = make_fee_item(unit.community.company, **item_kw)
    return issue_bill(unit=unit, fee_item=item, amount_fen=amount_fen, due_date=DUE)


def _pay(bill, amount_fen, on):
    Allocation.objects.create(
        bill=bill, source=Allocation.Source.PAYMENT, amount_fen=amount_fen, allocated_on=on
    )
    bill.paid_fen += amount_fen
    bill.save(update_fields=["paid_fen"])


def test_an_unpaid_bill_accrues_the_daily_rate_for_each_day_after_the_due_date():
    bill = _bill()
    # 10 days (Feb 1..10) × 100.00 元 × 0.05 % = 0.50 元
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 50


def test_nothing_accrues_on_or_before_the_due_date_or_before_the_bill_is_issued():
    bill = _bill()
    assert late_fee_as_of(bill=bill, as_of=DUE) == 0
    assert late_fee_as_of(bill=bill, as_of=date(2025, 12, 31)) == 0


def test_grace_days_push_the_first_late_day_back():
    bill = _bill(late_fee_grace_days=5)
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 5)) == 0
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 25


def test_a_later_start_date_is_the_anchor_and_its_own_day_does_not_count():
    bill = _bill(late_fee_start_date=date(2026, 2, 5))
    # Feb 6..10: five days
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 25


def test_an_item_without_late_fees_accrues_nothing():
    bill = _bill(late_fee_enabled=False)
    assert late_fee_as_of(bill=bill, as_of=date(2026, 12, 31)) == 0


def test_a_partial_payment_reduces_the_outstanding_from_the_day_after_it():
    bill = _bill()
    _pay(bill, 6_000, date(2026, 2, 4))
    # Feb 1..4 on 10000, Feb 5..10 on 4000: (40000 + 24000) fen·days × 0.05 % = 32 fen
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 32


def test_the_late_fee_stops_growing_once_the_bill_is_paid():
    bill = _bill()
    _pay(bill, 10_000, date(2026, 2, 5))
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 5)) == 25
    assert late_fee_as_of(bill=bill, as_of=date(2026, 6, 30)) == 25


def test_the_late_fee_as_of_a_past_date_ignores_later_payments():
    bill = _bill()
    _pay(bill, 10_000, date(2026, 3, 1))
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 50


def test_rounding_happens_once_on_the_total_not_per_day():
    # 1.01 元 × 0.05 % = 0.0505 fen a day: per-day rounding would give 0
    bill = _bill(amount_fen=101)
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 1  # 0.505 → 1 (HALF_UP)
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 9)) == 0  # 0.4545 → 0


def test_the_late_fee_never_exceeds_the_principal():
    bill = _bill(late_fee_daily_ppm=10_000)  # 1 % a day
    assert late_fee_as_of(bill=bill, as_of=date(2027, 1, 31)) == 10_000


def test_a_cap_percent_limits_the_late_fee_rounding_down():
    bill = _bill(amount_fen=10_001, late_fee_daily_ppm=10_000, late_fee_cap_percent=30)
    assert late_fee_as_of(bill=bill, as_of=date(2027, 1, 31)) == 3_000


def test_outstanding_day_sum_counts_reversed_allocations_back():
    total = outstanding_day_sum(
        amount_fen=100,
        allocations=[(date(2026, 1, 1), 100), (date(2026, 1, 3), -100)],
        first=date(2026, 1, 2),
        last=date(2026, 1, 5),
    )
    # Jan 2, 3: 0; Jan 4, 5: 100
    assert total == 200


def test_the_bulk_computation_agrees_with_the_single_bill_one():
    first = _bill()
    other = issue_bill(
        unit=first.unit, fee_item=first.fee_item, amount_fen=3_333,
        period_start=date(2026, 2, 1), due_date=date(2026, 2, 28),
    )
    _pay(first, 1_000, date(2026, 2, 20))
    as_of = date(2026, 4, 15)
    fees = late_fees_for_units(unit_ids=[first.unit_id], as_of=as_of)
    assert fees == {
        first.pk: late_fee_as_of(bill=first, as_of=as_of),
        other.pk: late_fee_as_of(bill=other, as_of=as_of),
    }
    assert all(v > 0 for v in fees.values())


def test_charging_the_late_fee_creates_a_bill_and_a_balanced_entry():
    bill = _bill()
    user = make_user(bill.company)
    as_of = date(2026, 2, 10)

    late = late_fee_charge(bill=bill, as_of=as_of, user_id=user.pk)

    assert late is not None
    assert (late.kind, late.parent_id, late.amount_fen, late.due_date) == (
        Bill.Kind.LATE_FEE, bill.pk, 50, as_of,
    )
    assert account_balance(account=AccountKind.RECEIVABLE, household_id=bill.unit_id) == 10_050
    revenue = account_balance(account=AccountKind.LATE_FEE_REVENUE, fee_item_id=bill.fee_item_id)
    assert revenue == -50
    assert AuditEvent.objects.filter(action="late_fee.charge", object_id=str(late.pk)).exists()


def test_charging_twice_as_of_the_same_day_charges_once():
    bill = _bill()
    first = late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)
    again = late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)
    assert first is not None and again is not None
    assert first.pk == again.pk
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.LATE_FEE).count() == 1


def test_a_later_charge_adds_only_what_accrued_since():
    bill = _bill()
    late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)

    second = late_fee_charge(bill=bill, as_of=date(2026, 2, 20), user_id=None)

    assert second is not None
    assert second.amount_fen == 50
    assert second.revision == 1
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 20)) == 100


def test_nothing_is_charged_when_no_late_fee_has_accrued():
    bill = _bill()
    assert late_fee_charge(bill=bill, as_of=DUE, user_id=None) is None
    assert not Bill.objects.filter(kind=Bill.Kind.LATE_FEE).exists()


def test_a_late_fee_bill_accrues_no_late_fee_of_its_own():
    bill = _bill()
    late = late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)
    assert late is not None
    assert late_fee_as_of(bill=late, as_of=date(2027, 1, 1)) == 0


def test_the_bulk_computation_can_leave_out_what_was_already_charged():
    bill = _bill()
    late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)
    as_of = date(2026, 2, 20)
    assert late_fees_for_units(unit_ids=[bill.unit_id], as_of=as_of) == {bill.pk: 100}
    assert late_fees_for_units(unit_ids=[bill.unit_id], as_of=as_of, uncharged_only=True) == {
        bill.pk: 50
    }


def test_the_daily_job_charges_each_late_fee_once():
    from wuye.billing.latefees import late_fees_charge

    bill = _bill()
    quiet = issue_bill(
        unit=bill.unit, fee_item=bill.fee_item, amount_fen=500,
        period_start=date(2026, 2, 1), due_date=date(2026, 2, 28),
    )
    as_of = date(2026, 2, 10)

    first = late_fees_charge(community_id=bill.community_id, as_of=as_of, user_id=None)
    again = late_fees_charge(community_id=bill.community_id, as_of=as_of, user_id=None)

    assert [(b.parent_id, b.amount_fen) for b in first] == [(bill.pk, 50)]
    assert again == []
    assert not Bill.objects.filter(parent=quiet).exists()


def test_the_late_fees_command_lists_then_charges(capsys):
    import json

    from django.core.management import call_command

    bill = _bill()
    code = bill.community.code
    call_command("late_fees", "--community", code, "--as-of", "2026-02-10", "--json")
    assert json.loads(capsys.readouterr().out)["late_fees_fen"] == {str(bill.pk): 50}
    call_command("late_fees", "--community", code, "--as-of", "2026-02-10", "--charge", "--json")
    assert json.loads(capsys.readouterr().out) == {"bills": 1, "total_fen": 50}
    call_command("late_fees", "--community", code, "--as-of", "2026-02-10", "--json")
    assert json.loads(capsys.readouterr().out)["late_fees_fen"] == {}


# --- properties of the day-by-day sum (no database) ----------------------------------------

from datetime import timedelta  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_days = st.integers(min_value=0, max_value=120)


@given(
    amount=st.integers(1, 10_000_000),
    allocations=st.lists(st.tuples(_days, st.integers(-5_000, 5_000)), max_size=8),
    first=_days,
    length=st.integers(-3, 150),
)
def test_the_day_sum_equals_counting_day_by_day(amount, allocations, first, length):
    base = date(2026, 1, 1)
    allocs = [(base + timedelta(days=d), a) for d, a in allocations]
    first_day = base + timedelta(days=first)
    last_day = first_day + timedelta(days=length)

    fast = outstanding_day_sum(
        amount_fen=amount, allocations=allocs, first=first_day, last=last_day
    )

    slow = 0
    day = first_day
    while day <= last_day:
        slow += max(0, amount - sum(a for on, a in allocs if on < day))
        day += timedelta(days=1)
    assert fast == slow


from hypothesis import HealthCheck, settings  # noqa: E402


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amount=st.integers(1, 5_000_000),
    ppm=st.integers(1, 20_000),
    cap_percent=st.integers(0, 100),
    grace=st.integers(0, 20),
    payments=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 2_000_000)), max_size=4),
)
def test_the_late_fee_is_the_capped_day_sum_rounded_once_and_never_shrinks(
    amount, ppm, cap_percent, grace, payments
):
    bill = _bill(
        amount_fen=amount, late_fee_daily_ppm=ppm, late_fee_cap_percent=cap_percent,
        late_fee_grace_days=grace,
    )
    paid = 0
    allocs = []
    for day, want in sorted(payments):
        pay = min(want, amount - paid)
        if pay > 0:
            on = DUE + timedelta(days=day)
            _pay(bill, pay, on)
            allocs.append((on, pay))
            paid += pay
    cap = amount * cap_percent // 100
    previous = 0
    for offset in sorted({0, 1, grace, grace + 1, 30, 90, 365, 2_000}):
        as_of = DUE + timedelta(days=offset)
        fee = late_fee_as_of(bill=bill, as_of=as_of)
        fen_days = outstanding_day_sum(
            amount_fen=amount, allocations=allocs,
            first=DUE + timedelta(days=grace + 1), last=as_of,
        )
        exact = (2 * fen_days * ppm + 1_000_000) // 2_000_000  # half-up of fen_days·ppm/1e6
        assert fee == min(exact, cap)
        assert previous <= fee <= cap <= amount
        previous = fee
