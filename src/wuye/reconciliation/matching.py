"""The matching engine: Wuye's payments and refunds against a channel's records, its net
settlement against the bank's credit, per channel and settlement date.

How it runs (:func:`reconcile_run`):

1. **Load** both sides with one query each, streamed from the database as CSV (PostgreSQL
   ``COPY … TO STDOUT``; SQLite through the csv module) into DuckDB tables. The internal side is
   every payment and refund of the channel whose journal entry is dated in a window around
   ``settle_date − 1`` (a channel settles a day's takings the next day, as
   :mod:`wuye.reconciliation.clearing` counts them); the channel side every ``ChannelRecord``
   with a settlement date in a window around ``settle_date``. ``in_day`` marks the rows that
   belong to this run; the window lets a payment that the channel settled a day early or late
   match instead of showing up twice as a difference.
2. **Match** as set operations in DuckDB: duplicates (the same reference twice on one side,
   found by a grouped count) are set aside, then one full outer join on the primary key (card:
   RRN; QR: the provider's transaction id; refunds: the refund's own reference) that also
   classifies each pair and computes each matched payment's contracted fee against a small
   rates table, then a second join of only the rows
   left over on the alternative keys: our order number (the QR trade's ``out_trade_no``, looked
   up for those few rows in ``channels.qrpay.QrTrade``, or ``Order.idempotency_key``) and the
   payment's ``provider_txn_id``. Each pair is classified in SQL: matched, amount mismatch,
   fee mismatch (payments only: the record's fee against the contract's ``fee_for`` rule,
   computed in SQL from the rates in force), internal only, channel only.
3. **Arrival** per merchant (few rows, Python): the ``ChannelSettlement`` net against the bank
   credits recognised for that channel, merchant and settlement date: missing, short (or
   over), or late — booked after T+1 working days (China's calendar, make-up days included),
   T being the trade day ``settle_date − 1`` and the "1" the merchant's ``settlement_days``.
4. **Write** exceptions in bulk. Each has a ``key`` (category, channel, date, reference); a
   re-run updates the open exception with the same key instead of adding one, re-opens one a
   previous run had auto-resolved, leaves resolved/dismissed ones alone, and auto-resolves open
   ones it no longer finds.

Python touches only the exception rows and the per-merchant arrival rows (and, on SQLite, the
rows on their way out of the database: its driver has no bulk export).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.estates.models import Company
from wuye.ledger.models import JournalEntry
from wuye.merchants.models import Merchant
from wuye.merchants.selectors import fee_rate_for
from wuye.payments.models import Payment, Refund

from . import store
from .calendar import add_workdays
from .models import (
    MERCHANT_CHANNEL,
    BankMovement,
    Category,
    Channel,
    ChannelRecord,
    ChannelSettlement,
    ReconException,
    ReconExceptionEvent,
    ReconRun,
    SourceFile,
)

SETTLE_LAG = timedelta(days=1)
#: Days either side of the run's date whose rows are loaded to find a match settled early/late.
WINDOW_DAYS = 3
RECON_VOID_PREFIX = "recon-void:"
CARD_TYPES = ("debit", "credit", "qr_balance", "qr_credit")


class UnknownChannel(ValueError):
    """The channel is not one reconciliation knows (card, wechat, alipay)."""


@dataclass(frozen=True)
class Found:
    """One difference found by a run, before it is written as a ReconException."""

    category: str
    key: str
    reference: str = ""
    order_no: str = ""
    merchant_no: str = ""
    amount_fen: int = 0
    expected_fen: int | None = None
    actual_fen: int | None = None
    payment_id: int | None = None
    refund_id: int | None = None
    channel_record_id: int | None = None
    settlement_id: int | None = None
    bank_movement_id: int | None = None
    detail: str = ""


# ---------------------------------------------------------------------------- loading


#: Rows per text chunk the database builds in :func:`_dump`.
DUMP_CHUNK_ROWS = 20_000


def _dump(sql: str, params: list[Any], path: Path, cols: dict[str, str]) -> None:
    """Write the rows of ``sql`` (columns named as ``cols``) to ``path`` as header-less CSV.

    The database itself formats the CSV and concatenates it into chunks of about
    :data:`DUMP_CHUNK_ROWS` rows (``string_agg`` / ``group_concat``), so the driver hands back
    a few dozen large strings instead of a Python object (or a COPY message) per row. Text is
    quoted with ``"`` doubled inside; numbers and NULLs (empty) are left bare.
    """
    pg = connection.vendor == "postgresql"
    fields = []
    for name, kind in cols.items():
        text = f"CAST(q.{name} AS TEXT)"
        if kind == "VARCHAR":
            fields.append(f"""'"' || replace(coalesce({text}, ''), '"', '""') || '"'""")
        else:
            fields.append(f"coalesce({text}, '')")
    line = " || ',' || ".join(fields)
    first = next(iter(cols))
    agg = f"string_agg({line}, E'\\n')" if pg else f"group_concat({line}, char(10))"
    chunked = f"""SELECT {agg} FROM ({sql}) q
                  GROUP BY q.{first} / {DUMP_CHUNK_ROWS}"""  # noqa: S608 - ours
    with connection.cursor() as cursor, path.open("w", encoding="utf-8", newline="") as fh:
        cursor.execute(chunked, params)
        for (chunk,) in cursor.fetchall():
            if chunk:
                fh.write(chunk)
                fh.write("\n")


# The internal side carries only what the join needs; the few rows left over (or differing)
# get their references and order numbers afterwards (``_details``): fewer bytes out of the
# database and no join to the orders table for a million rows.
_INTERNAL_COLS = {
    "iid": "BIGINT",
    "kind": "VARCHAR",
    "key_src": "VARCHAR",
    "amount_fen": "BIGINT",
    "eff": "DATE",
    "card_type": "VARCHAR",
    "funding_source": "VARCHAR",
}
_CHANNEL_COLS = {
    "cid": "BIGINT",
    "kind": "VARCHAR",
    "reference": "VARCHAR",
    "order_no": "VARCHAR",
    "amount_fen": "BIGINT",
    "fee_milli_fen": "BIGINT",
    "merchant_no": "VARCHAR",
    "settle_date": "DATE",
    "card_type": "VARCHAR",
    "funding_source": "VARCHAR",
    "is_dup": "BOOLEAN",
}


def _internal_sql(company_id: int, channel: str, start: date, end: date) -> tuple[str, list[Any]]:
    pay, entry, refund = (
        Payment._meta.db_table,
        JournalEntry._meta.db_table,
        Refund._meta.db_table,
    )
    # Dates leave as text: no per-row date object on SQLite (its declared-type converters).
    # Refunds counted on the day of their own entry; reconciliation's own voids (a payment
    # the channel never had, reversed by finance) are not channel refunds. A card payment's
    # key is its RRN (else its reference, whose last part matching takes).
    key = "CASE WHEN p.rrn <> '' THEN p.rrn ELSE p.reference END"
    sql = f"""
        SELECT p.id AS iid, 'payment' AS kind,
               {key if channel == "card" else "p.reference"} AS key_src,
               p.amount_fen AS amount_fen, CAST(e.effective_date AS TEXT) AS eff,
               p.card_type AS card_type, p.funding_source AS funding_source
        FROM {pay} p JOIN {entry} e ON e.id = p.entry_id
        WHERE p.company_id = %s AND p.channel = %s
          AND e.effective_date >= %s AND e.effective_date < %s
        UNION ALL
        SELECT r.id, 'refund', r.reference, -r.amount_fen,
               CAST(e.effective_date AS TEXT), p.card_type, p.funding_source
        FROM {refund} r JOIN {pay} p ON p.id = r.payment_id JOIN {entry} e ON e.id = r.entry_id
        WHERE p.company_id = %s AND r.channel = %s AND r.reference NOT LIKE %s
          AND e.effective_date >= %s AND e.effective_date < %s
    """  # noqa: S608 - table names are ours
    params = [company_id, channel, start, end, company_id, channel, RECON_VOID_PREFIX + "%"]
    return sql, [*params, start, end]


def _channel_sql(company_id: int, channel: str, start: date, end: date) -> tuple[str, list[Any]]:
    """The window's rows kept in the database (files below ``store.COLUMNAR_MIN_ROWS``; a
    columnar file's rows copied in for its exceptions are read from its Parquet instead)."""
    table, files = ChannelRecord._meta.db_table, SourceFile._meta.db_table
    sql = f"""
        SELECT r.id AS cid, r.kind AS kind, r.reference AS reference, r.order_no AS order_no,
               r.amount_fen AS amount_fen, r.fee_milli_fen AS fee_milli_fen,
               r.merchant_no AS merchant_no, CAST(r.settle_date AS TEXT) AS settle_date,
               r.card_type AS card_type, r.funding_source AS funding_source,
               CASE WHEN r.is_duplicate THEN 'true' ELSE 'false' END AS is_dup
        FROM {table} r JOIN {files} f ON f.id = r.source_id
        WHERE r.company_id = %s AND r.channel = %s AND r.settle_date >= %s
          AND r.settle_date < %s AND NOT f.columnar
    """  # noqa: S608 - table names are ours
    return sql, [company_id, channel, start, end]


