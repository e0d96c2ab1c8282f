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
from collections import Counter
from pathlib import Path

PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_NAME = "wuye_bench_search"
PG_SERVER = "postgres://postgres@127.0.0.1:5432/"
COMMUNITIES = 100
BUILDINGS = 40
# Surnames by rank with their approximate share of China's population in percent (census and
# household-register figures: 王 and 李 about 7 % each, the first 100 about 85 %), then a tail
# of rarer ones sharing what is left; ``_name`` draws with these weights.
SURNAME_SHARES = (
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.7),
    ("刘", 5.4),
    ("陈", 4.6),
    ("杨", 3.1),
    ("黄", 2.2),
    ("赵", 2.0),
    ("吴", 1.9),
    ("周", 1.8),
    ("徐", 1.3),
    ("孙", 1.3),
    ("马", 1.2),
    ("朱", 1.2),
    ("胡", 1.1),
    ("郭", 1.1),
    ("何", 1.0),
    ("高", 1.0),
    ("林", 1.0),
    ("罗", 0.9),
)
SURNAMES_MORE = (
    "郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾"
    "夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
SURNAMES_RARE = (
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符"
    "舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟"
    "艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
# Given-name characters, most frequent first; drawn with weights 1/(rank + 8): the first
# about 4 % of draws, so 王伟 is one name in 1,300 (0.02 % in China) and most names are rarer.
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕飞鹏辉斌宇浩凯健俊帆帅旭宁"
    "文国建志海春金云永峰东林德成小晓凤亮波晨雪梅琳丹清光荣新利宏婷佳欣振中秋雨泽子怡梓涵轩博"
    "晶颖思佩瑶琪慧淑珍莉蓉立鑫鹤松柏一嘉然睿诗雅可心安晴月星天昊铭哲瑞豪毅坤峻庆福禄寿喜如意"
)
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _env(db_name: str) -> None:
    os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
    os.environ.setdefault("WUYE_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "wuye.settings"
    data_dir = Path(os.environ.get("WUYE_DATA_DIR", "/tmp/wuye-bench-search"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WUYE_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = PG_SERVER + db_name
    os.environ.setdefault("WUYE_LOG_LEVEL", "WARNING")


def _database(db_name: str, keep: bool) -> bool:
    """Create the database (or keep it); return True when it must be loaded."""
    import psycopg

    if not db_name.isidentifier():
        raise SystemExit(f"--db: not a plain database name: {db_name!r}")

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and keep:
            return False
        conn.execute(f"DROP DATABASE IF EXISTS {db_name}")
        conn.execute(f"CREATE DATABASE {db_name}")
    return True


def _surname_weights() -> tuple[list[str], list[float]]:
    names = [s for s, _ in SURNAME_SHARES]
    weights = [w for _, w in SURNAME_SHARES]
    more = list(SURNAMES_MORE)  # ranks 21…: from 0.9 % down to 0.2 %
    names += more
    weights += [0.9 - 0.7 * i / (len(more) - 1) for i in range(len(more))]
    rare = [s for s in SURNAMES_RARE if s not in names]
    names += rare
    weights += [max(0.0, 100 - sum(weights)) / len(rare)] * len(rare)
    return names, weights


SURNAMES, SURNAME_WEIGHTS = _surname_weights()
GIVEN_WEIGHTS = [1 / (rank + 8) for rank in range(len(GIVEN))]


def _name(rng: random.Random) -> str:
    """A surname by its share, then one given-name character (one in four) or two."""
    surname = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
    return surname + "".join(rng.choices(GIVEN, GIVEN_WEIGHTS, k=1 if rng.random() < 0.25 else 2))


class _Writer:
    """Rows into a table: ``COPY`` on PostgreSQL, ``executemany`` in batches on SQLite."""

    def __init__(self, cursor, table: str, columns: str) -> None:  # type: ignore[no-untyped-def]
        self.cursor, self.table, self.columns = cursor, table, columns
        self.pg = cursor.db.vendor == "postgresql"
        self.rows: list[tuple] = []

    def __enter__(self) -> _Writer:
        if self.pg:
            self.copy_cm = self.cursor.cursor.copy(f"COPY {self.table} ({self.columns}) FROM STDIN")
            self.copy = self.copy_cm.__enter__()
        return self

    def write_row(self, row: tuple) -> None:
        if self.pg:
            self.copy.write_row(row)
            return
        self.rows.append(row)
        if len(self.rows) >= 20_000:
            self.flush()

    def flush(self) -> None:
        marks = ", ".join(["%s"] * len(self.columns.split(",")))
        sql = f"INSERT INTO {self.table} ({self.columns}) VALUES ({marks})"
        self.cursor.executemany(sql, self.rows)
        self.rows = []

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        if self.pg:
            self.copy_cm.__exit__(*exc)
        elif self.rows:
            self.flush()


def _load(n_units: int, rng: random.Random) -> dict[str, float]:
    """Company, communities, buildings with ORM; units, residents, parking with COPY (or
    executemany on SQLite)."""
    import importlib

    from django.db import connection, transaction

    from wuye.estates.models import Building, Community, Company
    from wuye.testing.factories import make_uscc

    pg = connection.vendor == "postgresql"
    m = importlib.import_module("wuye.estates.migrations.0002_search_indexes")
    m3 = importlib.import_module("wuye.estates.migrations.0003_search_order_indexes")
    m4 = importlib.import_module("wuye.estates.migrations.0004_search_probe_indexes")
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
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            cursor.execute(m4.PG_BACKWARD)  # no search indexes while loading
            cursor.execute(m3.PG_BACKWARD)
            cursor.execute(m.PG_BACKWARD)
        t0 = time.perf_counter()
        unit_id = 0
        with _Writer(
            cursor,
            "estates_unit",
            "id, community_id, building_id, room_no, floor, area_m2, unit_type, state, label,"
            " created_at",
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
        with _Writer(
            cursor,
            "estates_resident",
            "unit_id, name, role, phone, id_card, id_card_masked, id_card_hash, is_primary",
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
        with _Writer(
            cursor, "estates_parkingspace", "community_id, code, kind, unit_id, plate_no"
        ) as copy:
            for uid in range(4, n_units + 1, 4):
                building = buildings[(uid - 1) // per_building]
                plate = "沪A" + "".join(rng.choice(PLATE_CHARS) for _ in range(5))
                copy.write_row((building.community_id, f"P{uid}", "owned", uid, plate))
        times["parking_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        if pg:
            cursor.execute(m.PG_FORWARD)
            cursor.execute(m3.PG_FORWARD)
            cursor.execute(m4.PG_FORWARD)
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('estates_unit', 'id'), max(id))"
                " FROM estates_unit"
            )
        times["indexes_s"] = round(time.perf_counter() - t0, 1)
    with connection.cursor() as cursor:
        if pg:
            # What autovacuum does to freshly loaded tables soon after: statistics, and the
            # visibility map that lets index-only scans skip the table.
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
    return times


def _texts(n: int, rng: random.Random) -> dict[str, list[str]]:
    """Search texts picked from the loaded data, ``n`` of each kind."""
    from django.db import connection

    from wuye.estates.models import Resident

    def sample(sql: str) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(sql + " ORDER BY random() LIMIT %s", [n])
            return [r[0] for r in cursor.fetchall()]

    plates = sample("SELECT plate_no FROM estates_parkingspace")
    phones = sample("SELECT phone FROM estates_resident")
    labels = sample("SELECT label FROM estates_unit")
    tried = [_name(rng) + _name(rng)[0] for _ in range(n * 2)]
    present = set(Resident.objects.filter(name__in=tried).values_list("name", flat=True))
    missing = [x for x in tried if x not in present]
    typed = labels + phones + plates
    return {
        "room": labels,
        "room_no": sample("SELECT room_no FROM estates_unit"),
        "owner": sample("SELECT name FROM estates_resident WHERE role = 'owner'"),
        # a surname alone, as often as the cashier meets it: drawn from the residents
        "surname": sample("SELECT substr(name, 1, 1) FROM estates_resident"),
        "phone4": [p[-4:] for p in phones],
        "phone": phones,
        "plate": plates,
        "plate4": [p[-4:] for p in plates],
        # what the page searches while a label, phone or plate is being typed
        "typing3": [typed[i * 3 % len(typed)][:3] for i in range(n)],
        # texts that find nothing: a name nobody has, a phone and a label that don't exist
        "miss": [
            (missing[i // 3], f"1{rng.randrange(10**10):010d}", f"{41 + i % 50}-{9000 + i}")[i % 3]
            for i in range(n)
        ],
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


def _cashier_units(company):  # type: ignore[no-untyped-def]
    """The units a cashier of the whole company searches: ``access.units_for``, as the page."""
    from wuye.accounts.models import Role, User
    from wuye.accounts.services import membership_grant, user_create
    from wuye.counter.views import COUNTER
    from wuye.web.access import units_for

    user = User.objects.filter(username="bench-cashier").first()
    if user is None:
        user = user_create(username="bench-cashier", password="bench-cashier-pass-2026")
        membership_grant(user=user, company=company, role=Role.CASHIER)
    return units_for(user, COUNTER)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="texts of each kind")
    parser.add_argument("--old", type=int, default=20, help="texts of each kind, old query")
    parser.add_argument("--keep", action="store_true", help="reuse a loaded database")
    parser.add_argument("--db", default=PG_NAME, help="database name (dropped unless --keep)")
    parser.add_argument(
        "--sqlite", action="store_true", help="SQLite in the data dir instead (try --units 100000)"
    )
    args = parser.parse_args(argv)
    _env(args.db)
    if args.sqlite:
        path = Path(os.environ["WUYE_DATA_DIR"]) / f"bench-search-{args.units}.sqlite3"
        fresh = not (args.keep and path.exists())
        if fresh:
            path.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    else:
        fresh = _database(args.db, args.keep)
    import django

    django.setup()
    from django.core.management import call_command

    rng = random.Random(20261122)
    load: dict[str, float] = {}
    call_command("migrate", verbosity=0)  # with --keep: indexes of newer migrations too
    if fresh:
        load = _load(args.units, rng)
    from wuye.counter.selectors import household_search, household_search_page
    from wuye.estates.models import Company, Unit
    from wuye.web.selectors import unit_search

    units = _cashier_units(Company.objects.get())
    texts = _texts(args.queries, rng)
    household_search(units=units, text="warm-up")
    new = {
        kind: _time(lambda t: household_search(units=units, text=t, limit=20), batch)
        for kind, batch in texts.items()
    }
    # How the parts were read, for each kind: how many parts of its texts were sorted,
    # hashed, walked or read in order (see ``household_search_page``).
    plans = {
        kind: dict(
            Counter(
                mode
                for t in batch
                for mode in household_search_page(units=units, text=t, limit=20).plan.values()
            )
        )
        for kind, batch in texts.items()
        if not args.sqlite  # no plans there: the ORM query
    }
    if args.sqlite:  # household_search is the ORM query there: nothing to compare
        args.old = 0
    old = {
        kind: _time(lambda t: list(unit_search(units=units, text=t, limit=20)), batch[: args.old])
        for kind, batch in texts.items()
        if args.old
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
        if args.old
    }
    result = {
        "db": "sqlite" if args.sqlite else "postgres",
        "units": Unit.objects.count(),
        "load": load,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "household_search": new,
        "plans": plans,
        "old_unit_search": old,
        "same_rows_as_old": same,
        "worst_p95_ms": max(v["p95_ms"] for v in new.values()),
    }
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    main()
