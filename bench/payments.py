"""Payments benchmark: payments posted per second through the service layer, 4 workers.

Usage (PostgreSQL only: row locks and concurrent writers are the point)::

    python bench/payments.py [--workers 4] [--payments 1200] [--baseline 5000]

It creates a fresh database ``wuye_bench_payments``, migrates it and seeds 8 communities with
households and one open bill each (bulk inserts), plus one *hot* household with a bill per
payment. Then, each phase with ``--workers`` processes (separate connections) started
together:

1. **uniform**: each payment is ``order_create`` (one bill) then ``cash_pay`` — order,
   late-fee check, allocation, ``Bill.paid_fen``, the balanced journal entry, the gap-free
   receipt number of the community, the payment and its attempt — for a different household
   each time, spread over the communities;
2. **hot household**: the same, every payment to the *same* household (different bills), so
   one community's receipt sequence and one household's ledger dimension take every payment;
3. **baseline**: the same double-entry posting as plain SQL, one transaction each: two
   balance updates (cash per cashier, the household's receivable) and one insert of the two
   entry lines — with psycopg, no ORM.

Prints one JSON line: payments/s, p50/p99 latency (ms, per payment: order + pay) for each
phase, and the ratios uniform / baseline and hot / uniform.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_NAME = "wuye_bench_payments"
PG_URL = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"
COMMUNITIES = 8  # default; --communities changes it
SPARE = 20  # households per path whose payments are counted statement by statement


def _env() -> None:
    os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
    os.environ.setdefault("WUYE_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "wuye.settings"
    data_dir = Path(os.environ.get("WUYE_DATA_DIR", "/tmp/wuye-bench-payments"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WUYE_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = PG_URL
    os.environ.setdefault("WUYE_LOG_LEVEL", "WARNING")


def _create_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME}")
        conn.execute(f"CREATE DATABASE {PG_NAME}")


def _django() -> None:
    _env()
    import django

    django.setup()


def _seed(n_uniform: int, n_hot: int, workers: int, n_communities: int) -> dict:
    """Communities, households with one bill each, a hot household, one cashier per worker."""
    from datetime import date
    from decimal import Decimal

    from django.db import transaction

    from wuye.accounts.models import Membership, Role, User
    from wuye.billing.models import Bill, FeeItem
    from wuye.estates.models import Building, Community, Company, Unit
    from wuye.testing.factories import make_uscc

    with transaction.atomic():
        company = Company.objects.create(name="基准测试物业有限公司", uscc=make_uscc(646464))
        item = FeeItem.objects.create(company=company, code="WY", name="物业费", kind="property")
        cashiers = []
        for w in range(workers):
            user = User.objects.create(username=f"cashier{w}")
            Membership.objects.create(user=user, company=company, role=Role.CASHIER)
            cashiers.append(user.pk)
        communities = [
            Community.objects.create(company=company, code=f"C{c}", name=f"基准小区{c}")
            for c in range(n_communities)
        ]
        buildings = [
            Building.objects.create(community=c, code="1", name="1号楼") for c in communities
        ]
        units = Unit.objects.bulk_create(
            [
                Unit(
                    community=communities[i % n_communities],
                    building=buildings[i % n_communities],
                    room_no=f"{i:06d}",
                    area_m2=Decimal("90.00"),
                    label=f"1-{i:06d}",
                )
                for i in range(n_uniform + 1 + 2 * SPARE)
            ]
        )
        hot = units[n_uniform]

        def bill(unit: Unit, month: int, year: int) -> Bill:
            start = date(year, month, 1)
            return Bill(
                company=company,
                community_id=unit.community_id,
                unit=unit,
                fee_item=item,
                period_start=start,
                period_end=start,
                amount_fen=23_450,
                due_date=start,
                issued_on=start,
            )

        uniform_bills = Bill.objects.bulk_create([bill(u, 1, 2026) for u in units[:n_uniform]])
        spare_bills = Bill.objects.bulk_create([bill(u, 1, 2026) for u in units[n_uniform + 1 :]])
        hot_bills = Bill.objects.bulk_create(
            [bill(hot, 1 + i % 12, 1900 + i // 12) for i in range(n_hot)]
        )
    return {
        "cashiers": cashiers,
        "uniform": [(b.unit_id, b.pk) for b in uniform_bills],
        "hot": [(b.unit_id, b.pk) for b in hot_bills],
        "spare": [(b.unit_id, b.pk) for b in spare_bills],
    }


def _pay_one(mode: str, unit, bill_id: int, key: str, cashier) -> None:  # type: ignore[no-untyped-def]
    """One cash payment of one bill: ``checkout`` (one transaction) or ``two-step``."""
    from django.utils import timezone

    from wuye.payments.posting import cash_checkout
    from wuye.payments.services import cash_pay, order_create

    now = timezone.now()
    if mode == "checkout":
        cash_checkout(unit=unit, bill_ids=[bill_id], idempotency_key=key, cashier=cashier, now=now)
        return
    order = order_create(
        unit=unit, bill_ids=[bill_id], channel="cash", idempotency_key=key, cashier=cashier, now=now
    )
    cash_pay(order=order, tendered_fen=order.amount_fen, now=now)


def _pay_worker(args: tuple) -> list[float]:
    """Pay each (unit_id, bill_id) through the services; return per-payment latencies (s)."""
    jobs, cashier_id, tag, mode, start_at = args
    _django()
    from wuye.accounts.models import User
    from wuye.estates.models import Unit

    cashier = User.objects.get(pk=cashier_id)
    units = {
        u.pk: u
        for u in Unit.objects.filter(pk__in={j[0] for j in jobs}).select_related("community")
    }
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    for unit_id, bill_id in jobs:
        t0 = time.perf_counter()
        _pay_one(mode, units[unit_id], bill_id, f"{tag}-{bill_id}", cashier)
        latencies.append(time.perf_counter() - t0)
    return latencies


def _statements(jobs: list[tuple[int, int]], cashier_id: int, mode: str) -> float:
    """Statements sent to PostgreSQL per payment (BEGIN and COMMIT included), in this process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from wuye.accounts.models import User
    from wuye.estates.models import Unit

    cashier = User.objects.get(pk=cashier_id)
    counted = n = 0
    seen: set[int] = set()
    for unit_id, bill_id in jobs:
        unit = Unit.objects.select_related("community").get(pk=unit_id)
        key = f"count-{mode}-{bill_id}"
        if unit.community_id not in seen:
            # Not counted: a process's first payment loads caches, and a community's first
            # receipt of the year creates its receipt sequence.
            seen.add(unit.community_id)
            _pay_one(mode, unit, bill_id, key, cashier)
            continue
        with CaptureQueriesContext(connection) as ctx:
            _pay_one(mode, unit, bill_id, key, cashier)
        counted += len(ctx.captured_queries)
        n += 1
    return round(counted / n, 1)


