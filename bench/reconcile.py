"""Reconciliation benchmark: N card settlement rows against N payments, import + match.

Usage (one database per process)::

    python bench/reconcile.py --db sqlite --rows 1000000
    python bench/reconcile.py --db postgres --pg-db wuye_bench_recon_<you> --rows 1000000
    python bench/reconcile.py --sql-only --rows 10000000

It creates a fresh database (the PostgreSQL database named by ``--pg-db``, dropped first, or a
SQLite file under ``$WUYE_DATA_DIR``), migrates it, and seeds one company with an acquirer
merchant and N card payments (``payments_payment`` rows written in bulk; they all point at one
order and one stand-in journal entry, because the ledger is not what is measured here). It
writes an acquirer settlement file of N rows (contract §1, with its trailer) in which about
0.1% of the rows each are: missing (internal only), extra (channel only), a different amount, a
wrong fee and a duplicate. Then, timed:

1. **baseline read**: DuckDB reads the same CSV into a table;
2. **baseline join**: a bare DuckDB full outer join of both sides (already in DuckDB) on the
   reference, classifying every row (matched / amount mismatch / one side only);
3. **import**: ``file_import`` (check every field and the trailer, mark duplicates; a file of
   ``store.COLUMNAR_MIN_ROWS`` rows or more goes to Parquet, smaller ones into the database),
   and apart the import's DuckDB pass alone;
4. **match**: ``reconcile_run`` for the card channel (load both sides, match in DuckDB, write
   the exceptions), and apart the **load** and the **match SQL** alone (the same DuckDB
   statements over the same loaded tables) for the ratio to the bare join;
5. the baselines again (the machine is shared: ratios are reported against both).

``--sql-only`` (for 10,000,000 rows) skips the database: the import's DuckDB pass runs on the
generated file, both sides are built in DuckDB as matching's load builds them, and only the
matching SQL is timed against the bare join, with peak RSS.

Prints one JSON line with the timings, the ratios against the goals, the exception counts and
the peak RSS of this process (DuckDB runs in-process; PostgreSQL's own memory is not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# Run as a script, this folder is sys.path[0]; a sibling module named like a standard one
# (bench/http.py) would shadow it. Look modules up in the project, not here.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_NAME = "wuye_bench_recon"
MID = "898310048990001"
TRADE_DAY = date(2026, 11, 20)
SETTLE_DAY = date(2026, 11, 21)


def _setup(db: str, pg_name: str = PG_NAME) -> None:
    os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
    os.environ.setdefault("WUYE_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "wuye.settings"
    data_dir = Path(os.environ.get("WUYE_DATA_DIR", "/tmp/wuye-bench-recon"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WUYE_DATA_DIR"] = str(data_dir)
    if db == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {pg_name}")
            conn.execute(f"CREATE DATABASE {pg_name}")
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{pg_name}"
    else:
        path = data_dir / "bench-recon.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# Row i of the day: amount 10.00..5009.99 yuan; every 1000th row carries one difference.
_GEN = """
CREATE TABLE gen AS SELECT
  i,
  lpad(i::VARCHAR, 12, '0') AS rrn,
  1000 + (i * 7919) % 500000 AS amount_fen,
  i % 1000 AS k
