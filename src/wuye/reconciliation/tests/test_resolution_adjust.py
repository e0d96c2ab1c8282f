"""Amount mismatches adjusted to the channel's amount, channel duplicates recorded as money
received, chasing an arrival, and the entries each resolution links to its exception.

Each posting balances, moves the channel's clearing balance by exactly the difference, and an
undo puts every ledger balance back where it was."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta

import pytest
from django.db.models import Sum

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.billing.models import Bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.core.models import AuditEvent
from wuye.estates.models import Community
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance
from wuye.payments.models import Payment
from wuye.payments.services import order_create, payment_capture, prepaid_pay
from wuye.payments.tests.helpers import household, key, staff
from wuye.reconciliation.clearing import clearing_balance
from wuye.reconciliation.models import ReconException, ReconExceptionEntry, ReconExceptionEvent
from wuye.reconciliation.resolution import (
    Action,
    ResolutionError,
    actions_for,
    exception_resolve,
    exception_undo,
    posted_entries,
)
from wuye.reconciliation.tests.test_resolution import (
    CARD_CHANNELS,
    LATER,
    SETTLE,
    TXN_AT,
    channel_record,
    ledger_ok,
    paid_by_channel,
    recon_exception,
    settlement_and_credit,
)

pytestmark = pytest.mark.django_db

WITH_PREPAID = [*CARD_CHANNELS, "wuye.channels.prepaid.adapter.PrepaidChannel"]


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = WITH_PREPAID
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def balances(company_id: int) -> dict[tuple[str, int | None, str], int]:
    """Every account's balance per household and channel (zeros left out)."""
    rows = (
        JournalLine.objects.filter(entry__company_id=company_id)
        .values("account", "household_id", "channel")
        .annotate(s=Sum("amount_fen"))
    )
    out: dict[tuple[str, int | None, str], int] = defaultdict(int)
    for r in rows:
        if r["s"]:
            out[(r["account"], r["household_id"], r["channel"] or "")] = int(r["s"])
    return dict(out)


def paid(hh, amount_fen: int) -> Payment:  # type: ignore[no-untyped-def]
    """A card payment Wuye recorded, for a bill of its own month."""
    hh.month = getattr(hh, "month", 0) + 1
    bill = hh.bill(amount_fen, month=hh.month)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="card",
        idempotency_key=key("ord"),
        cashier=hh.cashier,
        now=LATER - timedelta(days=2),
    )
    return payment_capture(
        order=order,
        response=PaymentResponse(ChannelResult.PROCESSED, amount_fen, key("rrn")),
        now=TXN_AT,
    )


def clearing(company_id: int) -> int:
    return clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE)


def mismatch(hh, *, ours: int, theirs: int):  # type: ignore[no-untyped-def]
    """Wuye recorded ``ours`` for a card payment; the acquirer's file says ``theirs``."""
    payment = paid(hh, ours)
    exc = recon_exception(
        hh.community.company_id,
        "amount_mismatch",
        reference=payment.reference,
        amount_fen=theirs - ours,
        expected_fen=ours,
        actual_fen=theirs,
        payment=payment,
    )
    return payment, exc


# --- amount mismatch: the channel took more ---------------------------------------------------


def test_the_channel_took_more_the_surplus_goes_to_the_households_prepaid_balance_and_undoes():
    hh = household()
    company_id = hh.community.company_id
    payment, exc = mismatch(hh, ours=10_000, theirs=10_300)
    assert actions_for(exc) == [Action.ADJUST_SURPLUS, Action.DISMISS]
    before, clearing_before = balances(company_id), clearing(company_id)

    exc = exception_resolve(
        exception=exc, action=Action.ADJUST_SURPLUS, user=hh.finance, now=LATER, note="POS 多扣"
    )

    assert exc.state == ReconException.State.RESOLVED
    assert clearing(company_id) == clearing_before + 300
    prepaid = account_balance(account=AccountKind.PREPAID, household_id=payment.unit_id)
    assert prepaid == -300  # a credit balance: the household has 3.00 to spend
    (link,) = exc.entry_links.all()
    assert (link.role, link.action, link.entry_id) == ("posted", "adjust_surplus", exc.entry_id)
    assert AuditEvent.objects.filter(action="reconciliation.adjust_surplus").count() == 1
    ledger_ok()

    exc = exception_undo(exception=exc, user=hh.finance, now=LATER, reason="看错了")
    assert exc.state == ReconException.State.OPEN
    assert balances(company_id) == before
    assert sorted(exc.entry_links.values_list("role", flat=True)) == ["posted", "reversal"]
    ledger_ok()

    # Done again after the undo: a fresh entry (key ~2), the same effect.
    exc = exception_resolve(exception=exc, action=Action.ADJUST_SURPLUS, user=hh.finance, now=LATER)
    assert clearing(company_id) == clearing_before + 300
    assert exc.entry is not None and exc.entry.idempotency_key.endswith("~2")
    ledger_ok()


