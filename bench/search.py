"""Household search benchmark: the counter's search over 1,000,000 units (PostgreSQL).

Usage::

    python bench/search.py [--units 1000000] [--queries 200] [--old 20] [--keep]

It creates the database ``wuye_bench_search`` (``--keep`` reuses it when it already holds
the units), migrates it, and loads with ``COPY``: one company, 100 communities, 40 buildings
each, the units (label ``<building>-<floor><room>``, e.g. ``17-1803``), an owner for every
unit and a tenant for one in five (names of one common surname and one or two given-name
characters, 11-digit mobile numbers) and a parking space with a plate (``沪A1B2C3``) for one
unit in four. The search indexes of ``estates.0002_search_indexes`` are dropped before the
load and built after it, as a bulk import would.

Then it times ``counter.selectors.household_search`` — the real selector, the units queryset
of the whole company, the page's 20 rows with community and building — for texts picked from
the data, by kind:

- ``room``: a unit's whole label (``17-1803``);
- ``room_no``: a room number alone (``1803``: one per building, hundreds of households);
- ``owner``: an owner's whole name (two or three characters);
- ``surname``: a surname alone (one character: tens of thousands of households);
- ``phone4`` / ``phone``: the last four digits of a phone / the whole number;
- ``plate`` / ``plate4``: a whole plate / its last four characters;

and, for comparison, the ORM query it replaces (``web.selectors.unit_search``: one ``OR`` of
``icontains`` and ``EXISTS``) on ``--old`` texts of each kind. Prints one JSON line: p50 / p95 /
max in ms per kind, rows found, the share of texts for which both queries return the same
households in the same order, the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_NAME = "wuye_bench_search"
PG_URL = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"
COMMUNITIES = 100
BUILDINGS = 40
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
    + "许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕飞鹏辉斌宇浩凯健俊帆帅旭宁"
)
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _env() -> None:
    os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
    os.environ.setdefault("WUYE_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "wuye.settings"
    data_dir = Path(os.environ.get("WUYE_DATA_DIR", "/tmp/wuye-bench-search"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WUYE_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = PG_URL
    os.environ.setdefault("WUYE_LOG_LEVEL", "WARNING")


def _database(keep: bool) -> bool:
    """Create the database (or keep it); return True when it must be loaded."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_NAME]).fetchone()
        if exists and keep:
            return False
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME}")
        conn.execute(f"CREATE DATABASE {PG_NAME}")
    return True


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _load(n_units: int, rng: random.Random) -> dict[str, float]:
    """Company, communities, buildings with ORM; units, residents, parking with COPY."""
    import importlib

    from django.db import connection

    from wuye.estates.models import Building, Community, Company
    from wuye.testing.factories import make_uscc

    m = importlib.import_module("wuye.estates.migrations.0002_search_indexes")
    times: dict[str, float] = {}
    company = Company.objects.create(name="基准搜索物业有限公司", uscc=make_uscc(424242))
    communities = Community.objects.bulk_create(
        [
            Community(company=company, code=f"S{c:03d}", name=f"搜索小区{c}")
            for c in range(COMMUNITIES)
        ]
    )
    buildings = Building.objects.bulk_create(
        [
            Building(community=c, code=str(b + 1), name=f"{b + 1}号楼")
            for c in communities
            for b in range(BUILDINGS)
        ]
    )
    per_building = -(-n_units // len(buildings))
    with connection.cursor() as cursor:
        cursor.execute(m.PG_BACKWARD)  # no search indexes while loading
        raw = cursor.cursor
        t0 = time.perf_counter()
        unit_id = 0
        with raw.copy(
            "COPY estates_unit (id, community_id, building_id, room_no, floor, area_m2,"
            " unit_type, state, label, created_at) FROM STDIN"
        ) as copy:
            for building in buildings:
                for k in range(per_building):
                    if unit_id >= n_units:
                        break
                    unit_id += 1
                    floor, room = 1 + k // 8, 1 + k % 8
                    room_no = f"{floor}{room:02d}"
                    copy.write_row(
                        (
                            unit_id,
                            building.community_id,
                            building.pk,
                            room_no,
                            floor,
                            "89.50",
                            "residential",
                            "occupied",
                            f"{building.code}-{room_no}",
                            "2026-01-01 00:00:00+08",
                        )
                    )
        times["units_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        phones: set[str] = set()
        with raw.copy(
            "COPY estates_resident (unit_id, name, role, phone, id_card, id_card_masked,"
            " id_card_hash, is_primary) FROM STDIN"
        ) as copy:
            for uid in range(1, n_units + 1):
                for role in ("owner", "tenant") if uid % 5 == 0 else ("owner",):
                    phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
                    while phone in phones:
                        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
                    phones.add(phone)
                    copy.write_row((uid, _name(rng), role, phone, "", "", "", role == "owner"))
        times["residents_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        with raw.copy(
            "COPY estates_parkingspace (community_id, code, kind, unit_id, plate_no) FROM STDIN"
        ) as copy:
            for uid in range(4, n_units + 1, 4):
                building = buildings[(uid - 1) // per_building]
                plate = "沪A" + "".join(rng.choice(PLATE_CHARS) for _ in range(5))
                copy.write_row((building.community_id, f"P{uid}", "owned", uid, plate))
        times["parking_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        cursor.execute(m.PG_FORWARD)
        times["indexes_s"] = round(time.perf_counter() - t0, 1)
        cursor.execute("ANALYZE estates_unit, estates_resident, estates_parkingspace")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('estates_unit', 'id'), max(id)) FROM estates_unit"
        )
    return times


def _texts(n: int, rng: random.Random) -> dict[str, list[str]]:
    """Search texts picked from the loaded data, ``n`` of each kind."""
    from django.db import connection

    def sample(sql: str) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(sql + " ORDER BY random() LIMIT %s", [n])
            return [r[0] for r in cursor.fetchall()]

    plates = sample("SELECT plate_no FROM estates_parkingspace")
    phones = sample("SELECT phone FROM estates_resident")
    return {
        "room": sample("SELECT label FROM estates_unit"),
        "room_no": sample("SELECT room_no FROM estates_unit"),
        "owner": sample("SELECT name FROM estates_resident WHERE role = 'owner'"),
        "surname": [rng.choice(SURNAMES) for _ in range(n)],
        "phone4": [p[-4:] for p in phones],
        "phone": phones,
        "plate": plates,
        "plate4": [p[-4:] for p in plates],
    }


def _time(fn, texts: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    times, found = [], 0
    for text in texts:
        t0 = time.perf_counter()
        found += len(fn(text))
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    return {
        "n": n,
        "p50_ms": round(times[n // 2] * 1000, 2),
        "p95_ms": round(times[min(n - 1, int(n * 0.95))] * 1000, 2),
        "max_ms": round(times[-1] * 1000, 2),
        "rows_per_search": round(found / n, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="texts of each kind")
    parser.add_argument("--old", type=int, default=20, help="texts of each kind, old query")
    parser.add_argument("--keep", action="store_true", help="reuse a loaded database")
    args = parser.parse_args(argv)
    _env()
    fresh = _database(args.keep)
    import django

    django.setup()
    from django.core.management import call_command

    rng = random.Random(20261122)
    load: dict[str, float] = {}
    if fresh:
        call_command("migrate", verbosity=0)
        load = _load(args.units, rng)
    from wuye.counter.selectors import household_search
    from wuye.estates.models import Unit
    from wuye.web.selectors import unit_search

    units = Unit.objects.all()
    texts = _texts(args.queries, rng)
    household_search(units=units, text="warm-up")
    new = {
        kind: _time(lambda t: household_search(units=units, text=t, limit=20), batch)
        for kind, batch in texts.items()
    }
    old = {
        kind: _time(lambda t: list(unit_search(units=units, text=t, limit=20)), batch[: args.old])
        for kind, batch in texts.items()
    }
    # The same households, in the same order, as the query it replaces, on the old texts.
    same = {
        kind: sum(
            [u.pk for u in household_search(units=units, text=t, limit=20)]
            == [u.pk for u in unit_search(units=units, text=t, limit=20)]
            for t in batch[: args.old]
        )
        / len(batch[: args.old])
        for kind, batch in texts.items()
    }
    result = {
        "db": "postgres",
        "units": Unit.objects.count(),
        "load": load,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "household_search": new,
        "old_unit_search": old,
        "same_rows_as_old": same,
        "worst_p95_ms": max(v["p95_ms"] for v in new.values()),
    }
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    main()
