"""The counter's fast path: a cash payment made and posted in one transaction, few round trips.

``cash_checkout`` does what ``services.order_create`` then ``services.cash_pay`` do — the
order and its bills (a bill in one pending order only), late fees, allocation (销账),
``Bill.paid_fen``, the balanced journal entry (Dr CASH per cashier / Cr RECEIVABLE, surplus
Cr PREPAID), the ``Payment`` and its ``PaymentAttempt``, the community's gap-free receipt
number and the receipt — but in *one* commit, with the rows it already holds never read again:

1. outside the transaction, one ``SELECT``: household, community, company, payer, and
   whether the idempotency key was used;
2. ``SELECT … FOR UPDATE`` of the chosen bills and their late-fee bills (with fee items);
   late fees are charged (``billing.latefees.late_fee_charge``) only for a bill that can
   accrue one, so the usual case costs no late-fee query;
3. on PostgreSQL one statement of data-modifying CTEs: order (state ``paid``), its bill rows
   (``pending`` for now: the partial unique index still refuses a bill in another pending
   order), journal entry and all its lines (one INSERT, so the balance trigger of
   ``ledger/migrations/0002`` checks it), allocations, every bill's ``paid_fen``;
4. last, one statement that takes the receipt number (``UPDATE … RETURNING`` on the
   community's sequence row), inserts the receipt, the payment with its number and its
   attempt, and releases the order's bill rows — so the sequence row, the one point every
   payment of a community queues on, is held only from this statement to ``COMMIT``. No row
   points at a row of a later statement, so a caller's ``SET CONSTRAINTS ALL IMMEDIATE``
   is no obstacle.

On SQLite the same writes go through the ORM in the same transaction (SQLite has no
data-modifying CTEs, and one writer at a time anyway). Same key → same order and payment,
as with ``order_create`` + ``cash_pay``; anything odd (the key's order is pending, a race on
the key, no receipt sequence for the year yet) falls back to those services.
"""

# SQL here is built from model metadata (table and column names) and placeholders only;
# every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.billing.latefees import late_fee_charge
from wuye.billing.models import Allocation, Bill, FeeItem
from wuye.channels.base import ChannelResult, PaymentRequest
from wuye.channels.cash.constants import CODE as CASH
from wuye.channels.cash.constants import TENDERED_KEY
from wuye.estates.models import Community, Company, Resident, Unit
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.services import Line, credit, debit, entry_lines_check, entry_post
from wuye.payments.models import Order, OrderBill, Payment, PaymentAttempt
from wuye.payments.services import (
    BillInPendingOrder,
    IdempotencyKeyConflict,
    InsufficientTender,
    PaymentError,
    _allocation_order,
    _bills_with_late_fee_bills,
    _cashier_name,
    _channel,
    _existing_payment,
    _is_fen,
    _may_accrue,
    _Move,
    _on_date,
    _receipt_content,
    _safe_details,
    cash_pay,
)
from wuye.receipts.models import Receipt, ReceiptSequence


@dataclass(frozen=True)
class _Context:
    """What the receipt and the ledger need about the household, read once."""

    label: str
    community_id: int
    community_name: str
    community_phone: str
    surplus_policy: str
    company_id: int
    company_name: str
    company_uscc: str
    payer_name: str
    existing_order_id: int | None


def _t(model: type[models.Model]) -> str:
    return _quoted_table(model, connection.vendor)


@cache
def _quoted_table(model: type[models.Model], vendor: str) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_CONTEXT_SQL = (
    "u.label, c.id, c.name, c.phone, c.surplus_policy, co.id, co.name, co.uscc,"
    " (SELECT r.name FROM {resident} r WHERE r.unit_id = u.id AND r.role = %s"
    "   ORDER BY r.is_primary DESC, r.id LIMIT 1),"
    " (SELECT o.id FROM {order} o WHERE o.idempotency_key = %s)"
)
_CONTEXT_FROM = (
    " FROM {unit} u JOIN {community} c ON c.id = u.community_id"
    " JOIN {company} co ON co.id = c.company_id"
)


def _names() -> dict[str, str]:
    return {
        "resident": _t(Resident),
        "order": _t(Order),
        "unit": _t(Unit),
        "community": _t(Community),
        "company": _t(Company),
        "bill": _t(Bill),
        "item": _t(FeeItem),
    }


def _context_of(row: tuple[Any, ...]) -> _Context:
    return _Context(
        label=row[0],
        community_id=row[1],
        community_name=row[2],
        community_phone=row[3],
        surplus_policy=row[4],
        company_id=row[5],
        company_name=row[6],
        company_uscc=row[7],
        payer_name=row[8] or "",
        existing_order_id=row[9],
    )