def _baseline_setup(n_accounts: int) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_line, bench_account")
        conn.execute("CREATE TABLE bench_account (id bigint PRIMARY KEY, balance bigint NOT NULL)")
        conn.execute(
            "CREATE TABLE bench_line (id bigserial PRIMARY KEY, entry bigint NOT NULL, "
            "account_id bigint NOT NULL REFERENCES bench_account(id), amount bigint NOT NULL)"
        )
        conn.execute(
            "INSERT INTO bench_account SELECT g, 0 FROM generate_series(0, %s) g", [n_accounts]
        )


def _baseline_worker(args: tuple) -> list[float]:
    """The same posting as plain SQL: two balance updates and one insert of both lines."""
    worker, n, n_households, start_at = args
    import psycopg

    cash_account = worker  # accounts 0..workers-1: one drawer per cashier
    latencies = []
    with psycopg.connect(PG_URL) as conn:
        while time.time() < start_at:
            time.sleep(0.001)
        for i in range(n):
            household = 100 + (worker * n + i) % n_households
            entry = worker * 10_000_000 + i
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    "UPDATE bench_account SET balance = balance + %s WHERE id = %s",
                    [23_450, cash_account],
                )
                conn.execute(
                    "UPDATE bench_account SET balance = balance - %s WHERE id = %s",
                    [23_450, household],
                )
                conn.execute(
                    "INSERT INTO bench_line (entry, account_id, amount) "
                    "VALUES (%s, %s, %s), (%s, %s, %s)",
                    [entry, cash_account, 23_450, entry, household, -23_450],
                )
            latencies.append(time.perf_counter() - t0)
    return latencies


