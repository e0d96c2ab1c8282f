"""Shifts (交班): open with a float, cash in and out, close with cash counted against expected."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.counter.models import CashMovement, Shift
from wuye.counter.selectors import drawer_cash, shift_report
from wuye.counter.services import (
    OVER_SHORT_CHANNEL,
    ShiftAlreadyOpen,
    ShiftDifferenceNeedsNote,
    ShiftError,
    ShiftNotOpen,
    cash_movement_record,
    shift_close,
    shift_open,
)
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.testing.factories import make_community, make_company, make_user

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 8, 30, tzinfo=TZ)


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def place():
    company = make_company()
    community = make_community(company)
    cashier = make_user(company, role=Role.CASHIER)
    finance = make_user(company, role=Role.FINANCE)
    return {"company": company, "community": community, "cashier": cashier, "finance": finance}


def _open(place, float_fen=50_000, **kw):
    return shift_open(
        cashier=kw.get("cashier", place["cashier"]),
        community=place["community"],
        counter_name="1号窗口",
        opening_float_fen=float_fen,
        now=kw.get("now", NOW),
    )


def test_opening_a_shift_moves_the_float_from_the_safe_into_the_cashiers_drawer(place):
    shift = _open(place, 50_000)

    assert shift.state == Shift.State.OPEN
    assert drawer_cash(cashier_id=place["cashier"].pk, community_id=place["community"].pk) == 50_000
    assert account_balance(account=AccountKind.CASH, community_id=place["community"].pk) == 0
    assert unbalanced_entry_ids() == []


def test_a_cashier_cannot_open_a_second_shift_but_may_open_another_after_closing(place):
    first = _open(place)
    with pytest.raises(ShiftAlreadyOpen):
        _open(place)
    shift_close(shift=first, counted_cash_fen=50_000, note="", now=NOW.replace(hour=12))

    second = _open(place, 20_000, now=NOW.replace(hour=13))

    assert second.pk != first.pk
    assert Shift.objects.filter(cashier=place["cashier"]).count() == 2


def test_someone_without_a_role_in_the_company_cannot_open_a_shift(place):
    stranger = make_user(make_company(), role=Role.CASHIER)
    with pytest.raises(AccessDenied):
        _open(place, cashier=stranger)
    auditor = make_user(place["company"], role=Role.AUDITOR)
    with pytest.raises(AccessDenied):
        _open(place, cashier=auditor)
    assert not Shift.objects.exists()


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True])
def test_a_float_that_is_not_whole_fen_is_refused_and_nothing_is_written(place, bad):
    with pytest.raises(ShiftError):
        _open(place, bad)
    assert not Shift.objects.exists()
    assert not JournalEntry.objects.exists()


def test_cash_paid_in_and_out_is_a_balanced_entry_against_the_bank(place):
    shift = _open(place, 10_000)

    paid_in = cash_movement_record(
        shift=shift,
        kind="paid_in",
        amount_fen=20_000,
        reason="银行换零钱",
        user=place["cashier"],
        now=NOW,
    )
    paid_out = cash_movement_record(
        shift=shift,
        kind="paid_out",
        amount_fen=25_000,
        reason="送存银行",
        user=place["cashier"],
        now=NOW,
    )

    lines_in = {(x.account, x.amount_fen, x.cashier_id) for x in paid_in.entry.lines.all()}
    assert lines_in == {
        (AccountKind.CASH, 20_000, place["cashier"].pk),
        (AccountKind.BANK, -20_000, None),
    }
    lines_out = {(x.account, x.amount_fen, x.cashier_id) for x in paid_out.entry.lines.all()}
    assert lines_out == {
        (AccountKind.BANK, 25_000, None),
        (AccountKind.CASH, -25_000, place["cashier"].pk),
    }
    assert drawer_cash(cashier_id=place["cashier"].pk, community_id=place["community"].pk) == 5_000
    assert unbalanced_entry_ids() == []


def test_paying_out_more_than_the_drawer_holds_is_refused(place):
    shift = _open(place, 10_000)
    with pytest.raises(ShiftError, match=r"100\.00"):
        cash_movement_record(
            shift=shift,
            kind="paid_out",
            amount_fen=10_001,
            reason="x",
            user=place["cashier"],
            now=NOW,
        )
    assert not CashMovement.objects.exists()


def test_a_movement_needs_a_reason_a_known_kind_and_an_open_shift(place):
    shift = _open(place, 10_000)
    with pytest.raises(ShiftError):
        cash_movement_record(
            shift=shift, kind="paid_in", amount_fen=100, reason=" ", user=place["cashier"], now=NOW
        )
    with pytest.raises(ShiftError):
        cash_movement_record(
            shift=shift, kind="gift", amount_fen=100, reason="x", user=place["cashier"], now=NOW
        )
    shift_close(shift=shift, counted_cash_fen=10_000, note="", now=NOW)
    with pytest.raises(ShiftNotOpen):
        cash_movement_record(
            shift=shift, kind="paid_in", amount_fen=100, reason="x", user=place["cashier"], now=NOW
        )


def test_another_cashier_may_not_move_cash_in_my_drawer_but_finance_may(place):
    shift = _open(place, 10_000)
    other = make_user(place["company"], role=Role.CASHIER)
    with pytest.raises(AccessDenied):
        cash_movement_record(
            shift=shift, kind="paid_in", amount_fen=100, reason="x", user=other, now=NOW
        )
    m = cash_movement_record(
        shift=shift, kind="paid_in", amount_fen=100, reason="补零钱", user=place["finance"], now=NOW
    )
    assert m.created_by == place["finance"]


def test_closing_with_the_expected_cash_records_no_difference_and_empties_the_drawer(place):
    shift = _open(place, 50_000)
    cash_movement_record(
        shift=shift, kind="paid_in", amount_fen=3_000, reason="零钱", user=place["cashier"], now=NOW
    )

    closed = shift_close(shift=shift, counted_cash_fen=53_000, note="", now=NOW.replace(hour=17))

    assert (closed.expected_cash_fen, closed.counted_cash_fen, closed.difference_fen) == (
        53_000,
        53_000,
        0,
    )
    assert closed.state == Shift.State.CLOSED
    assert drawer_cash(cashier_id=place["cashier"].pk, community_id=place["community"].pk) == 0
    # The cash is in the safe now: float back plus what came in.
    assert (
        account_balance(account=AccountKind.CASH, community_id=place["community"].pk, channel="")
        == 3_000
    )
    assert unbalanced_entry_ids() == []


def test_a_short_drawer_needs_a_note_and_the_shortage_is_booked_to_over_short(place):
    shift = _open(place, 50_000)
    with pytest.raises(ShiftDifferenceNeedsNote):
        shift_close(shift=shift, counted_cash_fen=49_500, note="  ", now=NOW)
    shift.refresh_from_db()
    assert shift.state == Shift.State.OPEN

    closed = shift_close(shift=shift, counted_cash_fen=49_500, note="找零多找5元", now=NOW)

    assert closed.difference_fen == -500
    assert closed.difference_note == "找零多找5元"
    over_short = account_balance(
        account=AccountKind.CASH_OVER_SHORT,
        community_id=place["community"].pk,
        channel=OVER_SHORT_CHANNEL,
    )
    assert over_short == 500  # a shortage is a debit until finance clears it
    assert drawer_cash(cashier_id=place["cashier"].pk, community_id=place["community"].pk) == 0


def test_an_overage_is_a_credit_on_over_short(place):
    shift = _open(place, 0)
    closed = shift_close(shift=shift, counted_cash_fen=200, note="多出2元, 原因不明", now=NOW)
    assert closed.difference_fen == 200
    assert (
        account_balance(
            account=AccountKind.CASH_OVER_SHORT,
            community_id=place["community"].pk,
            channel=OVER_SHORT_CHANNEL,
        )
        == -200
    )


def test_a_closed_shift_cannot_be_closed_again(place):
    shift = _open(place, 100)
    shift_close(shift=shift, counted_cash_fen=100, note="", now=NOW)
    with pytest.raises(ShiftNotOpen):
        shift_close(shift=shift, counted_cash_fen=100, note="", now=NOW)
    assert JournalEntry.objects.filter(memo__startswith="交班").count() == 1


def test_an_exception_while_posting_the_close_leaves_the_shift_open_and_nothing_posted(
    place, monkeypatch
):
    shift = _open(place, 1_000)
    before = JournalLine.objects.count()

    import wuye.counter.services as services

    def boom(**kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "audit_record", boom)
    with pytest.raises(RuntimeError):
        shift_close(shift=shift, counted_cash_fen=1_000, note="", now=NOW)

    shift.refresh_from_db()
    assert shift.state == Shift.State.OPEN
    assert JournalLine.objects.count() == before


def test_an_exception_while_recording_a_movement_posts_nothing(place, monkeypatch):
    shift = _open(place, 1_000)
    before = JournalLine.objects.count()

    def boom(*a, **kw):
        raise RuntimeError("crash after posting")

    monkeypatch.setattr(CashMovement.objects, "create", boom)
    with pytest.raises(RuntimeError):
        cash_movement_record(
            shift=shift, kind="paid_in", amount_fen=5, reason="x", user=place["cashier"], now=NOW
        )
    assert JournalLine.objects.count() == before


def test_the_shift_report_adds_up_float_movements_expected_counted_and_difference(place):
    shift = _open(place, 30_000)
    cash_movement_record(
        shift=shift, kind="paid_in", amount_fen=5_000, reason="零钱", user=place["cashier"], now=NOW
    )
    cash_movement_record(
        shift=shift,
        kind="paid_out",
        amount_fen=2_000,
        reason="买打印纸",
        user=place["cashier"],
        now=NOW,
    )
    shift = shift_close(shift=shift, counted_cash_fen=32_900, note="少1元", now=NOW)

    report = shift_report(shift=shift)

    cash = report.cash
    assert (cash.opening_float_fen, cash.paid_in_fen, cash.paid_out_fen) == (30_000, 5_000, 2_000)
    assert cash.expected_fen == 33_000 == shift.expected_cash_fen
    assert cash.counted_fen == 32_900
    assert cash.difference_fen == -100
    assert report.check() == []


@given(
    float_fen=st.integers(0, 1_000_000),
    moves=st.lists(
        st.tuples(st.sampled_from(["paid_in", "paid_out"]), st.integers(1, 500_000)), max_size=8
    ),
    counted_delta=st.integers(-10_000, 10_000),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_expected_cash_is_float_plus_paid_in_minus_paid_out_whatever_the_sequence(
    place, float_fen, moves, counted_delta
):
    cashier = make_user(place["company"], role=Role.CASHIER)
    shift = _open(place, float_fen, cashier=cashier)
    drawer = float_fen
    for kind, amount in moves:
        try:
            cash_movement_record(
                shift=shift, kind=kind, amount_fen=amount, reason="r", user=cashier, now=NOW
            )
        except ShiftError:
            assert kind == "paid_out" and amount > drawer
            continue
        drawer += amount if kind == "paid_in" else -amount
    counted = max(0, drawer + counted_delta)

    closed = shift_close(shift=shift, counted_cash_fen=counted, note="差异", now=NOW)

    assert closed.expected_cash_fen == drawer
    assert closed.difference_fen == counted - drawer
    assert drawer_cash(cashier_id=cashier.pk, community_id=place["community"].pk) == 0
    assert shift_report(shift=closed).check() == []
    assert unbalanced_entry_ids() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_opens_at_once_leave_one_open_shift(place):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions need PostgreSQL")
    results: list[object] = []

    def attempt():
        try:
            results.append(_open(place, 1_000))
        except ShiftAlreadyOpen as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Shift.objects.filter(cashier=place["cashier"], state="open").count() == 1
    assert sum(isinstance(r, Shift) for r in results) == 1
    assert drawer_cash(cashier_id=place["cashier"].pk, community_id=place["community"].pk) == 1_000