def _load(
    con: duckdb.DuckDBPyConnection, name: str, path: Path, cols: dict[str, str], extra: str
) -> None:
    spec = ", ".join(f"'{c}': '{t}'" for c, t in cols.items())
    trimmed = ", ".join(
        f"coalesce({c}, '') AS {c}" if t == "VARCHAR" else c for c, t in cols.items()
    )
    con.execute(
        f"""CREATE TABLE {name} AS SELECT *, {extra} FROM (SELECT {trimmed} FROM read_csv(?,
            header = false, auto_detect = false, delim = ',', quote = '"', escape = '"',
            columns = {{{spec}}}))""",  # noqa: S608 - names are ours
        [str(path)],
    )


def internal_extra(card: bool, trade_day: date) -> str:
    """The columns matching adds to the internal side as it loads it: ``uid`` (one id across
    payments and refunds), ``k`` (the key: card by RRN or the reference's last part, QR by the
    provider's id) and ``in_day`` (the row belongs to this run's day)."""
    key = "regexp_extract(key_src, '[^-]*$')" if card else "key_src"
    return f"""iid * 2 + CASE kind WHEN 'refund' THEN 1 ELSE 0 END AS uid,
        CASE WHEN contains(key_src, '-') THEN {key} ELSE key_src END AS k,
        eff = DATE '{trade_day.isoformat()}' AS in_day"""


def records_extra(settle_date: date) -> str:
    """The column matching adds to the channel side as it loads it (``in_day``)."""
    return f"settle_date = DATE '{settle_date.isoformat()}' AS in_day"


