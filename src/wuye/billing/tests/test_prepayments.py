from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from wuye.billing.models import Allocation, Bill
from wuye.billing.prepayments import (
    PrepaymentError,
    PrepaymentKeyConflict,
    prepaid_balance,
    prepaid_offset_apply,
    prepayment_deposit,
)
from wuye.billing.selectors import prepaid_balances
from wuye.billing.tests.helpers import issue_bill
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.testing.factories import make_building, make_company, make_fee_item, make_unit

pytestmark = pytest.mark.django_db

JAN = date(2026, 1, 1)
FEB = date(2026, 2, 1)


@pytest.fixture
def unit():
    return make_unit()


@pytest.fixture
def property_fee(unit):
    return make_fee_item(unit.community.company, name="物业费")


@pytest.fixture
def parking_fee(unit):
    return make_fee_item(unit.community.company, name="停车费", kind="parking")


def _deposit(unit, amount, key, fee_item=None, on=JAN, **kw):
    return prepayment_deposit(
        unit=unit, amount_fen=amount, fee_item=fee_item, on_date=on, reference="R1",
        idempotency_key=key, **kw,
    )


def _receivable(unit):
    return account_balance(account=AccountKind.RECEIVABLE, household_id=unit.pk)


def test_a_deposit_credits_the_prepaid_balance_and_debits_where_the_money_came_from(unit):
    entry = _deposit(unit, 50_000, "d1", channel="", cashier_id=None)
    assert prepaid_balance(unit_id=unit.pk) == 50_000
    assert prepaid_balance(unit_id=unit.pk, fee_item_id=None) == 50_000
    assert account_balance(account=AccountKind.CASH, community_id=unit.community_id) == 50_000
    assert entry.kind == JournalEntry.Kind.PAYMENT


def test_an_opening_balance_deposit_is_an_opening_entry(unit, property_fee):
    entry = _deposit(unit, 1_000, "o1", property_fee, source_account=AccountKind.OPENING_BALANCE)
    assert entry.kind == JournalEntry.Kind.OPENING
    assert prepaid_balance(unit_id=unit.pk, fee_item_id=property_fee.pk) == 1_000
    assert prepaid_balance(unit_id=unit.pk, fee_item_id=None) == 0


def test_balances_are_as_of_a_date(unit):
    _deposit(unit, 100, "a", on=JAN)
    _deposit(unit, 200, "b", on=FEB)
    assert prepaid_balance(unit_id=unit.pk, as_of=date(2026, 1, 31)) == 100
    assert prepaid_balance(unit_id=unit.pk, as_of=FEB) == 300


def test_the_same_key_deposits_once(unit):
    first = _deposit(unit, 500, "same")
    again = _deposit(unit, 500, "same")
    assert first.pk == again.pk
    assert prepaid_balance(unit_id=unit.pk) == 500


