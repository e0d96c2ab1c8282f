"""The demo's card history on a small demo company: real orders, the terminal client against the
acquirer simulator, a decline, a void, a refund and a balanced settlement every day."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.billing.tests.helpers import issue_bill
from wuye.channels.card.demo import DAYS, PER_DAY, TZ, demo_load_card
from wuye.counter.models import Shift
from wuye.demo.generator import COMPANY_NAME, demo_uscc
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.payments.models import Order, Payment, Refund
from wuye.receipts.models import Receipt
from wuye.terminals.demo import DEMO_TID, demo_load_terminals
from wuye.terminals.models import Settlement, TerminalReport
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_unit,
    make_user,
)

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 23)  # a Monday: the ten working days are 2026-11-09 … 2026-11-20


def _small_demo(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("WUYE_DATA_DIR", str(tmp_path))
    company = make_company(name=COMPANY_NAME, uscc=demo_uscc())
    community = make_community(company, name="申和·锦绣苑", code="JXY")
    make_user(company, Role.ADMIN, username="admin")
    make_user(company, Role.CASHIER, username="cashier")
    make_user(company, Role.FINANCE, username="finance")
    building = make_building(community)
    item = make_fee_item(company)
    for n in range(40):
        unit = make_unit(building, room_no=f"{n + 1:03d}", label=f"1-{n + 1:03d}")
        for month in (9, 10):
            issue_bill(
                unit=unit,
                fee_item=item,
                amount_fen=18_000 + 1_000 * (n % 7),
                period_start=date(2026, month, 1),
                due_date=date(2026, 12, 31),
                issued_on=date(2026, month, 1),
            )
    demo_load_terminals(today=TODAY, say=lambda _m: None)


def test_the_card_history_goes_the_real_way_and_adds_up(tmp_path, monkeypatch):
    _small_demo(tmp_path, monkeypatch)
    said: list[str] = []

    demo_load_card(today=TODAY, say=said.append)

    cards = Payment.objects.filter(channel="card")
    assert cards.count() == DAYS * PER_DAY  # the declined household paid with a second card
    days = {timezone.localtime(p.paid_at, TZ).date() for p in cards}
    assert len(days) == DAYS and max(days) < TODAY and min(days) >= TODAY - timedelta(days=15)
    assert all(d.weekday() < 5 for d in days)
    # every payment has its receipt, its terminal report and a shift at the terminal's counter
    for p in cards:
        assert Receipt.objects.filter(number=p.receipt_number).exists()
        report = TerminalReport.objects.get(payment=p, kind="purchase")
        assert report.approved and report.rrn and report.masked_pan.count("*") >= 6
        assert p.shift is not None and p.shift.counter_name == "锦绣苑服务中心1号台"
        assert (
            timezone.localtime(report.received_at, TZ).date()
            == timezone.localtime(p.paid_at, TZ).date()
        )
    entries = set(
        TerminalReport.objects.filter(kind="purchase").values_list("entry_mode", flat=True)
    )
    assert {"chip", "tap"} <= entries
    kinds = set(TerminalReport.objects.filter(kind="purchase").values_list("card_type", flat=True))
    assert len(kinds) >= 2  # debit and credit
    tap = TerminalReport.objects.filter(kind="purchase", entry_mode="tap", approved=True)
    assert tap.exists() and all(r.amount_fen < 100_000 for r in tap)
    # one decline (51), its order cancelled
    declined = TerminalReport.objects.get(kind="purchase", approved=False)
    assert declined.response_code == "51" and declined.payment is None
    assert declined.request is not None and declined.request.order is not None
    assert declined.request.order.state == Order.State.CANCELLED
    # one void (same day, whole amount) and one refund (a later day, part of it)
    void = TerminalReport.objects.get(kind="void")
    assert void.status == TerminalReport.Status.VOIDED and void.refund is not None
    voided = void.refund.payment
    assert void.refund.amount_fen == voided.amount_fen == voided.refunded_fen
    assert (
        timezone.localtime(void.received_at, TZ).date()
        == timezone.localtime(voided.paid_at, TZ).date()
    )
    refund = TerminalReport.objects.get(kind="refund")
    assert refund.status == TerminalReport.Status.REFUNDED and refund.refund is not None
    assert 0 < refund.refund.amount_fen < refund.refund.payment.amount_fen
    assert (
        timezone.localtime(refund.received_at, TZ).date()
        > timezone.localtime(refund.refund.payment.paid_at, TZ).date()
    )
    assert Refund.objects.count() == 2
    # a balanced settlement each day, agreeing with Wuye's totals
    settlements = Settlement.objects.order_by("pk")
    assert settlements.count() == DAYS
    assert all(s.verdict == Settlement.Verdict.BALANCED and s.matches for s in settlements)
    assert len({s.batch for s in settlements}) == DAYS
    taken = sum(p.amount_fen for p in cards)
    assert sum(s.debit_total_fen for s in settlements) == taken
    assert sum(s.credit_total_fen for s in settlements) == void.amount_fen + refund.amount_fen
    # the ledger holds; the card money sits in clearing; shifts closed without over/short
    assert unbalanced_entry_ids() == []
    call_command("ledger_check")
    clearing = account_balance(account=AccountKind.CLEARING, channel="card")
    assert clearing == taken - void.amount_fen - refund.amount_fen
    shifts = Shift.objects.filter(counter_name="锦绣苑服务中心1号台")
    assert shifts.count() == DAYS and not shifts.filter(state=Shift.State.OPEN).exists()
    assert all(s.counted_cash_fen == s.expected_cash_fen for s in shifts)
    assert len(said) == 1 and "撤销 1 笔" in said[0] and "对账平 10" in said[0]
    # the simulator kept its books where `wuye sim acquirer` keeps them
    assert (tmp_path / "acquirer" / "acquirer.sqlite3").exists()
    assert (tmp_path / "terminal" / DEMO_TID / "slips").is_dir()

    # a second call adds nothing
    demo_load_card(today=TODAY, say=said.append)
    assert Payment.objects.filter(channel="card").count() == DAYS * PER_DAY
    assert Settlement.objects.count() == DAYS
    assert "不再生成" in said[-1]


def test_the_card_history_needs_the_demo_terminal():
    with pytest.raises(ValueError, match="demo_load_terminals"):
        demo_load_card(today=TODAY, say=print)


def test_books_left_by_an_earlier_demo_are_started_afresh(tmp_path, monkeypatch):
    """``wuye demo --reset`` keeps the data directory: an earlier life's undelivered report and
    unsettled transaction must not reach the new database or its first settlement."""
    import json

    from wuye.posterm.config import load
    from wuye.posterm.store import Store
    from wuye.terminals.services import terminal_authenticate

    _small_demo(tmp_path, monkeypatch)
    store = Store(tmp_path / "terminal" / DEMO_TID)
    old = {"report_id": f"{DEMO_TID}-000007-000031-purchase", "kind": "purchase"}
    with store.atomic():
        store.db.execute(
            "INSERT INTO report(report_id, endpoint, payload, created_at) VALUES (?, ?, ?, ?)",
            (old["report_id"], "results", json.dumps(old), "2026-01-05T10:00:00"),
        )
        store.db.execute(
            "INSERT INTO txn(batch, stan, kind, amount_fen, rrn, auth_code, txn_date, card_class,"
            " masked_pan, entry_mode, status) VALUES ('000007', '000031', 'purchase', 99900,"
            " '010500000001', 'ABC123', '20260105', 'DEBIT', '622202*********0017', 'chip',"
            " 'approved')"
        )
    store.close()
    (tmp_path / "acquirer").mkdir()
    (tmp_path / "acquirer" / "acquirer.sqlite3").write_bytes(b"an earlier demo's books")

    demo_load_card(today=TODAY, say=lambda _m: None)

    assert not TerminalReport.objects.filter(report_id=old["report_id"]).exists()
    settlements = Settlement.objects.order_by("pk")
    assert settlements.count() == DAYS
    assert all(s.verdict == Settlement.Verdict.BALANCED and s.matches for s in settlements)
    store = Store(tmp_path / "terminal" / DEMO_TID)
    try:
        cfg = load(store)
    finally:
        store.close()
    assert cfg is not None and terminal_authenticate(tid=DEMO_TID, token=cfg.token).tid == DEMO_TID
