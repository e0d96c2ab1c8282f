"""The demo company: a fictional Shanghai property-management company with two communities.

Everything is generated from a seed, relative to ``today``, so two loads on the same day are
identical. Estates go in with ``bulk_create``; the 12 months of bills come from the real
billing engine (``billing_run_execute``), the same code a company's billing runs use.

All people, numbers and companies here are invented: ID-card numbers carry a valid check
character but belong to nobody, phone numbers use the ``1390000xxxx`` block, the company's
USCC is computed, not looked up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from stdnum.cn import ric, uscc

from wuye.accounts.models import Membership, Role, User
from wuye.billing.models import Bill, FeeItem, FeeStandard, PriceTier
from wuye.core.money import Rounding, div_round
from wuye.core.periods import add_months
from wuye.demo.history import HistoryResult, history_replay
from wuye.estates.models import (
    Building,
    Community,
    Company,
    Meter,
    MeterReading,
    ParkingSpace,
    Resident,
    Unit,
)
from wuye.estates.services import id_card_fields, unit_label
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import credit, debit, entry_post
from wuye.merchants.models import CardType, Channel, MerchantDocument
from wuye.merchants.services import document_add, fee_rate_set, merchant_create

Say = Callable[[str], None]

DEMO_PASSWORD = "wuye-demo"  # noqa: S105 - documented in the README; the demo is for a laptop, not the web
DEMO_USERS: list[tuple[str, str, str | None]] = [
    # (username, display name, role; None is the platform superuser)
    ("platform", "平台管理员", None),
    ("admin", "王管理", Role.ADMIN),
    ("cashier", "李收费", Role.CASHIER),
    ("cashier2", "孙收费", Role.CASHIER),
    ("finance", "赵财务", Role.FINANCE),
    ("manager", "陈经理", Role.MANAGER),
    ("auditor", "周审计", Role.AUDITOR),
]
COMPANY_NAME = "上海申和物业服务有限公司"
ACQUIRER_MID = "898310048990001"
ACQUIRER_TID = "10000001"  # the counter terminal; registered by the terminals issue
WECHAT_MCH_ID = "1900012345"
ALIPAY_PID = "2088000012345678"
DEFAULT_UNITS = 2400

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强文辉玉兰海燕春梅晓东红梅子涵浩然欣怡梓萱宇轩嘉怡思远雨桐一诺"  # noqa: E501
DISTRICTS = [
    "310101",
    "310104",
    "310105",
    "310106",
    "310107",
    "310109",
    "310110",
    "310112",
    "310113",
    "310115",
    "310116",
    "320102",
    "330106",
    "340104",
    "370102",
    "420106",
]
PLATE_LETTERS = "ABCDEFGHJKLMN"
PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class DemoResult:
    """What a demo load created, and how long it took."""

    company_id: int
    community_ids: list[int]
    units: int = 0
    residents: int = 0
    parking_spaces: int = 0
    meters: int = 0
    readings: int = 0
    opening_bills: int = 0
    prepaid_households: int = 0
    billing_runs: int = 0
    bills: int = 0
    waivers: int = 0
    history: HistoryResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CommunityPlan:
    code: str
    name: str
    address: str
    floors: int
    rooms_per_floor: int
    entrances: int  # 单元 per building; 1 means room numbers without an entrance part
    property_price: Decimal  # 物业费 元/m²·月 before the mid-year change
    property_price_new: Decimal
    commercial_price: Decimal


PLANS = [
    CommunityPlan(
        "JXY",
        "申和·锦绣苑",
        "上海市浦东新区锦绣路1888弄",
        18,
        4,
        1,
        Decimal("2.3500"),
        Decimal("2.5000"),
        Decimal("6.8000"),
    ),
    CommunityPlan(
        "BJHY",
        "申和·滨江花园",
        "上海市徐汇区龙腾大道2200弄",
        11,
        2,
        3,
        Decimal("3.1000"),
        Decimal("3.3000"),
        Decimal("8.5000"),
    ),
]


def demo_uscc() -> str:
    """Return the demo company's USCC: an invented body with a computed check character."""
    body = "91310115MA1K4DEM0"  # 9 = company, 1 = enterprise, 310115 = Pudong
    return body + uscc.calc_check_digit(body)


