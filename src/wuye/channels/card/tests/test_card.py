"""The bank-card channel end to end through the terminal API: the cashier's page pushes the
order, a test client plays the terminal, Wuye posts the payment with its receipt; cancel,
decline, void and refund; the ledger stays balanced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.channels.base import ChannelResult
from wuye.channels.card.adapter import CardChannel
from wuye.channels.card.services import CardError, card_order_push, card_refund_request
from wuye.counter.services import counter_order_start
from wuye.ledger.models import JournalLine
from wuye.ledger.selectors import unbalanced_entry_ids
from wuye.payments.models import Order, Payment, PaymentAttempt, Refund
from wuye.payments.services import RefundError, refund_create
from wuye.terminals.models import TerminalReport, TerminalRequest
from wuye.terminals.testing import TerminalClient, make_counter, result_body

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    return clock


@pytest.fixture
def c():
    return make_counter(now=NOW)


@pytest.fixture
def term(client, c):
    return TerminalClient(client, c.terminal, c.token)


def _clearing() -> int:
    return sum(
        JournalLine.objects.filter(account="clearing", channel="card").values_list(
            "amount_fen", flat=True
        )
    )


def _start(client, c, key="key-1"):
    client.force_login(c.cashier)
    response = client.post(
        reverse("counter:pay", args=[c.unit.pk]),
        {"bills": [b.pk for b in c.bills], "channel": "card", "idempotency_key": key},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    order = Order.objects.get(idempotency_key=key)
    assert response["Location"] == reverse("card:order", args=[order.pk])
    return order


def _status(client, order):
    return client.get(reverse("card:status", args=[order.pk])).json()


def test_a_cashier_takes_a_card_payment_through_the_terminal(client, c, term):
    order = _start(client, c)

    page = client.get(reverse("card:order", args=[order.pk]))
    assert page.status_code == 200
    assert "10000001" in page.content.decode()
    assert _status(client, order)["state"] == "pushed"
    pushed = term.poll().json()["request"]
    assert pushed["amount_fen"] == order.amount_fen
    term.accept(pushed["id"])
    assert _status(client, order)["state"] == "waiting_card"
    assert _status(client, order)["can_cancel"] is False
    answer = term.result(
        result_body(c.terminal, stan=1, amount_fen=pushed["amount_fen"], request_id=pushed["id"])
    ).json()

    status = _status(client, order)
    assert status["state"] == "paid"
    assert status["paid_url"] == reverse("counter:order", args=[order.pk])
    paid = client.get(status["paid_url"]).content.decode()
    payment = Payment.objects.get(order=order)
    assert answer["receipt_number"] == payment.receipt_number
    assert payment.receipt_number in paid
    assert payment.channel == "card" and payment.shift_id == c.shift.pk
    assert _clearing() == order.amount_fen
    assert unbalanced_entry_ids() == []
    for bill in c.bills:
        bill.refresh_from_db()
        assert bill.outstanding_fen == 0
    pushed_attempt = PaymentAttempt.objects.get(order=order, reference=pushed["id"])
    assert (pushed_attempt.result, pushed_attempt.payment_id) == ("processed", payment.pk)


def test_reloading_the_card_page_pushes_nothing_new(client, c):
    order = _start(client, c)
    client.get(reverse("card:order", args=[order.pk]))
    client.get(reverse("card:order", args=[order.pk]))

    assert TerminalRequest.objects.filter(order=order).count() == 1


def test_the_cashier_cancels_before_the_terminal_accepts_and_the_bills_are_free(client, c, term):
    order = _start(client, c)
    client.get(reverse("card:order", args=[order.pk]))

    response = client.post(reverse("card:order", args=[order.pk]), {"action": "cancel"})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED
    assert TerminalRequest.objects.get().state == TerminalRequest.State.CANCELLED
    assert term.poll().json() == {"request": None}
    assert term.accept(TerminalRequest.objects.get().public_id).status_code == 409
    assert PaymentAttempt.objects.get(order=order).result == ChannelResult.DECLINED
    _start(client, c, key="key-2")  # the same bills can be paid again


def test_the_cashier_cannot_cancel_once_the_terminal_accepted(client, c, term):
    order = _start(client, c)
    client.get(reverse("card:order", args=[order.pk]))
    term.accept(term.poll().json()["request"]["id"])

    response = client.post(reverse("card:order", args=[order.pk]), {"action": "cancel"})

    assert response.status_code == 422
    assert "终端已受理" in response.content.decode()
    order.refresh_from_db()
    assert order.state == Order.State.PENDING


def test_a_counter_without_a_terminal_says_so_and_pushes_nothing(client, c):
    c.terminal.counter_name = "2号窗口"
    c.terminal.save()
    order = _start(client, c)

    response = client.get(reverse("card:order", args=[order.pk]))

    assert response.status_code == 422
    assert "没有绑定启用的银行卡终端" in response.content.decode()
    assert TerminalRequest.objects.count() == 0


def test_a_declined_card_can_be_pushed_again_and_then_pays(client, c, term):
    order = _start(client, c)
    client.get(reverse("card:order", args=[order.pk]))
    first = term.poll().json()["request"]
    term.result(
        result_body(
            c.terminal, stan=2, amount_fen=order.amount_fen, request_id=first["id"], approved=False
        )
    )
    status = _status(client, order)
    assert (status["state"], status["can_retry"]) == ("declined", True)
    assert "51" in status["message"]
    assert Payment.objects.count() == 0

    client.post(reverse("card:order", args=[order.pk]), {"action": "push"})
    second = term.poll().json()["request"]
    term.result(
        result_body(c.terminal, stan=3, amount_fen=order.amount_fen, request_id=second["id"])
    )

    assert second["id"] != first["id"]
    assert _status(client, order)["state"] == "paid"
    assert Payment.objects.count() == 1
    results = set(PaymentAttempt.objects.filter(order=order).values_list("result", flat=True))
    assert results == {"declined", "processed"}


def _paid(client, c, term, stan=10):
    order = _start(client, c, key=f"key-{stan}")
    client.get(reverse("card:order", args=[order.pk]))
    pushed = term.poll().json()["request"]
    term.heartbeat(batch="000001", batch_open_count=1)
    term.result(
        result_body(c.terminal, stan=stan, amount_fen=order.amount_fen, request_id=pushed["id"])
    )
    return Payment.objects.get(order=order)


def test_finance_voids_a_same_day_card_payment_through_the_terminal(client, c, term):
    payment = _paid(client, c, term)
    client.force_login(c.finance)

    response = client.post(
        reverse("card:refund", args=[payment.pk]),
        {"amount": f"{payment.amount_fen / 100:.2f}", "reason": "重复缴费"},
    )

    assert response.status_code == 302
    pushed = term.poll().json()["request"]
    assert pushed["kind"] == "void"
    assert pushed["original"] == {
        "rrn": payment.rrn,
        "batch": "000001",
        "stan": payment.stan,
        "date": "1122",
        "amount_fen": payment.amount_fen,
    }
    answer = term.result(
        result_body(
            c.terminal,
            stan=11,
            kind="void",
            amount_fen=payment.amount_fen,
            request_id=pushed["id"],
            original=pushed["original"],
        )
    ).json()
    assert answer["status"] == "voided"
    payment.refresh_from_db()
    assert payment.state == Payment.State.REFUNDED
    refund = Refund.objects.get()
    assert (refund.approved_by, refund.reason) == (c.finance, "重复缴费")
    assert _clearing() == 0
    assert unbalanced_entry_ids() == []
    for bill in c.bills:
        bill.refresh_from_db()
        assert bill.paid_fen == 0


def test_a_later_partial_refund_goes_as_a_refund_and_is_booked_when_approved(
    client, c, term, frozen_now
):
    payment = _paid(client, c, term)
    frozen_now["now"] = NOW + timedelta(days=2)

    req = card_refund_request(
        payment=payment, amount_fen=5_000, reason="多收", by=c.finance, now=frozen_now["now"]
    )

    assert req.kind == "refund"
    pushed = term.poll().json()["request"]
    assert (pushed["kind"], pushed["amount_fen"]) == ("refund", 5_000)
    assert (
        term.result(
            result_body(
                c.terminal,
                stan=30,
                kind="refund",
                amount_fen=5_000,
                request_id=pushed["id"],
                batch="000002",
                txn_date="20261124",
            )
        ).json()["status"]
        == "refunded"
    )
    payment.refresh_from_db()
    assert (payment.refunded_fen, payment.state) == (5_000, Payment.State.PARTIALLY_REFUNDED)
    assert _clearing() == payment.amount_fen - 5_000


def test_a_declined_refund_books_nothing(client, c, term):
    payment = _paid(client, c, term)
    card_refund_request(payment=payment, amount_fen=1_000, reason="x", by=c.finance, now=NOW)
    pushed = term.poll().json()["request"]

    term.result(
        result_body(
            c.terminal,
            stan=31,
            kind="void",
            amount_fen=1_000,
            request_id=pushed["id"],
            approved=False,
        )
    )

    assert Refund.objects.count() == 0


def test_only_finance_may_ask_for_a_card_refund_and_never_above_what_is_left(client, c, term):
    payment = _paid(client, c, term)
    client.force_login(c.cashier)
    assert client.get(reverse("card:refund", args=[payment.pk])).status_code == 403

    with pytest.raises(CardError):
        card_refund_request(
            payment=payment, amount_fen=payment.amount_fen + 1, reason="x", by=c.finance, now=NOW
        )
    card_refund_request(payment=payment, amount_fen=100, reason="x", by=c.finance, now=NOW)
    with pytest.raises(CardError, match="进行中"):
        card_refund_request(payment=payment, amount_fen=100, reason="x", by=c.finance, now=NOW)


def test_an_inline_refund_of_a_card_payment_is_refused_and_writes_nothing(client, c, term):
    payment = _paid(client, c, term)

    with pytest.raises(RefundError, match="终端"):
        refund_create(
            payment=payment,
            amount_fen=100,
            reason="x",
            requested_by=c.finance,
            approved_by=c.finance,
            now=NOW,
        )
    assert Refund.objects.count() == 0


def test_a_void_started_on_the_terminal_alone_is_kept_unmatched(client, c, term):
    payment = _paid(client, c, term)

    answer = term.result(
        result_body(c.terminal, stan=40, kind="void", amount_fen=payment.amount_fen)
    ).json()

    assert answer["status"] == "unmatched"
    assert Refund.objects.count() == 0
    assert TerminalReport.objects.filter(status="unmatched").count() == 1


def test_query_answers_from_the_recorded_reports(client, c, term):
    payment = _paid(client, c, term)
    channel = CardChannel()

    by_payment = channel.query(payment.reference)
    by_request = channel.query(TerminalRequest.objects.get().public_id)

    assert by_payment.result == by_request.result == ChannelResult.PROCESSED
    assert by_payment.details["rrn"] == payment.rrn
    assert channel.query("10000001-20261122-999999999999").result == ChannelResult.PENDING


def test_an_order_of_another_company_is_404(client, c):
    other = make_counter(now=NOW, tag="乙", tid="20000002")
    order = counter_order_start(
        shift=other.shift,
        unit=other.unit,
        bill_ids=[other.bills[0].pk],
        amount_fen=None,
        channel="card",
        idempotency_key="o",
        now=NOW,
    )
    client.force_login(c.cashier)

    assert client.get(reverse("card:order", args=[order.pk])).status_code == 404
    assert client.get(reverse("card:status", args=[order.pk])).status_code == 404
    assert (
        client.post(reverse("card:order", args=[order.pk]), {"action": "cancel"}).status_code == 404
    )
    card_order_push(order=order, now=NOW)
    payment_page = reverse("card:refund", args=[1])
    client.force_login(c.finance)
    assert client.get(payment_page).status_code == 404


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10_000_000), min_size=1, max_size=4),
    repeats=st.lists(st.integers(min_value=0, max_value=3), min_size=4, max_size=4),
)
def test_however_often_approvals_are_reported_each_is_booked_once(c, amounts, repeats):
    # Unmatched approvals (no request) and re-sent reports: clearing holds nothing, the
    # reports hold each approval exactly once, whatever the order of duplicates.
    from django.test import Client

    term = TerminalClient(Client(), c.terminal, c.token)
    TerminalReport.objects.all().delete()
    bodies = [result_body(c.terminal, stan=100 + i, amount_fen=a) for i, a in enumerate(amounts)]
    for body, extra in zip(bodies, repeats, strict=False):
        for _ in range(1 + extra):
            assert term.result(body).status_code == 200

    kept = TerminalReport.objects.filter(status="unmatched")
    assert sorted(kept.values_list("amount_fen", flat=True)) == sorted(amounts)
    assert _clearing() == 0


def test_the_page_says_when_the_terminal_is_offline_and_when_the_push_expired(
    client, c, term, frozen_now
):
    order = _start(client, c)
    client.get(reverse("card:order", args=[order.pk]))
    assert "终端离线" in _status(client, order)["message"]  # it never sent a heartbeat
    term.heartbeat(app_version="1.0.0")
    assert _status(client, order)["message"] == ""

    frozen_now["now"] = TerminalRequest.objects.get().expires_at + timedelta(seconds=1)

    status = _status(client, order)
    assert (status["state"], status["can_retry"]) == ("expired", True)
