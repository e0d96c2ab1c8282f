"""Faults on Wuye's side of the card path: a failure while posting leaves nothing and the
terminal's retry posts once; the same report sent concurrently posts once (PostgreSQL); the
long poll answers a request pushed while it waits; no full card number anywhere in the
database after the run."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection, connections, models, transaction
from django.test import Client
from django.utils import timezone

from wuye.channels.card import services as card_services
from wuye.channels.card.services import card_order_push
from wuye.counter.services import counter_order_start
from wuye.ledger.selectors import unbalanced_entry_ids
from wuye.payments.models import Order, Payment
from wuye.terminals.models import TerminalReport
from wuye.terminals.testing import TerminalClient, make_counter, result_body

CARD = "6222021000000000017"


def _order(c, key="k1", now=None):
    now = now or timezone.now()
    order = counter_order_start(
        shift=c.shift,
        unit=c.unit,
        bill_ids=[b.pk for b in c.bills],
        amount_fen=None,
        channel="card",
        idempotency_key=key,
        now=now,
    )
    card_order_push(order=order, now=now)
    return order


def _text_columns_containing(needle: str) -> list[str]:
    """Every text or JSON column of every model that holds ``needle`` somewhere."""
    found = []
    for model in apps.get_models():
        manager = model._default_manager
        for field in model._meta.concrete_fields:
            name = f"{model._meta.label}.{field.name}"
            if isinstance(field, models.JSONField):
                values = manager.values_list(field.attname, flat=True)
                if any(needle in json.dumps(v, ensure_ascii=False) for v in values):
                    found.append(name)
            elif isinstance(field, models.CharField | models.TextField):
                with transaction.atomic():
                    if manager.filter(**{f"{field.attname}__contains": needle}).exists():
                        found.append(name)
    return found


@pytest.mark.django_db
def test_a_crash_while_posting_leaves_nothing_and_the_retry_posts_once(client, monkeypatch):
    now = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    c = make_counter(now=now)
    term = TerminalClient(client, c.terminal, c.token)
    order = _order(c, now=now)
    rid = term.poll().json()["request"]["id"]
    body = result_body(c.terminal, stan=1, amount_fen=order.amount_fen, request_id=rid)
    real = card_services.payment_inquire

    def boom(**kw):
        real(**kw)
        raise RuntimeError("database went away mid-posting")

    monkeypatch.setattr(card_services, "payment_inquire", boom)
    with pytest.raises(RuntimeError):
        term.result(body)
    assert (Payment.objects.count(), TerminalReport.objects.count()) == (0, 0)

    monkeypatch.setattr(card_services, "payment_inquire", real)
    first, again = term.result(body).json(), term.result(body).json()

    assert first["status"] == "posted" and first == again
    assert Payment.objects.count() == 1
    assert unbalanced_entry_ids() == []
    assert _text_columns_containing(CARD) == []
    TerminalReport.objects.update(message=CARD)  # the scan does find a planted number
    assert _text_columns_containing(CARD) == ["terminals.TerminalReport.message"]


@pytest.mark.postgres_only
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a poll in another thread while this one writes: SQLite's one writer made it flaky",
)
@pytest.mark.django_db(transaction=True)
def test_the_long_poll_answers_a_request_pushed_while_it_waits():
    c = make_counter(now=timezone.now())
    answer: dict = {}

    def poll() -> None:
        try:
            term = TerminalClient(Client(), c.terminal, c.token)
            answer["body"] = term.poll(wait=20).json()
        finally:
            connections.close_all()

    waiter = threading.Thread(target=poll)
    waiter.start()
    order = _order(c)
    waiter.join(timeout=30)

    assert answer["body"]["request"]["order_id"] == order.pk


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_same_report_sent_concurrently_posts_once():
    c = make_counter(now=timezone.now())
    order = _order(c)
    term = TerminalClient(Client(), c.terminal, c.token)
    rid = term.poll().json()["request"]["id"]
    body = result_body(c.terminal, stan=7, amount_fen=order.amount_fen, request_id=rid)
    answers: list = []
    errors: list = []
    start = threading.Barrier(4)

    def send() -> None:
        try:
            start.wait()
            answers.append(TerminalClient(Client(), c.terminal, c.token).result(body).json())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len({a["payment_id"] for a in answers}) == 1
    assert Payment.objects.count() == 1
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert unbalanced_entry_ids() == []