def _load_sides(
    con: duckdb.DuckDBPyConnection,
    company_id: int,
    channel: str,
    settle_date: date,
    workdir: Path,
) -> None:
    """Create DuckDB tables ``internal`` and ``records``: both sides of the run's window."""
    trade_day = settle_date - SETTLE_LAG
    w, one = timedelta(days=WINDOW_DAYS), timedelta(days=1)
    ipath, cpath = workdir / "internal.csv", workdir / "records.csv"
    _dump(
        *_internal_sql(company_id, channel, trade_day - w, trade_day + w + one),
        ipath,
        _INTERNAL_COLS,
    )
    start, end = settle_date - w, settle_date + w + one
    _dump(*_channel_sql(company_id, channel, start, end), cpath, _CHANNEL_COLS)
    _load(con, "internal", ipath, _INTERNAL_COLS, internal_extra(channel == "card", trade_day))
    _load(con, "records", cpath, _CHANNEL_COLS, records_extra(settle_date))
    columns = ", ".join(
        f"{'is_duplicate' if c == 'is_dup' else c} AS {c}" for c in list(_CHANNEL_COLS)[1:]
    )
    columns += ", " + records_extra(settle_date)
    parquet = store.channel_window_sql(
        store.columnar_sources(company_id, channel, start, end), columns, start, end
    )
    if parquet is not None:
        con.execute(f"INSERT INTO records {parquet}")


# --------------------------------------------------------------------------- matching

# Duplicates were marked where the channel's rows came in (the importer's ``is_duplicate``),
# so matching is one classifying full outer join of the unmarked rows on the reference alone.
# What the marks do not cover shows in the join's counts (``_one_to_one``): our side holding
# one key twice (two payments with one RRN), a channel row imported concurrently with its
# twin, a payment and a refund sharing a reference. Only then are duplicates searched by
# grouping each whole side (``_SLOW_EXTRAS``) and the join done again on (kind, key).
# Two rows of one side with one key that match nothing are found among the few left-overs.
_PREPARE = """
CREATE TABLE c_extra AS SELECT cid FROM records WHERE is_dup;
CREATE TABLE i_extra (uid BIGINT);
"""

# The row's fee rounded to the fen, half-up.
_FEE_ACTUAL = """CASE WHEN c.fee_milli_fen >= 0 THEN (c.fee_milli_fen + 500) // 1000
       ELSE -((500 - c.fee_milli_fen) // 1000) END"""
# Which contracted rate applies to a pair: card by card type, QR by funding source.
_CARD_TYPE = """CASE WHEN $card THEN coalesce(nullif(c.card_type, ''), i.card_type)
       WHEN upper(coalesce(nullif(c.funding_source, ''), i.funding_source, '')) LIKE '%CREDIT%'
       THEN 'qr_credit'
       ELSE 'qr_balance' END"""
_BIGINT_MAX = (1 << 63) - 1


def fee_sql(rates: list[tuple[Any, ...]]) -> str:
    """Return SQL for the contracted fee of channel row ``c`` paired with ``i`` (NULL when no
    rate applies): merchants.selectors.fee_amount in integers (rate in ppm rounded half-up,
    the minimum, the cap, never above the amount).

    The company's few rates are written into the expression as literals (a CASE per merchant
    and card type) instead of a join to a rates table: no join, and 64-bit products where
    they cannot overflow (a 128-bit product only for amounts that could).
    """
    if not rates:
        return "NULL"
    by_merchant: dict[str, list[str]] = {}
    for merchant_no, card_type, rate_ppm, cap_fen, min_fen in rates:
        rate = int(rate_ppm)
        big = f"CAST((c.amount_fen::HUGEINT * {rate} + 500000) // 1000000 AS BIGINT)"
        if rate <= 0:
            fee = "0"
        else:
            limit = (_BIGINT_MAX - 500000) // rate
            fee = (
                f"CASE WHEN c.amount_fen <= {limit} THEN (c.amount_fen * {rate} + 500000) "
                f"// 1000000 ELSE {big} END"
            )
        if min_fen is not None:
            fee = f"greatest({fee}, {int(min_fen)})"
        if cap_fen is not None:
            fee = f"least({fee}, {int(cap_fen)})"
        fee = f"greatest(0, least(c.amount_fen, {fee}))"
        t = str(card_type).replace("'", "''")
        by_merchant.setdefault(str(merchant_no), []).append(f"WHEN '{t}' THEN {fee}")
    whens = [
        f"WHEN '{m.replace(chr(39), chr(39) * 2)}' THEN CASE {_CARD_TYPE} {' '.join(w)} END"
        for m, w in by_merchant.items()
    ]
    return "CASE c.merchant_no " + " ".join(whens) + " END"