def _context(unit_id: int, idempotency_key: str) -> _Context | None:
    """Household, community, company, payer, and the key's order if any (SQLite path)."""
    sql = "SELECT " + (_CONTEXT_SQL + _CONTEXT_FROM).format(**_names()) + " WHERE u.id = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [Resident.Role.OWNER, idempotency_key, unit_id])
        row = cursor.fetchone()
    return None if row is None else _context_of(row)


_BILL_FIELDS = [f for f in Bill._meta.concrete_fields]
_ITEM_FIELDS = [f for f in FeeItem._meta.concrete_fields]
_BILL_NAMES = [f.attname for f in _BILL_FIELDS]
_ITEM_NAMES = [f.attname for f in _ITEM_FIELDS]


class _Prepared(psycopg.RawCursor):
    """A server-binding cursor whose every statement is prepared (PostgreSQL).

    Django's cursors bind client-side, so the server parses and plans each statement anew;
    the checkout's few statements have one text per shape (one bill, two bills…), so the
    server keeps them parsed and planned per connection, as psycopg does for the plain-SQL
    baseline of ``bench/payments.py``.

    A *raw* cursor: the statement reaches psycopg with PostgreSQL's own ``$1, $2…``
    placeholders (``_numbered`` rewrites the ``%s`` this module writes, once per statement
    text), so psycopg does not scan the text for placeholders on every payment — it caches
    that scan only for statements under 4 KB and 50 parameters, and the checkout's writes
    are larger.
    """

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None
    ) -> Any:
        return super().execute(_numbered(query), params, prepare=True, binary=binary)

    def _send_query_prepared(self, name: bytes, pgq: Any, *, binary: bool | None = None) -> None:
        # psycopg keeps the statement it ran for an unprepared statement only; Django's query
        # log (and its tests' query counts) reads it from there for prepared ones too.
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


@lru_cache(maxsize=512)
def _numbered(query: str) -> str:
    """``%s`` placeholders as ``$1, $2…`` (this module's SQL has no other ``%``)."""
    parts = query.split("%s")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


