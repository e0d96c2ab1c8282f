"""Resolution postings: each leaves the ledger balanced and its invariants true, undo reverses,
and the clearing balance of a settlement date reaches zero once its money arrived."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.billing.models import Bill
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance
from wuye.payments.models import Payment
from wuye.payments.services import order_create, payment_capture
from wuye.payments.tests.fakes import FakeCardChannel
from wuye.payments.tests.helpers import Household, household, key, staff
from wuye.reconciliation.clearing import clearing_balance, clearing_in_transit
from wuye.reconciliation.resolution import (
    HouseholdNotFound,
    ResolutionError,
    arrival_post,
    channel_payment_post,
    fee_difference_post,
    internal_only_reverse,
    posting_undo,
    refund_due_post,
)

pytestmark = pytest.mark.django_db

TXN_AT = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai, 2026-11-20
TXN_DATE = date(2026, 11, 20)
SETTLE = date(2026, 11, 21)
LATER = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


class FakeWechat(FakeCardChannel):
    """A QR-like channel: money sits in CLEARING until the provider settles it."""

    code = "fakewx"
    name = "测试微信"


RECON_CHANNELS = [
    "wuye.channels.cash.adapter.CashChannel",
    "wuye.channels.prepaid.adapter.PrepaidChannel",
    "wuye.payments.tests.fakes.FakeCardChannel",
    "wuye.reconciliation.tests.test_resolution.FakeWechat",
]


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = RECON_CHANNELS
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def ledger_ok() -> dict:
    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"], report
    return report


def paid_by_channel(
    hh: Household, amount_fen: int, *, channel: str = "fakecard", ref: str = ""
) -> Payment:
    """A payment Wuye recorded normally through the channel."""
    bill = hh.bill(amount_fen, month=1)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel=channel,
        idempotency_key=key("ord"),
        cashier=hh.cashier,
        now=TXN_AT,
    )
    return payment_capture(
        order=order,
        response=PaymentResponse(ChannelResult.PROCESSED, amount_fen, ref or key("rrn")),
        now=TXN_AT,
    )


def test_a_channel_only_payment_is_posted_to_the_pending_order_it_was_for():
    hh = household()
    bill = hh.bill(12800, month=1)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="fakewx",
        idempotency_key="WY20261120000123",
        cashier=None,
        now=TXN_AT,
    )

    payment = channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakewx",
        reference="4200001234202611200123456789",
        amount_fen=12800,
        paid_at=TXN_AT,
        order_no="WY20261120000123",
    )

    bill.refresh_from_db()
    assert payment.order_id == order.pk
    assert bill.outstanding_fen == 0
    assert (
        clearing_balance(company_id=hh.community.company_id, channel="fakewx", settle_date=SETTLE)
        == 12800
    )
    ledger_ok()
    # The same record again posts nothing more.
    again = channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakewx",
        reference="4200001234202611200123456789",
        amount_fen=12800,
        paid_at=TXN_AT,
        order_no="WY20261120000123",
    )
    assert again.pk == payment.pk
    assert Payment.objects.count() == 1


def test_a_channel_only_payment_for_a_paid_order_pays_the_households_oldest_open_bills():
    hh = household()
    paid_by_channel(hh, 5000, channel="fakewx")
    older = hh.bill(3000, month=2)
    newer = hh.bill(4000, month=3)
    first_order_key = Payment.objects.get().order.idempotency_key

    channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakewx",
        reference="wx-second",
        amount_fen=5000,
        paid_at=TXN_AT,
        order_no=first_order_key,
    )

    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.outstanding_fen, newer.outstanding_fen) == (0, 2000)
    ledger_ok()


def test_a_channel_only_payment_without_a_known_household_is_refused_and_changes_nothing():
    hh = household()
    hh.bill(1000)
    with pytest.raises(HouseholdNotFound):
        channel_payment_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            reference="000001234567",
            amount_fen=1000,
            paid_at=TXN_AT,
        )
    assert Payment.objects.count() == 0


def test_finance_can_choose_the_household_of_a_channel_only_payment_and_the_surplus_is_prepaid():
    hh = household()
    bill = hh.bill(1000)

    payment = channel_payment_post(
        company_id=hh.community.company_id,
        channel="fakecard",
        reference="000001234567",
        amount_fen=1500,
        paid_at=TXN_AT,
        unit_id=hh.unit.pk,
    )

    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    assert payment.prepaid_fen + payment.refund_due_fen == 500
    ledger_ok()


def test_a_household_of_another_company_cannot_be_chosen():
    hh = household()
    other = household()
    with pytest.raises(HouseholdNotFound):
        channel_payment_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            reference="x1",
            amount_fen=100,
            paid_at=TXN_AT,
            unit_id=other.unit.pk,
        )


def test_arrival_brings_the_settlement_dates_clearing_balance_to_zero():
    hh = household()
    paid_by_channel(hh, 128000)
    company_id = hh.community.company_id
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 128000

    arrival_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=127360,
        fee_fen=640,
        value_date=SETTLE,
        bank_reference="B202611210001",
    )

    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 0
    assert clearing_in_transit(company_id=company_id) == []
    assert account_balance(account=AccountKind.BANK, company_id=company_id) == 127360
    assert account_balance(account=AccountKind.FEE_EXPENSE, company_id=company_id) == 640
    ledger_ok()


def test_a_short_arrival_leaves_the_shortfall_in_transit():
    hh = household()
    paid_by_channel(hh, 10000)
    company_id = hh.community.company_id
    arrival_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=9900,
        fee_fen=50,
        value_date=SETTLE + timedelta(days=1),
        bank_reference="B1",
    )
    [transit] = clearing_in_transit(company_id=company_id)
    assert (transit.channel, transit.settle_date, transit.balance_fen) == ("fakecard", SETTLE, 50)


def test_the_same_bank_line_booked_twice_posts_once():
    hh = household()
    paid_by_channel(hh, 10000)
    args = dict(
        company_id=hh.community.company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=9950,
        fee_fen=50,
        value_date=SETTLE,
        bank_reference="B1",
    )
    first = arrival_post(**args)
    second = arrival_post(**args)
    assert first.pk == second.pk


def test_an_internal_only_payment_is_given_back_and_its_bill_reopens():
    hh = household()
    payment = paid_by_channel(hh, 8800)
    company_id = hh.community.company_id

    refund = internal_only_reverse(
        payment=payment, reason="对账: 渠道无此交易", user=hh.finance, now=LATER
    )

    payment.refresh_from_db()
    bill = Bill.objects.get(unit=hh.unit)
    assert refund.amount_fen == 8800
    assert payment.state == Payment.State.REFUNDED
    assert bill.outstanding_fen == 8800
    # It counts where the payment counted: nothing is left in transit for that day.
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 0
    assert clearing_in_transit(company_id=company_id) == []
    ledger_ok()


def test_only_finance_may_reverse_an_internal_only_payment():
    hh = household()
    payment = paid_by_channel(hh, 8800)
    with pytest.raises(AccessDenied):
        internal_only_reverse(
            payment=payment, reason="x", user=staff(hh.community, Role.CASHIER), now=LATER
        )
    payment.refresh_from_db()
    assert payment.refunded_fen == 0


def test_a_fee_difference_is_booked_and_undone_by_reversal():
    hh = household()
    paid_by_channel(hh, 100000)
    company_id = hh.community.company_id
    arrival_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        bank_fen=99400,
        fee_fen=500,  # the contract's fee; the channel took 600
        value_date=SETTLE,
        bank_reference="B9",
    )
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 100

    entry = fee_difference_post(
        company_id=company_id,
        channel="fakecard",
        settle_date=SETTLE,
        difference_fen=100,
        reference="000001234567",
        on_date=SETTLE,
    )
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 0
    assert account_balance(account=AccountKind.FEE_EXPENSE, company_id=company_id) == 600

    posting_undo(entry=entry, user=hh.finance, now=LATER, reason="test")
    assert clearing_balance(company_id=company_id, channel="fakecard", settle_date=SETTLE) == 100
    with pytest.raises(ResolutionError):
        posting_undo(entry=entry, user=hh.finance, now=LATER, reason="again")
    ledger_ok()


def test_a_refund_due_moves_the_money_out_of_transit_into_refund_payable():
    hh = household()
    company_id = hh.community.company_id
    refund_due_post(
        company_id=company_id,
        channel="fakewx",
        settle_date=SETTLE,
        reference="wx-unknown",
        amount_fen=700,
        unit=None,
        on_date=SETTLE,
    )
    # The channel's settlement will include the 7.00 it took; booking its arrival then
    # nets the settlement date to zero.
    assert clearing_balance(company_id=company_id, channel="fakewx", settle_date=SETTLE) == 700
    arrival_post(
        company_id=company_id,
        channel="fakewx",
        settle_date=SETTLE,
        bank_fen=700,
        fee_fen=0,
        value_date=SETTLE,
        bank_reference="B7",
    )
    assert clearing_balance(company_id=company_id, channel="fakewx", settle_date=SETTLE) == 0
    assert account_balance(account=AccountKind.REFUND_PAYABLE, company_id=company_id) == -700
    ledger_ok()


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_a_fee_difference_must_be_a_non_zero_integer_of_fen(bad):
    hh = household()
    with pytest.raises(ResolutionError):
        fee_difference_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            settle_date=SETTLE,
            difference_fen=bad,
            reference="r",
            on_date=SETTLE,
        )


@pytest.mark.parametrize("bad", [0, -5, 1.5])
def test_an_arrival_must_be_a_positive_integer_of_fen(bad):
    hh = household()
    with pytest.raises(ResolutionError):
        arrival_post(
            company_id=hh.community.company_id,
            channel="fakecard",
            settle_date=SETTLE,
            bank_fen=bad,
            fee_fen=0,
            value_date=SETTLE,
            bank_reference="r",
        )


# --- exceptions ------------------------------------------------------------------------------

_seq = iter(range(1, 10**9))


def source_file(company_id: int, kind: str = "acquirer"):  # type: ignore[no-untyped-def]
    from wuye.reconciliation.models import SourceFile

    n = next(_seq)
    return SourceFile.objects.create(
        company_id=company_id,
        kind=kind,
        original_name=f"f{n}.csv",
        sha256=f"{n:064d}",
        imported_at=LATER,
    )


def channel_record(
    company_id: int,
    *,
    channel: str,
    reference: str,
    amount_fen: int,
    order_no: str = "",
    kind: str = "payment",
):  # type: ignore[no-untyped-def]
    from wuye.reconciliation.models import ChannelRecord

    return ChannelRecord.objects.create(
        source=source_file(company_id),
        company_id=company_id,
        channel=channel,
        merchant_no="898310048990001",
        settle_date=SETTLE,
        txn_at=TXN_AT,
        reference=reference,
        order_no=order_no,
        kind=kind,
        amount_fen=amount_fen,
        net_fen=amount_fen,
        line_no=2,
    )


def recon_exception(company_id: int, category: str, *, channel: str = "card", **kw):  # type: ignore[no-untyped-def]
    from wuye.reconciliation.models import ReconException, ReconRun

    run = kw.pop("run", None) or ReconRun.objects.create(
        company_id=company_id, channel=channel, settle_date=SETTLE, started_at=LATER
    )
    kw.setdefault("key", f"{category}:{channel}:{next(_seq)}")
    return ReconException.objects.create(
        run=run,
        company_id=company_id,
        channel=channel,
        settle_date=SETTLE,
        category=category,
        created_at=LATER,
        last_seen_at=LATER,
        **kw,
    )


def settlement_and_credit(
    company_id: int,
    *,
    channel: str,
    gross: int,
    fee: int,
    credit: int | None,
    merchant_no: str = "898310048990001",
):  # type: ignore[no-untyped-def]
    from wuye.reconciliation.models import BankMovement, ChannelSettlement

    settlement = ChannelSettlement.objects.create(
        source=source_file(company_id),
        company_id=company_id,
        channel=channel,
        merchant_no=merchant_no,
        settle_date=SETTLE,
        row_count=1,
        gross_fen=gross,
        fee_fen=fee,
        net_fen=gross - fee,
    )
    movement = None
    if credit is not None:
        movement = BankMovement.objects.create(
            source=source_file(company_id, "bank_csv"),
            company_id=company_id,
            account_no="31000000000000001",
            serial_no=f"B{next(_seq)}",
            txn_date=SETTLE,
            value_date=SETTLE,
            direction="C",
            amount_fen=credit,
            channel=channel,
            merchant_no=merchant_no,
            settle_date=SETTLE,
            line_no=2,
        )
    return settlement, movement


CARD_CHANNELS = [
    "wuye.channels.cash.adapter.CashChannel",
    "wuye.reconciliation.tests.test_resolution.Card",
    "wuye.reconciliation.tests.test_resolution.Wechat",
]


class Card(FakeCardChannel):
    code = "card"


class Wechat(FakeCardChannel):
    code = "wechat"


def test_finance_posts_a_channel_only_exception_and_it_is_resolved_with_history_and_audit(settings):
    from wuye.core.models import AuditEvent
    from wuye.reconciliation.models import ReconException
    from wuye.reconciliation.resolution import Action, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    bill = hh.bill(12800)
    company_id = hh.community.company_id
    record = channel_record(company_id, channel="card", reference="000001234567", amount_fen=12800)
    exc = recon_exception(
        company_id,
        "channel_only",
        reference="000001234567",
        amount_fen=12800,
        channel_record=record,
    )

    exc = exception_resolve(
        exception=exc,
        action=Action.POST_PAYMENT,
        user=hh.finance,
        now=LATER,
        unit_id=hh.unit.pk,
        note="业主来电确认",
    )

    bill.refresh_from_db()
    assert exc.state == ReconException.State.RESOLVED
    assert exc.payment is not None and exc.payment.paid_at == TXN_AT
    assert bill.outstanding_fen == 0
    assert [e.action for e in exc.events.all()] == ["post_payment"]
    assert AuditEvent.objects.filter(action="reconciliation.post_payment").count() == 1
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 12800
    ledger_ok()

    # Undo: the payment is given back, the bill reopens, the exception is open again.
    exc = exception_undo_(exc, hh)
    bill.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert bill.outstanding_fen == 12800
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 0
    assert [e.action for e in exc.events.all()] == ["post_payment", "undo"]
    ledger_ok()

    # Posted again, to the same household: a fresh payment, the bill paid again.
    exc = exception_resolve(
        exception=exc, action=Action.POST_PAYMENT, user=hh.finance, now=LATER, unit_id=hh.unit.pk
    )
    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 12800
    ledger_ok()


def exception_undo_(exc, hh):  # type: ignore[no-untyped-def]
    from wuye.reconciliation.resolution import exception_undo

    return exception_undo(exception=exc, user=hh.finance, now=LATER, reason="记错房屋")


def test_an_action_that_does_not_fit_the_category_is_refused_and_changes_nothing(settings):
    from wuye.reconciliation.models import ReconException
    from wuye.reconciliation.resolution import Action, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=100)
    with pytest.raises(ResolutionError):
        exception_resolve(exception=exc, action=Action.POST_PAYMENT, user=hh.finance, now=LATER)
    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert exc.events.count() == 0


def test_a_cashier_cannot_resolve_an_exception(settings):
    from wuye.reconciliation.resolution import Action, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=100)
    with pytest.raises(AccessDenied):
        exception_resolve(exception=exc, action=Action.CHASE, user=hh.cashier, now=LATER, note="x")


def test_chasing_a_missing_arrival_posts_nothing_and_keeps_it_open_with_an_owner(settings):
    from wuye.ledger.models import JournalEntry
    from wuye.reconciliation.models import ReconException
    from wuye.reconciliation.resolution import Action, exception_resolve

    hh = household()
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=97540)
    before = JournalEntry.objects.count()
    exc = exception_resolve(
        exception=exc, action=Action.CHASE, user=hh.finance, now=LATER, note="已致电收单行"
    )
    assert exc.state == ReconException.State.OPEN
    assert exc.owner_id == hh.finance.pk
    assert JournalEntry.objects.count() == before
    assert exc.events.get().note == "已致电收单行"


def test_an_internal_only_exception_reverses_our_payment(settings):
    from wuye.reconciliation.models import ReconException
    from wuye.reconciliation.resolution import Action, actions_for, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    payment = paid_by_channel(hh, 5000, channel="card")
    exc = recon_exception(
        hh.community.company_id,
        "internal_only",
        reference=payment.reference,
        amount_fen=5000,
        payment=payment,
    )
    exc = exception_resolve(
        exception=exc,
        action=Action.REVERSE_PAYMENT,
        user=hh.finance,
        now=LATER,
        note="终端超时未扣款",
    )
    assert exc.state == ReconException.State.RESOLVED
    assert exc.refund is not None and exc.refund.amount_fen == 5000
    assert actions_for(exc) == []  # final
    assert (
        clearing_balance(company_id=hh.community.company_id, channel="card", settle_date=SETTLE)
        == 0
    )
    ledger_ok()


def test_a_fee_mismatch_is_booked_and_the_arrival_then_clears_the_day(settings):
    from wuye.reconciliation.resolution import Action, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    company_id = hh.community.company_id
    paid_by_channel(hh, 100000, channel="card")
    settlement, movement = settlement_and_credit(
        company_id, channel="card", gross=100000, fee=600, credit=99400
    )
    fee = recon_exception(
        company_id,
        "fee_mismatch",
        reference="r1",
        amount_fen=100,
        expected_fen=500,
        actual_fen=600,
        merchant_no=settlement.merchant_no,
    )
    late = recon_exception(
        company_id,
        "arrival_late",
        amount_fen=99400,
        settlement=settlement,
        bank_movement=movement,
    )
    exception_resolve(exception=late, action=Action.BOOK_ARRIVAL, user=hh.finance, now=LATER)
    # Booked at the contracted fee (5.00): the extra 1.00 the channel kept is still in transit.
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 100
    exception_resolve(exception=fee, action=Action.BOOK_FEE, user=hh.finance, now=LATER)
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 0
    assert account_balance(account=AccountKind.BANK, company_id=company_id) == 99400
    assert account_balance(account=AccountKind.FEE_EXPENSE, company_id=company_id) == 600
    ledger_ok()


def test_dismissing_needs_a_note_and_can_be_undone(settings):
    from wuye.reconciliation.models import ReconException
    from wuye.reconciliation.resolution import Action, exception_resolve

    hh = household()
    exc = recon_exception(hh.community.company_id, "duplicate", reference="r", amount_fen=100)
    with pytest.raises(ResolutionError):
        exception_resolve(
            exception=exc, action=Action.DISMISS, user=hh.finance, now=LATER, note=" "
        )
    exc = exception_resolve(
        exception=exc,
        action=Action.DISMISS,
        user=hh.finance,
        now=LATER,
        note="渠道重复推送, 已核实",
    )
    assert exc.state == ReconException.State.DISMISSED
    exc = exception_undo_(exc, hh)
    assert exc.state == ReconException.State.OPEN


def test_a_refund_the_channel_made_is_recorded_against_our_payment_and_reopens_the_bill(settings):
    from wuye.reconciliation.resolution import Action, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    company_id = hh.community.company_id
    payment = paid_by_channel(hh, 30_000, channel="card", ref="000001234561")
    record = channel_record(
        company_id, channel="card", reference="000001234570", amount_fen=-30_000, kind="refund"
    )
    record.orig_reference = "000001234561"
    record.save(update_fields=["orig_reference"])
    exc = recon_exception(
        company_id,
        "channel_only",
        reference=record.reference,
        amount_fen=-30_000,
        channel_record=record,
    )

    exc = exception_resolve(
        exception=exc, action=Action.RECORD_REFUND, user=hh.finance, now=LATER, note="终端退货"
    )

    payment.refresh_from_db()
    bill = Bill.objects.get(unit=hh.unit)
    assert exc.refund is not None and exc.refund.reference == "000001234570"
    assert payment.state == Payment.State.REFUNDED
    assert bill.outstanding_fen == 30_000
    # Taken and given back the same day: nothing of it is in transit.
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 0
    ledger_ok()


def test_recording_a_refund_needs_the_original_payment(settings):
    from wuye.reconciliation.resolution import Action, exception_resolve

    settings.WUYE_CHANNELS = CARD_CHANNELS
    hh = household()
    company_id = hh.community.company_id
    record = channel_record(
        company_id, channel="card", reference="000001234571", amount_fen=-500, kind="refund"
    )
    exc = recon_exception(
        company_id,
        "channel_only",
        reference=record.reference,
        amount_fen=-500,
        channel_record=record,
    )
    with pytest.raises(ResolutionError):
        exception_resolve(exception=exc, action=Action.RECORD_REFUND, user=hh.finance, now=LATER)
    exc.refresh_from_db()
    assert exc.events.count() == 0
