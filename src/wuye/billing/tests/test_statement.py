from datetime import UTC, date, datetime

import pytest

from wuye.accounts.models import Role
from wuye.billing.latefees import late_fee_charge
from wuye.billing.models import Bill, Waiver
from wuye.billing.prepayments import prepaid_offset_apply, prepayment_deposit
from wuye.billing.selectors import household_statement, open_bills
from wuye.billing.tests.helpers import issue_bill, pay_bill
from wuye.billing.waivers import waiver_approve, waiver_request
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance
from wuye.testing.factories import make_fee_item, make_unit, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users here never log in: skip the deliberately slow password hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def household():
    """A unit with a January and a March property bill, a payment, a waiver and a deposit."""
    unit = make_unit()
    company = unit.community.company
    item = make_fee_item(company, late_fee_enabled=True, late_fee_daily_ppm=500)
    parking = make_fee_item(company, name="停车费", kind="parking")
    jan = issue_bill(
        unit=unit, fee_item=item, amount_fen=10_000, period_start=date(2026, 1, 1),
        due_date=date(2026, 1, 31),
    )
    mar = issue_bill(
        unit=unit, fee_item=item, amount_fen=10_000, period_start=date(2026, 3, 1),
        due_date=date(2026, 3, 31),
    )
    pay_bill(bill=jan, amount_fen=4_000, on_date=date(2026, 2, 10))
    waiver = waiver_request(
        bill=jan, target=Waiver.Target.PRINCIPAL, amount_fen=1_000, reason="维修补偿",
        requested_by=make_user(company, role=Role.CASHIER),
    )
    waiver_approve(
        waiver=waiver, approver=make_user(company, role=Role.FINANCE),
        on_date=date(2026, 2, 20), now=NOW,
    )
    prepayment_deposit(
        unit=unit, amount_fen=2_500, fee_item=parking, on_date=date(2026, 2, 1),
        reference="", idempotency_key=f"stmt-{unit.pk}",
    )
    return unit, jan, mar, parking


def test_a_statement_counts_only_what_happened_by_its_date(household):
    unit, jan, _, parking = household

    early = household_statement(unit_id=unit.pk, as_of=date(2026, 2, 15))

    assert [line.bill_id for line in early.lines] == [jan.pk]  # March not issued yet
    (line,) = early.lines
    assert (line.billed_fen, line.paid_fen, line.waived_fen, line.outstanding_fen) == (
        10_000, 4_000, 0, 6_000,
    )
    # Feb 1..10 on 10000, Feb 11..15 on 6000: 130000 fen·days × 0.05 % = 65 fen
    assert line.late_fee_fen == 65
    assert early.total_due_fen == 6_065
    assert (early.prepaid_fen, early.prepaid_general_fen) == (2_500, 0)
    assert early.prepaid_earmarked_fen == {parking.pk: 2_500}


def test_the_statement_totals_add_up_and_match_the_ledger(household):
    unit, jan, mar, _ = household
    as_of = date(2026, 4, 30)

    stmt = household_statement(unit_id=unit.pk, as_of=as_of)

    assert [line.bill_id for line in stmt.lines] == [jan.pk, mar.pk]
    assert stmt.billed_fen == 20_000
    assert stmt.paid_fen == 4_000
    assert stmt.waived_fen == 1_000
    assert stmt.outstanding_fen == 15_000
    assert stmt.outstanding_fen == account_balance(
        account=AccountKind.RECEIVABLE, household_id=unit.pk, as_of=as_of
    )
    assert stmt.late_fee_fen == sum(line.late_fee_fen for line in stmt.lines) > 0


def test_a_statement_before_anything_was_billed_is_empty(household):
    unit, _, _, _ = household
    stmt = household_statement(unit_id=unit.pk, as_of=date(2025, 12, 31))
    assert stmt.lines == ()
    assert (stmt.billed_fen, stmt.outstanding_fen, stmt.late_fee_fen, stmt.prepaid_fen) == (
        0, 0, 0, 0,
    )


