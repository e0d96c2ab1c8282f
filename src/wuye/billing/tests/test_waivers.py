from datetime import UTC, date, datetime

import pytest
from django.db import connection

from wuye.accounts.models import Role
from wuye.billing.latefees import late_fee_as_of, late_fee_charge
from wuye.billing.models import Allocation, Waiver
from wuye.billing.tests.helpers import issue_bill
from wuye.billing.waivers import (
    WaiverError,
    WaiverExceedsLateFee,
    WaiverExceedsOutstanding,
    WaiverInvalid,
    WaiverNotAllowed,
    WaiverNotPending,
    WaiverSelfApproval,
    waiver_approve,
    waiver_reject,
    waiver_request,
)
from wuye.core.models import AuditEvent
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.selectors import account_balance
from wuye.testing.factories import make_company, make_fee_item, make_unit, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users here never log in: skip the deliberately slow password hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DUE = date(2026, 1, 31)
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def bill():
    unit = make_unit()
    item = make_fee_item(unit.community.company, late_fee_enabled=True, late_fee_daily_ppm=500)
    return issue_bill(unit=unit, fee_item=item, amount_fen=10_000, due_date=DUE)


@pytest.fixture
def cashier(bill):
    return make_user(bill.company, role=Role.CASHIER)


@pytest.fixture
def finance(bill):
    return make_user(bill.company, role=Role.FINANCE)


def _principal(bill, by, amount=3_000):
    return waiver_request(
        bill=bill, target=Waiver.Target.PRINCIPAL, amount_fen=amount,
        reason="业主家中困难", requested_by=by,
    )


def test_a_request_is_pending_and_audited(bill, cashier):
    waiver = _principal(bill, cashier)
    assert waiver.state == Waiver.State.PENDING
    assert AuditEvent.objects.filter(action="waiver.request", object_id=str(waiver.pk)).exists()


def test_approving_a_principal_waiver_settles_the_bill_and_posts_the_expense(
    bill, cashier, finance
):
    waiver = _principal(bill, cashier)

    approved = waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 15), now=NOW)

    bill.refresh_from_db()
    assert (approved.state, approved.approved_by_id, approved.decided_at) == (
        Waiver.State.APPROVED, finance.pk, NOW,
    )
    assert (bill.waived_fen, bill.outstanding_fen) == (3_000, 7_000)
    alloc = Allocation.objects.get(bill=bill)
    assert (alloc.source, alloc.amount_fen, alloc.allocated_on) == (
        Allocation.Source.WAIVER, 3_000, date(2026, 2, 15),
    )
    assert account_balance(account=AccountKind.RECEIVABLE, household_id=bill.unit_id) == 7_000
    assert account_balance(account=AccountKind.WAIVER_EXPENSE, household_id=bill.unit_id) == 3_000
    assert AuditEvent.objects.filter(action="waiver.approve", object_id=str(waiver.pk)).exists()


def test_a_principal_waiver_lowers_the_late_fee_from_its_date(bill, cashier, finance):
    waiver = _principal(bill, cashier, amount=10_000)
    waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 5), now=NOW)
    # Feb 1..5 on the full amount, nothing after
    assert late_fee_as_of(bill=bill, as_of=date(2026, 3, 1)) == 25


def test_the_requester_cannot_approve_their_own_waiver(bill):
    manager = make_user(bill.company, role=Role.MANAGER)
    waiver = _principal(bill, manager)
    with pytest.raises(WaiverSelfApproval):
        waiver_approve(waiver=waiver, approver=manager, on_date=date(2026, 2, 15), now=NOW)
    waiver.refresh_from_db()
    assert waiver.state == Waiver.State.PENDING
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.WAIVER).exists()


def test_a_cashier_cannot_approve(bill, cashier):
    other_cashier = make_user(bill.company, role=Role.CASHIER)
    waiver = _principal(bill, cashier)
    with pytest.raises(WaiverNotAllowed):
        waiver_approve(waiver=waiver, approver=other_cashier, on_date=date(2026, 2, 15), now=NOW)


def test_finance_of_another_company_cannot_approve(bill, cashier):
    outsider = make_user(make_company(), role=Role.FINANCE)
    waiver = _principal(bill, cashier)
    with pytest.raises(PermissionError):
        waiver_approve(waiver=waiver, approver=outsider, on_date=date(2026, 2, 15), now=NOW)


def test_an_auditor_cannot_request(bill):
    auditor = make_user(bill.company, role=Role.AUDITOR)
    with pytest.raises(WaiverNotAllowed):
        _principal(bill, auditor)
    assert not Waiver.objects.exists()