def test_under_the_refund_policy_the_surplus_is_a_refund_due_and_finance_may_override_it():
    hh = household()
    Community.objects.filter(pk=hh.community.pk).update(
        surplus_policy=Community.SurplusPolicy.REFUND
    )
    company_id = hh.community.company_id
    payment, exc = mismatch(hh, ours=5_000, theirs=5_050)
    exception_resolve(exception=exc, action=Action.ADJUST_SURPLUS, user=hh.finance, now=LATER)
    assert account_balance(account=AccountKind.REFUND_PAYABLE, household_id=payment.unit_id) == -50

    _, other = mismatch(hh, ours=2_000, theirs=2_010)
    exception_resolve(
        exception=other,
        action=Action.ADJUST_SURPLUS,
        user=hh.finance,
        now=LATER,
        surplus_to="prepaid",
    )
    assert account_balance(account=AccountKind.PREPAID, household_id=payment.unit_id) == -10
    assert account_balance(account=AccountKind.CLEARING, company_id=company_id) == 7_060
    ledger_ok()


def test_undoing_a_surplus_the_household_already_spent_is_refused_and_changes_nothing():
    hh = household()
    payment, exc = mismatch(hh, ours=10_000, theirs=10_500)
    exc = exception_resolve(exception=exc, action=Action.ADJUST_SURPLUS, user=hh.finance, now=LATER)
    # The household spends the 5.00 on a new bill.
    bill = hh.bill(500, month=12)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="prepaid",
        idempotency_key=key("pp"),
        cashier=hh.cashier,
        now=LATER,
    )
    prepaid_pay(order=order, now=LATER)
    entries = JournalEntry.objects.count()

    with pytest.raises(ResolutionError, match="预存余额"):
        exception_undo(exception=exc, user=hh.finance, now=LATER, reason="撤销")

    exc.refresh_from_db()
    assert exc.state == ReconException.State.RESOLVED
    assert JournalEntry.objects.count() == entries
    assert exc.events.filter(action="undo").count() == 0
    ledger_ok()
    assert payment.unit_id == hh.unit.pk


# --- amount mismatch: the channel took less ---------------------------------------------------


def test_the_channel_took_less_finance_writes_it_off_with_a_note_and_can_undo():
    hh = household()
    company_id = hh.community.company_id
    _, exc = mismatch(hh, ours=10_000, theirs=9_900)
    assert actions_for(exc) == [Action.ADJUST_RECEIVABLE, Action.ADJUST_WRITE_OFF, Action.DISMISS]
    with pytest.raises(ResolutionError):
        exception_resolve(exception=exc, action=Action.ADJUST_SURPLUS, user=hh.finance, now=LATER)
    with pytest.raises(ResolutionError):
        exception_resolve(exception=exc, action=Action.ADJUST_WRITE_OFF, user=hh.finance, now=LATER)
    before = balances(company_id)

    exc = exception_resolve(
        exception=exc,
        action=Action.ADJUST_WRITE_OFF,
        user=hh.finance,
        now=LATER,
        note="差额 1 元, 经理批准核销",
    )
    assert clearing(company_id) == 9_900
    assert account_balance(account=AccountKind.CASH_OVER_SHORT, company_id=company_id) == 100
    ledger_ok()

    exception_undo(exception=exc, user=hh.finance, now=LATER, reason="改为住户补缴")
    assert balances(company_id) == before
    ledger_ok()


