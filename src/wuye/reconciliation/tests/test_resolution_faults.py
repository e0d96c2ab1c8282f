"""Resolution under faults, races and arbitrary amounts: nothing half-done, nothing twice,
the ledger balanced and clearing exact."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.ledger.models import JournalEntry
from wuye.ledger.selectors import unbalanced_entry_ids
from wuye.payments.models import Payment
from wuye.payments.services import order_create, payment_capture
from wuye.payments.tests.helpers import household, key
from wuye.reconciliation import resolution
from wuye.reconciliation.clearing import clearing_balance
from wuye.reconciliation.models import ReconException
from wuye.reconciliation.resolution import Action, exception_resolve, posting_undo
from wuye.reconciliation.tests.test_resolution import (
    CARD_CHANNELS,
    LATER,
    SETTLE,
    TXN_AT,
    channel_record,
    ledger_ok,
    recon_exception,
)


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = CARD_CHANNELS
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_a_failure_after_posting_leaves_no_payment_no_entry_and_the_exception_open(monkeypatch):
    hh = household()
    bill = hh.bill(12_800)
    company_id = hh.community.company_id
    record = channel_record(company_id, channel="card", reference="000001234567", amount_fen=12_800)
    exc = recon_exception(
        company_id,
        "channel_only",
        reference=record.reference,
        amount_fen=12_800,
        channel_record=record,
    )
    entries = JournalEntry.objects.count()

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(resolution, "_event", boom)
    with pytest.raises(RuntimeError):
        exception_resolve(
            exception=exc,
            action=Action.POST_PAYMENT,
            user=hh.finance,
            now=LATER,
            unit_id=hh.unit.pk,
        )

    exc.refresh_from_db()
    bill.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert Payment.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    assert bill.outstanding_fen == 12_800


@pytest.mark.django_db
@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payments=st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=1, max_size=4),
    fee_ppm=st.integers(min_value=0, max_value=10_000),
    short_fen=st.integers(min_value=0, max_value=1_000),
    undo=st.booleans(),
)
def test_clearing_is_what_was_taken_less_what_arrived_and_fees(payments, fee_ppm, short_fen, undo):
    hh = household()
    company_id = hh.community.company_id
    for month, amount in enumerate(payments, start=1):
        bill = hh.bill(amount, month=month)
        order = order_create(
            unit=hh.unit,
            bill_ids=[bill.pk],
            channel="card",
            idempotency_key=key("h"),
            cashier=None,
            now=TXN_AT,
        )
        payment_capture(
            order=order,
            response=PaymentResponse(ChannelResult.PROCESSED, amount, key("rrn")),
            now=TXN_AT,
        )
    gross = sum(payments)
    fee = gross * fee_ppm // 1_000_000
    bank = max(1, gross - fee - short_fen)
    entry = resolution.arrival_post(
        company_id=company_id,
        channel="card",
        settle_date=SETTLE,
        bank_fen=bank,
        fee_fen=fee,
        value_date=SETTLE,
        bank_reference="B1",
    )
    assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == (
        gross - fee - bank
    )
    if undo:
        posting_undo(entry=entry, user=hh.finance, now=LATER, reason="h")
        assert clearing_balance(company_id=company_id, channel="card", settle_date=SETTLE) == gross
    assert unbalanced_entry_ids() == []


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_people_resolving_the_same_exception_at_once_post_it_once():
    hh = household()
    bill = hh.bill(12_800)
    company_id = hh.community.company_id
    record = channel_record(company_id, channel="card", reference="000001234567", amount_fen=12_800)
    exc = recon_exception(
        company_id,
        "channel_only",
        reference=record.reference,
        amount_fen=12_800,
        channel_record=record,
    )
    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def work() -> None:
        try:
            barrier.wait()
            exception_resolve(
                exception=exc,
                action=Action.POST_PAYMENT,
                user=hh.finance,
                now=LATER,
                unit_id=hh.unit.pk,
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

    assert len(errors) == 3 and all(isinstance(e, resolution.ResolutionError) for e in errors)
    assert Payment.objects.count() == 1
    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    ledger_ok()
