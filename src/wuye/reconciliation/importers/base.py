"""What every importer shares: the rejection error, field parsers and the bulk writer.

Field parsers never use floats: a yuan amount is checked against a strict pattern and its
digits become integer fen (``"-1280.50"`` → ``-128050``). Every parser raises
:class:`FileRejected` naming the file, the line (1-based, as an editor counts) and the field.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

#: Files carry China local time; the database keeps UTC.
CHINA_UTC_OFFSET = timedelta(hours=8)

_YUAN_2DP = re.compile(r"-?\d{1,13}\.\d{2}")
_YUAN_5DP = re.compile(r"-?\d{1,13}\.\d{5}")


class FileRejected(ValueError):
    """A file is damaged or not what it claims to be; nothing of it was imported.

    ``file``, ``line`` and ``field`` say where (line and field may be None for the whole file).
    """

    def __init__(
        self, message: str, *, file: str, line: int | None = None, field: str | None = None
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        where = file
        if line is not None:
            where += _("，第 %(line)d 行") % {"line": line}
        if field:
            where += _("，字段 %(field)s") % {"field": field}
        super().__init__(f"{where}: {message}")


@dataclass
class Where:
    """A position in a file, handed to the field parsers for their errors."""

    file: str
    line: int = 0

    def reject(self, message: str, field: str | None = None) -> FileRejected:
        return FileRejected(message, file=self.file, line=self.line or None, field=field)


def yuan_fen(text: str, where: Where, field: str) -> int:
    """Return ``text`` (yuan with exactly two decimals) as fen.

    Raises FileRejected naming ``field`` if it is anything else.
    """
    text = text.strip()
    if not _YUAN_2DP.fullmatch(text):
        raise where.reject(_("金额应为两位小数的元金额，而不是“%(v)s”") % {"v": text}, field)
    return int(text.replace(".", ""))


def yuan_milli_fen(text: str, where: Where, field: str) -> int:
    """Return ``text`` (yuan with five decimals, as WeChat fees) in thousandths of a fen.

    Raises FileRejected naming ``field`` if it is anything else.
    """
    text = text.strip()
    if not _YUAN_5DP.fullmatch(text):
        raise where.reject(_("手续费应为五位小数的元金额，而不是“%(v)s”") % {"v": text}, field)
    return int(text.replace(".", ""))


def compact_date(text: str, where: Where, field: str) -> date:
    """Parse ``YYYYMMDD``; raise FileRejected naming ``field`` if it is not a real date."""
    text = text.strip()
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError(text)
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise where.reject(_("日期应为 YYYYMMDD，而不是“%(v)s”") % {"v": text}, field) from None


def local_datetime(text: str, fmt: str, where: Where, field: str) -> datetime:
    """Parse a China-local timestamp with ``fmt`` and return it as naive UTC.

    Raises FileRejected naming ``field`` if it does not parse.
    """
    try:
        return datetime.strptime(text.strip(), fmt) - CHINA_UTC_OFFSET
    except ValueError:
        raise where.reject(_("时间格式不对：“%(v)s”") % {"v": text}, field) from None


def milli_to_fen(milli_fen: int) -> int:
    """Round thousandths of a fen to fen half-up (四舍五入), symmetric around zero."""
    sign = -1 if milli_fen < 0 else 1
    q, r = divmod(abs(milli_fen), 1000)
    return sign * (q + (1 if r >= 500 else 0))


@dataclass
class Parsed:
    """What a parser hands to the writer: rows for one model, and the file's totals."""

    kind: str
    records: list[tuple[Any, ...]] = field(default_factory=list)
    # Large files: the records as a header-less CSV in RECORD_COLUMNS order instead.
    records_csv: Path | None = None
    # Very large files: the records as Parquet (``store.PARQUET_COLUMNS``), kept as is.
    parquet: Path | None = None
    movements: list[tuple[Any, ...]] = field(default_factory=list)
    settlements: list[dict[str, Any]] = field(default_factory=list)
    row_count: int = 0
    total_fen: int = 0
    fee_milli_fen: int = 0
    net_fen: int = 0
    account_no: str = ""