def test_the_channel_took_less_and_the_household_owes_it_again_its_bill_reopens():
    hh = household()
    company_id = hh.community.company_id
    payment, exc = mismatch(hh, ours=10_000, theirs=9_000)
    bill = Bill.objects.get(unit_id=payment.unit_id)

    exc = exception_resolve(
        exception=exc,
        action=Action.ADJUST_RECEIVABLE,
        user=hh.finance,
        now=LATER,
        note="POS 少扣 10 元",
    )

    bill.refresh_from_db()
    assert bill.outstanding_fen == 1_000
    assert clearing(company_id) == 9_000
    assert exc.refund is not None and exc.refund.amount_fen == 1_000
    assert exc.refund.reference.startswith("recon-void:")
    assert actions_for(exc) == []  # final: the payment was partly given back
    assert [link.entry_id for link in exc.entry_links.all()] == [exc.refund.entry_id]
    ledger_ok()


def test_only_finance_may_make_a_household_owe_a_shortfall():
    hh = household()
    admin = staff(hh.community, Role.ADMIN)
    _, exc = mismatch(hh, ours=10_000, theirs=9_000)
    entries = JournalEntry.objects.count()
    with pytest.raises(AccessDenied):
        exception_resolve(exception=exc, action=Action.ADJUST_RECEIVABLE, user=admin, now=LATER)
    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert JournalEntry.objects.count() == entries


# --- duplicates ----------------------------------------------------------------------------


def channel_duplicate(hh, *, amount: int = 8_800):  # type: ignore[no-untyped-def]
    """The acquirer charged the payer of one of our card payments twice."""
    payment = paid(hh, amount)
    record = channel_record(
        hh.community.company_id, channel="card", reference=payment.reference, amount_fen=amount
    )
    exc = recon_exception(
        hh.community.company_id,
        "duplicate",
        reference=payment.reference,
        amount_fen=amount,
        channel_record=record,
    )
    return payment, exc


def test_a_channel_duplicate_is_recorded_as_money_received_for_the_household_and_undone():
    hh = household()
    company_id = hh.community.company_id
    payment, exc = channel_duplicate(hh)
    assert actions_for(exc) == [Action.RECORD_DUPLICATE, Action.DISMISS]
    before = balances(company_id)
    assert clearing(company_id) == 8_800

    exc = exception_resolve(
        exception=exc, action=Action.RECORD_DUPLICATE, user=hh.finance, now=LATER
    )

    # Clearing now expects both charges from the acquirer: it matches the channel.
    assert clearing(company_id) == 17_600
    assert account_balance(account=AccountKind.PREPAID, household_id=payment.unit_id) == -8_800
    event = exc.events.get(action="record_duplicate")
    assert event.data["unit_id"] == payment.unit_id and event.data["account"] == "prepaid"
    ledger_ok()

    exception_undo(exception=exc, user=hh.finance, now=LATER, reason="渠道已原路退回")
    assert balances(company_id) == before
    ledger_ok()


def test_a_duplicate_of_an_unknown_payment_needs_the_household_chosen():
    hh = household()
    company_id = hh.community.company_id
    record = channel_record(company_id, channel="card", reference="000009999999", amount_fen=600)
    exc = recon_exception(
        company_id, "duplicate", reference="000009999999", amount_fen=600, channel_record=record
    )
    with pytest.raises(ResolutionError):
        exception_resolve(exception=exc, action=Action.RECORD_DUPLICATE, user=hh.finance, now=LATER)
    exc = exception_resolve(
        exception=exc,
        action=Action.RECORD_DUPLICATE,
        user=hh.finance,
        now=LATER,
        unit_id=hh.unit.pk,
        surplus_to="refund",
    )
    assert account_balance(account=AccountKind.REFUND_PAYABLE, household_id=hh.unit.pk) == -600
    ledger_ok()


