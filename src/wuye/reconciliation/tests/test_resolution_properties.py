"""Properties of the posting resolutions, whatever the amounts: every entry balances, the
channel's clearing balance moves by exactly the amount posted, and an undo leaves every ledger
balance as it was before the resolution (no fen created, lost or doubled)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.payments.tests.helpers import household
from wuye.reconciliation.resolution import Action, exception_resolve, exception_undo
from wuye.reconciliation.tests.test_resolution import LATER, ledger_ok, recon_exception
from wuye.reconciliation.tests.test_resolution_adjust import (
    WITH_PREPAID,
    balances,
    channel_duplicate,
    clearing,
    mismatch,
)

pytestmark = pytest.mark.django_db

fen = st.integers(1, 10**8)
CHECKS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def _channels(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = WITH_PREPAID
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@CHECKS
@given(
    ours=fen,
    theirs=fen,
    write_off=st.booleans(),
    surplus_to=st.sampled_from(["", "prepaid", "refund"]),
)
def test_adjusting_to_the_channels_amount_moves_clearing_by_the_difference_and_undoes(
    ours, theirs, write_off, surplus_to
):
    if ours == theirs:
        return
    hh = household()
    company_id = hh.community.company_id
    _, exc = mismatch(hh, ours=ours, theirs=theirs)
    before, clearing_before = balances(company_id), clearing(company_id)
    if theirs > ours:
        action = Action.ADJUST_SURPLUS
    else:
        action = Action.ADJUST_WRITE_OFF if write_off else Action.ADJUST_RECEIVABLE

    exc = exception_resolve(
        exception=exc,
        action=action,
        user=hh.finance,
        now=LATER,
        note="差额",
        surplus_to=surplus_to,
    )

    assert clearing(company_id) - clearing_before == theirs - ours
    ledger_ok()
    if action == Action.ADJUST_RECEIVABLE:
        return  # final: the household owes the shortfall again (its bill reopened)
    exception_undo(exception=exc, user=hh.finance, now=LATER, reason="撤销")
    assert balances(company_id) == before
    ledger_ok()


@CHECKS
@given(amount=fen, surplus_to=st.sampled_from(["", "prepaid", "refund"]), rounds=st.integers(1, 3))
def test_a_duplicate_recorded_and_undone_any_number_of_times_leaves_the_ledger_as_before(
    amount, surplus_to, rounds
):
    hh = household()
    company_id = hh.community.company_id
    _, exc = channel_duplicate(hh, amount=amount)
    before, clearing_before = balances(company_id), clearing(company_id)
    for _ in range(rounds):
        exc = exception_resolve(
            exception=exc,
            action=Action.RECORD_DUPLICATE,
            user=hh.finance,
            now=LATER,
            surplus_to=surplus_to,
        )
        assert clearing(company_id) - clearing_before == amount
        exc = exception_undo(exception=exc, user=hh.finance, now=LATER, reason="撤销")
        assert balances(company_id) == before
    assert exc.entry_links.filter(role="posted").count() == rounds
    assert exc.entry_links.filter(role="reversal").count() == rounds
    ledger_ok()


@CHECKS
@given(expected=st.integers(0, 10**6), actual=st.integers(0, 10**6))
def test_a_fee_difference_booked_and_undone_leaves_the_ledger_as_before(expected, actual):
    if expected == actual:
        return
    hh = household()
    company_id = hh.community.company_id
    exc = recon_exception(
        company_id,
        "fee_mismatch",
        reference="r1",
        amount_fen=actual - expected,
        expected_fen=expected,
        actual_fen=actual,
    )
    before, clearing_before = balances(company_id), clearing(company_id)
    exc = exception_resolve(exception=exc, action=Action.BOOK_FEE, user=hh.finance, now=LATER)
    assert clearing(company_id) - clearing_before == -(actual - expected)
    exception_undo(exception=exc, user=hh.finance, now=LATER, reason="撤销")
    assert balances(company_id) == before