def test_the_same_key_for_a_different_deposit_is_refused(unit):
    _deposit(unit, 500, "same")
    with pytest.raises(PrepaymentKeyConflict):
        _deposit(unit, 600, "same")
    assert prepaid_balance(unit_id=unit.pk) == 500


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"amount_fen": 0}, "amount_fen"),
        ({"amount_fen": -1}, "amount_fen"),
        ({"amount_fen": 1.5}, "amount_fen"),
        ({"source_account": AccountKind.PREPAID}, "source_account"),
        ({"source_account": AccountKind.RECEIVABLE}, "source_account"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_bad_deposits_are_refused_naming_the_field_and_write_nothing(unit, kw, field):
    args = {
        "unit": unit, "amount_fen": 100, "on_date": JAN, "reference": "", "idempotency_key": "k",
    }
    args.update(kw)
    with pytest.raises(PrepaymentError, match=field):
        prepayment_deposit(**args)
    assert not JournalEntry.objects.exists()


def test_an_earmark_for_another_companys_fee_item_is_refused(unit):
    foreign = make_fee_item(make_company())
    with pytest.raises(PrepaymentError, match="fee_item"):
        _deposit(unit, 100, "x", foreign)


def test_the_offset_pays_the_oldest_bills_first_and_keeps_the_ledger_in_step(unit, property_fee):
    older = issue_bill(unit=unit, fee_item=property_fee, amount_fen=8_000, period_start=JAN)
    newer = issue_bill(unit=unit, fee_item=property_fee, amount_fen=8_000, period_start=FEB)
    _deposit(unit, 10_000, "d")

    applied = prepaid_offset_apply(community_id=unit.community_id, on_date=FEB)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert applied == 10_000
    assert (older.paid_fen, newer.paid_fen) == (8_000, 2_000)
    assert prepaid_balance(unit_id=unit.pk) == 0
    assert _receivable(unit) == older.outstanding_fen + newer.outstanding_fen == 6_000
    allocations = Allocation.objects.filter(source=Allocation.Source.PREPAID).order_by("bill_id")
    assert [(a.bill_id, a.amount_fen, a.allocated_on) for a in allocations] == [
        (older.pk, 8_000, FEB), (newer.pk, 2_000, FEB),
    ]
    assert unbalanced_entry_ids() == []


def test_the_offset_never_takes_more_than_is_owed(unit, property_fee):
    bill = issue_bill(unit=unit, fee_item=property_fee, amount_fen=3_000)
    _deposit(unit, 10_000, "d")
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 3_000
    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    assert prepaid_balance(unit_id=unit.pk) == 7_000


def test_running_the_offset_again_does_nothing(unit, property_fee):
    issue_bill(unit=unit, fee_item=property_fee, amount_fen=3_000)
    _deposit(unit, 1_000, "d")
    prepaid_offset_apply(community_id=unit.community_id, on_date=FEB)
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 0
    assert Allocation.objects.count() == 1


def test_earmarked_money_goes_to_its_own_fee_item_first(unit, property_fee, parking_fee):
    prop = issue_bill(unit=unit, fee_item=property_fee, amount_fen=5_000, period_start=JAN)
    park = issue_bill(unit=unit, fee_item=parking_fee, amount_fen=5_000, period_start=FEB)
    _deposit(unit, 4_000, "e", parking_fee)
    _deposit(unit, 3_000, "g")

    prepaid_offset_apply(community_id=unit.community_id, on_date=FEB)

    prop.refresh_from_db()
    park.refresh_from_db()
    assert park.paid_fen == 4_000  # earmarked, though the property bill is older
    assert prop.paid_fen == 3_000  # general, oldest due first
    assert prepaid_balance(unit_id=unit.pk) == 0


def test_earmarked_money_is_never_spent_on_another_fee_item(unit, property_fee, parking_fee):
    prop = issue_bill(unit=unit, fee_item=property_fee, amount_fen=5_000)
    _deposit(unit, 4_000, "e", parking_fee)
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 0
    prop.refresh_from_db()
    assert prop.paid_fen == 0
    assert prepaid_balance(unit_id=unit.pk, fee_item_id=parking_fee.pk) == 4_000


def test_general_money_skips_fee_items_that_do_not_allow_offsets(unit):
    water = make_fee_item(unit.community.company, name="水费", kind="water", prepay_offset=False)
    bill = issue_bill(unit=unit, fee_item=water, amount_fen=2_000)
    _deposit(unit, 4_000, "g")
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 0
    bill.refresh_from_db()
    assert bill.paid_fen == 0


def test_bills_issued_after_the_offset_date_and_deposits_dated_after_it_are_left_alone(
    unit, property_fee
):
    later_bill = issue_bill(unit=unit, fee_item=property_fee, amount_fen=2_000, period_start=FEB)
    _deposit(unit, 1_000, "early", on=JAN)
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=JAN) == 0
    _deposit(unit, 5_000, "late", on=date(2026, 3, 1))
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 1_000
    later_bill.refresh_from_db()
    assert later_bill.paid_fen == 1_000


def test_only_the_listed_households_are_offset(unit, property_fee):
    neighbour = make_unit(make_building(unit.community))
    mine = issue_bill(unit=unit, fee_item=property_fee, amount_fen=1_000)
    theirs = issue_bill(unit=neighbour, fee_item=property_fee, amount_fen=1_000)
    _deposit(unit, 1_000, "a")
    _deposit(neighbour, 1_000, "b")

    prepaid_offset_apply(community_id=unit.community_id, on_date=FEB, unit_ids=[neighbour.pk])

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.paid_fen, theirs.paid_fen) == (0, 1_000)


def test_households_holding_money_are_found_with_one_query(unit, property_fee):
    for i in range(30):
        other = make_unit(make_building(unit.community))
        issue_bill(unit=other, fee_item=property_fee, amount_fen=1_000)
        if i % 10 == 0:
            _deposit(other, 500, f"d{i}")
    with CaptureQueriesContext(connection) as ctx:
        holders = prepaid_balances(community_id=unit.community_id, as_of=FEB)
    assert len(ctx.captured_queries) == 1
    assert len(holders) == 3
    assert set(holders.values()) == {500}
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 1_500


def test_offsets_leave_late_fee_bills_and_credits_consistent(unit, property_fee):
    credit_note = issue_bill(
        unit=unit, fee_item=property_fee, amount_fen=-500, kind=Bill.Kind.ADJUSTMENT, revision=1
    )
    bill = issue_bill(unit=unit, fee_item=property_fee, amount_fen=1_000)
    _deposit(unit, 2_000, "d")
    assert prepaid_offset_apply(community_id=unit.community_id, on_date=FEB) == 1_000
    credit_note.refresh_from_db()
    bill.refresh_from_db()
    assert credit_note.paid_fen == 0  # negative bills are not "paid" by prepayments
    assert _receivable(unit) == credit_note.outstanding_fen + bill.outstanding_fen == -500


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_offsets_at_once_never_spend_the_same_money_twice():
    import threading

    from django.db import close_old_connections

    first = make_unit()
    item = make_fee_item(first.community.company)
    units = [first] + [make_unit(make_building(first.community)) for _ in range(9)]
    for i, u in enumerate(units):
        issue_bill(unit=u, fee_item=item, amount_fen=5_000)
        _deposit(u, 3_000, f"c{i}")
    barrier = threading.Barrier(2)
    results: list[int] = []

    def work():
        try:
            barrier.wait()
            results.append(
                prepaid_offset_apply(community_id=first.community_id, on_date=FEB)
            )
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(results) == 30_000
    assert all(prepaid_balance(unit_id=u.pk) == 0 for u in units)
    assert Allocation.objects.count() == 10