# The one big statement: a full outer join of both sides, classified, each matched payment's
# fee checked against the contract ($fee: fee_sql).
_JOIN = f"""
CREATE OR REPLACE TABLE result AS
SELECT c.cid, i.uid, c.amount_fen AS c_amount, coalesce(c.in_day, i.in_day) AS in_scope,
  CASE WHEN c.cid IS NULL THEN 'internal_only'
       WHEN i.uid IS NULL THEN 'channel_only'
       WHEN c.amount_fen <> i.amount_fen THEN 'amount_mismatch'
       ELSE 'matched' END AS category,
  c.kind <> i.kind AS clash,
  c.kind = 'payment' AND c.amount_fen = i.amount_fen
    AND coalesce(($fee) <> {_FEE_ACTUAL}, false) AS fee_bad
FROM (SELECT * FROM records WHERE $c_filter) c
FULL OUTER JOIN (SELECT * FROM internal WHERE $i_filter) i ON $on;
"""  # noqa: S608 - ours
_FAST = {"c_filter": "NOT is_dup", "i_filter": "TRUE", "on": "c.reference = i.k"}
_SLOW = {
    "c_filter": "cid NOT IN (SELECT cid FROM c_extra)",
    "i_filter": "uid NOT IN (SELECT uid FROM i_extra)",
    "on": "c.kind = i.kind AND c.reference = i.k",
}
# Every row after the first with the same kind and key, on either whole side.
_SLOW_EXTRAS = """
INSERT INTO c_extra SELECT c.cid FROM records c JOIN (
    SELECT kind, reference, min(cid) AS keep FROM records WHERE NOT is_dup
    GROUP BY kind, reference HAVING count(*) > 1
  ) d ON c.kind = d.kind AND c.reference = d.reference WHERE c.cid <> d.keep AND NOT c.is_dup;
INSERT INTO i_extra SELECT i.uid FROM internal i JOIN (
    SELECT kind, k, min(uid) AS keep FROM internal GROUP BY kind, k HAVING count(*) > 1
  ) d ON i.kind = d.kind AND i.k = d.k WHERE i.uid <> d.keep;
"""
# From here on only the few rows that differ are looked at: ``odd`` (one pass over the
# join's result), their channel rows ``c_odd`` and internal rows ``i_odd`` (one pass over
# each side); the internal ones get their details (reference, order number…) fetched.
_NEED = """
CREATE TABLE odd AS SELECT cid, uid, category, in_scope, fee_bad FROM result
  WHERE category <> 'matched' OR fee_bad;
CREATE TABLE i_odd AS SELECT * FROM internal WHERE uid IN (
  SELECT uid FROM odd WHERE uid IS NOT NULL UNION ALL SELECT uid FROM i_extra);
CREATE TABLE need AS SELECT uid FROM i_odd;
CREATE TABLE i_detail (uid BIGINT, reference VARCHAR, provider_txn_id VARCHAR,
                       order_no VARCHAR, order_id BIGINT);
"""
_LEFT = f"""
CREATE TABLE i_d AS SELECT i.*, coalesce(d.reference, '') AS reference,
    coalesce(d.provider_txn_id, '') AS provider_txn_id, coalesce(d.order_no, '') AS order_no,
    d.order_id
  FROM i_odd i LEFT JOIN i_detail d USING (uid);
CREATE TABLE c_odd AS SELECT * FROM records WHERE cid IN (
  SELECT cid FROM odd WHERE cid IS NOT NULL);
CREATE TABLE left_c AS SELECT * FROM c_odd WHERE cid IN (SELECT cid FROM odd WHERE uid IS NULL);
INSERT INTO c_extra SELECT cid FROM (
    SELECT cid, row_number() OVER (PARTITION BY kind, reference ORDER BY cid) AS n
    FROM left_c) WHERE n > 1;
INSERT INTO i_extra SELECT uid FROM (
    SELECT uid, row_number() OVER (PARTITION BY kind, k ORDER BY uid) AS n
    FROM i_d WHERE uid IN (SELECT uid FROM odd WHERE cid IS NULL)) WHERE n > 1;
DELETE FROM odd WHERE (uid IS NULL AND cid IN (SELECT cid FROM c_extra))
   OR (cid IS NULL AND uid IN (SELECT uid FROM i_extra));
DELETE FROM left_c WHERE cid IN (SELECT cid FROM c_extra);
CREATE TABLE left_i AS SELECT * FROM i_d WHERE uid IN (SELECT uid FROM odd WHERE cid IS NULL);
CREATE TABLE fees AS SELECT r.cid, ($fee) AS fee_expected, {_FEE_ACTUAL} AS fee_actual
  FROM (SELECT * FROM odd WHERE fee_bad) r JOIN c_odd c USING (cid) JOIN i_d i USING (uid);
"""  # noqa: S608 - ours

# Between the statements Python maps the left-over rows' order numbers to orders/payments
# through the QR channel's trades (``channels.qrpay.QrTrade.out_trade_no``): few rows.
_PASS2 = """
CREATE TABLE pass2 AS SELECT cid, uid FROM (
    SELECT cid, uid, row_number() OVER (PARTITION BY uid ORDER BY prio, cid) AS r_i
    FROM (
      SELECT cid, uid, prio, row_number() OVER (PARTITION BY cid ORDER BY prio, uid) AS r_c
      FROM (
        SELECT c.cid, i.uid, 1 AS prio FROM left_c c JOIN left_i i
          ON c.kind = 'payment' AND i.kind = 'payment' AND c.order_no <> ''
          AND c.order_no = i.order_no
        UNION ALL
        SELECT c.cid, i.uid, 1 AS prio FROM left_c c JOIN order_map m ON m.order_no = c.order_no
          JOIN left_i i ON c.kind = 'payment' AND i.kind = 'payment'
           AND (i.iid = m.payment_id OR i.order_id = m.order_id)
        UNION ALL
        SELECT c.cid, i.uid, 2 AS prio FROM left_c c JOIN left_i i
          ON i.provider_txn_id <> '' AND c.kind = i.kind AND c.reference = i.provider_txn_id
      )
    ) WHERE r_c = 1
  ) WHERE r_i = 1;
CREATE TABLE diffs AS
  SELECT cid, uid, category FROM odd
   WHERE in_scope AND category <> 'matched'
     AND (cid IS NULL OR cid NOT IN (SELECT cid FROM pass2))
     AND (uid IS NULL OR uid NOT IN (SELECT uid FROM pass2))
  UNION ALL
  SELECT p.cid, p.uid, 'amount_mismatch' FROM pass2 p
    JOIN left_c c USING (cid) JOIN left_i i USING (uid)
   WHERE c.in_day AND c.amount_fen <> i.amount_fen
  UNION ALL
  SELECT cid, uid, 'fee_mismatch' FROM odd
   WHERE in_scope AND category = 'matched' AND fee_bad;
"""