def test_our_own_duplicate_offers_reversing_the_extra_payment():
    hh = household()
    payment = paid_by_channel(hh, 1_000, channel="card")
    exc = recon_exception(
        hh.community.company_id,
        "duplicate",
        reference=payment.reference,
        amount_fen=1_000,
        payment=payment,
    )
    assert actions_for(exc) == [Action.REVERSE_PAYMENT, Action.DISMISS]
    exc = exception_resolve(
        exception=exc, action=Action.REVERSE_PAYMENT, user=hh.finance, now=LATER, note="重复记账"
    )
    assert exc.state == ReconException.State.RESOLVED
    ledger_ok()


# --- chasing ----------------------------------------------------------------------------------


def test_chasing_records_who_and_the_follow_up_date_and_stays_open():
    hh = household()
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=97_540)
    follow = date(2026, 11, 25)
    exc = exception_resolve(
        exception=exc,
        action=Action.CHASE,
        user=hh.finance,
        now=LATER,
        note="已致电收单行",
        follow_up_on=follow,
    )
    assert exc.state == ReconException.State.OPEN
    assert (exc.chased_by_id, exc.follow_up_on, exc.chasing_since) == (hh.finance.pk, follow, LATER)
    # Chased again: a later follow-up, a second history event, the start kept.
    exc = exception_resolve(
        exception=exc,
        action=Action.CHASE,
        user=hh.finance,
        now=LATER + timedelta(days=3),
        note="收单行称周五到账",
        follow_up_on=date(2026, 11, 28),
    )
    exc.refresh_from_db()
    assert exc.follow_up_on == date(2026, 11, 28) and exc.chasing_since == LATER
    assert [e.data["follow_up_on"] for e in exc.events.order_by("id")] == [
        "2026-11-25",
        "2026-11-28",
    ]
    with pytest.raises(ResolutionError):
        exception_resolve(
            exception=exc,
            action=Action.CHASE,
            user=hh.finance,
            now=LATER,
            note="x",
            follow_up_on=date(2026, 11, 1),
        )


def test_a_chased_missing_arrival_closes_as_arrived_when_the_credit_comes():
    from wuye.reconciliation.matching import reconcile_run
    from wuye.reconciliation.models import BankMovement
    from wuye.reconciliation.rules import rules_apply
    from wuye.reconciliation.tests.conftest import merchants_setup
    from wuye.reconciliation.tests.test_resolution import source_file

    hh = household()
    company = hh.community.company
    merchants_setup(company)
    settlement, _ = settlement_and_credit(
        company.pk, channel="card", gross=10_000, fee=50, credit=None
    )
    as_of = date(2026, 11, 30)
    reconcile_run(company=company, settle_date=SETTLE, channel="card", as_of=as_of, now=LATER)
    missing = ReconException.objects.get(category="arrival_missing")
    exception_resolve(
        exception=missing, action=Action.CHASE, user=hh.finance, now=LATER, note="催收单行"
    )

    BankMovement.objects.create(
        source=source_file(company.pk, "bank_csv"),
        company_id=company.pk,
        account_no="31000000000000001",
        serial_no="B-late-1",
        txn_date=date(2026, 11, 27),
        value_date=date(2026, 11, 27),
        direction="C",
        amount_fen=9_950,
        channel="card",
        merchant_no=settlement.merchant_no,
        settle_date=SETTLE,
        line_no=2,
    )
    later = LATER + timedelta(days=8)
    reconcile_run(company=company, settle_date=SETTLE, channel="card", as_of=as_of, now=later)
    result = rules_apply(company_id=company.pk, settle_date=SETTLE, now=later, channel="card")

    missing.refresh_from_db()
    assert missing.state == ReconException.State.AUTO_RESOLVED
    assert result.arrived == [missing.pk]
    arrived = missing.events.get(action="arrived")
    assert arrived.data["credit_fen"] == 9_950
    # The late credit is exact, so the rule booked it: nothing of the day is in transit.
    late = ReconException.objects.get(category="arrival_late")
    assert late.state == ReconException.State.AUTO_RESOLVED
    assert AuditEvent.objects.filter(action="reconciliation.arrived").count() == 1
    # Running the rules again marks nothing twice.
    again = rules_apply(company_id=company.pk, settle_date=SETTLE, now=later, channel="card")
    assert again.arrived == []
    assert missing.events.filter(action="arrived").count() == 1