FROM range(1, {n} + 1) t(i);
"""
# k = 1: internal only (no channel row); k = 2: channel only (no payment);
# k = 3: channel amount +1 fen; k = 4: fee +1 fen; k = 5: the channel row appears twice.
_CHANNEL = """
CREATE TABLE channel AS
SELECT rrn, amount_fen + CASE WHEN k = 3 THEN 1 ELSE 0 END AS amount_fen,
       least((amount_fen * 5000 + 500000) // 1000000, 2000)
         + CASE WHEN k = 4 THEN 1 ELSE 0 END AS fee_fen, i
FROM gen WHERE k <> 1
UNION ALL
SELECT rrn, amount_fen, least((amount_fen * 5000 + 500000) // 1000000, 2000), i
FROM gen WHERE k = 5;
"""


def _yuan(col: str) -> str:
    return (
        f"(CASE WHEN {col} < 0 THEN '-' ELSE '' END) || (abs({col}) // 100)::VARCHAR || '.' || "
        f"lpad((abs({col}) % 100)::VARCHAR, 2, '0')"
    )


def _write_files(n: int, workdir: Path) -> tuple[Path, Path]:
    """Write the acquirer CSV and the internal side (payments CSV); return their paths."""
    import duckdb

    con = duckdb.connect()
    con.execute(_GEN.format(n=n))
    con.execute(_CHANNEL)
    acq = workdir / "acquirer.csv"
    body = workdir / "body.csv"
    con.execute(
        f"""COPY (SELECT '{SETTLE_DAY:%Y%m%d}' AS settle_date, '{TRADE_DAY:%Y%m%d}' AS txn_date,
                  lpad(((i % 86400) // 3600)::VARCHAR, 2, '0')
                  || lpad(((i % 3600) // 60)::VARCHAR, 2, '0')
                  || lpad((i % 60)::VARCHAR, 2, '0') AS txn_time,
                  '{MID}' AS mid, '10000001' AS tid, '000001' AS batch_no,
                  lpad((i % 1000000)::VARCHAR, 6, '0') AS stan, rrn, 'A1B2C3' AS auth_code,
                  'PURCHASE' AS txn_type, '622202******0017' AS card_no, 'DEBIT' AS card_type,
                  {_yuan("amount_fen")} AS amount, {_yuan("fee_fen")} AS fee,
                  {_yuan("amount_fen - fee_fen")} AS net_amount, '' AS orig_rrn
              FROM channel ORDER BY i)
           TO '{body}' (HEADER, DELIMITER ',', QUOTE '')"""
    )
    sums = con.execute("SELECT count(*), sum(amount_fen), sum(fee_fen) FROM channel").fetchone()
    assert sums is not None
    count, total, fee = sums
    with acq.open("wb") as out, body.open("rb") as src:
        while chunk := src.read(1 << 20):
            out.write(chunk)
        out.write(f"TRAILER,{count},{_fmt(total)},{_fmt(fee)},{_fmt(total - fee)}\n".encode())
    body.unlink()
    internal = workdir / "internal.csv"
    con.execute(
        f"COPY (SELECT i, rrn, amount_fen FROM gen WHERE k <> 2 ORDER BY i) TO '{internal}' "
        "(HEADER false, DELIMITER ',')"
    )
    con.close()
    return acq, internal


def _fmt(fen: int) -> str:
    from wuye.core.money import format_yuan

    return format_yuan(int(fen))


def _seed(internal: Path) -> tuple[Any, int]:
    """Create the company, merchant, and one payment row per line of ``internal``."""
    import csv

    from django.db import connection, transaction

    from wuye.ledger.models import AccountKind, JournalEntry
    from wuye.ledger.services import credit, debit, entry_post
    from wuye.merchants.services import fee_rate_set, merchant_create
    from wuye.payments.models import Order
    from wuye.testing.factories import make_building, make_community, make_company, make_unit

    paid_at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    with transaction.atomic():
        company = make_company()
        community = make_community(company)
        unit = make_unit(make_building(community))
        merchant = merchant_create(
            company=company,
            channel="acquirer",
            name=company.name,
            merchant_no=MID,
            bank_name="招商银行上海分行",
            bank_account_name=company.name,
            bank_account_no="31000000000000009",
        )
        fee_rate_set(
            merchant=merchant,
            card_type="debit",
            rate_ppm=5000,
            cap_fen=2000,
            effective_from=date(2026, 1, 1),
        )
        order = Order.objects.create(
            company=company,
            community=community,
            unit=unit,
            channel="card",
            amount_fen=1,
            bills_fen=0,
            prepay_fen=1,
            idempotency_key="bench-order",
            created_at=paid_at,
            state="paid",
        )
        entry = entry_post(
            company_id=company.pk,
            kind=JournalEntry.Kind.ADJUSTMENT,
            memo="bench stand-in",
            effective_date=TRADE_DAY,
            lines=[debit(AccountKind.BANK, 1), credit(AccountKind.OPENING_BALANCE, 1)],
        )
    cols = (
        "order_id, company_id, community_id, unit_id, channel, amount_fen, state, reference, "
        "rrn, auth_code, masked_pan, card_type, tid, batch, stan, provider_txn_id, "
        "funding_source, allocated_fen, prepaid_fen, refund_due_fen, surplus_to, refunded_fen, "
        "entry_id, receipt_number, paid_at"
    )
    pg = connection.vendor == "postgresql"
    when = paid_at.isoformat() if pg else "2026-11-20 02:00:00"
    fixed = (order.pk, company.pk, community.pk, unit.pk, "card")
    count = 0
    with transaction.atomic(), connection.cursor() as cur, internal.open() as fh:
        rows = (
            (
                *fixed,
                int(a),
                "succeeded",
                f"10000001-{TRADE_DAY:%Y%m%d}-{rrn}",
                rrn,
                "A1B2C3",
                "622202******0017",
                "debit",
                "10000001",
                "000001",
                "",
                "",
                "",
                int(a),
                0,
                0,
                "",
                0,
                entry.pk,
                "",
                when,
            )
            for _i, rrn, a in csv.reader(fh)
        )
        if pg:
            with cur.cursor.copy(f"COPY payments_payment ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            marks = ", ".join("?" for _ in cols.split(","))
            sql = f"INSERT INTO payments_payment ({cols}) VALUES ({marks})"
            batch: list[tuple] = []
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    cur.cursor.executemany(sql, batch)
                    count += len(batch)
                    batch = []
            cur.cursor.executemany(sql, batch)
            count += len(batch)
    return company, count


def _baselines(acq: Path, internal: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(
        f"CREATE TABLE c AS SELECT * FROM read_csv('{acq}', header = true, null_padding = true, "
        "all_varchar = true)"
    )
    read_s = time.perf_counter() - t
    con.execute(
        f"CREATE TABLE i AS SELECT * FROM read_csv('{internal}', header = false, "
        "columns = {'iid': 'BIGINT', 'rrn': 'VARCHAR', 'amount_fen': 'BIGINT'})"
    )
    con.execute(
        "CREATE TABLE cc AS SELECT rrn, CAST(replace(amount, '.', '') AS BIGINT) AS amount_fen "
        "FROM c WHERE settle_date <> 'TRAILER'"
    )
    t = time.perf_counter()
    rows = con.execute(
        """CREATE TABLE bare AS SELECT
             CASE WHEN i.rrn IS NULL THEN 'channel_only' WHEN cc.rrn IS NULL THEN 'internal_only'
                  WHEN i.amount_fen <> cc.amount_fen THEN 'amount_mismatch' ELSE 'matched' END
               AS category, cc.rrn AS c_rrn, i.rrn AS i_rrn
           FROM cc FULL OUTER JOIN i ON cc.rrn = i.rrn"""
    )
    join_s = time.perf_counter() - t
    del rows
    cats = dict(con.execute("SELECT category, count(*) FROM bare GROUP BY 1").fetchall())
    con.close()
    return {"baseline_read_s": read_s, "baseline_join_s": join_s, "baseline_categories": cats}


def _match_sql_only(company: Any, workdir: Path) -> tuple[float, float]:
    """Time loading both sides (database + Parquet) into DuckDB, then the matching SQL alone
    (including the few left-over rows' details fetched from the database)."""
    import duckdb

    from wuye.reconciliation import matching

    con = duckdb.connect()
    t = time.perf_counter()
    matching._load_sides(con, company.pk, "card", SETTLE_DAY, workdir)
    load_s = time.perf_counter() - t
    rates = matching._rates(company, "card", TRADE_DAY)
    t = time.perf_counter()
    matching._match_sql(con, card=True, trade_day=TRADE_DAY, settle_date=SETTLE_DAY, rates=rates)
    elapsed = time.perf_counter() - t
    con.close()
    return load_s, elapsed


def sql_only(n: int) -> dict[str, Any]:
    """Time the matching SQL against the bare join with both sides built in DuckDB (no
    database): for row counts whose import and seeding would not fit the bench's minutes.

    The channel side's duplicate marks are made as the importer makes them (one grouped pass
    over the file's rows), timed apart as ``import_dup_mark_s``: that is import work."""
    import django
    import duckdb

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuye.settings")
    django.setup()  # settings only (translations); no database is touched
    from wuye.reconciliation import matching

    result: dict[str, Any] = {"mode": "sql-only", "rows": n}
    with tempfile.TemporaryDirectory(prefix="wuye-bench-recon-") as tmp:
        acq, internal = _write_files(n, Path(tmp))
        # The import's DuckDB pass alone (read, check every field, mark duplicates within the
        # file, write the Parquet file): no database, so no marks against earlier imports.
        from wuye.reconciliation.importers import acquirer

        parse_dir = Path(tmp) / "parse"
        parse_dir.mkdir()
        t = time.perf_counter()
        parsed = acquirer.parse(acq, acq.name, workdir=parse_dir, columnar_min_rows=1)
        result["import_parse_s"] = time.perf_counter() - t
        assert parsed.parquet is not None
        result["parquet_mib"] = parsed.parquet.stat().st_size / 2**20
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute(
            f"CREATE TABLE b AS SELECT * FROM read_csv('{acq}', header = true, "
            "null_padding = true, all_varchar = true)"
        )
        result["baseline_read_s"] = time.perf_counter() - t
        con.close()
        con = duckdb.connect()
        con.execute(
            f"""CREATE TABLE records0 AS SELECT row_number() OVER () AS cid, 'payment' AS kind,
                  rrn AS reference, '' AS order_no,
                  CAST(replace(amount, '.', '') AS BIGINT) AS amount_fen,
                  CAST(replace(fee, '.', '') AS BIGINT) * 1000 AS fee_milli_fen,
                  mid AS merchant_no, DATE '{SETTLE_DAY.isoformat()}' AS settle_date,
                  'debit' AS card_type, '' AS funding_source
                FROM read_csv('{acq}', header = true, all_varchar = true, null_padding = true)
                WHERE settle_date <> 'TRAILER'"""
        )
        t = time.perf_counter()
        con.execute(
            f"""CREATE TABLE records AS SELECT r.*, d.cid IS NOT NULL AS is_dup,
                 {matching.records_extra(SETTLE_DAY)} FROM records0 r
               LEFT JOIN (SELECT c.cid FROM records0 c JOIN (
                   SELECT kind, reference, min(cid) AS keep FROM records0
                   GROUP BY kind, reference HAVING count(*) > 1) d
                 USING (kind, reference) WHERE c.cid <> d.keep) d USING (cid)"""
        )
        result["import_dup_mark_s"] = time.perf_counter() - t
        con.execute("DROP TABLE records0")
        # The columns matching's load adds (matching.internal_extra / records_extra).
        con.execute(
            f"""CREATE TABLE internal AS SELECT *, {matching.internal_extra(True, TRADE_DAY)}
                FROM (SELECT iid, 'payment' AS kind, rrn AS key_src,
                  amount_fen, DATE '{TRADE_DAY.isoformat()}' AS eff, 'debit' AS card_type,
                  '' AS funding_source
                FROM read_csv('{internal}', header = false,
                  columns = {{'iid': 'BIGINT', 'rrn': 'VARCHAR', 'amount_fen': 'BIGINT'}}))"""
        )
        t = time.perf_counter()
        con.execute(
            """CREATE TABLE bare AS SELECT
                 CASE WHEN i.key_src IS NULL THEN 'channel_only'
                      WHEN c.reference IS NULL THEN 'internal_only'
                      WHEN i.amount_fen <> c.amount_fen THEN 'amount_mismatch'
                      ELSE 'matched' END AS category, c.reference AS c_rrn, i.key_src AS i_rrn
               FROM records c FULL OUTER JOIN internal i ON c.reference = i.key_src"""
        )
        result["baseline_join_s"] = time.perf_counter() - t

        def details(con: duckdb.DuckDBPyConnection) -> None:
            # What matching._details fetches from the database, here from the table itself.
            con.execute(
                f"""INSERT INTO i_detail SELECT uid,
                      '10000001-{TRADE_DAY:%Y%m%d}-' || k, '', '', 1 FROM internal
                    WHERE uid IN (SELECT uid FROM need)"""
            )

        def order_map(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "CREATE TABLE order_map (order_no VARCHAR, order_id BIGINT, payment_id BIGINT)"
            )

        t = time.perf_counter()
        matching._match_sql(
            con,
            card=True,
            trade_day=TRADE_DAY,
            settle_date=SETTLE_DAY,
            rates=[(MID, "debit", 5000, 2000, None)],
            details=details,
            order_map=order_map,
        )
        result["match_sql_s"] = time.perf_counter() - t
        t = time.perf_counter()
        found, counts = matching._collect(con, "card", SETTLE_DAY)
        result["collect_s"] = time.perf_counter() - t
        result["matched"] = counts["matched_count"]
        cats: dict[str, int] = {}
        for f in found:
            cats[str(f.category)] = cats.get(str(f.category), 0) + 1
        result["categories"] = cats
        con.close()
    result["ratio_match_sql_to_bare_join"] = result["match_sql_s"] / result["baseline_join_s"]
    result["ratio_import_parse_to_read"] = result["import_parse_s"] / result["baseline_read_s"]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load"] = Path("/proc/loadavg").read_text().split()[:3]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--pg-db", default=PG_NAME, help=f"PostgreSQL database to drop and create ({PG_NAME})"
    )
    parser.add_argument(
        "--sql-only",
        action="store_true",
        help="only the matching SQL against the bare join, both sides built in DuckDB",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    if args.sql_only:
        print(json.dumps(sql_only(args.rows), ensure_ascii=False, default=str))
        return
    _setup(args.db, args.pg_db)

    from wuye.reconciliation.importers import file_import
    from wuye.reconciliation.matching import reconcile_run
    from wuye.reconciliation.models import ReconException

    result: dict[str, object] = {
        "db": args.db,
        "rows": args.rows,
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="wuye-bench-recon-") as tmp:
        workdir = Path(tmp)
        t = time.perf_counter()
        acq, internal = _write_files(args.rows, workdir)
        result["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        company, n_payments = _seed(internal)
        result["seed_payments_s"] = time.perf_counter() - t
        result["payments"] = n_payments
        result.update(_baselines(acq, internal))

        # The checking half of an import alone (DuckDB: read, check every field, write the
        # rows' CSV), to split import_s into parsing and database writing.
        from django.db import connection

        from wuye.reconciliation import store
        from wuye.reconciliation.importers import acquirer

        parse_dir = workdir / "parse"
        parse_dir.mkdir()
        t = time.perf_counter()
        acquirer.parse(
            acq,
            acq.name,
            workdir=parse_dir,
            pg=connection.vendor == "postgresql",
            company_id=company.pk,
            columnar_min_rows=store.COLUMNAR_MIN_ROWS,
        )
        result["import_parse_s"] = time.perf_counter() - t

        t = time.perf_counter()
        imported = file_import(acq, company=company, name=acq.name)
        result["import_s"] = time.perf_counter() - t
        result["channel_rows"] = imported.source.row_count
        result["columnar"] = imported.source.columnar
        from wuye.reconciliation.models import ChannelRecord

        result["channel_records_in_db_after_import"] = ChannelRecord.objects.count()

        t = time.perf_counter()
        run = reconcile_run(company=company, settle_date=SETTLE_DAY, channel="card")
        result["match_s"] = time.perf_counter() - t
        (workdir / "m").mkdir()
        result["match_load_s"], result["match_sql_s"] = _match_sql_only(company, workdir / "m")
        t = time.perf_counter()
        reconcile_run(company=company, settle_date=SETTLE_DAY, channel="card")
        result["rerun_s"] = time.perf_counter() - t
        result["matched"] = run.matched_count
        result["categories"] = {k: v["count"] for k, v in run.categories.items()}
        result["exceptions_stored"] = ReconException.objects.count()
        # The machine is shared: the baselines again, after the measured phases.
        after = _baselines(acq, internal)
        result["baseline_read_after_s"] = after["baseline_read_s"]
        result["baseline_join_after_s"] = after["baseline_join_s"]
        result["channel_records_in_db_after_match"] = ChannelRecord.objects.count()

    r: dict[str, Any] = result
    read_join = r["baseline_read_s"] + r["baseline_join_s"]
    r["ratio_match_sql_to_bare_join"] = r["match_sql_s"] / r["baseline_join_s"]
    r["ratio_match_to_bare_join"] = r["match_s"] / r["baseline_join_s"]
    r["ratio_end_to_end"] = (r["import_s"] + r["match_s"]) / read_join
    read_join_after = r["baseline_read_after_s"] + r["baseline_join_after_s"]
    r["ratio_end_to_end_vs_after"] = (r["import_s"] + r["match_s"]) / read_join_after
    r["ratio_match_sql_to_bare_join_after"] = r["match_sql_s"] / r["baseline_join_after_s"]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(result, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
