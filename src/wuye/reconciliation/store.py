"""Where channel rows live: ``ChannelRecord`` for small files, Parquet for large ones.

A channel file with at least :data:`COLUMNAR_MIN_ROWS` rows (an acquirer file of a busy
merchant: hundreds of thousands a day) is not written into the database row by row. The
importer's DuckDB pass writes its rows to one Parquet file per ``SourceFile``
(:func:`parquet_path`: ``$WUYE_DATA_DIR/recon/<company>/<sha256>.parquet``) and the
``SourceFile`` is marked ``columnar``. Matching reads the window's Parquet files straight into
DuckDB (:func:`channel_window_sql`); only the rows an exception links to are copied into
``ChannelRecord`` (:func:`records_materialise`), so the finance pages, rules and resolutions
keep reading ``ReconException.channel_record`` as before.

Rules that keep "a rejected file imports nothing" and "the same file twice adds nothing":

- the Parquet file is written whole under a temporary name and renamed into place (atomic)
  inside the import's transaction, after every check passed;
- readers take a Parquet file only through a ``SourceFile`` row with ``columnar = True``
  visible in their transaction: the file of an import that rolled back (a clash found while
  writing, a crash) has no row and is never read; importing the same bytes again (same
  sha256, so the same name) overwrites it with the same rows;
- the rows carry no database id: a row is named by ``cid = -(source_id << 32 | line_no)``
  (negative, so it never collides with a ``ChannelRecord`` id in matching's tables).

Duplicates are found where rows come in: the importer marks a row that repeats the
(kind, reference) of an earlier row of the same file, or of a row already imported for the
channel with a settlement date within :data:`DUP_WINDOW_DAYS` (:func:`prior_references_load`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from django.conf import settings
from django.db import connection

from .models import ChannelRecord, SourceFile

#: Files with at least this many transaction rows keep them in Parquet.
COLUMNAR_MIN_ROWS = 50_000
#: A row repeating a reference already imported this many days either side is a duplicate
#: (matching's window is as wide).
DUP_WINDOW_DAYS = 3
_SHIFT = 32
_LINE_MASK = (1 << _SHIFT) - 1

#: The Parquet file's columns and their DuckDB types (``ChannelRecord`` field names).
PARQUET_COLUMNS = {
    "channel": "VARCHAR",
    "merchant_no": "VARCHAR",
    "settle_date": "DATE",
    "txn_at": "TIMESTAMP",  # naive UTC
    "reference": "VARCHAR",
    "order_no": "VARCHAR",
    "kind": "VARCHAR",
    "amount_fen": "BIGINT",
    "fee_milli_fen": "BIGINT",
    "net_fen": "BIGINT",
    "masked_pan": "VARCHAR",
    "card_type": "VARCHAR",
    "funding_source": "VARCHAR",
    "orig_reference": "VARCHAR",
    "refund_reference": "VARCHAR",
    "auth_code": "VARCHAR",
    "tid": "VARCHAR",
    "batch": "VARCHAR",
    "stan": "VARCHAR",
    "line_no": "BIGINT",
    "is_duplicate": "BOOLEAN",
}


def duck_insert(
    con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[Any, ...]], width: int
) -> None:
    """Insert Python ``rows`` (tuples of ``width``) into DuckDB ``table`` in one statement.

    DuckDB's ``executemany`` runs a statement per row (milliseconds each); this hands the
    columns over as lists and zips them back with ``unnest``.
    """
    if not rows:
        return
    columns = [list(col) for col in zip(*rows, strict=True)]
    unnest = ", ".join(f"unnest(${n + 1})" for n in range(width))
    con.execute(f"INSERT INTO {table} SELECT {unnest}", columns)


def parquet_path(company_id: int, sha256: str) -> Path:
    """Return where the rows of the company's file with this digest are kept."""
    return Path(settings.DATA_DIR) / "recon" / str(company_id) / f"{sha256}.parquet"