@pytest.mark.parametrize(
    ("target", "amount", "reason", "error"),
    [
        (Waiver.Target.PRINCIPAL, None, "原因", WaiverInvalid),
        (Waiver.Target.PRINCIPAL, 0, "原因", WaiverInvalid),
        (Waiver.Target.PRINCIPAL, -5, "原因", WaiverInvalid),
        (Waiver.Target.PRINCIPAL, 100, "  ", WaiverInvalid),
        (Waiver.Target.PRINCIPAL, 10_001, "原因", WaiverExceedsOutstanding),
        ("everything", 100, "原因", WaiverInvalid),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(bill, cashier, target, amount, reason, error):
    with pytest.raises(error):
        waiver_request(
            bill=bill, target=target, amount_fen=amount, reason=reason, requested_by=cashier
        )
    assert not Waiver.objects.exists()
    assert not AuditEvent.objects.exists()


def test_approval_rechecks_the_outstanding(bill, cashier, finance):
    first = _principal(bill, cashier, amount=6_000)
    second = _principal(bill, cashier, amount=6_000)
    waiver_approve(waiver=first, approver=finance, on_date=date(2026, 2, 15), now=NOW)
    with pytest.raises(WaiverExceedsOutstanding):
        waiver_approve(waiver=second, approver=finance, on_date=date(2026, 2, 15), now=NOW)
    bill.refresh_from_db()
    assert bill.waived_fen == 6_000


def test_a_decided_waiver_cannot_be_decided_again(bill, cashier, finance):
    waiver = _principal(bill, cashier)
    waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 15), now=NOW)
    with pytest.raises(WaiverNotPending):
        waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 15), now=NOW)
    with pytest.raises(WaiverNotPending):
        waiver_reject(waiver=waiver, approver=finance, now=NOW)
    assert Allocation.objects.filter(bill=bill).count() == 1


def test_rejecting_posts_nothing_and_is_audited(bill, cashier, finance):
    waiver = _principal(bill, cashier)
    rejected = waiver_reject(waiver=waiver, approver=finance, reason="材料不全", now=NOW)
    bill.refresh_from_db()
    assert rejected.state == Waiver.State.REJECTED
    assert bill.waived_fen == 0
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.WAIVER).exists()
    event = AuditEvent.objects.get(action="waiver.reject")
    assert event.detail["reason"] == "材料不全"


def test_a_late_fee_waiver_reduces_the_late_fee_from_its_effective_date(bill, cashier, finance):
    waiver = waiver_request(
        bill=bill, target=Waiver.Target.LATE_FEE, amount_fen=30, reason="首次逾期",
        requested_by=cashier,
    )
    waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 10), now=NOW)
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 9)) == 45
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 10)) == 20
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 20)) == 70
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.WAIVER).exists()


def test_a_late_fee_waiver_cannot_exceed_the_accrued_late_fee(bill, cashier, finance):
    waiver = waiver_request(
        bill=bill, target=Waiver.Target.LATE_FEE, amount_fen=51, reason="x", requested_by=cashier
    )
    with pytest.raises(WaiverExceedsLateFee):
        waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 10), now=NOW)


def test_a_full_late_fee_waiver_stops_the_late_fee_beyond_what_was_charged(
    bill, cashier, finance
):
    late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)  # 50 charged
    waiver = waiver_request(
        bill=bill, target=Waiver.Target.LATE_FEE, amount_fen=None, reason="全免",
        requested_by=cashier,
    )
    waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 20), now=NOW)
    assert late_fee_as_of(bill=bill, as_of=date(2026, 2, 15)) == 75
    assert late_fee_as_of(bill=bill, as_of=date(2026, 12, 31)) == 50
    assert late_fee_charge(bill=bill, as_of=date(2026, 12, 31), user_id=None) is None


def test_a_charged_late_fee_is_waived_as_the_principal_of_its_late_fee_bill(
    bill, cashier, finance
):
    late = late_fee_charge(bill=bill, as_of=date(2026, 2, 10), user_id=None)
    waiver = _principal(late, cashier, amount=50)
    waiver_approve(waiver=waiver, approver=finance, on_date=date(2026, 2, 11), now=NOW)
    late.refresh_from_db()
    assert late.outstanding_fen == 0
    assert account_balance(account=AccountKind.RECEIVABLE, household_id=bill.unit_id) == 10_000


def test_a_late_fee_waiver_on_a_bill_without_late_fees_is_refused(cashier, bill):
    plain = issue_bill(
        unit=bill.unit, fee_item=make_fee_item(bill.company), amount_fen=500, due_date=DUE
    )
    with pytest.raises(WaiverInvalid):
        waiver_request(
            bill=plain, target=Waiver.Target.LATE_FEE, amount_fen=None, reason="x",
            requested_by=cashier,
        )


def test_every_refusal_is_a_waiver_error():
    for error in (WaiverInvalid, WaiverNotAllowed, WaiverSelfApproval, WaiverNotPending,
                  WaiverExceedsOutstanding, WaiverExceedsLateFee):
        assert issubclass(error, WaiverError)


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_approve_a_waiver_once():
    import threading

    from django.db import close_old_connections

    unit = make_unit()
    item = make_fee_item(unit.community.company)
    bill = issue_bill(unit=unit, fee_item=item, amount_fen=10_000, due_date=DUE)
    waiver = _principal(bill, make_user(bill.company, role=Role.CASHIER))
    approvers = [make_user(bill.company, role=Role.FINANCE) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def work(approver):
        try:
            barrier.wait()
            waiver_approve(
                waiver=Waiver.objects.get(pk=waiver.pk), approver=approver,
                on_date=date(2026, 2, 15), now=NOW,
            )
            outcomes.append("approved")
        except WaiverNotPending:
            outcomes.append("not pending")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    bill.refresh_from_db()
    assert sorted(outcomes) == ["approved", "not pending"]
    assert bill.waived_fen == 3_000
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.WAIVER).count() == 1
