"""Billing-run benchmark: bills for N units × 3 fee items against a bulk-insert baseline.

Usage (one database per process; ``bench/run.py`` runs the usual set)::

    python bench/billing.py --db postgres --units 100000
    python bench/billing.py --db sqlite --units 100000

It creates a fresh database (PostgreSQL ``wuye_bench_billing``, or a SQLite file under
``$WUYE_DATA_DIR``), migrates it, seeds one community with N units by bulk inserts, then:

1. times ``billing_run_execute`` for January (3 fee items: area × price with a mid-month price
   change for commercial units, a fixed monthly fee, an area-based shared fee);
2. times a re-run of the same period (idempotent: compares, writes nothing);
3. reads the bill rows the run wrote into memory, empties the bill table, and times the
   baseline: the same rows written back with PostgreSQL ``COPY`` (pre-serialised text), or on
   SQLite one ``executemany`` in one transaction in WAL mode.

Prints one JSON line with the timings, bill lines/s and the ratio run / baseline.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_NAME = "wuye_bench_billing"
_PLAIN: dict[str, float] = {}
BILL_COLS = (
    "company_id, community_id, unit_id, fee_item_id, period_start, period_end, revision, kind, "
    "amount_fen, paid_fen, waived_fen, due_date, quantity, description, run_id, parent_id, "
    "issued_on, created_at"
)


def _setup(db: str) -> None:
    os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
    os.environ.setdefault("WUYE_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "wuye.settings"
    data_dir = Path(os.environ.get("WUYE_DATA_DIR", "/tmp/wuye-bench-billing"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WUYE_DATA_DIR"] = str(data_dir)
    if db == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME}")
            conn.execute(f"CREATE DATABASE {PG_NAME}")
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"
    else:
        path = data_dir / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _bulk_insert(table: str, columns: list[str], rows: list[tuple]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            with cur.connection.cursor() as raw:
                with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cur.connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )


def _seed(n_units: int) -> int:
    """Create a company, one community and ``n_units`` units; return the community id."""
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from wuye.billing.models import FeeItem, FeeStandard
    from wuye.estates.models import Building, Community, Company
    from wuye.testing.factories import make_uscc

    now = timezone.now()
    sqlite = connection.vendor == "sqlite"

    def dt(value: datetime) -> object:
        return connection.ops.adapt_datetimefield_value(value) if sqlite else value

    def d(value: date) -> object:
        return value.isoformat() if sqlite else value

    with transaction.atomic():
        company = Company.objects.create(name="基准测试物业有限公司", uscc=make_uscc(424242))
        community = Community.objects.create(company=company, code="BENCH", name="基准小区")
        per_building = 1000
        n_buildings = (n_units + per_building - 1) // per_building
        _bulk_insert(
            "estates_building", ["community_id", "code", "name", "floors"],
            [(community.pk, f"B{b:04d}", f"{b}号楼", 30) for b in range(n_buildings)],
        )
        buildings = dict(
            Building.objects.filter(community=community).values_list("code", "pk")
        )
        rows = []
        for i in range(n_units):
            b = i // per_building
            room = f"{i % per_building:04d}"
            area_c = 4000 + (i * 7919) % 16000  # 40.00 .. 199.99 m²
            r = i % 100
            state = "unsold" if r < 3 else ("vacant" if r < 10 else "occupied")
            handover = None if state == "unsold" else (
                date(2026, 1, 1 + i % 28) if r in (50, 51) else date(2020, 6, 1)
            )
            utype = "commercial" if r >= 95 else "residential"
            area = Decimal(area_c).scaleb(-2)
            rows.append((
                community.pk, buildings[f"B{b:04d}"], room, 1 + (i % per_building) // 40,
                str(area) if sqlite else area, None, utype, state,
                None if handover is None else d(handover), f"B{b:04d}-{room}", dt(now),
            ))
        _bulk_insert(
            "estates_unit",
            ["community_id", "building_id", "room_no", "floor", "area_m2", "inner_area_m2",
             "unit_type", "state", "handover_date", "label", "created_at"],
            rows,
        )
        prop = FeeItem.objects.create(company=company, code="WY", name="物业费", kind="property")
        park = FeeItem.objects.create(company=company, code="GL", name="公共设施费", kind="other")
        shared = FeeItem.objects.create(company=company, code="GT", name="公摊费", kind="shared")
        eff = date(2020, 1, 1)
        common = {"community": community, "vacant_percent": 70, "bill_unsold": True}
        FeeStandard.objects.create(fee_item=prop, method="area", unit_price=Decimal("2.5000"),
                                   fixed_fen=500, effective_from=eff, **common)
        FeeStandard.objects.create(fee_item=prop, unit_type="commercial", method="area",
                                   unit_price=Decimal("4.0000"), effective_from=eff, **common)
        FeeStandard.objects.create(fee_item=prop, unit_type="commercial", method="area",
                                   unit_price=Decimal("4.5000"), effective_from=date(2026, 1, 16),
                                   **common)
        FeeStandard.objects.create(fee_item=park, method="fixed", fixed_fen=3000,
                                   effective_from=eff, **common)
        FeeStandard.objects.create(fee_item=shared, method="area", unit_price=Decimal("0.3500"),
                                   effective_from=eff, **common)
    if not sqlite:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    return community.pk


def _time_run(community_id: int) -> tuple[float, dict[str, float], object]:
    from wuye.billing.services import billing_run_execute

    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(done: int, total: int, message: str) -> None:
        key = message.split(":")[0]
        phases.setdefault(key, round(time.perf_counter() - t0, 3))

    run = billing_run_execute(
        community_id=community_id, period_start=date(2026, 1, 1), issued_on=date(2026, 1, 1),
        progress=progress,
    )
    return time.perf_counter() - t0, phases, run


def _baseline(n_expected: int) -> float:
    """Write the run's bill rows again as one bulk insert; return seconds for the insert."""
    from django.db import connection, transaction

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            buf = io.BytesIO()
            with cur.connection.cursor() as raw:
                with raw.copy(f"COPY (SELECT {BILL_COLS} FROM billing_bill) TO STDOUT") as copy:
                    for chunk in copy:
                        buf.write(chunk)
            data = buf.getvalue()
            cur.execute("TRUNCATE billing_bill CASCADE")
            t0 = time.perf_counter()
            with transaction.atomic():
                with cur.connection.cursor() as raw:
                    with raw.copy(f"COPY billing_bill ({BILL_COLS}) FROM STDIN") as copy:
                        step = 8 << 20
                        for lo in range(0, len(data), step):
                            copy.write(data[lo : lo + step])
            elapsed = time.perf_counter() - t0
            # For reference only: the same COPY into copies of the table without its foreign
            # keys ("indexed": indexes and checks kept), and without anything ("plain": what
            # "500k rows/s" measures), to show where the database's time goes.
            for label, like in (
                ("plain", "INCLUDING DEFAULTS INCLUDING IDENTITY"),
                ("indexed", "INCLUDING ALL"),
            ):
                cur.execute("DROP TABLE IF EXISTS bench_copy_bill")
                cur.execute(f"CREATE TABLE bench_copy_bill (LIKE billing_bill {like})")
                t1 = time.perf_counter()
                with transaction.atomic():
                    with cur.connection.cursor() as raw:
                        with raw.copy(f"COPY bench_copy_bill ({BILL_COLS}) FROM STDIN") as copy:
                            for lo in range(0, len(data), step):
                                copy.write(data[lo : lo + step])
                _PLAIN[label] = time.perf_counter() - t1
                cur.execute("DROP TABLE bench_copy_bill")
        else:
            rows = cur.connection.execute(f"SELECT {BILL_COLS} FROM billing_bill").fetchall()
            cur.execute("DELETE FROM billing_allocation")
            cur.execute("DELETE FROM billing_bill")
            marks = ", ".join("?" for _ in BILL_COLS.split(","))
            t0 = time.perf_counter()
            with transaction.atomic():
                for lo in range(0, len(rows), 20_000):
                    cur.connection.executemany(
                        f"INSERT INTO billing_bill ({BILL_COLS}) VALUES ({marks})",
                        rows[lo : lo + 20_000],
                    )
            elapsed = time.perf_counter() - t0
        cur.execute("SELECT count(*) FROM billing_bill")
        assert cur.fetchone()[0] == n_expected
    return elapsed