def _run(fn, jobs: list[tuple]) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        t0 = time.time()
        results = pool.map(fn, jobs)
    latencies = sorted(x for r in results for x in r)
    # Wall time from the common start to the last payment (workers start together).
    start_at = jobs[0][-1]
    wall = time.time() - max(start_at, t0)
    n = len(latencies)
    return {
        "payments": n,
        "seconds": round(wall, 3),
        "per_s": round(n / wall),
        "p50_ms": round(latencies[n // 2] * 1000, 2),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2),
        "latencies": latencies,
    }


def _combine(rounds: list[dict]) -> dict:
    """One phase over its rounds: the median round's rate, latencies over every payment."""
    rates = sorted(r["per_s"] for r in rounds)
    latencies = sorted(x for r in rounds for x in r.pop("latencies"))
    n = len(latencies)
    return {
        "payments": n,
        "per_s": rates[len(rates) // 2],
        "per_s_rounds": [r["per_s"] for r in rounds],
        "p50_ms": round(latencies[n // 2] * 1000, 2),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--payments", type=int, default=2400, help="per phase, all workers")
    parser.add_argument("--baseline", type=int, default=12000, help="baseline postings in all")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the three phases"
    )
    parser.add_argument(
        "--communities", type=int, default=COMMUNITIES, help="uniform payments spread over"
    )
    parser.add_argument(
        "--mode",
        choices=["checkout", "two-step"],
        default="checkout",
        help="checkout: payments.posting.cash_checkout; two-step: order_create then cash_pay",
    )
    args = parser.parse_args(argv)
    _env()
    _create_database()
    _django()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    seed = _seed(args.payments, args.payments, args.workers, args.communities)
    statements = {
        "checkout": _statements(seed["spare"][:SPARE], seed["cashiers"][0], "checkout"),
        "two-step": _statements(seed["spare"][SPARE:], seed["cashiers"][0], "two-step"),
    }
    connections.close_all()
    w = args.workers

    def split(items: list) -> list[list]:
        return [items[i::w] for i in range(w)]

    # Rounds interleave the phases (uniform, hot, baseline, uniform, …) so that a change in
    # the shared machine's load falls on all three alike; each phase's rate is the median of
    # its rounds, its latencies are all its payments'.
    rounds = max(1, args.rounds)
    _baseline_setup(100 + args.payments)
    runs: dict[str, list[dict]] = {"uniform": [], "hot": [], "baseline": []}
    for r in range(rounds):
        for phase, items in (("uniform", seed["uniform"]), ("hot", seed["hot"])):
            chunk = items[r::rounds]
            start = time.time() + 4  # workers start together, after Django started in each
            runs[phase].append(
                _run(
                    _pay_worker,
                    [
                        (part, seed["cashiers"][i], phase[0], args.mode, start)
                        for i, part in enumerate(split(chunk))
                    ],
                )
            )
        start = time.time() + 1
        per_worker = args.baseline // rounds // w
        runs["baseline"].append(
            _run(
                _baseline_worker,
                [(i + r * w, per_worker, args.payments, start) for i in range(w)],
            )
        )
    uniform, hot, baseline = (_combine(runs[k]) for k in ("uniform", "hot", "baseline"))
    result = {
        "db": "postgres",
        "workers": w,
        "communities": args.communities,
        "mode": args.mode,
        "statements_per_payment": statements,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "uniform": uniform,
        "hot_household": hot,
        "baseline_sql": baseline,
        "ratio_uniform_to_baseline": round(uniform["per_s"] / baseline["per_s"], 3),
        "ratio_hot_to_uniform": round(hot["per_s"] / uniform["per_s"], 3),
    }
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    main()