# --- links ------------------------------------------------------------------------------------


def test_an_arrival_in_two_credits_links_both_entries_and_undo_reverses_both():
    from wuye.reconciliation.models import BankMovement
    from wuye.reconciliation.tests.test_resolution import source_file

    hh = household()
    company_id = hh.community.company_id
    paid_by_channel(hh, 10_000, channel="card")
    settlement, first = settlement_and_credit(
        company_id, channel="card", gross=10_000, fee=50, credit=5_000
    )
    assert first is not None
    BankMovement.objects.create(
        source=source_file(company_id, "bank_csv"),
        company_id=company_id,
        account_no=first.account_no,
        serial_no="B-second",
        txn_date=SETTLE + timedelta(days=3),
        value_date=SETTLE + timedelta(days=3),
        direction="C",
        amount_fen=4_950,
        channel="card",
        merchant_no=settlement.merchant_no,
        settle_date=SETTLE,
        line_no=3,
    )
    exc = recon_exception(
        company_id, "arrival_late", amount_fen=9_950, settlement=settlement, bank_movement=first
    )
    before = balances(company_id)
    exc = exception_resolve(exception=exc, action=Action.BOOK_ARRIVAL, user=hh.finance, now=LATER)
    assert clearing(company_id) == 0
    assert exc.entry_links.filter(role="posted").count() == 2
    assert len(posted_entries(exc)) == 2

    exception_undo(exception=exc, user=hh.finance, now=LATER, reason="银行流水识别错误")
    assert balances(company_id) == before
    assert clearing(company_id) == 9_950 + 50
    assert exc.entry_links.filter(role="reversal").count() == 2
    ledger_ok()


def test_an_exception_resolved_before_links_existed_is_undone_from_its_event_data():
    from wuye.reconciliation.resolution import fee_difference_post

    hh = household()
    company_id = hh.community.company_id
    exc = recon_exception(
        company_id, "fee_mismatch", reference="r1", amount_fen=100, expected_fen=500, actual_fen=600
    )
    before = balances(company_id)
    # As the earlier code left it: the entry on the exception and in the event, no link.
    entry = fee_difference_post(
        company_id=company_id,
        channel="card",
        settle_date=SETTLE,
        difference_fen=100,
        reference="r1",
        on_date=SETTLE,
    )
    ReconException.objects.filter(pk=exc.pk).update(
        state="resolved", resolution="book_fee", entry=entry, resolved_at=LATER
    )
    ReconExceptionEvent.objects.create(
        exception=exc, at=LATER, action="book_fee", data={"entry_ids": [entry.pk]}
    )
    exc.refresh_from_db()
    assert not ReconExceptionEntry.objects.exists()
    assert [e.pk for e in posted_entries(exc)] == [entry.pk]

    exception_undo(exception=exc, user=hh.finance, now=LATER, reason="撤销")
    assert balances(company_id) == before
    ledger_ok()


def test_payments_given_back_by_an_undo_and_by_a_shortfall_are_told_apart():
    """A posted payment's reference is reused (``~2``) only after an undo gave it back, not
    after a shortfall the household owes again."""
    from wuye.reconciliation.resolution import _fresh_reference

    hh = household()
    payment, exc = mismatch(hh, ours=10_000, theirs=9_000)
    exception_resolve(
        exception=exc, action=Action.ADJUST_RECEIVABLE, user=hh.finance, now=LATER, note="少扣"
    )
    assert _fresh_reference("card", payment.reference) == payment.reference
    assert Payment.objects.get(pk=payment.pk).refunded_fen == 1_000