def _reset() -> None:
    """Forget every bill, run and journal entry (between repetitions; bench database only)."""
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "TRUNCATE billing_allocation, billing_bill, billing_billingrun, "
                "ledger_journalline, ledger_journalentry CASCADE"
            )
        else:
            for table in ("billing_allocation", "billing_bill", "billing_billingrun",
                          "ledger_journalline", "ledger_journalentry"):
                cur.execute(f"DELETE FROM {table}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1,
                        help="repetitions of run, re-run and baseline; the best of each counts")
    args = parser.parse_args(argv)

    _setup(args.db)
    t0 = time.perf_counter()
    community_id = _seed(args.units)
    seed_s = time.perf_counter() - t0

    from django.db import connection

    from wuye.billing.models import Bill
    from wuye.ledger.models import JournalLine

    runs: list[float] = []
    reruns: list[float] = []
    baselines: list[float] = []
    plain: list[float] = []
    indexed: list[float] = []
    phases: dict[str, float] = {}
    lines = journal_lines = 0
    for i in range(args.repeat):
        if i:
            _reset()
        run_s, run_phases, run = _time_run(community_id)
        lines = Bill.objects.count()
        journal_lines = JournalLine.objects.count()
        assert run.bills_created == lines  # type: ignore[attr-defined]
        if not runs or run_s < min(runs):
            phases = run_phases
        runs.append(run_s)
        rerun_s, _, rerun = _time_run(community_id)
        assert rerun.bills_created == rerun.adjustments_created == 0  # type: ignore[attr-defined]
        reruns.append(rerun_s)
        baselines.append(_baseline(lines))
        if _PLAIN:
            plain.append(_PLAIN["plain"])
            indexed.append(_PLAIN["indexed"])
    run_s, baseline_s = min(runs), min(baselines)
    result = {
        "db": args.db,
        "db_version": connection.cursor().connection.info.server_version
        if connection.vendor == "postgresql" else connection.Database.sqlite_version,
        "units": args.units,
        "bill_lines": lines,
        "journal_lines": journal_lines,
        "seed_s": round(seed_s, 2),
        "run_s": round(run_s, 2),
        "run_lines_per_s": round(lines / run_s),
        "phases_s": phases,
        "rerun_s": round(min(reruns), 2),
        "baseline_s": round(baseline_s, 2),
        "baseline_lines_per_s": round(lines / baseline_s),
        "ratio": round(run_s / baseline_s, 2),
        "plain_copy_lines_per_s": round(lines / min(plain)) if plain else None,
        "indexed_copy_lines_per_s": round(lines / min(indexed)) if indexed else None,
        "all_run_s": [round(x, 2) for x in runs],
        "all_baseline_s": [round(x, 2) for x in baselines],
        "python": platform.python_version(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