def _pg_cursor() -> Any:
    """A Django cursor wrapper (logged like any other) around a ``_Prepared`` cursor."""
    connection.ensure_connection()
    raw: Any = _Prepared(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


@dataclass(frozen=True)
class _Ids:
    """Ids taken from the tables' sequences before the rows are written (PostgreSQL)."""

    order: int
    entry: int
    payment: int
    has_sequence: bool = False  # the community's receipt sequence for the year exists


def _load_pg(
    unit_id: int, key: str, ids: list[int], year: int
) -> tuple[_Context | None, list[Bill], _Ids]:
    """One statement: the context, the next ids, whether the community has its receipt
    sequence for ``year``, and the bills locked with their fee items.

    The bills are ``ids`` and their late-fee bills, ``FOR UPDATE``; PostgreSQL's driver hands
    back Python dates and decimals, so they become model instances without the ORM compiler.
    """
    names = _names()
    cols = ", ".join(
        [f"b.{f.column} AS b{i}" for i, f in enumerate(_BILL_FIELDS)]
        + [f"i.{f.column} AS i{i}" for i, f in enumerate(_ITEM_FIELDS)]
    )
    seq = "(SELECT nextval(pg_get_serial_sequence(%s, 'id')))"
    sql = (
        "SELECT "
        + _CONTEXT_SQL.format(**names)
        + f", {seq}, {seq}, {seq},"
        + f" EXISTS (SELECT 1 FROM {_t(ReceiptSequence)} s"
        + " WHERE s.community_id = c.id AND s.year = %s), x.*"
        + _CONTEXT_FROM.format(**names)
        + f" LEFT JOIN LATERAL (SELECT {cols} FROM {names['bill']} b"
        f" JOIN {names['item']} i ON i.id = b.fee_item_id"
        " WHERE b.id = ANY(%s::bigint[]) OR (b.parent_id = ANY(%s::bigint[]) AND b.kind = %s)"
        " FOR UPDATE OF b) x ON true WHERE u.id = %s::bigint"
    )
    params: list[Any] = [
        Resident.Role.OWNER,
        key,
        Order._meta.db_table,
        JournalEntry._meta.db_table,
        Payment._meta.db_table,
        year,
        ids,
        ids,
        Bill.Kind.LATE_FEE,
        unit_id,
    ]
    with connection.wrap_database_errors, _pg_cursor() as cursor:
        # In a pipeline, the transaction's BEGIN goes out with the SELECT instead of taking
        # a round trip of its own.
        with connection.connection.pipeline():
            cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None, [], _Ids(0, 0, 0)
    first = rows[0]
    n = len(_BILL_FIELDS)
    bills = []
    for row in rows:
        values = row[14:]
        if values[0] is None:
            continue  # no bill: the one row of the outer join
        bill = Bill.from_db(DEFAULT_DB_ALIAS, _BILL_NAMES, values[:n])
        bill.fee_item = FeeItem.from_db(DEFAULT_DB_ALIAS, _ITEM_NAMES, values[n:])
        bills.append(bill)
    bills.sort(key=lambda b: b.pk)
    return _context_of(first), bills, _Ids(first[10], first[11], first[12], bool(first[13]))


# --- the plan: every row, computed in Python before anything is written --------------------


@dataclass
class _Plan:
    amount_fen: int
    bills_fen: int
    prepay_fen: int
    allocated_fen: int
    prepaid_fen: int
    refund_due_fen: int
    surplus_to: str
    order_lines: list[tuple[int, int, int]]  # (bill_id, outstanding_fen, late_fee_fen)
    moves: list[_Move]
    ledger: list[Line]
    details: dict[str, Any]
    reference: str


def _plan(
    *,
    ctx: _Context,
    unit_id: int,
    ids: list[int],
    bills: list[Bill],
    amount_fen: int | None,
    prepay_fen: int,
    prepay_fee_item_id: int | None,
    tendered_fen: int | None,
    idempotency_key: str,
    cashier_id: int | None,
    on_date: date,
) -> _Plan:
    """Charge the late fees that accrue on the locked ``bills``; work out every row to write.

    ``ids``: the chosen bills (sorted, unique); ``bills``: them and their late-fee bills.
    """
    found = {b.pk for b in bills}
    missing = [i for i in ids if i not in found]
    if missing:
        raise PaymentError(_("账单不存在: %(ids)s") % {"ids": missing})
    foreign = [b.pk for b in bills if b.unit_id != unit_id]
    if foreign:
        raise PaymentError(_("账单不属于该房屋: %(ids)s") % {"ids": foreign})
    # The order's lines are the bills as they stood (order_create's view); a late fee charged
    # now is the chosen bill's ``late_fee_fen``, and its new late-fee bill is allocated to.
    chosen_before = list(bills)
    charged: dict[int, int] = {}
    for bill in [b for b in chosen_before if b.pk in ids and _may_accrue(b, on_date)]:
        late_bill = late_fee_charge(bill=bill, as_of=on_date, user_id=cashier_id)
        if late_bill is not None and late_bill.pk not in found:
            late_bill.fee_item = bill.fee_item
            bills.append(late_bill)
            found.add(late_bill.pk)
            charged[bill.pk] = late_bill.amount_fen
    lines: list[tuple[int, int, int]] = []
    for bill in chosen_before:
        late = charged.get(bill.pk, 0)
        outstanding = max(0, bill.outstanding_fen)
        if bill.pk not in ids and outstanding == 0:
            continue  # a settled late-fee bill of a chosen bill
        if outstanding == 0 and late == 0:
            raise PaymentError(_("账单 #%(id)s 已结清") % {"id": bill.pk})
        lines.append((bill.pk, outstanding, late))
    due = sum(out + late for _b, out, late in lines)
    amount = due + prepay_fen if amount_fen is None else amount_fen
    if amount <= 0:
        raise PaymentError(_("没有需要支付的金额"))
    if amount < prepay_fen:
        raise PaymentError(_("amount_fen: 不能少于预存金额"))
    bills_fen = min(amount - prepay_fen, due)
    prepay = amount - bills_fen
    tendered = amount if tendered_fen is None else tendered_fen
    if tendered < amount:
        raise InsufficientTender(
            _("实收 %(t)s 元少于应收 %(a)s 元") % {"t": _yuan(tendered), "a": _yuan(amount)}
        )
    if (
        prepay
        and prepay_fee_item_id is not None
        and not FeeItem.objects.filter(pk=prepay_fee_item_id, company_id=ctx.company_id).exists()
    ):
        raise PaymentError(_("prepay_fee_item_id: 该公司没有这个收费项目"))
    chan = _channel(CASH)
    # The channel's own answer (cash: reference and change); the order id is not known yet
    # and the cash channel does not use it.
    response = chan.pay(
        PaymentRequest(
            order_id=0,
            amount_fen=amount,
            idempotency_key=idempotency_key,
            community_id=ctx.community_id,
            unit_id=unit_id,
            cashier_id=cashier_id,
            extra={TENDERED_KEY: tendered},
        )
    )
    if response.result != ChannelResult.PROCESSED:  # pragma: no cover - cash always takes
        raise PaymentError(response.message)
    moves: list[_Move] = []
    left = bills_fen
    late_first = getattr(settings, "WUYE_ALLOCATE_LATE_FEE_FIRST", True)
    for bill in _allocation_order(bills, late_fee_first=late_first):
        if left <= 0:
            break
        take = min(left, bill.outstanding_fen)
        if take > 0:
            moves.append(_Move(bill, bill.outstanding_fen, take))
            left -= take
    allocated = sum(m.amount_fen for m in moves)
    intended_prepay = min(prepay, amount - allocated)
    unexpected = amount - allocated - intended_prepay
    to_refund = unexpected if ctx.surplus_policy == Community.SurplusPolicy.REFUND else 0
    unit_dims = {"community_id": ctx.community_id, "household_id": unit_id}
    dims = chan.clearing_dims(community_id=ctx.community_id, unit_id=unit_id, cashier_id=cashier_id)
    ledger = [debit(chan.clearing_account, amount, **dims)]
    ledger += [
        credit(AccountKind.RECEIVABLE, m.amount_fen, fee_item_id=m.bill.fee_item_id, **unit_dims)
        for m in moves
    ]
    if intended_prepay:
        earmark = prepay_fee_item_id if prepay else None
        ledger.append(
            credit(AccountKind.PREPAID, intended_prepay, fee_item_id=earmark, **unit_dims)
        )
    if unexpected - to_refund:
        ledger.append(credit(AccountKind.PREPAID, unexpected - to_refund, **unit_dims))
    if to_refund:
        ledger.append(credit(AccountKind.REFUND_PAYABLE, to_refund, **unit_dims))
    return _Plan(
        amount_fen=amount,
        bills_fen=bills_fen,
        prepay_fen=prepay,
        allocated_fen=allocated,
        prepaid_fen=amount - allocated - to_refund,
        refund_due_fen=to_refund,
        surplus_to=(
            ""
            if not unexpected
            else Payment.SurplusTo.REFUND
            if to_refund
            else Payment.SurplusTo.PREPAID
        ),
        order_lines=lines,
        moves=moves,
        ledger=entry_lines_check(ledger),
        details=_safe_details(response.details),
        reference=response.reference[:120],
    )


def _yuan(fen: int) -> str:
    from wuye.core.money import format_yuan

    return format_yuan(fen)


# --- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    field: models.Field
    attname: str
    quoted: str
    cast: str  # the placeholder with its type: ``%s::bigint``
    auto_now: bool
    primary_key: bool
    plain: tuple[type, ...]  # value types the field would store unchanged (no preparation)


# Fields (these exact classes, not subclasses such as encrypted fields) whose
# ``get_db_prep_save`` hands back a value of these exact types unchanged: skipping the call
# for them stores the same value and saves most of the Python of building a row.
_PLAIN: dict[type[models.Field], tuple[type, ...]] = {
    models.BigIntegerField: (int,),
    models.IntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.BigAutoField: (int,),
    models.AutoField: (int,),
    models.ForeignKey: (int,),
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
}


@cache
def _columns(model: type[models.Model], vendor: str) -> tuple[_Column, ...]:
    """The columns of ``model`` for a raw INSERT, worked out once per process."""
    out = []
    for f in model._meta.concrete_fields:
        # Text, not varchar(n): an explicit cast to varchar(n) truncates silently, while
        # assigning text to the column refuses a value too long, as the ORM's INSERT does.
        kind = str(f.db_type(connection))
        kind = "text" if kind.startswith("varchar") else kind
        out.append(
            _Column(
                field=f,
                attname=f.attname,
                quoted=connection.ops.quote_name(str(f.column)),
                cast=f"%s::{kind}",
                auto_now=bool(getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False)),
                primary_key=bool(f.primary_key),
                plain=_PLAIN.get(type(f), ()),
            )
        )
    return tuple(out)


