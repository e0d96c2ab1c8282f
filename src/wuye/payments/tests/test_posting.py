"""The one-transaction cash checkout (payments.posting) against order_create + cash_pay."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, DataError, close_old_connections, connection

from wuye.billing.models import Allocation, Bill
from wuye.billing.selectors import receivable_mismatches
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.payments import posting
from wuye.payments.models import Order, OrderBill, Payment, PaymentAttempt
from wuye.payments.posting import cash_checkout
from wuye.payments.services import (
    BillInPendingOrder,
    IdempotencyKeyConflict,
    InsufficientTender,
    PaymentError,
    cash_pay,
    order_create,
)
from wuye.payments.tests.helpers import NOW, Household, household, key
from wuye.receipts.models import Receipt, ReceiptSequence

pytestmark = pytest.mark.django_db


def _two_step(hh: Household, bills: list[Bill], *, tendered: int | None = None, **kw) -> Payment:
    order = order_create(
        unit=hh.unit,
        bill_ids=[b.pk for b in bills],
        channel="cash",
        idempotency_key=key("two"),
        cashier=hh.cashier,
        now=NOW,
        **kw,
    )
    return cash_pay(order=order, tendered_fen=tendered or order.amount_fen, now=NOW)


def _fast(hh: Household, bills: list[Bill], **kw) -> Payment:
    kw.setdefault("idempotency_key", key("fast"))
    return cash_checkout(
        unit=hh.unit, bill_ids=[b.pk for b in bills], cashier=hh.cashier, now=NOW, **kw
    )


def _sequence(hh: Household) -> None:
    """Give the community its receipt sequence for the year (not its first receipt)."""
    code = hh.community.code
    ReceiptSequence.objects.create(community=hh.community, year=2026, prefix=f"{code}-2026")


def _outcome(hh: Household, payment: Payment) -> dict:
    """Everything a payment wrote, with the ids that differ between households replaced."""
    payment = Payment.objects.get(pk=payment.pk)
    order = Order.objects.get(pk=payment.order_id)
    bill_no = {b.pk: i for i, b in enumerate(Bill.objects.filter(unit=hh.unit).order_by("pk"))}
    units, items, cashiers = {hh.unit.pk: "unit"}, {hh.item.pk: "item"}, {hh.cashier.pk: "c"}
    receipt = Receipt.objects.get(number=payment.receipt_number)
    content = dict(receipt.content)
    for name in (
        "household_label",
        "cashier_name",
        "community_name",
        "company_name",
        "company_uscc",
    ):
        content.pop(name)
    return {
        "order": (
            order.state,
            order.amount_fen,
            order.bills_fen,
            order.prepay_fen,
            order.prepay_fee_item_id is not None,
            order.closed_at == NOW,
        ),
        "order_bills": sorted(
            (bill_no[b], out, late, pending)
            for b, out, late, pending in OrderBill.objects.filter(order=order).values_list(
                "bill_id", "outstanding_fen", "late_fee_fen", "pending"
            )
        ),
        "payment": (
            payment.amount_fen,
            payment.tendered_fen,
            payment.change_fen,
            payment.allocated_fen,
            payment.prepaid_fen,
            payment.refund_due_fen,
            payment.surplus_to,
            payment.state,
            payment.reference.startswith("cash:"),
        ),
        "lines": sorted(
            (acc, amount, units.get(household), items.get(fee_item), cashiers.get(cashier), channel)
            for acc, amount, household, fee_item, cashier, channel in JournalLine.objects.filter(
                entry_id=payment.entry_id
            ).values_list(
                "account", "amount_fen", "household_id", "fee_item_id", "cashier_id", "channel"
            )
        ),
        "entry": JournalEntry.objects.filter(pk=payment.entry_id)
        .values_list("kind", "effective_date", "created_by_id")
        .get()[:2],
        "memo_ok": JournalEntry.objects.get(pk=payment.entry_id).memo.startswith(
            f"收款 {hh.unit.label} cash 单#{order.pk} "
        ),
        "allocations": sorted(
            (bill_no[b], amount, source, on)
            for b, amount, source, on in Allocation.objects.filter(
                reference=f"payment:{payment.pk}"
            ).values_list("bill_id", "amount_fen", "source", "allocated_on")
        ),
        "bills": [
            (b.kind, b.amount_fen, b.paid_fen)
            for b in Bill.objects.filter(unit=hh.unit).order_by("pk")
        ],
        "attempts": list(
            PaymentAttempt.objects.filter(order=order).values_list(
                "result", "amount_fen", "details", "payment_id"
            )
        )
        == [("processed", payment.amount_fen, _details(payment), payment.pk)],
        "receipt": (
            receipt.kind,
            receipt.amount_fen,
            receipt.reference == f"payment:cash:{payment.reference}",
            content,
        ),
    }


def _details(payment: Payment) -> dict:
    return {"tendered_fen": payment.tendered_fen, "change_fen": payment.change_fen}


SCENARIOS = {
    "in full, with late fees charged now": ({}, {}),
    "partial, late fee first": ({"amount_fen": 11_500}, {"amount_fen": 11_500}),
    "more than owed, earmarked prepayment": (
        {"amount_fen": 40_000, "prepay_fee_item_id": "item"},
        {"amount_fen": 40_000, "prepay_fee_item_id": "item"},
    ),
    "with change": ({"tendered_fen": 50_000}, {"tendered": 50_000}),
}


@pytest.mark.parametrize("first_receipt", [False, True], ids=["sequence", "first-receipt"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_fast_path_writes_what_order_create_and_cash_pay_write(name, first_receipt):
    fast_kw, slow_kw = SCENARIOS[name]
    results = []
    for pay in ("fast", "slow"):
        hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
        if not first_receipt:
            _sequence(hh)
        bills = [hh.bill(10_000, month=1), hh.bill(20_000, month=2)]
        kw = dict(fast_kw if pay == "fast" else slow_kw)
        if kw.get("prepay_fee_item_id") == "item":
            kw["prepay_fee_item_id"] = hh.item.pk
        payment = _fast(hh, bills, **kw) if pay == "fast" else _two_step(hh, bills, **kw)
        results.append(_outcome(hh, payment))
    assert results[0] == results[1]
    assert unbalanced_entry_ids() == []
    assert receivable_mismatches() == []


@pytest.mark.parametrize("first_receipt", [False, True], ids=["sequence", "first-receipt"])
def test_the_returned_payment_is_the_stored_one(first_receipt):
    hh = household()
    if not first_receipt:
        _sequence(hh)
    bill = hh.bill(10_000)

    payment = _fast(hh, [bill], tendered_fen=12_000)

    stored = Payment.objects.get(pk=payment.pk)
    for name in ("order_id", "entry_id", "receipt_number", "change_fen", "amount_fen", "paid_at"):
        assert getattr(payment, name) == getattr(stored, name)
    assert Receipt.objects.get(number=payment.receipt_number).reference == (
        f"payment:cash:{stored.reference}"
    )
    assert PaymentAttempt.objects.get(order_id=payment.order_id).payment_id == payment.pk
    assert Allocation.objects.get(reference=f"payment:{payment.pk}").amount_fen == 10_000
    assert payment.change_fen == 2_000
    assert payment.order.state == Order.State.PAID


def test_a_prepayment_without_bills():
    hh = household()

    payment = _fast(hh, [], amount_fen=5_000)

    assert (payment.allocated_fen, payment.prepaid_fen) == (0, 5_000)
    assert account_balance(account=AccountKind.PREPAID, household_id=hh.unit.pk) == -5_000
    assert not OrderBill.objects.filter(order_id=payment.order_id).exists()


def test_receipt_numbers_of_both_paths_follow_one_another_without_gaps():
    hh = household()
    numbers = []
    for i in range(4):
        bill = hh.bill(1_000, month=i + 1)
        payment = _fast(hh, [bill]) if i % 2 == 0 else _two_step(hh, [bill])
        numbers.append(payment.receipt_number)

    seqs = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert seqs == [1, 2, 3, 4]
    assert ReceiptSequence.objects.get(community=hh.community).last_seq == 4


def test_the_same_key_twice_returns_the_same_payment():
    hh = household()
    bill = hh.bill(10_000)
    k = key()

    first = _fast(hh, [bill], idempotency_key=k)
    again = _fast(hh, [bill], idempotency_key=k)

    assert first.pk == again.pk
    assert Payment.objects.count() == 1
    assert account_balance(account=AccountKind.CASH, channel="cash") == 10_000


def test_a_key_whose_order_is_pending_pays_that_order():
    hh = household()
    bill = hh.bill(10_000)
    order = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="cash",
        idempotency_key="k-pending",
        cashier=hh.cashier,
        now=NOW,
    )

    payment = _fast(hh, [bill], idempotency_key="k-pending")

    assert payment.order_id == order.pk
    assert Order.objects.count() == 1
    assert Bill.objects.get(pk=bill.pk).outstanding_fen == 0


def test_a_key_used_for_another_household_is_refused():
    hh, other = household(), household()
    k = key()
    _fast(hh, [hh.bill(10_000)], idempotency_key=k)

    with pytest.raises(IdempotencyKeyConflict):
        _fast(other, [other.bill(10_000)], idempotency_key=k)


def _counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (
            Order,
            OrderBill,
            Payment,
            PaymentAttempt,
            JournalEntry,
            JournalLine,
            Allocation,
            Bill,
            Receipt,
        )
    }


def test_a_bill_in_another_pending_order_is_refused_and_nothing_is_written():
    hh = household()
    bill = hh.bill(10_000)
    pending = order_create(
        unit=hh.unit,
        bill_ids=[bill.pk],
        channel="cash",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
    )
    before = _counts()

    with pytest.raises(BillInPendingOrder) as err:
        _fast(hh, [bill])

    assert (err.value.bill_id, err.value.order_id) == (bill.pk, pending.pk)
    assert _counts() == before


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"tendered_fen": 9_999}, InsufficientTender),
        ({"amount_fen": 0}, PaymentError),
        ({"amount_fen": 10.5}, PaymentError),
        ({"idempotency_key": ""}, PaymentError),
        ({"tendered_fen": True}, PaymentError),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(kw, error):
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    bill = hh.bill(10_000, due_date=NOW.date())  # no late fee yet: exactly 10,000 due
    before = _counts()

    with pytest.raises(error):
        _fast(hh, [bill], **kw)

    assert _counts() == before


def test_a_bill_of_another_household_or_a_settled_one_is_refused():
    hh, other = household(), household()
    theirs = other.bill(10_000)
    mine = hh.bill(10_000)
    _fast(hh, [mine])

    with pytest.raises(PaymentError, match="不属于"):
        _fast(hh, [theirs])
    with pytest.raises(PaymentError, match="已结清"):
        _fast(hh, [mine])
    with pytest.raises(PaymentError, match="不存在"):
        _fast(hh, [Bill(pk=987_654)])


def test_a_late_fee_charged_today_is_reused_not_charged_twice():
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    jan = hh.bill(10_000, month=1)

    payment = _fast(hh, [jan], amount_fen=100)  # late fee 590 first: 100 of it

    late = Bill.objects.get(parent=jan)
    assert (late.amount_fen, late.paid_fen) == (590, 100)
    rest = _fast(hh, [jan])
    assert rest.amount_fen == 490 + 10_000
    assert Bill.objects.filter(parent=jan).count() == 1
    assert payment.allocated_fen == 100


@pytest.mark.parametrize("step", ["write", "receipt"])
def test_a_failure_inside_the_transaction_leaves_nothing_behind(monkeypatch, step):
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    bill = hh.bill(10_000)
    before = _counts()
    pg = connection.vendor == "postgresql"
    error: type[Exception] = RuntimeError

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    if step == "write":
        monkeypatch.setattr(f"wuye.payments.posting.{'_write_pg' if pg else '_write_orm'}", boom)
    elif pg:
        # The receipt statement fails in the database, after the payment's rows were sent in
        # the same pipeline: the transaction must roll back as a whole.
        monkeypatch.setattr(
            "wuye.payments.posting._receipt_sql", lambda rows, ids: ("SELECT 1 / 0", [])
        )
        error = DataError
    else:
        monkeypatch.setattr("wuye.payments.posting._receipt_fallback", boom)

    with pytest.raises(error):
        _fast(hh, [bill])

    assert _counts() == before  # the late-fee bill charged inside is rolled back too
    assert Bill.objects.get(pk=bill.pk).paid_fen == 0


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline is PostgreSQL's")
def test_a_database_error_in_the_writes_skips_the_receipt_and_rolls_back(monkeypatch):
    hh = household()
    bill = hh.bill(10_000)
    before = _counts()
    seq_before = list(ReceiptSequence.objects.values_list("pk", "last_seq"))
    real_insert = posting._insert

    def bad_insert(model, rows, params, **kw):
        if model is Order:  # written by the first statement, before the receipt's
            rows = [{**rows[0], "channel": "x" * 21}]  # too long for the column: refused
        return real_insert(model, rows, params, **kw)

    monkeypatch.setattr("wuye.payments.posting._insert", bad_insert)
    with pytest.raises(DatabaseError):
        _fast(hh, [bill])

    assert _counts() == before
    assert list(ReceiptSequence.objects.values_list("pk", "last_seq")) == seq_before


def test_the_first_receipt_of_a_year_creates_the_sequence():
    hh = household()
    later = NOW + timedelta(days=366)
    bill = hh.bill(10_000)

    payment = cash_checkout(
        unit=hh.unit, bill_ids=[bill.pk], idempotency_key=key(), cashier=hh.cashier, now=later
    )

    assert payment.receipt_number.endswith(f"-{later.year}-000001")
    assert not OrderBill.objects.filter(order_id=payment.order_id, pending=True).exists()


# --- concurrency (PostgreSQL) ---------------------------------------------------------------

THREADS = 6


def _race(fn):
    barrier = threading.Barrier(THREADS)
    results, errors = [], []

    def work(i):
        try:
            barrier.wait()
            results.append(fn(i))
        except Exception as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_concurrently_charges_once():
    hh = household()
    bill = hh.bill(10_000)

    results, errors = _race(lambda i: _fast(hh, [bill], idempotency_key="same").pk)

    assert errors == []
    assert len(set(results)) == 1
    assert Payment.objects.count() == 1
    assert account_balance(account=AccountKind.CASH, channel="cash") == 10_000


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_of_one_community_get_consecutive_receipt_numbers():
    hh = household()
    bills = [hh.bill(1_000, month=i + 1) for i in range(THREADS)]

    results, errors = _race(lambda i: _fast(hh, [bills[i]]).receipt_number)

    assert errors == []
    assert sorted(int(n.rsplit("-", 1)[1]) for n in results) == list(range(1, THREADS + 1))
    assert unbalanced_entry_ids() == []
    assert receivable_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_one_bill_paid_concurrently_under_different_keys_is_paid_once():
    hh = household()
    bill = hh.bill(10_000)

    results, errors = _race(lambda i: _fast(hh, [bill]).pk)

    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, PaymentError) for e in errors)
    assert Bill.objects.get(pk=bill.pk).paid_fen == 10_000


# --- owning its transaction (PostgreSQL): COMMIT in the same round trip ---------------------


@pytest.fixture
def commits(monkeypatch):
    """The ``commit`` argument of every ``_write_pg`` call (the path really taken)."""
    seen: list[bool] = []
    real = posting._write_pg

    def spy(rows, ids, *, commit):
        seen.append(commit)
        return real(rows, ids, commit=commit)

    monkeypatch.setattr("wuye.payments.posting._write_pg", spy)
    return seen


@pytest.mark.parametrize("first_receipt", [False, True], ids=["sequence", "first-receipt"])
@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_owning_its_transaction_it_commits_with_the_receipt(commits, first_receipt):
    hh = household()
    if not first_receipt:
        _sequence(hh)
    bill = hh.bill(10_000)

    payment = _fast(hh, [bill], tendered_fen=12_000)
    again = _fast(hh, [hh.bill(5_000, month=2)])

    assert commits == [not first_receipt, True]
    assert not connection.in_atomic_block
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.receipt_number, stored.change_fen) == (payment.receipt_number, 2_000)
    assert Bill.objects.get(pk=bill.pk).outstanding_fen == 0
    assert int(again.receipt_number.rsplit("-", 1)[1]) == 2
    assert not OrderBill.objects.filter(pending=True).exists()
    assert unbalanced_entry_ids() == [] and receivable_mismatches() == []


@pytest.mark.parametrize("where", ["writes", "receipt"])
@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_owning_its_transaction_a_failing_statement_commits_nothing(commits, monkeypatch, where):
    hh = household()
    _sequence(hh)
    bill = hh.bill(10_000)
    before = _counts()
    if where == "receipt":
        monkeypatch.setattr(
            "wuye.payments.posting._receipt_sql", lambda rows, ids: ("SELECT 1 / 0", [])
        )
    else:
        real_insert = posting._insert

        def bad_insert(model, rows, params, **kw):
            if model is PaymentAttempt:
                rows = [{**rows[0], "result": "x" * 13}]
            return real_insert(model, rows, params, **kw)

        monkeypatch.setattr("wuye.payments.posting._insert", bad_insert)

    with pytest.raises(DatabaseError):
        _fast(hh, [bill])

    assert commits == [True]
    assert _counts() == before
    assert ReceiptSequence.objects.get(community=hh.community).last_seq == 0
    monkeypatch.undo()
    assert _fast(hh, [bill]).receipt_number.endswith("-000001")  # the connection is usable


# --- a caller that checks foreign keys after each statement ---------------------------------


@pytest.mark.parametrize("first_receipt", [False, True], ids=["sequence", "first-receipt"])
def test_it_works_inside_a_transaction_that_checks_constraints_immediately(first_receipt):
    """A billing run sets ``SET CONSTRAINTS ALL IMMEDIATE``; a payment later in the same
    transaction (the demo's history, a test) must not depend on checks deferred to COMMIT."""
    hh = household()
    if not first_receipt:
        _sequence(hh)
    bill = hh.bill(10_000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")

    payment = _fast(hh, [bill], tendered_fen=10_000)

    assert PaymentAttempt.objects.get(order_id=payment.order_id).payment_id == payment.pk
    assert Payment.objects.get(pk=payment.pk).receipt_number == payment.receipt_number
    assert unbalanced_entry_ids() == []