def test_a_charged_late_fee_moves_from_the_accrual_to_its_own_line(household):
    unit, jan, _, _ = household
    as_of = date(2026, 2, 15)
    before = household_statement(unit_id=unit.pk, as_of=as_of)

    late = late_fee_charge(bill=jan, as_of=as_of, user_id=None)

    after = household_statement(unit_id=unit.pk, as_of=as_of)
    assert late is not None
    assert after.total_due_fen == before.total_due_fen
    assert after.late_fee_fen == 0
    late_line = next(line for line in after.lines if line.bill_id == late.pk)
    assert (late_line.kind, late_line.parent_id, late_line.outstanding_fen) == (
        Bill.Kind.LATE_FEE, jan.pk, 65,
    )


def test_prepaid_offsets_show_as_paid_from_their_date(household):
    unit, _, _, _ = household
    parking_bill = issue_bill(
        unit=unit, fee_item=make_fee_item(unit.community.company, name="车位", kind="parking"),
        amount_fen=1_000, period_start=date(2026, 3, 1),
    )
    prepayment_deposit(
        unit=unit, amount_fen=3_000, on_date=date(2026, 3, 1), reference="",
        idempotency_key=f"gen-{unit.pk}",
    )
    prepaid_offset_apply(community_id=unit.community_id, on_date=date(2026, 3, 5))

    before = household_statement(unit_id=unit.pk, as_of=date(2026, 3, 4))
    after = household_statement(unit_id=unit.pk, as_of=date(2026, 3, 5))

    assert after.outstanding_fen == before.outstanding_fen - 3_000
    assert after.prepaid_fen == before.prepaid_fen - 3_000
    assert parking_bill.pk in {line.bill_id for line in after.lines}


def test_open_bills_leave_out_settled_ones(household):
    unit, jan, mar, _ = household
    pay_bill(bill=jan, amount_fen=5_000, on_date=date(2026, 5, 1))
    late_fee_off = date(2026, 1, 31)  # nothing accrued yet on that day
    assert [b.bill_id for b in open_bills(unit_id=unit.pk, as_of=late_fee_off)] == [jan.pk]
    assert [b.bill_id for b in open_bills(unit_id=unit.pk, as_of=date(2026, 4, 1))] == [
        jan.pk, mar.pk,
    ]
    open_in_may = open_bills(unit_id=unit.pk, as_of=date(2026, 5, 1))
    # January is settled by then but keeps its late fee until that is charged and paid
    jan_line = next(b for b in open_in_may if b.bill_id == jan.pk)
    assert jan_line.outstanding_fen == 0 and jan_line.late_fee_fen > 0


def test_the_statement_command_prints_the_same_numbers_as_json(household, capsys):
    import json

    from django.core.management import call_command

    unit, _, _, _ = household
    call_command(
        "statement", "--unit", unit.label, "--community", unit.community.code,
        "--as-of", "2026-04-30", "--json",
    )
    data = json.loads(capsys.readouterr().out)
    stmt = household_statement(unit_id=unit.pk, as_of=date(2026, 4, 30))
    assert (data["outstanding_fen"], data["late_fee_fen"], data["total_due_fen"]) == (
        stmt.outstanding_fen, stmt.late_fee_fen, stmt.total_due_fen,
    )
    assert len(data["lines"]) == 2


def test_the_statement_command_prints_a_table_and_refuses_a_bad_date(household, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    unit, _, _, _ = household
    call_command("statement", "--unit", str(unit.pk), "--as-of", "2026-04-30")
    out = capsys.readouterr().out
    assert unit.label in out and "150.00" in out and "预存余额 25.00" in out
    with pytest.raises(CommandError, match="as-of"):
        call_command("statement", "--unit", str(unit.pk), "--as-of", "2026-13-01")