def _fill(sql: str, **values: Any) -> str:
    for name, value in values.items():
        sql = sql.replace(f"${name}", value)
    return sql


def _rates(company: Company, channel: str, on_date: date) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for merchant in Merchant.objects.filter(company=company, channel=MERCHANT_CHANNEL[channel]):
        for card_type in CARD_TYPES:
            rate = fee_rate_for(merchant=merchant, card_type=card_type, on_date=on_date)
            if rate is not None:
                rows.append(
                    (merchant.merchant_no, card_type, rate.rate_ppm, rate.cap_fen, rate.min_fen)
                )
    return rows


def _order_map(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``order_map`` for the left-over channel rows' order numbers (few rows)."""
    from wuye.channels.qrpay.models import QrTrade

    con.execute("CREATE TABLE order_map (order_no VARCHAR, order_id BIGINT, payment_id BIGINT)")
    numbers = [
        n
        for (n,) in con.execute(
            "SELECT DISTINCT order_no FROM left_c WHERE kind = 'payment' AND order_no <> ''"
        ).fetchall()
    ]
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(numbers), 500):
        rows += QrTrade.objects.filter(out_trade_no__in=numbers[start : start + 500]).values_list(
            "out_trade_no", "order_id", "payment_id"
        )
    store.duck_insert(con, "order_map", rows, 3)