def test_the_day_report_gives_the_follow_up_date_of_a_chased_exception():
    from wuye.reconciliation.report import day_report, render

    hh = household()
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=97_540)
    exception_resolve(
        exception=exc,
        action=Action.CHASE,
        user=hh.finance,
        now=LATER,
        note="已致电",
        follow_up_on=date(2026, 11, 25),
    )
    report = json.loads(
        render(day_report(company=hh.community.company, settle_date=SETTLE), "json")
    )
    (row,) = report["exceptions"]
    assert row["follow_up_on"] == "2026-11-25" and row["state"] == "open"


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "action"),
    [
        (10_000, 10_300, Action.ADJUST_SURPLUS),
        (10_000, 9_000, Action.ADJUST_RECEIVABLE),
        (10_000, 9_900, Action.ADJUST_WRITE_OFF),
    ],
)
def test_a_failure_after_an_adjustment_posted_leaves_nothing(monkeypatch, ours, theirs, action):
    from wuye.reconciliation import resolution

    hh = household()
    company_id = hh.community.company_id
    _, exc = mismatch(hh, ours=ours, theirs=theirs)
    before, entries = balances(company_id), JournalEntry.objects.count()

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(resolution, "_event", boom)
    with pytest.raises(RuntimeError):
        exception_resolve(exception=exc, action=action, user=hh.finance, now=LATER, note="x")

    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert JournalEntry.objects.count() == entries
    assert balances(company_id) == before
    assert not ReconExceptionEntry.objects.exists()
    assert Bill.objects.filter(unit_id=hh.unit.pk, paid_fen=0).count() == 0


def test_a_failure_during_an_undo_leaves_the_resolution_in_place(monkeypatch):
    from wuye.reconciliation import resolution

    hh = household()
    company_id = hh.community.company_id
    _, exc = channel_duplicate(hh, amount=4_400)
    exc = exception_resolve(
        exception=exc, action=Action.RECORD_DUPLICATE, user=hh.finance, now=LATER
    )
    after, entries = balances(company_id), JournalEntry.objects.count()

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(resolution, "_event", boom)
    with pytest.raises(RuntimeError):
        exception_undo(exception=exc, user=hh.finance, now=LATER, reason="撤销")

    exc.refresh_from_db()
    assert exc.state == ReconException.State.RESOLVED
    assert JournalEntry.objects.count() == entries
    assert balances(company_id) == after
    assert exc.entry_links.filter(role="reversal").count() == 0


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_people_adjusting_the_same_mismatch_at_once_post_it_once():
    import threading

    from django.db import close_old_connections, connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    hh = household()
    company_id = hh.community.company_id
    _, exc = mismatch(hh, ours=10_000, theirs=10_700)
    clearing_before = clearing(company_id)
    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def work() -> None:
        try:
            barrier.wait()
            exception_resolve(
                exception=exc, action=Action.ADJUST_SURPLUS, user=hh.finance, now=LATER
            )
        except Exception as e:
            errors.append(e)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(errors) == 3 and all(isinstance(e, ResolutionError) for e in errors)
    assert clearing(company_id) == clearing_before + 700
    assert ReconExceptionEntry.objects.filter(exception=exc).count() == 1
    ledger_ok()


def test_the_migration_links_the_entries_existing_rows_name_in_their_events():
    import importlib

    from django.apps import apps

    from wuye.reconciliation.resolution import fee_difference_post

    migration = importlib.import_module(
        "wuye.reconciliation.migrations.0004_exception_entries_chasing"
    )
    hh = household()
    company_id = hh.community.company_id
    exc = recon_exception(company_id, "fee_mismatch", reference="r1", amount_fen=100)
    posted = fee_difference_post(
        company_id=company_id,
        channel="card",
        settle_date=SETTLE,
        difference_fen=100,
        reference="r1",
        on_date=SETTLE,
    )
    reversal = JournalEntry.objects.create(
        company_id=company_id, kind="reversal", memo="x", effective_date=SETTLE, reverses=posted
    )
    ReconExceptionEvent.objects.create(
        exception=exc, at=LATER, action="book_fee", data={"entry_ids": [posted.pk]}
    )
    ReconExceptionEvent.objects.create(
        exception=exc, at=LATER, action="undo", data={"entry_ids": [reversal.pk, 10**9]}
    )

    migration.entries_from_events(apps, None)

    links = {(link.entry_id, link.role, link.action) for link in exc.entry_links.all()}
    assert links == {(posted.pk, "posted", "book_fee"), (reversal.pk, "reversal", "undo")}