def make_id_card(rng: random.Random) -> str:
    """Return an invented 18-digit ID-card number with a valid date and check character."""
    while True:  # stdnum knows which county codes existed in which years: draw again
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50))
        body = f"{rng.choice(DISTRICTS)}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
        number = body + ric.calc_check_digit(body + "0")
        if ric.is_valid(number):
            return number


def make_name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) if rng.random() < 0.3 else rng.choice(GIVEN) + rng.choice(GIVEN)
    return rng.choice(SURNAMES) + given


def make_plate(rng: random.Random) -> str:
    return "沪" + rng.choice(PLATE_LETTERS) + "".join(rng.choice(PLATE_CHARS) for _ in range(5))


def _split(total: int, shares: list[float]) -> list[int]:
    counts = [int(total * s) for s in shares]
    counts[0] += total - sum(counts)
    return counts


def demo_users_create(*, company: Company, communities: list[Community]) -> dict[str, User]:
    """Create one user per role (and the platform superuser) with the demo password."""
    users: dict[str, User] = {}
    encoded = make_password(DEMO_PASSWORD)  # hash once: PBKDF2 takes half a second each time
    for username, display, role in DEMO_USERS:
        user = User.objects.create(
            username=username,
            password=encoded,
            display_name=display,
            is_staff=role in (None, Role.ADMIN),
            is_superuser=role is None,
        )
        if role is not None:
            m = Membership.objects.create(user=user, company=company, role=role)
            if role == Role.CASHIER:  # a cashier works at one service centre
                at = 1 if username == "cashier2" else 0
                m.communities.set(communities[at : at + 1])
        users[username] = user
    return users


def _fee_items(company: Company, first_period: date) -> dict[str, FeeItem]:
    spec: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "WYF",
            "物业费",
            FeeItem.Kind.PROPERTY,
            {
                "late_fee_enabled": True,
                "late_fee_daily_ppm": 500,
                "late_fee_grace_days": 15,
                "late_fee_start_date": first_period,
                "late_fee_cap_percent": 100,
                "due_days": 30,
            },
        ),
        ("TCF", "停车费", FeeItem.Kind.PARKING, {"due_days": 30}),
        ("SF", "水费", FeeItem.Kind.WATER, {"due_days": 20}),
        ("DF", "电费", FeeItem.Kind.POWER, {"due_days": 20}),
        ("GT", "公摊费", FeeItem.Kind.SHARED, {"due_days": 30}),
    ]
    items = {}
    for code, name, kind, extra in spec:
        items[code] = FeeItem.objects.create(
            company=company,
            code=code,
            name=name,
            kind=kind,
            rounding=Rounding.HALF_UP.value,
            **extra,
        )
    return items


def _fee_standards(
    community: Community, plan: CommunityPlan, items: dict[str, FeeItem], change_on: date
) -> None:
    since = date(2018, 1, 1)
    res, com, park = Unit.Type.RESIDENTIAL, Unit.Type.COMMERCIAL, Unit.Type.PARKING
    area, fixed, metered = (
        FeeStandard.Method.AREA,
        FeeStandard.Method.FIXED,
        FeeStandard.Method.METERED,
    )
    rows: list[dict[str, Any]] = [
        # 物业费: vacant flats pay 70%; the price rises mid-year (a new standard, not an edit).
        dict(
            fee_item=items["WYF"],
            unit_type=res,
            method=area,
            unit_price=plan.property_price,
            vacant_percent=70,
            effective_from=since,
            note="前期物业服务合同价",
        ),
        dict(
            fee_item=items["WYF"],
            unit_type=res,
            method=area,
            unit_price=plan.property_price_new,
            vacant_percent=70,
            effective_from=change_on,
            note="业主大会决议调价",
        ),
        dict(
            fee_item=items["WYF"],
            unit_type=com,
            method=area,
            unit_price=plan.commercial_price,
            effective_from=since,
        ),
        dict(
            fee_item=items["WYF"],
            unit_type=park,
            method=fixed,
            fixed_fen=6000,
            effective_from=since,
            note="车位管理费",
        ),
        dict(
            fee_item=items["TCF"],
            unit_type=park,
            method=fixed,
            fixed_fen=30000,
            effective_from=since,
            note="产权/租赁车位停车服务费",
        ),
        dict(
            fee_item=items["GT"],
            unit_type=res,
            method=area,
            unit_price=Decimal("0.1500"),
            effective_from=since,
            note="公共区域水电分摊",
        ),
        dict(
            fee_item=items["GT"],
            unit_type=com,
            method=area,
            unit_price=Decimal("0.3000"),
            effective_from=since,
        ),
    ]
    for row in rows:
        FeeStandard.objects.create(community=community, **row)
    for unit_type in (res, com):
        water = FeeStandard.objects.create(
            community=community,
            fee_item=items["SF"],
            unit_type=unit_type,
            method=metered,
            unit_price=Decimal("3.4500"),
            effective_from=since,
            note="居民阶梯水价(月)",
        )
        PriceTier.objects.bulk_create(
            [
                PriceTier(standard=water, up_to=Decimal("18"), unit_price=Decimal("3.4500")),
                PriceTier(standard=water, up_to=Decimal("25"), unit_price=Decimal("4.8300")),
                PriceTier(standard=water, up_to=None, unit_price=Decimal("5.8300")),
            ]
        )
        power = FeeStandard.objects.create(
            community=community,
            fee_item=items["DF"],
            unit_type=unit_type,
            method=metered,
            unit_price=Decimal("0.6170"),
            effective_from=since,
        )
        PriceTier.objects.create(standard=power, up_to=None, unit_price=Decimal("0.6170"))


