"""Taking money at the counter through the payments services, and reports that add up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.accounts.models import Membership, Role, User
from wuye.billing.models import Bill
from wuye.billing.selectors import prepaid_balance
from wuye.billing.tests.helpers import issue_bill
from wuye.counter.selectors import day_report, drawer_cash, shift_report
from wuye.counter.services import (
    CounterPayError,
    ShiftNotOpen,
    counter_checkout,
    counter_refund,
    shift_close,
    shift_open,
)
from wuye.ledger.models import JournalEntry, JournalLine
from wuye.ledger.selectors import unbalanced_entry_ids
from wuye.testing.factories import make_building, make_community, make_fee_item, make_unit

payments_services = pytest.importorskip("wuye.payments.services")
pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
_n = iter(range(1, 10**9))


def _staff(community, role):
    user = User.objects.create(username=f"{role}-{next(_n)}", display_name=role)
    Membership.objects.create(user=user, company=community.company, role=role)
    return user


@pytest.fixture
def hh():
    community = make_community()
    unit = make_unit(make_building(community), label="1-101")
    item = make_fee_item(community.company)
    cashier = _staff(community, Role.CASHIER)
    finance = _staff(community, Role.FINANCE)
    old = issue_bill(unit=unit, fee_item=item, amount_fen=10_000, period_start=date(2026, 1, 1))
    current = issue_bill(unit=unit, fee_item=item, amount_fen=20_000, period_start=date(2026, 3, 1))
    shift = shift_open(
        cashier=cashier,
        community=community,
        counter_name="1号窗口",
        opening_float_fen=50_000,
        now=NOW,
    )
    return {
        "community": community,
        "unit": unit,
        "item": item,
        "cashier": cashier,
        "finance": finance,
        "old": old,
        "current": current,
        "shift": shift,
    }


def _pay(hh, bills, key, **kw):
    kw.setdefault("amount_fen", None)
    kw.setdefault("channel", "cash")
    return counter_checkout(
        shift=hh["shift"],
        unit=hh["unit"],
        bill_ids=[b.pk for b in bills],
        idempotency_key=key,
        now=kw.pop("now", NOW),
        **kw,
    )


def _drawer(hh):
    return drawer_cash(cashier_id=hh["cashier"].pk, community_id=hh["community"].pk)


def test_paying_cash_settles_the_ticked_bills_gives_change_and_fills_the_drawer(hh):
    result = _pay(hh, [hh["old"], hh["current"]], "k1", tendered_fen=40_000)

    assert result.payment.amount_fen == 30_000
    assert result.change_fen == 10_000
    cash = shift_report(shift=hh["shift"]).cash
    assert (cash.tendered_fen, cash.change_given_fen, cash.cash_payments_fen) == (
        40_000,
        10_000,
        30_000,
    )
    assert [b.outstanding_fen for b in Bill.objects.filter(unit=hh["unit"])] == [0, 0]
    assert result.payment.shift_id == hh["shift"].pk
    assert _drawer(hh) == 50_000 + 30_000
    assert unbalanced_entry_ids() == []


def test_the_same_key_twice_charges_once(hh):
    first = _pay(hh, [hh["old"]], "same", tendered_fen=10_000)
    second = _pay(hh, [hh["old"]], "same", tendered_fen=10_000)

    assert first.payment.pk == second.payment.pk
    assert _drawer(hh) == 60_000
    assert JournalEntry.objects.filter(kind="payment").count() == 1


def test_a_partial_payment_settles_the_oldest_bill_first(hh):
    _pay(hh, [hh["old"], hh["current"]], "p1", amount_fen=15_000)

    hh["old"].refresh_from_db()
    hh["current"].refresh_from_db()
    assert (hh["old"].outstanding_fen, hh["current"].outstanding_fen) == (0, 15_000)


def test_an_amount_without_bills_is_a_prepayment(hh):
    _pay(hh, [], "pre", amount_fen=50_000, tendered_fen=50_000)
    assert prepaid_balance(unit_id=hh["unit"].pk) == 50_000


def test_paying_from_the_prepaid_balance_leaves_the_drawer_alone(hh):
    _pay(hh, [], "pre", amount_fen=50_000)
    drawer = _drawer(hh)

    result = _pay(hh, [hh["old"]], "pp", channel="prepaid")

    assert result.payment.channel == "prepaid"
    assert prepaid_balance(unit_id=hh["unit"].pk) == 40_000
    assert _drawer(hh) == drawer


def test_too_little_cash_is_refused_charges_nothing_and_frees_the_bills(hh):
    lines = JournalLine.objects.count()
    with pytest.raises(payments_services.InsufficientTender):
        _pay(hh, [hh["old"]], "short", tendered_fen=9_999)
    assert JournalLine.objects.count() == lines
    # The bill is free again: a new attempt with a new key goes through.
    assert _pay(hh, [hh["old"]], "enough", tendered_fen=10_000).payment.amount_fen == 10_000


def test_an_exception_in_the_middle_of_posting_leaves_nothing_and_frees_the_bills(hh, monkeypatch):
    import wuye.receipts.services as receipts

    def boom(**kw):
        raise RuntimeError("printer service crashed")

    monkeypatch.setattr(receipts, "receipt_issue", boom)
    lines = JournalLine.objects.count()
    with pytest.raises(RuntimeError):
        _pay(hh, [hh["old"]], "boom", tendered_fen=10_000)
    assert JournalLine.objects.count() == lines
    hh["old"].refresh_from_db()
    assert hh["old"].outstanding_fen == 10_000
    monkeypatch.undo()
    assert _pay(hh, [hh["old"]], "again", tendered_fen=10_000).payment.amount_fen == 10_000


def test_a_cash_refund_larger_than_the_drawer_is_refused_and_moves_nothing(hh):
    from wuye.counter.services import cash_movement_record

    payment = _pay(hh, [hh["old"], hh["current"]], "r0").payment  # drawer 50,000 + 30,000
    cash_movement_record(
        shift=hh["shift"],
        kind="paid_out",
        amount_fen=75_000,
        reason="存银行",
        user=hh["cashier"],
        now=NOW,
    )
    entries = JournalEntry.objects.count()

    with pytest.raises(CounterPayError, match="钱箱只有"):
        counter_refund(
            payment=payment,
            amount_fen=5_001,
            reason="多收",
            user=hh["finance"],
            shift=hh["shift"],
            now=NOW,
        )

    assert _drawer(hh) == 5_000
    assert JournalEntry.objects.count() == entries
    payment.refresh_from_db()
    assert payment.refunded_fen == 0


def test_a_closed_shift_takes_no_money(hh):
    shift_close(shift=hh["shift"], counted_cash_fen=50_000, note="", now=NOW)
    with pytest.raises(ShiftNotOpen):
        _pay(hh, [hh["old"]], "late")


def test_a_cash_refund_comes_out_of_the_chosen_shifts_drawer(hh):
    payment = _pay(hh, [hh["old"], hh["current"]], "r1").payment
    with pytest.raises(CounterPayError):
        counter_refund(
            payment=payment, amount_fen=5_000, reason="多收", user=hh["finance"], now=NOW
        )

    counter_refund(
        payment=payment,
        amount_fen=5_000,
        reason="多收",
        user=hh["finance"],
        shift=hh["shift"],
        now=NOW,
    )

    assert _drawer(hh) == 50_000 + 30_000 - 5_000
    report = shift_report(shift=hh["shift"])
    cash = report.channels[0]
    assert (cash.channel, cash.payments_fen, cash.refunds_fen, cash.net_fen) == (
        "cash",
        30_000,
        5_000,
        25_000,
    )
    assert report.check() == []


def test_a_cashier_cannot_refund(hh):
    payment = _pay(hh, [hh["old"]], "r2").payment
    with pytest.raises(PermissionError):
        counter_refund(
            payment=payment,
            amount_fen=100,
            reason="x",
            user=hh["cashier"],
            shift=hh["shift"],
            now=NOW,
        )


def test_the_shift_report_splits_old_and_current_bills_and_prepayments_and_adds_up(hh):
    _pay(hh, [hh["old"]], "a")  # January's bill paid in March: old
    _pay(hh, [hh["current"]], "b", amount_fen=25_000)  # March's bill + 50 yuan prepaid

    closed = shift_close(
        shift=hh["shift"], counted_cash_fen=50_000 + 35_000, note="", now=NOW + timedelta(hours=8)
    )
    report = shift_report(shift=closed)

    cash = report.channels[0]
    assert (cash.old_bills_fen, cash.current_bills_fen, cash.prepaid_fen) == (10_000, 20_000, 5_000)
    assert cash.payments_count == 2
    assert report.cash.expected_fen == closed.expected_cash_fen == 85_000
    assert report.cash.difference_fen == 0
    assert report.check() == []


def test_the_day_report_sums_several_shifts_of_the_day(hh):
    _pay(hh, [hh["old"]], "a")
    shift_close(shift=hh["shift"], counted_cash_fen=60_000, note="", now=NOW + timedelta(hours=4))
    second = shift_open(
        cashier=hh["cashier"],
        community=hh["community"],
        counter_name="1号窗口",
        opening_float_fen=20_000,
        now=NOW + timedelta(hours=5),
    )
    hh["shift"] = second
    _pay(hh, [hh["current"]], "b", now=NOW + timedelta(hours=6))
    shift_close(shift=second, counted_cash_fen=39_000, note="少10元", now=NOW + timedelta(hours=9))

    report = day_report(community=hh["community"], day=date(2026, 3, 2))

    assert len(report.shifts) == 2
    assert report.total.payments_fen == 30_000
    assert report.cash.opening_float_fen == 70_000
    assert report.cash.expected_fen == 100_000
    assert report.cash.counted_fen == 99_000
    assert report.cash.difference_fen == -1_000
    assert report.check() == []


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["full", "partial", "prepay", "refund", "paid_in", "paid_out"]),
            st.integers(1, 30_000),
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_whatever_happens_in_a_shift_the_report_adds_up_and_matches_the_drawer(hh, steps):
    from wuye.counter.services import ShiftError, cash_movement_record

    community, item = hh["community"], hh["item"]
    unit = make_unit(make_building(community))
    cashier = _staff(community, Role.CASHIER)
    shift = shift_open(
        cashier=cashier, community=community, counter_name="h", opening_float_fen=10_000, now=NOW
    )
    ctx = dict(hh, shift=shift, unit=unit)
    payments = []
    for i, (what, amount) in enumerate(steps):
        key = f"h-{shift.pk}-{i}"
        if what in ("full", "partial"):
            bill = issue_bill(
                unit=unit, fee_item=item, amount_fen=amount + 1, period_start=date(2020 + i, 1, 1)
            )
            paid = _pay(ctx, [bill], key, amount_fen=None if what == "full" else amount)
            payments.append(paid.payment)
        elif what == "prepay":
            payments.append(_pay(ctx, [], key, amount_fen=amount).payment)
        elif what == "refund" and payments:
            p = payments[-1]
            p.refresh_from_db()
            try:
                counter_refund(
                    payment=p,
                    amount_fen=min(amount, p.refundable_fen),
                    reason="r",
                    user=hh["finance"],
                    shift=shift,
                    now=NOW,
                )
            except payments_services.RefundError:
                pass  # e.g. the prepaid part was spent already
            except CounterPayError:
                # Cash back needs cash in the drawer (paid out since): refused, nothing moved.
                assert p.channel == "cash"
                assert min(amount, p.refundable_fen) > drawer_cash(
                    cashier_id=cashier.pk, community_id=community.pk
                )
        elif what in ("paid_in", "paid_out"):
            try:
                cash_movement_record(
                    shift=shift, kind=what, amount_fen=amount, reason="r", user=cashier, now=NOW
                )
            except ShiftError:
                assert what == "paid_out"

    report = shift_report(shift=shift)

    assert report.check() == []
    # The payments app's own totals per channel agree with the report's.
    from wuye.payments.selectors import payment_totals

    totals = payment_totals(shift_id=shift.pk)
    assert {c.channel: (c.payments_fen, c.refunds_fen) for c in report.channels} == {
        k: (t.paid_fen, t.refunded_fen) for k, t in totals.items()
    }
    assert report.cash.change_given_fen == sum(t.change_fen for t in totals.values())
    assert report.cash.expected_fen == drawer_cash(cashier_id=cashier.pk, community_id=community.pk)
    total = report.total
    assert total.net_fen == sum(c.payments_fen - c.refunds_fen for c in report.channels)
    closed = shift_close(shift=shift, counted_cash_fen=report.cash.expected_fen, note="", now=NOW)
    assert closed.difference_fen == 0
    assert shift_report(shift=closed).check() == []
    assert unbalanced_entry_ids() == []


# --- the screens -----------------------------------------------------------------------------


def test_a_cashier_pays_through_the_page_and_sees_the_change(client, hh):
    client.force_login(hh["cashier"])
    page = client.get(reverse("counter:household", args=[hh["unit"].pk]))
    key = page.context["form"].initial["idempotency_key"]
    data = {
        "bills": [hh["old"].pk, hh["current"].pk],
        "channel": "cash",
        "tendered": "400.00",
        "idempotency_key": key,
    }

    response = client.post(reverse("counter:pay", args=[hh["unit"].pk]), data)
    again = client.post(reverse("counter:pay", args=[hh["unit"].pk]), data)

    assert response.status_code == 200, response.content.decode()[:2000]
    body = response.content.decode()
    assert "¥100.00" in body  # change
    assert again.status_code == 200
    assert JournalEntry.objects.filter(kind="payment").count() == 1


def test_a_bill_in_another_pending_order_is_named_in_the_error(client, hh):
    payments_services.order_create(
        unit=hh["unit"],
        bill_ids=[hh["old"].pk],
        channel="cash",
        idempotency_key="terminal-1",
        cashier=hh["cashier"],
        now=NOW,
    )
    client.force_login(hh["cashier"])
    response = client.post(
        reverse("counter:pay", args=[hh["unit"].pk]),
        {"bills": [hh["old"].pk], "channel": "cash", "idempotency_key": "counter-1"},
    )
    assert response.status_code == 422
    assert f"账单 {hh['old'].pk} 已在另一笔待支付订单中" in response.content.decode()


def test_a_cashier_cannot_refund_but_finance_can(client, hh):
    payment = _pay(hh, [hh["old"]], "v1").payment
    url = reverse("counter:refund", args=[payment.pk])
    client.force_login(hh["cashier"])
    assert client.get(url).status_code == 403
    assert client.post(url, {"amount": "10", "reason": "x"}).status_code == 403

    client.force_login(hh["finance"])
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="allocations"' in page.content.decode()  # which bills the payment settled
    response = client.post(url, {"amount": "30.00", "reason": "重复收费", "shift": hh["shift"].pk})

    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.refunded_fen == 3_000


def test_finance_of_another_company_gets_a_404_for_the_refund(client, hh):
    payment = _pay(hh, [hh["old"]], "v2").payment
    stranger = _staff(make_community(), Role.FINANCE)
    client.force_login(stranger)
    assert client.get(reverse("counter:refund", args=[payment.pk])).status_code == 404


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_same_form_submitted_twice_at_once_charges_once(hh):
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite serialises writers)")
    results: list[object] = []
    barrier = threading.Barrier(4)

    def attempt():
        try:
            barrier.wait()
            results.append(_pay(hh, [hh["old"], hh["current"]], "double-click").payment.pk)
        except Exception as exc:  # collected and asserted below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    payment_ids = {r for r in results if isinstance(r, int)}
    assert len(payment_ids) == 1, results
    assert _drawer(hh) == 50_000 + 30_000
    assert JournalEntry.objects.filter(kind="payment").count() == 1


def test_a_prepaid_card_with_the_wrong_password_is_refused_counted_and_frees_the_bills(hh):
    _pay(hh, [], "card-topup", amount_fen=50_000)
    payments_services.prepaid_card_issue(
        unit=hh["unit"], card_no="8888000011112222", password="246810", now=NOW
    )
    lines = JournalLine.objects.count()

    with pytest.raises(payments_services.PrepaidCardError) as refused:
        _pay(
            hh,
            [hh["old"]],
            "card-1",
            channel="prepaid",
            card_no="8888000011112222",
            password="000000",
        )

    assert "000000" not in str(refused.value) and "8888000011112222" not in str(refused.value)
    assert JournalLine.objects.count() == lines
    card = payments_services.PrepaidCard.objects.get(card_no="8888000011112222")
    assert card.failed_tries == 1
    paid = _pay(
        hh, [hh["old"]], "card-2", channel="prepaid", card_no="8888000011112222", password="246810"
    )
    assert paid.payment.amount_fen == 10_000
    assert prepaid_balance(unit_id=hh["unit"].pk) == 40_000


def test_after_a_refused_payment_the_form_comes_back_with_a_new_key_that_pays(client, hh):
    client.force_login(hh["cashier"])
    url = reverse("counter:pay", args=[hh["unit"].pk])
    data = {"bills": [hh["old"].pk], "channel": "cash", "tendered": "50", "idempotency_key": "k-a"}

    refused = client.post(url, data)

    assert refused.status_code == 422
    assert "少于应收" in refused.content.decode()
    new_key = refused.context["form"]["idempotency_key"].value()
    assert new_key and new_key != "k-a"
    paid = client.post(url, dict(data, tendered="100", idempotency_key=new_key))
    assert paid.status_code == 200
    assert "¥100.00" in paid.content.decode()


def test_a_shift_past_midnight_belongs_to_the_day_it_opened_and_payments_outside_shifts_count(
    hh,
):
    late = NOW.replace(hour=15)  # 23:00 in Shanghai on 2 March
    hh["shift"] = shift_open(
        cashier=_staff(hh["community"], Role.CASHIER),
        community=hh["community"],
        counter_name="夜班",
        opening_float_fen=0,
        now=late,
    )
    _pay(hh, [hh["old"]], "after-midnight", now=late + timedelta(hours=2))  # 01:00 on 3 March
    online = payments_services.order_create(
        unit=hh["unit"],
        bill_ids=[hh["current"].pk],
        channel="cash",
        idempotency_key="no-shift",
        cashier=None,
        now=late + timedelta(hours=3),
    )
    payments_services.cash_pay(order=online, tendered_fen=20_000, now=late + timedelta(hours=3))

    second = day_report(community=hh["community"], day=date(2026, 3, 2))
    third = day_report(community=hh["community"], day=date(2026, 3, 3))

    assert second.total.payments_fen == 10_000  # the night shift's payment
    assert third.total.payments_fen == 20_000  # taken outside any shift on the 3rd
    assert second.check() == []


def test_cash_taken_outside_the_shift_shows_on_its_own_line_and_is_flagged(hh):
    outside = payments_services.order_create(
        unit=hh["unit"],
        bill_ids=[hh["old"].pk],
        channel="cash",
        idempotency_key="outside-shift",
        cashier=hh["cashier"],
        now=NOW,
    )
    payments_services.cash_pay(order=outside, tendered_fen=10_000, now=NOW)

    report = shift_report(shift=hh["shift"])

    assert report.cash.other_fen == 10_000  # in the drawer, but not a payment of this shift
    assert report.cash.expected_fen == _drawer(hh) == 60_000
    assert any("100.00" in p for p in report.check())
