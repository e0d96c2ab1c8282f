"""Bulk writes for a billing run: bills and the run's journal lines, in the caller's transaction.

PostgreSQL: one ``COPY … FROM STDIN`` per table (the journal lines of an entry in ONE statement,
so the balance trigger sees the whole entry). SQLite: ``executemany`` on the raw connection.
Rows are built as text with per-fee-item constant parts joined once, because at a million
units Python string work, not the database, is the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection

# (unit_id, fee_item_id, revision, kind, amount_fen, quantity text or None)
BillRow = tuple[int, int, int, str, int, str | None]
# (account, amount_fen, community_id, household_id or None, fee_item_id or None)
JournalRow = tuple[str, int, int, int | None, int | None]

CHUNK = 20_000
COPY_ROWS = 0  # rows per COPY statement; 0: about 1/50 of the run

_BILL_VAR_COLUMNS = ("unit_id", "revision", "kind", "amount_fen", "quantity")
_BILL_CONST_COLUMNS = (
    "fee_item_id", "company_id", "community_id", "period_start", "period_end", "paid_fen",
    "waived_fen", "due_date", "description", "run_id", "issued_on", "created_at",
)
BILL_COLUMNS = _BILL_VAR_COLUMNS + _BILL_CONST_COLUMNS
JOURNAL_COLUMNS = (
    "entry_id", "account", "amount_fen", "community_id", "household_id", "fee_item_id", "channel",
)


@dataclass(frozen=True)
class BillConstants:
    """What every bill of one fee item in a run shares."""

    fee_item_id: int
    company_id: int
    community_id: int
    period_start: date
    period_end: date
    due_date: date
    description: str
    run_id: int | None
    issued_on: date


def _copy_text(value: object) -> str:
    if value is None:
        return r"\N"
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    return (
        text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _const_values(c: BillConstants, created_at: datetime) -> tuple[object, ...]:
    return (
        c.fee_item_id, c.company_id, c.community_id, c.period_start, c.period_end, 0, 0,
        c.due_date, c.description, c.run_id, c.issued_on, created_at,
    )


def bills_write(
    rows: Sequence[BillRow],
    *,
    constants: dict[int, BillConstants],
    created_at: datetime,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert ``rows`` as bills (paid 0, waived 0) and return how many were written.

    ``constants`` gives, per fee item id, the columns the rows share. Must run inside the
    caller's transaction.
    """
    if not rows:
        return 0
    table = "billing_bill"
    if connection.vendor == "postgresql":
        suffix = {
            fid: "\t" + "\t".join(_copy_text(v) for v in _const_values(c, created_at)) + "\n"
            for fid, c in constants.items()
        }
        sql = f"COPY {table} ({', '.join(BILL_COLUMNS)}) FROM STDIN"
        null = r"\N"
        # One COPY per chunk (bills need not share a statement): with the run's constraints
        # set immediate, each chunk's foreign-key checks happen here, so progress is honest.
        step = COPY_ROWS or max(2_000, min(CHUNK * 3, len(rows) // 50))
        with connection.cursor() as cur, cur.connection.cursor() as raw:
            for lo in range(0, len(rows), step):
                chunk = rows[lo : lo + step]
                with raw.copy(sql) as copy:
                    copy.write(
                        "".join(
                            [
                                f"{u}\t{r}\t{k}\t{a}\t{q or null}{suffix[f]}"
                                for u, f, r, k, a, q in chunk
                            ]
                        )
                    )
                if progress:
                    progress(lo + len(chunk))
        return len(rows)
    adapt = connection.ops.adapt_datetimefield_value
    consts = {
        fid: (
            c.fee_item_id, c.company_id, c.community_id, c.period_start.isoformat(),
            c.period_end.isoformat(), 0, 0, c.due_date.isoformat(), c.description, c.run_id,
            c.issued_on.isoformat(), adapt(created_at),
        )
        for fid, c in constants.items()
    }
    marks = ", ".join("?" for _ in BILL_COLUMNS)
    sql = f"INSERT INTO {table} ({', '.join(BILL_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    with connection.cursor() as cur:
        raw = cur.connection
        for lo in range(0, len(rows), CHUNK):
            chunk = rows[lo : lo + CHUNK]
            raw.executemany(sql, [(u, r, k, a, q, *consts[f]) for u, f, r, k, a, q in chunk])
            if progress:
                progress(lo + len(chunk))
    return len(rows)


def journal_lines_write(entry_id: int, lines: Sequence[JournalRow]) -> int:
    """Insert all lines of one entry in ONE statement; return how many were written.

    Raises ValueError if the lines do not sum to zero (nothing is written).
    """
    total = sum(line[1] for line in lines)
    if total != 0:
        raise ValueError(f"journal entry {entry_id} does not balance: lines sum to {total} fen")
    if not lines:
        return 0
    table = "ledger_journalline"
    if connection.vendor == "postgresql":
        sql = f"COPY {table} ({', '.join(JOURNAL_COLUMNS)}) FROM STDIN"
        null = r"\N"
        with connection.cursor() as cur, cur.connection.cursor() as raw:
            with raw.copy(sql) as copy:
                for lo in range(0, len(lines), CHUNK):
                    copy.write(
                        "".join(
                            [
                                f"{entry_id}\t{acc}\t{amt}\t{com}\t"
                                f"{null if hh is None else hh}\t{null if fi is None else fi}\t\n"
                                for acc, amt, com, hh, fi in lines[lo : lo + CHUNK]
                            ]
                        )
                    )
        return len(lines)
    marks = ", ".join("?" for _ in JOURNAL_COLUMNS)
    sql = f"INSERT INTO {table} ({', '.join(JOURNAL_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    with connection.cursor() as cur:
        cur.connection.executemany(
            sql, [(entry_id, acc, amt, com, hh, fi, "") for acc, amt, com, hh, fi in lines]
        )
    return len(lines)
