"""Automatic rules: the obvious differences resolve themselves, visibly and undoably."""

from __future__ import annotations

import pytest

from wuye.core.models import AuditEvent
from wuye.ledger.models import JournalEntry
from wuye.payments.models import Payment
from wuye.payments.services import order_create
from wuye.payments.tests.helpers import household
from wuye.reconciliation.clearing import clearing_balance
from wuye.reconciliation.models import ReconException
from wuye.reconciliation.resolution import exception_undo
from wuye.reconciliation.rules import arrival_undo, auto_arrivals, rules_apply
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


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = CARD_CHANNELS


def test_a_channel_only_qr_payment_whose_order_number_we_know_is_posted_automatically():
    hh = household()
    company_id = hh.community.company_id
    bill = hh.bill(12800)
    order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="wechat",
        idempotency_key="WY20261120000123",
        cashier=None,
        now=TXN_AT,
    )
    record = channel_record(
        company_id,
        channel="wechat",
        reference="4200001234202611200123456789",
        amount_fen=12800,
        order_no="WY20261120000123",
    )
    known = recon_exception(
        company_id,
        "channel_only",
        channel="wechat",
        reference=record.reference,
        order_no=record.order_no,
        amount_fen=12800,
        channel_record=record,
    )
    unknown = recon_exception(
        company_id, "channel_only", channel="wechat", reference="42000099", amount_fen=500
    )

    result = rules_apply(company_id=company_id, settle_date=SETTLE, now=LATER)

    known.refresh_from_db()
    unknown.refresh_from_db()
    bill.refresh_from_db()
    assert result.payments_posted == [known.pk]
    assert result.left_open == [unknown.pk]
    assert known.state == ReconException.State.AUTO_RESOLVED
    assert unknown.state == ReconException.State.OPEN
    assert bill.outstanding_fen == 0
    assert known.events.get().data["auto"] is True
    ledger_ok()

    # Running the rules again changes nothing.
    again = rules_apply(company_id=company_id, settle_date=SETTLE, now=LATER)
    assert again.payments_posted == []
    assert Payment.objects.count() == 1

    # Finance undoes it: the bill is open again and so is the exception.
    exception_undo(exception=known, user=hh.finance, now=LATER, reason="不是这户")
    known.refresh_from_db()
    bill.refresh_from_db()
    assert known.state == ReconException.State.OPEN
    assert bill.outstanding_fen == 12800
    ledger_ok()


def test_an_exact_arrival_is_booked_automatically_and_finance_can_undo_it():
    hh = household()
    company_id = hh.community.company_id
    paid_by_channel(hh, 128000, channel="card")
    settlement_and_credit(company_id, channel="card", gross=128000, fee=640, credit=127360)

    result = rules_apply(company_id=company_id, settle_date=SETTLE, now=LATER)

    assert len(result.arrivals_booked) == 1
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 0
    [entry] = auto_arrivals(company_id=company_id, settle_date=SETTLE)
    assert AuditEvent.objects.filter(action="reconciliation.auto_arrival").count() == 1
    ledger_ok()

    arrival_undo(entry=entry, user=hh.finance, now=LATER, reason="银行流水识别错误")
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 128000
    # The rule does not book an arrival finance undid.
    assert rules_apply(company_id=company_id, settle_date=SETTLE, now=LATER).arrivals_booked == []
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.ARRIVAL).count() == 1
    ledger_ok()


def test_a_short_arrival_is_not_booked_by_a_rule():
    hh = household()
    company_id = hh.community.company_id
    paid_by_channel(hh, 10000, channel="card")
    settlement_and_credit(company_id, channel="card", gross=10000, fee=50, credit=9000)
    assert rules_apply(company_id=company_id, settle_date=SETTLE, now=LATER).arrivals_booked == []
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 10000


def test_a_late_but_exact_arrival_resolves_its_exception_automatically():
    hh = household()
    company_id = hh.community.company_id
    paid_by_channel(hh, 10000, channel="card")
    settlement, movement = settlement_and_credit(
        company_id, channel="card", gross=10000, fee=50, credit=9950
    )
    late = recon_exception(
        company_id, "arrival_late", amount_fen=9950, settlement=settlement, bank_movement=movement
    )
    rules_apply(company_id=company_id, settle_date=SETTLE, now=LATER)
    late.refresh_from_db()
    assert late.state == ReconException.State.AUTO_RESOLVED
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == 0
    ledger_ok()