def _details(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``i_detail`` (reference, order number, provider id) for the internal rows in
    ``need``: the few that are left over, differ or repeat."""
    uids = [int(u) for (u,) in con.execute("SELECT uid FROM need WHERE uid IS NOT NULL").fetchall()]
    pays = [u // 2 for u in uids if u % 2 == 0]
    refunds = [u // 2 for u in uids if u % 2 == 1]
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(pays), 500):
        rows += [
            (pk * 2, ref, txn, order_no, order_id)
            for pk, ref, txn, order_no, order_id in Payment.objects.filter(
                pk__in=pays[start : start + 500]
            ).values_list(
                "pk", "reference", "provider_txn_id", "order__idempotency_key", "order_id"
            )
        ]
    for start in range(0, len(refunds), 500):
        rows += [
            (pk * 2 + 1, ref, "", "", None)
            for pk, ref in Refund.objects.filter(pk__in=refunds[start : start + 500]).values_list(
                "pk", "reference"
            )
        ]
    store.duck_insert(con, "i_detail", rows, 5)


def _one_to_one(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the join paired each row with at most one of the other side (the counts of
    each side's ids in ``result`` equal the rows that went in), and always of its own kind."""
    row = con.execute(
        """SELECT (SELECT count(cid) FROM result) = (SELECT count(*) FROM records WHERE NOT is_dup)
              AND (SELECT count(uid) FROM result) = (SELECT count(*) FROM internal)
              AND NOT EXISTS (SELECT 1 FROM result WHERE clash)"""
    ).fetchone()
    return bool(row and row[0])


def _match_sql(
    con: duckdb.DuckDBPyConnection,
    *,
    card: bool,
    trade_day: date,
    settle_date: date,
    rates: list[tuple[Any, ...]],
    details: Callable[[duckdb.DuckDBPyConnection], None] = _details,
    order_map: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> None:
    """Run the matching statements over the loaded ``internal`` and ``records`` with the
    contracted ``rates`` (:func:`_rates`)."""
    days = {
        "card": "TRUE" if card else "FALSE",
        "trade_day": f"DATE '{trade_day.isoformat()}'",
        "settle_day": f"DATE '{settle_date.isoformat()}'",
    }
    # The rates go in first: their literals are the company's own (merchant numbers).
    fee = _fill(fee_sql(rates), **days)
    con.execute(_PREPARE)
    con.execute(_fill(_JOIN, fee=fee, **_FAST))
    if not _one_to_one(con):
        con.execute(_SLOW_EXTRAS)
        con.execute(_fill(_JOIN, fee=fee, **_SLOW))
    con.execute(_NEED)
    details(con)
    con.execute(_fill(_LEFT, fee=fee))
    (order_map or _order_map)(con)
    con.execute(_PASS2)


def _match(
    company: Company, channel: str, settle_date: date, workdir: Path
) -> tuple[list[Found], dict[str, int]]:
    """Run the set operations; return the differences found and the run's counts."""
    trade_day = settle_date - SETTLE_LAG
    con = duckdb.connect()
    try:
        _load_sides(con, company.pk, channel, settle_date, workdir)
        _match_sql(
            con,
            card=channel == Channel.CARD,
            trade_day=trade_day,
            settle_date=settle_date,
            rates=_rates(company, channel, trade_day),
        )
        return _collect(con, channel, settle_date)
    finally:
        con.close()


def _collect(
    con: duckdb.DuckDBPyConnection, channel: str, settle_date: date
) -> tuple[list[Found], dict[str, int]]:
    """Read the run's counts and the few rows that differ; return them as Found."""
    day = f"{settle_date:%Y%m%d}"
    counts_row = con.execute(
        """SELECT
             (SELECT count(*) FROM internal WHERE in_day),
             (SELECT coalesce(sum(amount_fen), 0) FROM internal WHERE in_day),
             (SELECT count(*) FROM records WHERE in_day),
             (SELECT coalesce(sum(amount_fen), 0) FROM records WHERE in_day),
             (SELECT count(*) FROM result WHERE in_scope AND category = 'matched')
               + (SELECT count(*) FROM pass2 p JOIN left_c c USING (cid) JOIN left_i i
                    USING (uid) WHERE c.in_day AND c.amount_fen = i.amount_fen),
             (SELECT coalesce(sum(c_amount), 0) FROM result
               WHERE in_scope AND category = 'matched')
               + (SELECT coalesce(sum(c.amount_fen), 0) FROM pass2 p JOIN left_c c USING (cid)
                    JOIN left_i i USING (uid) WHERE c.in_day AND c.amount_fen = i.amount_fen)"""
    ).fetchone()
    assert counts_row is not None
    names = (
        "internal_count",
        "internal_fen",
        "channel_count",
        "channel_fen",
        "matched_count",
        "matched_fen",
    )
    counts = dict(zip(names, (int(v) for v in counts_row), strict=True))

    found: list[Found] = []
    for cid, ref, order_no, amount, merchant_no in con.execute(
        """SELECT cid, reference, order_no, amount_fen, merchant_no FROM records
           WHERE in_day AND cid IN (SELECT cid FROM c_extra) ORDER BY cid"""
    ).fetchall():
        found.append(
            Found(
                Category.DUPLICATE,
                f"duplicate:{channel}:{day}:channel:{cid}",
                reference=ref,
                order_no=order_no,
                merchant_no=merchant_no,
                amount_fen=int(amount),
                channel_record_id=int(cid),
                detail=_("渠道文件中同一流水号出现多次：%(k)s") % {"k": ref},
            )
        )
    for iid, kind, ref, order_no, amount, k in con.execute(
        """SELECT iid, kind, reference, order_no, amount_fen, k FROM i_d
           WHERE in_day AND uid IN (SELECT uid FROM i_extra) ORDER BY uid"""
    ).fetchall():
        found.append(
            Found(
                Category.DUPLICATE,
                f"duplicate:{channel}:{day}:internal:{kind}:{iid}",
                reference=ref,
                order_no=order_no,
                amount_fen=int(amount),
                payment_id=int(iid) if kind == "payment" else None,
                refund_id=int(iid) if kind == "refund" else None,
                detail=_("我方同一流水号记录了多笔：%(k)s") % {"k": k},
            )
        )
    rows = con.execute(
        """SELECT d.category, d.cid, i.iid, c.kind, i.kind, c.reference, i.reference,
                  c.order_no, i.order_no, c.amount_fen, i.amount_fen, c.merchant_no,
                  r.fee_expected, r.fee_actual
           FROM diffs d
           LEFT JOIN (SELECT * FROM c_odd WHERE cid IN (SELECT cid FROM diffs)) c USING (cid)
           LEFT JOIN (SELECT * FROM i_d WHERE uid IN (SELECT uid FROM diffs)) i USING (uid)
           LEFT JOIN fees r ON d.category = 'fee_mismatch' AND r.cid = d.cid
           ORDER BY d.category, d.cid, d.uid"""
    ).fetchall()
    for row in rows:
        cat, cid, iid, c_kind, i_kind, c_ref, i_ref, c_order, i_order = row[:9]
        c_amount, i_amount, merchant_no, fee_expected, fee_actual = row[9:]
        found.append(
            _difference(
                channel,
                day,
                cat,
                cid,
                iid,
                c_kind or i_kind,
                c_ref,
                i_ref,
                c_order,
                i_order,
                c_amount,
                i_amount,
                merchant_no,
                fee_expected,
                fee_actual,
            )
        )
    return found, counts


def _difference(
    channel: str,
    day: str,
    cat: str,
    cid: int | None,
    iid: int | None,
    kind: str,
    c_ref: str | None,
    i_ref: str | None,
    c_order: str | None,
    i_order: str | None,
    c_amount: int | None,
    i_amount: int | None,
    merchant_no: str | None,
    fee_expected: int | None,
    fee_actual: int | None,
) -> Found:
    """Turn one row of ``diffs`` into a Found with its key, links and amounts."""
    ids: dict[str, Any] = {
        "channel_record_id": int(cid) if cid is not None else None,
        "payment_id": int(iid) if iid is not None and kind == "payment" else None,
        "refund_id": int(iid) if iid is not None and kind == "refund" else None,
    }
    if cat == "internal_only":
        return Found(
            Category.INTERNAL_ONLY,
            f"internal_only:{channel}:{day}:{kind}:{iid}",
            reference=i_ref or "",
            order_no=i_order or "",
            amount_fen=int(i_amount or 0),
            detail=_("我方有记录，渠道文件中没有"),
            **ids,
        )
    if cat == "channel_only":
        return Found(
            Category.CHANNEL_ONLY,
            f"channel_only:{channel}:{day}:{kind}:{c_ref}",
            reference=c_ref or "",
            order_no=c_order or "",
            merchant_no=merchant_no or "",
            amount_fen=int(c_amount or 0),
            detail=_("渠道已收款，我方没有记录"),
            **ids,
        )
    if cat == "fee_mismatch":
        actual, expected = int(fee_actual or 0), int(fee_expected or 0)
        return Found(
            Category.FEE_MISMATCH,
            f"fee_mismatch:{channel}:{day}:payment:{c_ref}",
            reference=c_ref or "",
            order_no=c_order or "",
            merchant_no=merchant_no or "",
            amount_fen=actual - expected,
            expected_fen=expected,
            actual_fen=actual,
            detail=_("手续费 %(a)d 分，按签约费率应为 %(e)d 分") % {"a": actual, "e": expected},
            **ids,
        )
    c_fen, i_fen = int(c_amount or 0), int(i_amount or 0)
    return Found(
        Category.AMOUNT_MISMATCH,
        f"amount_mismatch:{channel}:{day}:{kind}:{c_ref}",
        reference=c_ref or "",
        order_no=c_order or i_order or "",
        merchant_no=merchant_no or "",
        amount_fen=c_fen - i_fen,
        expected_fen=i_fen,
        actual_fen=c_fen,
        detail=_("金额不符：我方 %(i)d 分，渠道 %(c)d 分") % {"i": i_fen, "c": c_fen},
        **ids,
    )


# ---------------------------------------------------------------------------- arrival


def _arrivals(company: Company, channel: str, settle_date: date, as_of: date | None) -> list[Found]:
    """Compare each merchant's promised net with the bank credits recognised for it."""
    day = f"{settle_date:%Y%m%d}"
    found: list[Found] = []
    days = {
        m.merchant_no: m.settlement_days
        for m in Merchant.objects.filter(company=company, channel=MERCHANT_CHANNEL[channel])
    }
    for s in ChannelSettlement.objects.filter(
        company=company, channel=channel, settle_date=settle_date
    ).order_by("merchant_no"):
        due = add_workdays(settle_date - SETTLE_LAG, max(1, days.get(s.merchant_no, 1)))
        credits = list(
            BankMovement.objects.filter(
                company=company,
                channel=channel,
                merchant_no=s.merchant_no,
                settle_date=settle_date,
                direction=BankMovement.Direction.CREDIT,
            ).order_by("txn_date", "id")
        )
        base: dict[str, Any] = {"merchant_no": s.merchant_no, "settlement_id": s.pk}
        if not credits:
            if as_of is not None and as_of <= due:
                continue  # still in transit, not yet due
            found.append(
                Found(
                    Category.ARRIVAL_MISSING,
                    f"arrival_missing:{channel}:{day}:{s.merchant_no}",
                    amount_fen=s.net_fen,
                    expected_fen=s.net_fen,
                    actual_fen=0,
                    detail=_("应于 %(d)s 前到账 %(n)d 分，银行流水中没有")
                    % {"d": due.isoformat(), "n": s.net_fen},
                    **base,
                )
            )
            continue
        arrived = sum(c.amount_fen for c in credits)
        last = credits[-1]
        if arrived != s.net_fen:
            found.append(
                Found(
                    Category.ARRIVAL_SHORT,
                    f"arrival_short:{channel}:{day}:{s.merchant_no}",
                    amount_fen=arrived - s.net_fen,
                    expected_fen=s.net_fen,
                    actual_fen=arrived,
                    bank_movement_id=last.pk,
                    detail=_("到账 %(a)d 分，结算文件应结 %(n)d 分")
                    % {"a": arrived, "n": s.net_fen},
                    **base,
                )
            )
        if last.txn_date > due:
            found.append(
                Found(
                    Category.ARRIVAL_LATE,
                    f"arrival_late:{channel}:{day}:{s.merchant_no}",
                    amount_fen=arrived,
                    expected_fen=s.net_fen,
                    actual_fen=arrived,
                    bank_movement_id=last.pk,
                    detail=_("应于 %(d)s 前到账，实际 %(t)s 到账")
                    % {"d": due.isoformat(), "t": last.txn_date.isoformat()},
                    **base,
                )
            )
    return found


# ----------------------------------------------------------------------------- writing


_FIELDS = (
    "reference",
    "order_no",
    "merchant_no",
    "amount_fen",
    "expected_fen",
    "actual_fen",
    "payment_id",
    "refund_id",
    "channel_record_id",
    "settlement_id",
    "bank_movement_id",
    "detail",
)


def _write(run: ReconRun, found: list[Found], *, now: datetime, user: Any) -> None:
    existing = {
        e.key: e
        for e in ReconException.objects.filter(
            company_id=run.company_id, channel=run.channel, settle_date=run.settle_date
        )
    }
    seen: set[str] = set()
    new: list[ReconException] = []
    changed: list[ReconException] = []
    seen_again: list[int] = []
    events: list[ReconExceptionEvent] = []
    for f in found:
        if f.key in seen:
            continue
        seen.add(f.key)
        values = {name: getattr(f, name) for name in _FIELDS}
        values["detail"] = values["detail"][:255]
        exc = existing.get(f.key)
        if exc is None:
            new.append(
                ReconException(
                    run=run,
                    company_id=run.company_id,
                    channel=run.channel,
                    settle_date=run.settle_date,
                    category=f.category,
                    key=f.key,
                    created_at=now,
                    last_seen_at=now,
                    **values,
                )
            )
            continue
        if exc.state in (ReconException.State.RESOLVED, ReconException.State.DISMISSED):
            continue  # finance decided; a re-run does not reopen it
        reopened = exc.state == ReconException.State.AUTO_RESOLVED and exc.resolution == "gone"
        if exc.state == ReconException.State.AUTO_RESOLVED and not reopened:
            continue  # resolved by a rule
        differs = any(getattr(exc, name) != value for name, value in values.items())
        if not differs and not reopened:
            seen_again.append(exc.pk)  # the usual re-run: only run and last_seen_at move
            continue
        for name, value in values.items():
            setattr(exc, name, value)
        exc.run = run
        exc.last_seen_at = now
        if reopened:
            exc.state = ReconException.State.OPEN
            exc.resolution = ""
            exc.resolved_at = None
            events.append(
                ReconExceptionEvent(
                    exception=exc,
                    at=now,
                    by=user,
                    action="reopened",
                    note=_("重新对账时再次发现"),
                )
            )
        changed.append(exc)
    for key, exc in existing.items():
        if key in seen or exc.state != ReconException.State.OPEN:
            continue
        exc.state = ReconException.State.AUTO_RESOLVED
        exc.resolution = "gone"
        exc.resolved_at = now
        exc.run = run
        changed.append(exc)
        events.append(
            ReconExceptionEvent(
                exception=exc,
                at=now,
                by=user,
                action="gone",
                note=_("重新对账时不再出现，自动关闭"),
            )
        )
    created = ReconException.objects.bulk_create(new, batch_size=1000)
    if connection.vendor != "postgresql" or any(e.pk is None for e in created):
        keys = [e.key for e in new]
        by_key = (
            {
                e.key: e
                for e in ReconException.objects.filter(company_id=run.company_id, key__in=keys)
            }
            if keys
            else {}
        )
        created = [by_key[k] for k in keys]
    events += [
        ReconExceptionEvent(exception=e, at=now, by=user, action="found", data={"run": run.pk})
        for e in created
    ]
    for start in range(0, len(seen_again), 500):
        ReconException.objects.filter(pk__in=seen_again[start : start + 500]).update(
            run=run, last_seen_at=now
        )
    if changed:
        ReconException.objects.bulk_update(
            changed,
            [*_FIELDS, "run", "last_seen_at", "state", "resolution", "resolved_at"],
            batch_size=1000,
        )
    ReconExceptionEvent.objects.bulk_create(events, batch_size=1000)


# ---------------------------------------------------------------------------- services


def reconcile_run(
    *,
    company: Company,
    settle_date: date,
    channel: str,
    as_of: date | None = None,
    user: Any = None,
    now: datetime | None = None,
) -> ReconRun:
    """Match one channel's settlement date for ``company``; return the run with its counts.

    ``as_of`` (a date) holds back ``arrival_missing`` until the arrival is due; None reports a
    missing credit whatever the date. Re-running a day updates its exceptions instead of adding
    new ones (module docstring). Raises UnknownChannel for a channel other than card, wechat,
    alipay, and CalendarUnknown for a date past the working-day calendar.
    """
    if channel not in Channel.values:
        raise UnknownChannel(_("未知渠道：%(c)s") % {"c": channel})
    started = now or timezone.now()
    with tempfile.TemporaryDirectory(prefix="wuye-recon-") as tmp:
        found, counts = _match(company, channel, settle_date, Path(tmp))
    found += _arrivals(company, channel, settle_date, as_of)
    categories: dict[str, dict[str, int]] = {}
    for f in found:
        c = categories.setdefault(str(f.category), {"count": 0, "amount_fen": 0})
        c["count"] += 1
        c["amount_fen"] += f.amount_fen
    with transaction.atomic():
        # Rows of a columnar file an exception links to are copied into ChannelRecord now.
        columnar = [
            f.channel_record_id
            for f in found
            if f.channel_record_id is not None and f.channel_record_id < 0
        ]
        copied = store.records_materialise(columnar)
        found = [
            dataclasses.replace(f, channel_record_id=copied.get(f.channel_record_id))
            if f.channel_record_id is not None and f.channel_record_id < 0
            else f
            for f in found
        ]
        run = ReconRun.objects.create(
            company=company,
            channel=channel,
            settle_date=settle_date,
            started_at=started,
            started_by=user,
            exception_count=len(found),
            categories=categories,
            **counts,
        )
        _write(run, found, now=started, user=user)
        run.finished_at = now or timezone.now()
        run.save(update_fields=["finished_at"])
    return run


def reconcile_day(
    *,
    company: Company,
    settle_date: date,
    channels: list[str] | None = None,
    as_of: date | None = None,
    user: Any = None,
    now: datetime | None = None,
) -> list[ReconRun]:
    """Run :func:`reconcile_run` for each channel (all three when ``channels`` is None).

    Raises what :func:`reconcile_run` raises.
    """
    return [
        reconcile_run(
            company=company, settle_date=settle_date, channel=c, as_of=as_of, user=user, now=now
        )
        for c in (channels or list(Channel.values))
    ]