#: Column order of ``Parsed.records`` (``source_id`` and ``company_id`` are added on write).
RECORD_COLUMNS = (
    "channel",
    "merchant_no",
    "settle_date",
    "txn_at",
    "reference",
    "order_no",
    "kind",
    "amount_fen",
    "fee_milli_fen",
    "net_fen",
    "masked_pan",
    "card_type",
    "funding_source",
    "orig_reference",
    "refund_reference",
    "auth_code",
    "tid",
    "batch",
    "stan",
    "line_no",
    "is_duplicate",
)

#: Column order of ``Parsed.movements``.
MOVEMENT_COLUMNS = (
    "account_no",
    "serial_no",
    "txn_date",
    "value_date",
    "direction",
    "amount_fen",
    "balance_fen",
    "counterparty_name",
    "counterparty_account",
    "memo",
    "channel",
    "merchant_no",
    "settle_date",
    "line_no",
)


def _sql_value(value: Any, *, pg: bool) -> Any:
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + "+00" if pg else text
    if isinstance(value, date):
        return value.isoformat()
    return value


def bulk_insert(
    table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, prefix: Sequence[Any]
) -> int:
    """Insert ``rows`` (each prefixed with ``prefix`` values) into ``table`` in bulk.

    PostgreSQL gets one ``COPY … FROM STDIN``; SQLite a batched ``executemany``. Datetimes
    must be naive UTC. Return the number of rows written. Raises the database's error.
    """
    pg = connection.vendor == "postgresql"
    prefix_cols = ("source_id", "company_id")
    all_cols = (*prefix_cols, *columns)
    pre = tuple(prefix)
    count = 0
    with connection.cursor() as cursor:
        if pg:
            raw = cursor.cursor
            cols = ", ".join(f'"{c}"' for c in all_cols)
            with raw.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(pre + tuple(_sql_value(v, pg=True) for v in row))
                    count += 1
        else:
            cols = ", ".join(f'"{c}"' for c in all_cols)
            marks = ", ".join("?" for _c in all_cols)
            sql = f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'  # noqa: S608
            raw = cursor.cursor
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(pre + tuple(_sql_value(v, pg=False) for v in row))
                if len(batch) >= 50_000:
                    raw.executemany(sql, batch)
                    count += len(batch)
                    batch = []
            if batch:
                raw.executemany(sql, batch)
                count += len(batch)
    return count


def bulk_insert_csv(
    table: str, columns: Sequence[str], path: Path, *, prefix: Sequence[Any]
) -> int:
    """Insert the rows of a header-less CSV (``columns`` order) into ``table``, each prefixed.

    PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` fed in 1 MiB chunks with the prefix added to
    each line; SQLite: batched ``executemany`` (column affinity turns numeric text into
    integers). Return the number of rows written. Raises the database's error.
    """
    pg = connection.vendor == "postgresql"
    all_cols = ", ".join(f'"{c}"' for c in ("source_id", "company_id", *columns))
    count = 0
    with connection.cursor() as cursor, path.open(encoding="utf-8", newline="") as fh:
        if pg:
            head = ",".join(f'"{v}"' for v in prefix) + ","
            sql = f'COPY "{table}" ({all_cols}) FROM STDIN (FORMAT csv)'
            with cursor.cursor.copy(sql) as copy:
                while True:
                    lines = fh.readlines(1 << 20)
                    if not lines:
                        break
                    copy.write("".join(head + line for line in lines))
                    count += len(lines)
        else:
            marks = ", ".join("?" for _c in range(len(columns) + 2))
            sql = f'INSERT INTO "{table}" ({all_cols}) VALUES ({marks})'  # noqa: S608
            pre = tuple(prefix)
            batch: list[tuple[Any, ...]] = []
            for row in csv.reader(fh):
                batch.append((*pre, *row))
                if len(batch) >= 50_000:
                    cursor.cursor.executemany(sql, batch)
                    count += len(batch)
                    batch = []
            if batch:
                cursor.cursor.executemany(sql, batch)
                count += len(batch)
    return count