_Refs = Mapping[str, str | tuple[str, list[Any]]]

# How a column of a raw INSERT gets its value (see ``_shape``).
_ROW, _NOW, _DEFAULT, _REF = range(4)


@dataclass(frozen=True)
class _Shape:
    """One INSERT's columns and ``SELECT`` list for rows with the same keys, worked out once."""

    cols: str  # "col_a", "col_b"
    exprs: str  # %s::bigint, r.number, …
    steps: tuple[tuple[int, _Column], ...]  # (how, column) per placeholder or ref


@cache
def _shape(
    model: type[models.Model], vendor: str, keys: tuple[str, ...], refs: tuple[tuple[str, str], ...]
) -> _Shape:
    present = set(keys)
    ref_sql = dict(refs)
    cols: list[str] = []
    exprs: list[str] = []
    steps: list[tuple[int, _Column]] = []
    for c in _columns(model, vendor):
        if c.primary_key and c.attname not in present:
            continue  # the database numbers it
        cols.append(c.quoted)
        if c.attname in ref_sql:
            exprs.append(ref_sql[c.attname])
            steps.append((_REF, c))
            continue
        exprs.append(c.cast)
        how = _ROW if c.attname in present else _NOW if c.auto_now else _DEFAULT
        steps.append((how, c))
    return _Shape(", ".join(cols), ", ".join(exprs), tuple(steps))


