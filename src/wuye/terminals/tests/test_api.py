"""The terminal API of docs/terminal-api.md, every endpoint, with a test client playing the
terminal: authentication, heartbeat and parameters, the push queue, exactly-once results,
refused full card numbers, training, unmatched approvals, settlements."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from wuye.channels.card.services import card_order_push
from wuye.counter.services import counter_order_start
from wuye.ledger.models import JournalLine
from wuye.ledger.selectors import unbalanced_entry_ids
from wuye.payments.models import Order, Payment
from wuye.terminals.models import Heartbeat, TerminalReport, TerminalRequest
from wuye.terminals.services import params_set, terminal_enable, terminal_token_reset
from wuye.terminals.testing import TerminalClient, make_counter, result_body

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def c():
    return make_counter(now=NOW)


@pytest.fixture
def term(client, c):
    return TerminalClient(client, c.terminal, c.token)


def _order(c, key="k1"):
    order = counter_order_start(
        shift=c.shift,
        unit=c.unit,
        bill_ids=[b.pk for b in c.bills],
        amount_fen=None,
        channel="card",
        idempotency_key=key,
        now=NOW,
    )
    card_order_push(order=order, now=NOW)
    return order


def test_a_request_without_or_with_a_wrong_token_is_401_and_a_disabled_terminal_403(
    client, c, term
):
    assert client.post("/api/terminal/v1/heartbeat").status_code == 401
    bad = TerminalClient(client, c.terminal, "not-the-token")
    assert bad.heartbeat().status_code == 401
    assert bad.heartbeat().json()["error"]

    terminal_enable(terminal=c.terminal, enabled=False, by=c.admin, now=NOW)

    assert term.heartbeat().status_code == 403


def test_a_reset_token_replaces_the_old_one_at_once(client, c, term):
    new = terminal_token_reset(terminal=c.terminal, by=c.admin, now=NOW)

    assert term.heartbeat().status_code == 401
    assert TerminalClient(client, c.terminal, new).heartbeat().status_code == 200


def test_a_heartbeat_is_recorded_and_answered_with_newer_params_only(c, term):
    answer = term.heartbeat(
        serial="SN-1",
        app_version="1.4.0",
        batch="000001",
        batch_open_count=3,
        last_txn_at="2026-11-22T09:30:15+08:00",
        paper="low",
        battery=87,
        pending_reports=0,
        pending_reversals=0,
        training=False,
        params_version=0,
    ).json()

    assert answer["params_version"] == 1
    assert answer["params"]["entry_modes"] == ["stripe", "chip", "tap"]
    assert answer["app_update"] is None
    c.terminal.refresh_from_db()
    assert (c.terminal.paper, c.terminal.battery, c.terminal.batch_open_count) == ("low", 87, 3)
    assert Heartbeat.objects.filter(terminal=c.terminal).count() == 1
    assert term.heartbeat(params_version=1).json()["params"] is None

    params_set(
        terminal=c.terminal,
        timeout_s=45,
        receipt_header="锦绣苑",
        entry_modes=["chip"],
        operators=["001", "002"],
        training=True,
        by=c.admin,
        now=NOW,
    )

    pushed = term.heartbeat(params_version=1).json()
    assert pushed["params_version"] == 2
    assert pushed["params"] == {
        "timeout_s": 45,
        "receipt_header": "锦绣苑",
        "entry_modes": ["chip"],
        "operators": ["001", "002"],
        "training": True,
    }


def test_a_malformed_heartbeat_is_400_and_records_nothing(term):
    response = term.heartbeat(paper="soggy")

    assert response.status_code == 400
    assert "paper" in response.json()["error"]
    assert Heartbeat.objects.count() == 0


def test_the_long_poll_hands_out_the_pushed_request_until_reported(c, term):
    assert term.poll().json() == {"request": None}
    order = _order(c)

    first = term.poll().json()["request"]
    again = term.poll().json()["request"]

    assert first == again
    assert first["kind"] == "purchase"
    assert first["order_id"] == order.pk
    assert first["amount_fen"] == order.amount_fen
    assert first["currency"] == "156"
    assert first["payee"] == "申和物业"
    assert first["reference"] == f"WY-{order.pk}"
    assert first["expires_at"].endswith("+08:00")


def test_a_wait_over_thirty_seconds_is_refused(term):
    assert (
        term.client.get(
            "/api/terminal/v1/requests?wait=31", HTTP_AUTHORIZATION=term.auth
        ).status_code
        == 400
    )


def test_accept_answers_accepted_and_409_once_the_request_was_cancelled(c, term):
    _order(c, "a")
    rid = term.poll().json()["request"]["id"]
    assert term.accept(rid).json() == {"status": "accepted"}
    assert term.accept(rid).status_code == 200  # twice is fine

    TerminalRequest.objects.update(state=TerminalRequest.State.CANCELLED)

    assert term.accept(rid).status_code == 409
    assert term.accept("R-999999").status_code == 409


def test_an_expired_request_is_not_handed_out_and_cannot_be_accepted(c, term, monkeypatch):
    _order(c)
    req = TerminalRequest.objects.get()
    later = req.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert term.poll().json() == {"request": None}
    assert term.accept(req.public_id).status_code == 409
    req.refresh_from_db()
    assert req.state == TerminalRequest.State.EXPIRED


def test_an_approved_purchase_posts_the_payment_once_however_often_it_is_reported(c, term):
    order = _order(c)
    rid = term.poll().json()["request"]["id"]
    term.accept(rid)
    body = result_body(c.terminal, stan=17, amount_fen=order.amount_fen, request_id=rid)

    first = term.result(body)
    second = term.result(body)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["status"] == "posted"
    payment = Payment.objects.get()
    assert first.json()["payment_id"] == payment.pk
    assert first.json()["receipt_number"] == payment.receipt_number != ""
    assert (payment.rrn, payment.auth_code, payment.masked_pan) == (
        "000000000017",
        "A1B2C3",
        "622202*********0017",
    )
    assert (payment.tid, payment.batch, payment.stan, payment.card_type) == (
        "10000001",
        "000001",
        "000017",
        "DEBIT",
    )
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert TerminalReport.objects.count() == 1
    assert term.poll().json() == {"request": None}
    assert unbalanced_entry_ids() == []
    clearing = JournalLine.objects.filter(account="clearing", channel="card")
    assert sum(x.amount_fen for x in clearing) == order.amount_fen


def test_a_full_card_number_is_refused_and_not_logged(c, term, caplog):
    order = _order(c)
    rid = term.poll().json()["request"]["id"]
    body = result_body(
        c.terminal,
        stan=18,
        amount_fen=order.amount_fen,
        request_id=rid,
        masked_pan="6222021000000000017",
    )

    with caplog.at_level(logging.DEBUG):
        response = term.result(body)

    assert response.status_code == 400
    assert "masked_pan" in response.json()["error"]
    assert "6222021000000000017" not in caplog.text
    assert "6222021000000000017" not in response.content.decode()
    assert TerminalReport.objects.count() == 0
    assert Payment.objects.count() == 0


def test_a_full_card_number_hidden_in_another_field_is_refused_too(c, term):
    body = result_body(c.terminal, stan=19, amount_fen=100, message="card 6222021000000000017")

    assert term.result(body).status_code == 400
    assert TerminalReport.objects.count() == 0


def test_a_decline_is_recorded_and_posts_nothing(c, term):
    order = _order(c)
    rid = term.poll().json()["request"]["id"]

    answer = term.result(
        result_body(
            c.terminal, stan=20, amount_fen=order.amount_fen, request_id=rid, approved=False
        )
    ).json()

    assert answer == {"status": "recorded"}
    assert Payment.objects.count() == 0
    assert TerminalReport.objects.get().response_code == "51"
    order.refresh_from_db()
    assert order.state == Order.State.PENDING


def test_a_reversed_purchase_is_never_posted_as_paid(c, term):
    order = _order(c)
    rid = term.poll().json()["request"]["id"]
    body = result_body(
        c.terminal,
        stan=21,
        amount_fen=order.amount_fen,
        request_id=rid,
        approved=False,
        response_code="98",
        reversed=True,
    )

    assert term.result(body).json() == {"status": "recorded"}
    assert Payment.objects.count() == 0


def test_training_results_never_reach_the_books(c, term):
    order = _order(c)
    rid = term.poll().json()["request"]["id"]
    lines_before = JournalLine.objects.count()

    answer = term.result(
        result_body(c.terminal, stan=22, amount_fen=order.amount_fen, request_id=rid, training=True)
    ).json()

    assert answer == {"status": "recorded"}
    assert Payment.objects.count() == 0
    assert JournalLine.objects.count() == lines_before
    assert TerminalReport.objects.get().training is True


def test_approved_money_without_an_order_is_kept_unmatched(c, term):
    answer = term.result(result_body(c.terminal, stan=23, amount_fen=5_000)).json()

    assert answer["status"] == "unmatched"
    assert answer["exception"]
    report = TerminalReport.objects.get()
    assert (report.status, report.amount_fen, report.rrn) == ("unmatched", 5_000, "000000000023")
    assert Payment.objects.count() == 0


def test_a_report_for_another_terminal_is_refused(c, term):
    body = result_body(c.terminal, stan=24, amount_fen=100)
    body["tid"] = "10000002"

    assert term.result(body).status_code == 400


def test_the_settlement_answers_wuyes_totals_for_the_batch(c, term):
    order = _order(c)
    rid = term.poll().json()["request"]["id"]
    term.result(result_body(c.terminal, stan=25, amount_fen=order.amount_fen, request_id=rid))
    term.result(result_body(c.terminal, stan=26, amount_fen=999, training=True))
    body = {
        "report_id": "10000001-000001-settle",
        "batch": "000001",
        "verdict": "balanced",
        "debit_total_fen": order.amount_fen,
        "debit_count": 1,
        "credit_total_fen": 0,
        "credit_count": 0,
        "settle_date": "20261122",
        "settled_at": "2026-11-22T23:05:00+08:00",
    }

    answer = term.settle(body).json()

    assert answer == {
        "status": "recorded",
        "wuye_debit_total_fen": order.amount_fen,
        "wuye_debit_count": 1,
        "wuye_credit_total_fen": 0,
        "wuye_credit_count": 0,
        "matches": True,
    }
    assert term.settle(body).json() == answer
    body.update(report_id="10000001-000002-settle", batch="000002")
    assert term.settle(body).json()["matches"] is False


def test_a_malformed_body_is_a_400_that_says_what(term):
    response = term.client.post(
        "/api/terminal/v1/results",
        data=b"not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=term.auth,
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