def _estate(
    *,
    rng: random.Random,
    community: Community,
    plan: CommunityPlan,
    n_units: int,
    first_period: date,
    today: date,
    reading_dates: list[date],
    result: DemoResult,
) -> list[Unit]:
    n_res, n_com, n_park = _split(n_units, [0.85, 0.05, 0.10])
    buildings: list[Building] = []
    units: list[Unit] = []
    per_building = plan.floors * plan.rooms_per_floor * plan.entrances
    recent_window = max(1, (today - timedelta(days=30) - first_period).days)

    def handover(recent: bool) -> date:
        if recent:  # mid-month handovers in the last year: the engine prorates them
            day = first_period + timedelta(days=rng.randrange(recent_window))
            return day if day.day != 1 else day + timedelta(days=rng.randrange(3, 20))
        return date(rng.randrange(2015, 2023), rng.randrange(1, 13), rng.randrange(1, 29))

    def add_unit(b: Building, room: str, floor: int, area: Decimal, utype: str) -> None:
        roll = rng.random()
        if utype == Unit.Type.RESIDENTIAL:
            state = (
                Unit.State.VACANT
                if roll < 0.03
                else (Unit.State.UNSOLD if roll < 0.04 else Unit.State.OCCUPIED)
            )
        else:
            state = Unit.State.UNSOLD if roll < 0.08 else Unit.State.OCCUPIED
        units.append(
            Unit(
                community=community,
                building=b,
                room_no=room,
                floor=floor,
                area_m2=area,
                inner_area_m2=(area * Decimal("0.78")).quantize(Decimal("0.01")),
                unit_type=utype,
                state=state,
                handover_date=handover(recent=rng.random() < 0.04),
                label=unit_label(building_code=b.code, room_no=room),
            )
        )

    plans_m2 = [Decimal(a) for a in ("58.60", "72.35", "89.50", "98.12", "118.66", "135.20")]
    for i in range(max(1, -(-n_res // per_building))):
        buildings.append(
            Building(community=community, code=str(i + 1), name=f"{i + 1}号楼", floors=plan.floors)
        )
    shop = Building(community=community, code="S", name="沿街商铺", floors=2)
    garage = Building(community=community, code="P", name="地下车库", floors=1)
    Building.objects.bulk_create([*buildings, shop, garage])

    made = 0
    for b in buildings:
        for entrance in range(1, plan.entrances + 1):
            for floor in range(1, plan.floors + 1):
                for r in range(1, plan.rooms_per_floor + 1):
                    if made == n_res:
                        break
                    room = f"{floor}{r:02d}"
                    if plan.entrances > 1:
                        room = f"{entrance}-{room}"
                    area = rng.choice(plans_m2) + Decimal(rng.randrange(-50, 51)) / 100
                    add_unit(b, room, floor, area, Unit.Type.RESIDENTIAL)
                    made += 1
    for k in range(n_com):
        area = Decimal(rng.randrange(4500, 22000)) / 100
        add_unit(shop, f"{1 + k // 40}{k % 40 + 1:02d}", 1 + k // 40, area, Unit.Type.COMMERCIAL)
    for k in range(n_park):
        add_unit(
            garage,
            f"B1-{k + 1:03d}",
            -1,
            Decimal(rng.choice(["12.50", "13.20", "15.00"])),
            Unit.Type.PARKING,
        )
    # However small the demo, show each case at least once per community.
    if n_res > 8:
        units[4].state = Unit.State.VACANT
        units[7].state = Unit.State.OCCUPIED
        units[7].handover_date = handover(recent=True)
    if n_com > 1:
        units[n_res + n_com - 1].state = Unit.State.UNSOLD
    Unit.objects.bulk_create(units, batch_size=1000)
    result.units += len(units)

    # Residents: an owner per sold unit, tenants in some; garage owners are flat owners.
    residents: list[Resident] = []
    owners: list[Resident] = []
    for u in units:
        if u.state == Unit.State.UNSOLD:
            continue
        if u.unit_type == Unit.Type.PARKING and owners:
            src = rng.choice(owners)
            residents.append(
                Resident(
                    unit=u,
                    name=src.name,
                    role=Resident.Role.OWNER,
                    phone=src.phone,
                    id_card=src.id_card,
                    id_card_masked=src.id_card_masked,
                    id_card_hash=src.id_card_hash,
                    move_in_date=u.handover_date,
                )
            )
            continue
        owner = Resident(
            unit=u,
            name=make_name(rng),
            role=Resident.Role.OWNER,
            phone=f"1390000{rng.randrange(10000):04d}",
            move_in_date=u.handover_date,
            **id_card_fields(make_id_card(rng)),
        )
        residents.append(owner)
        owners.append(owner)
        if rng.random() < 0.06:
            residents.append(
                Resident(
                    unit=u,
                    name=make_name(rng),
                    role=Resident.Role.TENANT,
                    is_primary=False,
                    phone=f"1390001{rng.randrange(10000):04d}",
                    **id_card_fields(make_id_card(rng)),
                )
            )
    Resident.objects.bulk_create(residents, batch_size=1000)
    result.residents += len(residents)

    spaces = []
    for u in units:
        if u.unit_type != Unit.Type.PARKING:
            continue
        sold = u.state != Unit.State.UNSOLD
        spaces.append(
            ParkingSpace(
                community=community,
                code=u.room_no,
                kind=ParkingSpace.Kind.OWNED
                if sold and rng.random() < 0.7
                else ParkingSpace.Kind.RENTED,
                unit=u if sold else None,
                plate_no=make_plate(rng) if sold else "",
                area_m2=u.area_m2,
            )
        )
    spaces += [
        ParkingSpace(community=community, code=f"T-{k + 1:02d}", kind=ParkingSpace.Kind.TEMPORARY)
        for k in range(max(1, n_park // 10))
    ]
    ParkingSpace.objects.bulk_create(spaces, batch_size=1000)
    result.parking_spaces += len(spaces)

    # Water and power meters read on the 1st of each month, monotonic (see demo_load).
    meters: list[Meter] = []
    for u in units:
        if u.unit_type == Unit.Type.PARKING:
            continue
        for kind, prefix in ((Meter.Kind.WATER, "W"), (Meter.Kind.POWER, "E")):
            meters.append(
                Meter(
                    community=community,
                    unit=u,
                    kind=kind,
                    serial_no=f"{prefix}{community.code}{u.pk:07d}",
                )
            )
    Meter.objects.bulk_create(meters, batch_size=1000)
    readings: list[MeterReading] = []
    for m in meters:
        assert m.unit is not None
        value = Decimal(rng.randrange(100, 5000))
        lived_in = m.unit.state == Unit.State.OCCUPIED
        for d in reading_dates:
            readings.append(MeterReading(meter=m, read_date=d, value=value))
            if lived_in and (m.unit.handover_date is None or m.unit.handover_date <= d):
                if m.kind == Meter.Kind.WATER:
                    value += Decimal(rng.randrange(30, 300)) / 10  # 3–30 m³ a month
                else:
                    value += Decimal(rng.randrange(60, 480))  # kWh a month
    MeterReading.objects.bulk_create(readings, batch_size=2000)
    result.meters += len(meters)
    result.readings += len(readings)
    return units


def _opening_balances(
    *,
    rng: random.Random,
    company: Company,
    community: Community,
    units: list[Unit],
    items: dict[str, FeeItem],
    price: Decimal,
    first_period: date,
    result: DemoResult,
) -> None:
    """Post arrears and prepayments brought over from the old system (期初)."""
    opening_date = first_period - timedelta(days=1)
    arrears_start = add_months(first_period, -3)
    wyf = items["WYF"]
    bills: list[Bill] = []
    for u in units:
        if u.state != Unit.State.OCCUPIED or u.unit_type != Unit.Type.RESIDENTIAL:
            continue
        if u.handover_date and u.handover_date >= first_period:
            continue
        if rng.random() < 0.05:
            months = rng.choice([1, 2, 3])
            # area (0.01 m²) × price (0.0001 yuan) → fen: divide by 100 × 10000 / 100
            amount = div_round(int(u.area_m2 * 100) * int(price * 10000) * months, 10000)
            bills.append(
                Bill(
                    company=company,
                    community=community,
                    unit=u,
                    fee_item=wyf,
                    period_start=add_months(arrears_start, 3 - months),
                    period_end=first_period,
                    kind=Bill.Kind.OPENING,
                    amount_fen=amount,
                    due_date=opening_date,
                    issued_on=opening_date,
                    description="期初欠费(旧系统迁入)",
                )
            )
    Bill.objects.bulk_create(bills)
    if bills:
        entry_post(
            company_id=company.pk,
            kind=JournalEntry.Kind.OPENING,
            memo=f"{community.name} 期初欠费",
            effective_date=opening_date,
            idempotency_key=f"demo:opening-arrears:{community.pk}",
            lines=[
                *[
                    debit(
                        AccountKind.RECEIVABLE,
                        b.amount_fen,
                        community_id=community.pk,
                        household_id=b.unit_id,
                        fee_item_id=wyf.pk,
                    )
                    for b in bills
                ],
                credit(
                    AccountKind.OPENING_BALANCE,
                    sum(b.amount_fen for b in bills),
                    community_id=community.pk,
                ),
            ],
        )
    result.opening_bills += len(bills)

    owed = {b.unit_id for b in bills}
    prepaid: list[tuple[int, int | None, int]] = []  # (unit id, fee item id, fen)
    for u in units:
        if u.pk in owed or u.state != Unit.State.OCCUPIED or rng.random() >= 0.04:
            continue
        earmarked = rng.random() < 0.3
        prepaid.append((u.pk, wyf.pk if earmarked else None, rng.choice([200000, 500000, 800000])))
    if prepaid:
        entry_post(
            company_id=company.pk,
            kind=JournalEntry.Kind.OPENING,
            memo=f"{community.name} 期初预存",
            effective_date=opening_date,
            idempotency_key=f"demo:opening-prepaid:{community.pk}",
            lines=[
                debit(
                    AccountKind.OPENING_BALANCE,
                    sum(p[2] for p in prepaid),
                    community_id=community.pk,
                ),
                *[
                    credit(
                        AccountKind.PREPAID,
                        fen,
                        community_id=community.pk,
                        household_id=uid,
                        fee_item_id=fid,
                    )
                    for uid, fid, fen in prepaid
                ],
            ],
        )
    result.prepaid_households += len(prepaid)


def _merchants(*, company: Company, communities: list[Community], today: date, since: date) -> None:
    bank_name, account_name, account_no = (company.bank_name, company.name, company.bank_account_no)
    acquirer = merchant_create(
        company=company,
        channel=Channel.ACQUIRER,
        name="申和物业",
        merchant_no=ACQUIRER_MID,
        institution="演示收单机构(银行卡)",
        signed_on=since,
        communities=communities,
        bank_name=bank_name,
        bank_account_name=account_name,
        bank_account_no=account_no,
    )
    fee_rate_set(
        merchant=acquirer,
        card_type=CardType.DEBIT,
        rate_ppm=5000,
        cap_fen=2000,
        effective_from=since,
    )
    fee_rate_set(merchant=acquirer, card_type=CardType.CREDIT, rate_ppm=6000, effective_from=since)
    wechat = merchant_create(
        company=company,
        channel=Channel.WECHAT,
        name="申和物业",
        merchant_no=WECHAT_MCH_ID,
        institution="微信支付",
        app_id="wx0000000000demo01",
        communities=communities,
        signed_on=since,
        bank_name=bank_name,
        bank_account_name=account_name,
        bank_account_no=account_no,
    )
    alipay = merchant_create(
        company=company,
        channel=Channel.ALIPAY,
        name="申和物业",
        merchant_no=ALIPAY_PID,
        institution="支付宝",
        app_id="2021000000000001",
        communities=communities,
        signed_on=since,
        bank_name=bank_name,
        bank_account_name=account_name,
        bank_account_no=account_no,
    )
    for m in (wechat, alipay):
        fee_rate_set(merchant=m, card_type=CardType.QR_CREDIT, rate_ppm=6000, effective_from=since)
        fee_rate_set(merchant=m, card_type=CardType.QR_BALANCE, rate_ppm=3800, effective_from=since)
    kinds = MerchantDocument.Kind
    document_add(
        company=company,
        kind=kinds.BUSINESS_LICENCE,
        title="营业执照(副本)",
        number=company.uscc,
        issued_on=date(2016, 3, 8),
    )
    document_add(
        company=company,
        kind=kinds.TAX_REGISTRATION,
        title="税务登记(一照一码)",
        number=company.uscc,
        issued_on=date(2016, 3, 8),
    )
    document_add(
        company=company,
        kind=kinds.ACQUIRING_AGREEMENT,
        merchant=acquirer,
        title="银行卡收单服务协议",
        number=f"SD-{ACQUIRER_MID}",
        issued_on=since,
        expires_on=today + timedelta(days=21),
    )  # due for renewal: the UI flags it
    for m in (wechat, alipay):
        document_add(
            company=company,
            kind=kinds.ACQUIRING_AGREEMENT,
            merchant=m,
            title=f"{m.get_channel_display()}商户服务协议",
            number=m.merchant_no,
            issued_on=since,
            expires_on=add_months(today.replace(day=1), 20),
        )
    document_add(
        company=company,
        kind=kinds.BANK_ACCOUNT_PERMIT,
        title="基本存款账户信息",
        number=company.bank_account_no,
        issued_on=date(2016, 4, 1),
    )
    for c in communities:
        document_add(
            company=company,
            community=c,
            kind=kinds.SERVICE_CONTRACT,
            title=f"{c.name} 物业服务合同",
            number=f"WY-{c.code}-2023",
            issued_on=date(2023, 1, 1),
            expires_on=date(2027, 12, 31),
        )


def billing_run_function() -> Callable[..., Any] | None:
    """Return the billing engine's ``billing_run_execute``, or None if it is not installed."""
    try:
        from wuye.billing import services

        fn = getattr(services, "billing_run_execute", None)
        if fn is not None:
            return fn
    except ImportError:
        pass
    try:
        from wuye.billing.engine.runs import billing_run_execute

        return billing_run_execute
    except ImportError:
        return None


def _waivers(
    *,
    community: Community,
    users: dict[str, User],
    on_date: date,
    rng: random.Random,
    result: DemoResult,
) -> None:
    """Approve a few 减免 through the waiver service, if it is installed."""
    try:
        from wuye.billing.waivers import waiver_approve, waiver_request
    except ImportError:
        if "waivers" not in result.notes:
            result.notes.append("waivers")
        return
    candidates = list(
        Bill.objects.filter(
            community=community,
            kind__in=[Bill.Kind.REGULAR, Bill.Kind.OPENING],
            fee_item__code="WYF",
            amount_fen__gt=1000,
            paid_fen=0,
            waived_fen=0,
        ).order_by("id")[:200]
    )
    reasons = ["业主家中漏水维修期间减免", "疫情期间物业费减免", "困难家庭减免", "开发商承诺减免"]
    for bill in rng.sample(candidates, min(4, len(candidates))):
        waiver = waiver_request(
            bill=bill,
            target="principal",
            amount_fen=bill.amount_fen // 2,
            reason=rng.choice(reasons),
            requested_by=users["manager"],
        )
        waiver_approve(waiver=waiver, approver=users["finance"], on_date=on_date)
        result.waivers += 1


def demo_load(
    *, today: date, units: int = DEFAULT_UNITS, seed: int = 2026, say: Say | None = None
) -> DemoResult:
    """Load the demo company, its two communities and 12 months of bills ending last month.

    ``units`` is the total over both communities (at least 20). Raises ValueError if a demo
    company already exists (load into an empty database, or ``wuye demo --reset``).
    """
    out: Say = say or (lambda _msg: None)
    if units < 20:
        raise ValueError(f"--units must be at least 20, got {units}")
    if Company.objects.filter(uscc=demo_uscc()).exists():
        raise ValueError("the demo company is already loaded; use `wuye demo --reset`")
    rng = random.Random(seed)
    month = today.replace(day=1)
    first_period = add_months(month, -12)
    periods = [add_months(first_period, i) for i in range(12)]
    # A reading bills the period it falls in (usage since the previous reading), so reading
    # from the month before the first billed one through this month bills all 12 months and
    # leaves this month's reading for a run launched by hand.
    reading_dates = [add_months(first_period, i) for i in range(-1, 13)]
    t0 = time.perf_counter()

    with transaction.atomic():
        company = Company.objects.create(
            name=COMPANY_NAME,
            short_name="申和物业",
            uscc=demo_uscc(),
            bank_name="招商银行上海浦东支行",
            bank_account_name=COMPANY_NAME,
            bank_account_no="121909876510001",
            phone="021-50000000",
            address="上海市浦东新区锦绣路1888号",
        )
        result = DemoResult(company_id=company.pk, community_ids=[])
        communities = [
            Community.objects.create(
                company=company,
                code=p.code,
                name=p.name,
                address=p.address,
                phone="021-5000000" + str(i + 1),
            )
            for i, p in enumerate(PLANS)
        ]
        result.community_ids = [c.pk for c in communities]
        users = demo_users_create(company=company, communities=communities)
        items = _fee_items(company, first_period)
        all_units: dict[int, list[Unit]] = {}
        for plan, community, n in zip(PLANS, communities, _split(units, [0.55, 0.45]), strict=True):
            _fee_standards(community, plan, items, change_on=periods[6])
            all_units[community.pk] = _estate(
                rng=rng,
                community=community,
                plan=plan,
                n_units=n,
                first_period=first_period,
                today=today,
                reading_dates=reading_dates,
                result=result,
            )
            out(f"  {community.name}: {n} 户")
        _merchants(company=company, communities=communities, today=today, since=date(2023, 6, 1))
        for plan, community in zip(PLANS, communities, strict=True):
            _opening_balances(
                rng=rng,
                company=company,
                community=community,
                units=all_units[community.pk],
                items=items,
                price=plan.property_price,
                first_period=first_period,
                result=result,
            )
    result.seconds["estates"] = round(time.perf_counter() - t0, 2)
    out(
        f"  房屋 {result.units} · 住户 {result.residents} · 车位 {result.parking_spaces} · "
        f"仪表 {result.meters} · 读数 {result.readings} ({result.seconds['estates']}s)"
    )

    t1 = time.perf_counter()
    run = billing_run_function()
    if run is None:
        result.notes.append("billing engine")
        out("  计费引擎尚未安装: 跳过出账 (billing engine not installed: no bills)")
    else:
        for period_start in periods:
            for community in communities:
                run(
                    community_id=community.pk,
                    period_start=period_start,
                    cycle_months=1,
                    issued_on=period_start,
                    user_id=users["admin"].pk,
                )
                result.billing_runs += 1
            out(f"  出账 {period_start:%Y-%m} ✓")
    result.bills = Bill.objects.filter(company=company).count()
    result.seconds["billing"] = round(time.perf_counter() - t1, 2)

    with transaction.atomic():
        for community in communities:
            _waivers(community=community, users=users, on_date=today, rng=rng, result=result)
    if run is not None:
        t2 = time.perf_counter()
        h = result.history = history_replay(
            rng=rng,
            communities=communities,
            cashiers=[users["cashier"], users["cashier2"]],
            finance=users["finance"],
            today=today,
            say=out,
        )
        result.seconds["history"] = round(time.perf_counter() - t2, 2)
        rates = " ".join(f"{m} {r / 10:.0f}%" for m, r in h.collection_permille.items())
        out(
            f"  收费历史: {h.shifts} 个班次 (均已交班, 1 个短款 {h.shortage_fen / 100:.2f} 元), "
            f"{h.payments} 笔收款 (现金 {h.cash_payments}, 预存余额 {h.prepaid_payments}, "
            f"部分缴费 {h.partial_payments}, 预存/充值 {h.prepayments}), "
            f"预付卡 {h.cards} 张, 解款 {h.paid_out} 次, 退款 {h.refunds}, 作废收据 {h.voids} "
            f"({result.seconds['history']}s)"
        )
        out(f"  收缴率 (按账期): {rates}")
    result.seconds["total"] = round(time.perf_counter() - t0, 2)
    return result