def parquet_install(tmp: Path, company_id: int, sha256: str) -> Path:
    """Move a finished Parquet file into its place (atomic rename); return the final path.

    Call inside the import's transaction, after the ``SourceFile`` row is written.
    Raises OSError if the data directory is not writable.
    """
    final = parquet_path(company_id, sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(f".{final.name}.{os.getpid()}.part")
    # Copy into the target directory first (the temp dir may be another file system), then
    # rename over the final name: a reader sees the old whole file or the new whole file.
    with tmp.open("rb") as src, part.open("wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    part.replace(final)
    return final


def cid_of(source_id: int, line_no: int) -> int:
    """Return the id matching gives a Parquet row (negative; see the module docstring)."""
    return -((source_id << _SHIFT) | line_no)


def cid_split(cid: int) -> tuple[int, int]:
    """Return (source_id, line_no) of a Parquet row's id."""
    n = -cid
    return n >> _SHIFT, n & _LINE_MASK


def columnar_sources(
    company_id: int, channel: str, start: date, end: date
) -> list[tuple[int, Path]]:
    """Return (source id, Parquet path) of the company's columnar files of ``channel`` with a
    settlement date in ``[start, end)``."""
    ids = (
        SourceFile.objects.filter(
            company_id=company_id,
            columnar=True,
            settlements__channel=channel,
            settlements__settle_date__gte=start,
            settlements__settle_date__lt=end,
        )
        .values_list("pk", "sha256")
        .distinct()
        .order_by("pk")
    )
    return [(pk, parquet_path(company_id, sha)) for pk, sha in ids]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def channel_window_sql(
    sources: Iterable[tuple[int, Path]], columns: str, start: date, end: date
) -> str | None:
    """Return DuckDB SQL selecting ``columns`` (plus ``cid``) of the Parquet rows of
    ``sources`` with a settlement date in ``[start, end)``; None if there are none."""
    parts = [
        f"""SELECT -(({int(sid)}::BIGINT << {_SHIFT}) | line_no) AS cid, {columns}
            FROM read_parquet({_quote(path)})
            WHERE settle_date >= DATE '{start.isoformat()}'
              AND settle_date < DATE '{end.isoformat()}'"""  # noqa: S608 - ours
        for sid, path in sources
    ]
    return " UNION ALL ".join(parts) if parts else None


def prior_references_load(
    con: duckdb.DuckDBPyConnection, company_id: int, channel: str, start: date, end: date
) -> None:
    """Create DuckDB table ``prior(kind, reference)``: the channel's rows already imported
    for the company with a settlement date in ``[start, end)`` (database and Parquet)."""
    con.execute("CREATE OR REPLACE TEMP TABLE prior (kind VARCHAR, reference VARCHAR)")
    rows = list(
        ChannelRecord.objects.filter(
            company_id=company_id,
            channel=channel,
            settle_date__gte=start,
            settle_date__lt=end,
            source__columnar=False,
        ).values_list("kind", "reference")
    )
    duck_insert(con, "prior", rows, 2)
    sql = channel_window_sql(
        columnar_sources(company_id, channel, start, end), "kind, reference", start, end
    )
    if sql is not None:
        con.execute(f"INSERT INTO prior SELECT kind, reference FROM ({sql})")  # noqa: S608


def records_materialise(cids: Iterable[int]) -> dict[int, int]:
    """Copy the Parquet rows named by ``cids`` (negative ids) into ``ChannelRecord``.

    Return {cid: ChannelRecord id}. A row copied before is found again, not copied twice.
    Call inside the transaction that writes what links to them.
    """
    wanted: dict[int, set[int]] = {}
    for cid in cids:
        if cid < 0:
            sid, line = cid_split(cid)
            wanted.setdefault(sid, set()).add(line)
    if not wanted:
        return {}
    out: dict[int, int] = {}
    names = list(PARQUET_COLUMNS)
    for sf in SourceFile.objects.filter(pk__in=wanted, columnar=True).order_by("pk"):
        lines = wanted[sf.pk]
        have = dict(
            ChannelRecord.objects.filter(source_id=sf.pk, line_no__in=lines).values_list(
                "line_no", "pk"
            )
        )
        missing = sorted(lines - set(have))
        if missing:
            con = duckdb.connect()
            try:
                con.execute("CREATE TABLE want (line_no BIGINT)")
                duck_insert(con, "want", [(n,) for n in missing], 1)
                rows = con.execute(
                    f"""SELECT {", ".join(names)} FROM read_parquet(
                          {_quote(parquet_path(sf.company_id, sf.sha256))})
                        WHERE line_no IN (SELECT line_no FROM want) ORDER BY line_no"""  # noqa: S608
                ).fetchall()
            finally:
                con.close()
            made = ChannelRecord.objects.bulk_create(
                [_record(sf, dict(zip(names, row, strict=True))) for row in rows],
                batch_size=1000,
            )
            if connection.vendor != "postgresql" or any(r.pk is None for r in made):
                have = dict(
                    ChannelRecord.objects.filter(source_id=sf.pk, line_no__in=lines).values_list(
                        "line_no", "pk"
                    )
                )
            else:
                have.update({r.line_no: r.pk for r in made})
        for line in lines:
            if line in have:
                out[cid_of(sf.pk, line)] = have[line]
    return out


def _record(sf: SourceFile, values: dict[str, Any]) -> ChannelRecord:
    from datetime import UTC

    txn_at = values.pop("txn_at")  # naive UTC in the Parquet file
    return ChannelRecord(
        source=sf, company_id=sf.company_id, txn_at=txn_at.replace(tzinfo=UTC), **values
    )