def _select(
    model: type[models.Model], row: dict[str, Any], refs: _Refs, params: list[Any]
) -> tuple[str, str]:
    """(columns, ``SELECT`` list) inserting ``row`` into ``model``; ``params`` grows in order.

    ``refs`` gives SQL for some columns (another CTE's id), with its own parameters if a
    ``(sql, params)`` pair. Every field not in ``row`` or ``refs`` gets its model default
    (``auto_now_add``: now), prepared by the field itself, so a raw INSERT stores what
    ``Model.objects.create`` would. The SQL text depends only on which keys ``row`` and
    ``refs`` have, so it is built once per shape (``_shape``) and only the values are
    worked out per row.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    ref_keys = tuple((k, v if isinstance(v, str) else v[0]) for k, v in refs.items())
    shape = _shape(model, conn.vendor, tuple(row), ref_keys)
    for how, c in shape.steps:
        if how == _REF:
            ref = refs[c.attname]
            if not isinstance(ref, str):
                params.extend(ref[1])
            continue
        if how == _ROW:
            value = row[c.attname]
        elif how == _NOW:
            value = timezone.now()
        else:
            value = c.field.get_default()
        if c.plain and (value is None or type(value) in c.plain):
            params.append(value)
        else:
            params.append(c.field.get_db_prep_save(value, conn))
    return shape.cols, shape.exprs


def _insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    params: list[Any],
    *,
    refs: _Refs | None = None,
    source: str = "",
    returning: str = "",
) -> str:
    """``INSERT INTO model (…) SELECT … [FROM source] [UNION ALL …]``; ``params`` grows."""
    selects = []
    cols = ""
    for row in rows:
        cols, exprs = _select(model, row, refs or {}, params)
        selects.append(f"SELECT {exprs}" + (f" FROM {source}" if source else ""))
    sql = f"INSERT INTO {_t(model)} ({cols}) " + " UNION ALL ".join(selects)
    return sql + (f" RETURNING {returning}" if returning else "")


@dataclass
class _Rows:
    """The rows of one checkout, as column values (the ids that join them come at write)."""

    order: dict[str, Any]
    order_bills: list[dict[str, Any]]
    entry: dict[str, Any]
    memo_head: str  # the memo is head + order id + tail (the order id is made by the write)
    memo_tail: str
    lines: list[dict[str, Any]]
    payment: dict[str, Any]
    allocations: list[dict[str, Any]]
    attempt: dict[str, Any]
    paid: list[tuple[int, int]]  # (bill_id, fen) added to Bill.paid_fen
    receipt: dict[str, Any]
    receipt_year: int


def _rows(
    plan: _Plan,
    *,
    ctx: _Context,
    unit_id: int,
    idempotency_key: str,
    cashier: Any,
    shift_id: int | None,
    prepay_fee_item_id: int | None,
    on_date: date,
    now: datetime,
) -> _Rows:
    cashier_id = getattr(cashier, "pk", None)
    chan = _channel(CASH)
    where = {"company_id": ctx.company_id, "community_id": ctx.community_id}
    content = _receipt_content(
        company_name=ctx.company_name,
        company_uscc=ctx.company_uscc,
        community_name=ctx.community_name,
        community_phone=ctx.community_phone,
        household_label=ctx.label,
        payer_name=ctx.payer_name,
        cashier_name=_cashier_name(cashier if cashier_id else None),
        chan=chan,
        amount_fen=plan.amount_fen,
        moves=plan.moves,
        prepaid_fen=plan.prepaid_fen,
        details=plan.details,
        now=now,
    )
    return _Rows(
        order={
            **where,
            "unit_id": unit_id,
            "channel": CASH,
            "amount_fen": plan.amount_fen,
            "bills_fen": plan.bills_fen,
            "prepay_fen": plan.prepay_fen,
            "prepay_fee_item_id": prepay_fee_item_id if plan.prepay_fen else None,
            "state": Order.State.PAID,
            "idempotency_key": idempotency_key,
            "cashier_id": cashier_id,
            "shift_id": shift_id,
            "created_at": now,
            "closed_at": now,
        },
        order_bills=[
            {"bill_id": b, "outstanding_fen": out, "late_fee_fen": late, "pending": True}
            for b, out, late in plan.order_lines
        ],
        entry={
            "company_id": ctx.company_id,
            "kind": JournalEntry.Kind.PAYMENT,
            "effective_date": on_date,
            "created_by_id": cashier_id,
        },
        memo_head=f"收款 {ctx.label} {CASH} 单#",
        memo_tail=f" {plan.reference}",
        lines=[
            {
                "account": line.account,
                "amount_fen": line.amount_fen,
                "community_id": line.community_id,
                "household_id": line.household_id,
                "fee_item_id": line.fee_item_id,
                "channel": line.channel,
                "cashier_id": line.cashier_id,
            }
            for line in plan.ledger
        ],
        payment={
            **where,
            "unit_id": unit_id,
            "channel": CASH,
            "amount_fen": plan.amount_fen,
            "reference": plan.reference,
            "tendered_fen": plan.details.get("tendered_fen"),
            "change_fen": plan.details.get("change_fen"),
            "allocated_fen": plan.allocated_fen,
            "prepaid_fen": plan.prepaid_fen,
            "refund_due_fen": plan.refund_due_fen,
            "surplus_to": plan.surplus_to,
            "cashier_id": cashier_id,
            "shift_id": shift_id,
            "paid_at": now,
        },
        allocations=[
            {
                "bill_id": m.bill.pk,
                "source": Allocation.Source.PAYMENT,
                "amount_fen": m.amount_fen,
                "allocated_on": on_date,
            }
            for m in plan.moves
        ],
        attempt={
            "channel": CASH,
            "idempotency_key": f"{idempotency_key}:{CASH}:{plan.reference}"[:160],
            "amount_fen": plan.amount_fen,
            "result": str(ChannelResult.PROCESSED),
            "reference": plan.reference,
            "message": "",
            "details": plan.details,
            "created_at": now,
        },
        paid=[(m.bill.pk, m.amount_fen) for m in plan.moves],
        receipt={
            **where,
            "kind": Receipt.Kind.PAYMENT,
            "reference": f"payment:{CASH}:{plan.reference}",
            "content": content.to_dict(),
            "amount_fen": content.amount_fen,
            "household_label": content.household_label,
            "issued_at": now,
            "year": timezone.localtime(now).year,
            "verify_token": secrets.token_urlsafe(18),
        },
        receipt_year=timezone.localtime(now).year,
    )


def _write_pg(rows: _Rows, ids: _Ids, *, commit: bool) -> str | None:
    """Two statements sent together (one round trip); return the receipt number or None.

    The first writes every row of the payment (ids taken beforehand, so no statement waits
    for another's answer); the second, last, takes the receipt number — see
    ``_receipt_sql``. psycopg's pipeline sends both, then waits once; an error in the first
    skips the second and fails the transaction. With ``commit`` (the caller's transaction
    is this call's own and the receipt sequence exists, so nothing can be left to do) the
    ``COMMIT`` goes in the same round trip: the community's sequence row is then held only
    while the server commits, never while a busy client process gets round to sending
    ``COMMIT``. An error skips it too, and the transaction rolls back.
    """
    params: list[Any] = []
    memo = f"{rows.memo_head}{ids.order}{rows.memo_tail}"[:200]
    parts = [
        _insert(Order, [{**rows.order, "id": ids.order}], params),
        _insert(JournalEntry, [{**rows.entry, "id": ids.entry, "memo": memo}], params),
        _insert(JournalLine, [{**r, "entry_id": ids.entry} for r in rows.lines], params),
    ]
    if rows.order_bills:
        parts.append(
            _insert(OrderBill, [{**r, "order_id": ids.order} for r in rows.order_bills], params)
        )
    if rows.allocations:
        reference = f"payment:{ids.payment}"
        allocations = [
            {**r, "entry_id": ids.entry, "reference": reference} for r in rows.allocations
        ]
        parts.append(_insert(Allocation, allocations, params))
        values = ", ".join(["(%s::bigint, %s::bigint)"] * len(rows.paid))
        for bill_id, fen in rows.paid:
            params += [bill_id, fen]
        parts.append(
            f"UPDATE {_t(Bill)} SET paid_fen = {_t(Bill)}.paid_fen + v.fen"
            f" FROM (VALUES {values}) AS v(id, fen) WHERE {_t(Bill)}.id = v.id"
        )
    # Data-modifying CTEs all run, to completion, whether or not the main statement reads them.
    sql = "WITH " + ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
    sql += " " + parts[-1]
    receipt_sql, receipt_params = _receipt_sql(rows, ids)
    with connection.wrap_database_errors, _pg_cursor() as first, _pg_cursor() as last:
        with connection.connection.pipeline():
            first.execute(sql, params)
            last.execute(receipt_sql, receipt_params)
            if commit:
                # Django's atomic block then finds the transaction committed (psycopg's
                # commit() of an idle connection does nothing) and runs its hooks.
                connection.connection.commit()
        row = last.fetchone()
    return None if row is None else str(row[0])


def _payment_row(rows: _Rows, ids: _Ids) -> dict[str, Any]:
    return {**rows.payment, "id": ids.payment, "order_id": ids.order, "entry_id": ids.entry}


def _receipt_sql(rows: _Rows, ids: _Ids) -> tuple[str, list[Any]]:
    """Take the number, insert the receipt and the payment with it, free the order's bills.

    It answers no row, and inserts neither, when the community has no receipt sequence for
    the year yet (its first receipt of a year): the caller then issues through
    ``receipt_issue``, which creates it, and inserts the payment and its attempt. The
    sequence row stays locked until ``COMMIT``.
    """
    params: list[Any] = [rows.receipt["community_id"], rows.receipt_year]
    number = "s.prefix || '-' || lpad(s.last_seq::text, greatest(6, length(s.last_seq::text)), '0')"
    refs: _Refs = {"number": number, "seq": "s.last_seq"}
    receipt_sql = _insert(
        Receipt, [rows.receipt], params, refs=refs, source="s", returning="number"
    )
    params.append(ids.order)
    payment_sql = _insert(
        Payment,
        [_payment_row(rows, ids)],
        params,
        refs={"receipt_number": "r.number"},
        source="r",
        returning="receipt_number",
    )
    attempt_sql = _insert(PaymentAttempt, [_attempt_row(rows, ids)], params, source="p")
    # The payment is written here, with its number, rather than updated afterwards: an
    # UPDATE of a row inserted in the same transaction checks its foreign keys again. Its
    # attempt comes after it, in this statement: no row of the first statement points at
    # the payment, so the writes hold whether the caller's transaction checks foreign keys
    # at COMMIT (Django's default) or after each statement (``SET CONSTRAINTS ALL
    # IMMEDIATE``, which a billing run uses).
    sql = (
        f"WITH s AS (UPDATE {_t(ReceiptSequence)} SET last_seq = last_seq + 1"
        " WHERE community_id = %s AND year = %s RETURNING last_seq, prefix),"
        f" r AS ({receipt_sql}),"
        f" ob AS (UPDATE {_t(OrderBill)} SET pending = false WHERE order_id = %s AND pending),"
        f" p AS ({payment_sql}),"
        f" a AS ({attempt_sql})"
        " SELECT receipt_number FROM p"
    )
    return sql, params


def _attempt_row(rows: _Rows, ids: _Ids) -> dict[str, Any]:
    return {**rows.attempt, "order_id": ids.order, "payment_id": ids.payment}


def _write_orm(rows: _Rows, plan: _Plan) -> tuple[int, int, int]:
    """The same rows through the ORM (SQLite), in the caller's transaction."""
    order = Order.objects.create(**rows.order)
    OrderBill.objects.bulk_create([OrderBill(order=order, **r) for r in rows.order_bills])
    entry = entry_post(
        company_id=rows.entry["company_id"],
        kind=rows.entry["kind"],
        memo=f"{rows.memo_head}{order.pk}{rows.memo_tail}",
        effective_date=rows.entry["effective_date"],
        lines=plan.ledger,
        created_by_id=rows.entry["created_by_id"],
    )
    payment = Payment.objects.create(order=order, entry=entry, **rows.payment)
    if rows.allocations:
        Allocation.objects.bulk_create(
            [
                Allocation(entry=entry, reference=payment.allocation_reference, **r)
                for r in rows.allocations
            ]
        )
        for m in plan.moves:
            m.bill.paid_fen += m.amount_fen
        Bill.objects.bulk_update([m.bill for m in plan.moves], ["paid_fen"])
    PaymentAttempt.objects.create(order=order, payment=payment, **rows.attempt)
    return order.pk, entry.pk, payment.pk


def _receipt_fallback(rows: _Rows, *, order_id: int, payment_id: int) -> str:
    """Issue through ``receipt_issue`` (creates the year's sequence), free the bills."""
    from wuye.receipts.content import ReceiptContent
    from wuye.receipts.services import receipt_issue

    r = rows.receipt
    receipt = receipt_issue(
        company_id=r["company_id"],
        community_id=r["community_id"],
        reference=r["reference"],
        content=ReceiptContent.from_json(r["content"]),
        issued_at=r["issued_at"],
        kind=r["kind"],
    )
    OrderBill.objects.filter(order_id=order_id, pending=True).update(pending=False)
    Payment.objects.filter(pk=payment_id).update(receipt_number=receipt.number)
    return str(receipt.number)


# --- the service ---------------------------------------------------------------------------


class _KeyUsed(Exception):
    """The idempotency key already has an order: leave the transaction, then replay it."""

    def __init__(self, order_id: int) -> None:
        super().__init__(order_id)
        self.order_id = order_id


def cash_checkout(
    *,
    unit: Unit,
    bill_ids: list[int],
    amount_fen: int | None = None,
    prepay_fen: int = 0,
    prepay_fee_item_id: int | None = None,
    tendered_fen: int | None = None,
    idempotency_key: str,
    cashier: Any,
    shift_id: int | None = None,
    now: datetime,
) -> Payment:
    """Make and pay a cash order for ``bill_ids`` of ``unit`` in one transaction; return it.

    The arguments mean what they mean for ``services.order_create`` (``amount_fen`` None: the
    bills in full with late fees as of ``now``, plus ``prepay_fen``; less: a partial payment,
    oldest due first; more: the excess into the prepaid balance) and ``services.cash_pay``
    (``tendered_fen``, None meaning exact; ``Payment.change_fen`` is the change). The same
    ``idempotency_key`` returns the same payment (an order of that key still pending is paid
    by ``cash_pay``); only a payment made by this call has ``created_now`` set (True).
    Raise PaymentError on bad input, InsufficientTender, BillInPendingOrder,
    IdempotencyKeyConflict, OrderNotPending (the key's order was cancelled); nothing is then
    written.
    """
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 120:
        raise PaymentError(_("idempotency_key: 必填, 不超过120个字符"))
    if amount_fen is not None and (not _is_fen(amount_fen) or amount_fen <= 0):
        raise PaymentError(_("amount_fen: 须为正整数(分)"))
    if not _is_fen(prepay_fen) or prepay_fen < 0:
        raise PaymentError(_("prepay_fen: 须为非负整数(分)"))
    if tendered_fen is not None and (not _is_fen(tendered_fen) or tendered_fen <= 0):
        raise PaymentError(_("tendered_fen: 须为正整数(分)"))
    if not all(_is_fen(b) for b in bill_ids):
        raise PaymentError(_("bill_ids: 须为账单编号(整数)"))
    on_date = _on_date(now)
    ids = sorted(set(bill_ids))
    cashier_id = getattr(cashier, "pk", None)
    pg = connection.vendor == "postgresql"
    own_transaction = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if pg:
                year = timezone.localtime(now).year
                ctx, bills, new_ids = _load_pg(unit.pk, idempotency_key, ids, year)
            else:
                ctx = _context(unit.pk, idempotency_key)
                bills = _bills_with_late_fee_bills(ids, lock=True) if ids and ctx else []
            if ctx is None:
                raise PaymentError(_("房屋不存在: %(id)s") % {"id": unit.pk})
            if ctx.existing_order_id is not None:
                raise _KeyUsed(ctx.existing_order_id)
            plan = _plan(
                ctx=ctx,
                unit_id=unit.pk,
                ids=ids,
                bills=bills,
                amount_fen=amount_fen,
                prepay_fen=prepay_fen,
                prepay_fee_item_id=prepay_fee_item_id,
                tendered_fen=tendered_fen,
                idempotency_key=idempotency_key,
                cashier_id=cashier_id,
                on_date=on_date,
            )
            rows = _rows(
                plan,
                ctx=ctx,
                unit_id=unit.pk,
                idempotency_key=idempotency_key,
                cashier=cashier,
                shift_id=shift_id,
                prepay_fee_item_id=prepay_fee_item_id,
                on_date=on_date,
                now=now,
            )
            if pg:
                number = _write_pg(rows, new_ids, commit=own_transaction and new_ids.has_sequence)
                order_id, entry_id, payment_id = new_ids.order, new_ids.entry, new_ids.payment
                if number is None:  # the first receipt of the year: the payment is not in yet
                    Payment.objects.create(**_payment_row(rows, new_ids))
                    PaymentAttempt.objects.create(**_attempt_row(rows, new_ids))
            else:
                order_id, entry_id, payment_id = _write_orm(rows, plan)
                number = None
            if number is None:
                number = _receipt_fallback(rows, order_id=order_id, payment_id=payment_id)
    except _KeyUsed as used:
        return _replay(used.order_id, unit=unit, tendered_fen=tendered_fen, now=now)
    except IntegrityError:
        # A concurrent request with the same key won, or a bill is in another pending order.
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing.pk, unit=unit, tendered_fen=tendered_fen, now=now)
        taken = (
            OrderBill.objects.filter(bill_id__in=list(bill_ids), pending=True)
            .order_by("bill_id")
            .first()
        )
        if taken is None:
            raise
        raise BillInPendingOrder(
            _("账单 #%(bill)s 已在待支付的收款单 #%(order)s 中")
            % {"bill": taken.bill_id, "order": taken.order_id},
            bill_id=taken.bill_id,
            order_id=taken.order_id,
        ) from None
    except PaymentError:
        # Waited on a bill lock behind the same key's request, which paid it first.
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _replay(existing.pk, unit=unit, tendered_fen=tendered_fen, now=now)
    payment = Payment(
        pk=payment_id, order_id=order_id, entry_id=entry_id, receipt_number=number, **rows.payment
    )
    payment._state.adding = False
    payment._state.db = connection.alias
    payment.created_now = True  # type: ignore[attr-defined]
    return payment


def _replay(order_id: int, *, unit: Unit, tendered_fen: int | None, now: datetime) -> Payment:
    """The answer for a key already used: its payment, or pay its pending order now."""
    order = Order.objects.get(pk=order_id)
    if order.unit_id != unit.pk or order.channel != CASH:
        raise IdempotencyKeyConflict(
            _("idempotency_key: 已用于收款单 #%(id)s (其他房屋或支付方式)") % {"id": order.pk}
        )
    if order.state == Order.State.PAID:
        return _existing_payment(order)
    tendered = order.amount_fen if tendered_fen is None else tendered_fen
    return cash_pay(order=order, tendered_fen=tendered, now=now)


__all__ = ["cash_checkout"]
