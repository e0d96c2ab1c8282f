"""Import spreadsheets of units, residents, parking spaces, meter readings and opening balances.

An import validates every row first (types, required cells, allowed values, lookups in the
company, duplicates within the file, conflicts with what is already imported) and then either
writes all of it in one transaction or nothing. Rows are matched on natural keys, so importing
the same file again changes nothing. Lookups are loaded once into dicts and writes are bulk
operations, so a 20,000-row file takes seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.selectors import require_role
from wuye.billing.models import Bill, FeeItem
from wuye.core.crypto import lookup_hash
from wuye.core.models import Job
from wuye.core.money import format_yuan
from wuye.core.services import audit_record, job_finish, job_progress_reporter, job_start
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
from wuye.estates.validators import mask_id_card, validate_id_card, validate_phone
from wuye.imports.models import ImportBatch, OpeningBalance
from wuye.imports.selectors import export_allowed, export_build
from wuye.imports.specs import MASKED_ID_RE, SPECS, CellError, Spec, spec_for
from wuye.imports.xlsx import SheetError, error_workbook_bytes, read_rows, workbook_bytes
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import Line, credit, debit, entry_post

ProgressFn = Callable[[int, int, str], None]
PROGRESS_EVERY = 1000


class UnknownKind(ValueError):
    """The kind of data is not one Wuye imports."""


@dataclass(frozen=True)
class RowError:
    """Why one cell (or row, when ``column`` is empty) of the file is not acceptable.

    ``row`` is the row number as Excel shows it (0 for the file as a whole).
    """

    row: int
    column: str
    header: str
    message: str
    message_en: str
    header_en: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "header": self.header,
            "message": self.message,
            "message_en": self.message_en,
            "header_en": self.header_en,
        }

    def text(self, *, english: bool = False) -> str:
        """One line of the report: ``第5行 [建筑面积(m²)]: 不是数字: abc``."""
        message = self.message_en if english else self.message
        if english:
            where = f"row {self.row}" if self.row else "file"
        else:
            where = f"第{self.row}行" if self.row else "文件"
        header = (self.header_en or self.header) if english else self.header
        col = f" [{header}]" if header else ""
        return f"{where}{col}: {message}"


@dataclass
class ImportReport:
    """What an import found and did. ``ok`` is False when any row had an error."""

    kind: str
    file_name: str
    sha256: str
    dry_run: bool
    rows_total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_xlsx: bytes | None = None
    batch_id: int | None = None
    previous_batch_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def imported(self) -> bool:
        return self.ok and not self.dry_run

    def summary(self, *, english: bool = False) -> str:
        if english:
            state = "dry run passed" if self.dry_run else "imported"
            if not self.ok:
                state = f"{len(self.errors)} errors, nothing imported"
            return (
                f"{self.kind}: {self.rows_total} rows, {state}; created {self.created}, "
                f"updated {self.updated}, unchanged {self.unchanged}"
            )
        state = "试导入通过, 未写入" if self.dry_run else "已导入"
        if not self.ok:
            state = f"有 {len(self.errors)} 处错误, 未导入任何数据"
        return (
            f"{self.kind}: 共 {self.rows_total} 行, {state}; 新增 {self.created}, "
            f"更新 {self.updated}, 未变 {self.unchanged}"
        )


Row = tuple[int, dict[str, Any]]


@dataclass
class _Plan:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    apply: Callable[[], None] = lambda: None


@dataclass
class _Updates:
    """Existing rows a file changes, and which of their fields, for one ``bulk_update``."""

    rows: list[Any] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)

    def record(self, plan: _Plan, obj: Any, changed: list[str]) -> None:
        """Count ``obj`` as updated (keeping it for the write) or as unchanged."""
        if changed:
            self.fields.update(changed)
            self.rows.append(obj)
            plan.updated += 1
        else:
            plan.unchanged += 1

    def save(self, model: Any) -> None:
        if self.rows:
            model.objects.bulk_update(self.rows, sorted(self.fields), batch_size=1000)


@dataclass
class _Context:
    company: Company
    spec: Spec
    as_of: date
    file_name: str
    created_by_id: int | None
    batch: ImportBatch | None
    errors: list[RowError] = field(default_factory=list)
    # Optional columns the file does not have: existing records keep those fields.
    absent: frozenset[str] = frozenset()

    def error(self, row: int, key: str, zh: str, en: str) -> None:
        col = self.spec.column(key) if key else None
        self.errors.append(
            RowError(row, key, col.zh if col else "", zh, en, col.en if col else "")
        )

    def communities(self) -> dict[str, Community]:
        return {c.code: c for c in Community.objects.filter(company=self.company)}

    def community(self, n: int, v: dict[str, Any], comms: dict[str, Community]) -> Community | None:
        comm = comms.get(v["community"])
        if comm is None:
            self.error(
                n, "community", f"本公司没有编号为 {v['community']} 的小区",
                f"no community with code {v['community']} in this company",
            )
        return comm


def _units_by_room(company: Company) -> dict[tuple[int, str, str], Unit]:
    """Units of the company keyed by (community id, building code, room no)."""
    return {
        (u.community_id, u.building.code, u.room_no): u
        for u in Unit.objects.filter(community__company=company).select_related("building")
    }


def _units_by_label(company: Company) -> dict[tuple[int, str], list[int]]:
    out: dict[tuple[int, str], list[int]] = {}
    for pk, comm_id, label in Unit.objects.filter(community__company=company).values_list(
        "pk", "community_id", "label"
    ):
        out.setdefault((comm_id, label), []).append(pk)
    return out


def _unit_for_room(
    ctx: _Context, n: int, v: dict[str, Any], comm: Community,
    units: dict[tuple[int, str, str], Unit],
) -> Unit | None:
    unit = units.get((comm.pk, v["building"], v["room"]))
    if unit is None:
        ctx.error(
            n, "room", f"小区 {comm.code} 没有 {v['building']} 栋 {v['room']} 房屋",
            f"community {comm.code} has no unit {v['room']} in building {v['building']}",
        )
    return unit


def _unit_for_label(
    ctx: _Context, n: int, key: str, label: str, comm: Community,
    by_label: dict[tuple[int, str], list[int]],
) -> tuple[bool, int | None]:
    """Resolve an optional unit label; returns (ok, unit id or None)."""
    if not label:
        return True, None
    ids = by_label.get((comm.pk, label), [])
    if not ids:
        ctx.error(n, key, f"小区 {comm.code} 没有房屋 {label}",
                  f"community {comm.code} has no unit labelled {label}")
        return False, None
    if len(ids) > 1:
        ctx.error(n, key, f"房屋编号 {label} 在小区 {comm.code} 中不唯一",
                  f"unit label {label} is not unique in community {comm.code}")
        return False, None
    return True, ids[0]


def _changed(obj: Any, values: dict[str, Any], absent: frozenset[str] = frozenset()) -> list[str]:
    """Set ``values`` on ``obj``; return the names of the fields that changed.

    Fields fed by a column the file does not have (``absent``) are left as they are.
    """
    changed = []
    for name, value in values.items():
        if name in absent or name.removesuffix("_id") in absent:
            continue
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed.append(name)
    return changed


# ---------------------------------------------------------------------------- units


def _plan_units(ctx: _Context, rows: list[Row]) -> _Plan:
    comms = ctx.communities()
    buildings = {
        (b.community_id, b.code): b
        for b in Building.objects.filter(community__company=ctx.company)
    }
    units = _units_by_room(ctx.company)
    new_buildings: dict[tuple[int, str], Building] = {}
    renamed: dict[int, Building] = {}
    new_units: list[Unit] = []
    updates = _Updates()
    plan = _Plan()
    for n, v in rows:
        comm = ctx.community(n, v, comms)
        if comm is None:
            continue
        bkey = (comm.pk, v["building"])
        building = buildings.get(bkey)
        if building is None:
            building = new_buildings.get(bkey)
            if building is None:
                building = Building(
                    community=comm, code=v["building"],
                    name=v["building_name"] or f"{v['building']}号楼",
                )
                new_buildings[bkey] = building
        elif v["building_name"] and building.name != v["building_name"]:
            building.name = v["building_name"]
            renamed[building.pk] = building
        values = {
            "floor": v["floor"],
            "area_m2": v["area_m2"],
            "inner_area_m2": v["inner_area_m2"],
            "unit_type": v["unit_type"],
            "state": v["state"],
            "handover_date": v["handover_date"],
        }
        unit = units.get((comm.pk, v["building"], v["room"]))
        if unit is None:
            new_units.append(
                Unit(
                    community=comm, building=building, room_no=v["room"],
                    label=f"{v['building']}-{v['room']}", **values,
                )
            )
            plan.created += 1
            continue
        changed = _changed(unit, values, ctx.absent)
        updates.record(plan, unit, changed)

    def apply() -> None:
        Building.objects.bulk_create(new_buildings.values(), batch_size=1000)
        if renamed:
            Building.objects.bulk_update(renamed.values(), ["name"], batch_size=1000)
        Unit.objects.bulk_create(new_units, batch_size=1000)
        updates.save(Unit)

    plan.apply = apply
    return plan


# ---------------------------------------------------------------------------- residents


def _plan_residents(ctx: _Context, rows: list[Row]) -> _Plan:
    comms = ctx.communities()
    units = _units_by_room(ctx.company)
    existing = {
        (r.unit_id, r.name): r
        for r in Resident.objects.filter(unit__community__company=ctx.company).defer("id_card")
    }
    new: list[Resident] = []
    updates = _Updates()
    plan = _Plan()
    for n, v in rows:
        comm = ctx.community(n, v, comms)
        if comm is None:
            continue
        unit = _unit_for_room(ctx, n, v, comm, units)
        phone = v["phone"].replace(" ", "") if v["phone"] else ""
        bad = unit is None
        if phone:
            try:
                validate_phone(phone)
            except ValidationError:
                ctx.error(n, "phone", f"电话号码无效: {phone}", f"invalid phone number: {phone}")
                bad = True
        id_values: dict[str, Any] | None = {}
        raw_id = "".join((v["id_card"] or "").split()).upper()
        resident = existing.get((unit.pk, v["name"])) if unit is not None else None
        if "id_card" in ctx.absent and resident is not None:
            id_values = None
        elif raw_id and "*" in raw_id:
            if not MASKED_ID_RE.match(raw_id):
                ctx.error(n, "id_card", "脱敏身份证号格式无效", "malformed masked ID-card number")
                bad = True
            elif resident is not None and resident.id_card_masked == raw_id:
                id_values = None  # as exported: keep what is stored
            elif resident is not None and resident.id_card_masked:
                ctx.error(n, "id_card", "脱敏身份证号与系统中该住户的不一致",
                          "masked ID-card number differs from the one on file")
                bad = True
            else:
                id_values = {"id_card": "", "id_card_masked": raw_id, "id_card_hash": ""}
        elif raw_id:
            try:
                validate_id_card(raw_id)
            except ValidationError:
                ctx.error(n, "id_card", "身份证号无效(位数、出生日期或校验位不对)",
                          "invalid ID-card number (length, birth date or check digit)")
                bad = True
            else:
                digest = lookup_hash(raw_id)
                if resident is not None and resident.id_card_hash == digest:
                    id_values = None
                else:
                    id_values = {
                        "id_card": raw_id, "id_card_masked": mask_id_card(raw_id),
                        "id_card_hash": digest,
                    }
        else:
            if resident is not None and not resident.id_card_masked:
                id_values = None
            else:
                id_values = {"id_card": "", "id_card_masked": "", "id_card_hash": ""}
        if bad or unit is None:
            continue
        values = {
            "role": v["role"], "phone": phone, "is_primary": bool(v["is_primary"]),
            "move_in_date": v["move_in_date"],
        }
        if resident is None:
            new.append(Resident(unit=unit, name=v["name"], **values, **(id_values or {})))
            plan.created += 1
            continue
        changed = _changed(resident, values, ctx.absent)
        if id_values is not None:
            changed.extend(_changed_id(resident, id_values))
        updates.record(plan, resident, changed)

    def apply() -> None:
        Resident.objects.bulk_create(new, batch_size=1000)
        updates.save(Resident)

    plan.apply = apply
    return plan


def _changed_id(resident: Resident, values: dict[str, Any]) -> list[str]:
    # id_card is deferred (never decrypted for comparison): the hash and mask decide.
    if (resident.id_card_hash, resident.id_card_masked) == (
        values["id_card_hash"], values["id_card_masked"]
    ):
        return []
    for name, value in values.items():
        setattr(resident, name, value)
    return list(values)


# ---------------------------------------------------------------------------- parking


def _plan_parking(ctx: _Context, rows: list[Row]) -> _Plan:
    comms = ctx.communities()
    by_label = _units_by_label(ctx.company)
    existing = {
        (p.community_id, p.code): p
        for p in ParkingSpace.objects.filter(community__company=ctx.company)
    }
    new: list[ParkingSpace] = []
    updates = _Updates()
    plan = _Plan()
    for n, v in rows:
        comm = ctx.community(n, v, comms)
        if comm is None:
            continue
        ok, unit_id = _unit_for_label(ctx, n, "unit", v["unit"], comm, by_label)
        if not ok:
            continue
        values = {
            "kind": v["kind"], "unit_id": unit_id, "plate_no": v["plate_no"] or "",
            "area_m2": v["area_m2"],
        }
        space = existing.get((comm.pk, v["code"]))
        if space is None:
            new.append(ParkingSpace(community=comm, code=v["code"], **values))
            plan.created += 1
            continue
        changed = _changed(space, values, ctx.absent)
        updates.record(plan, space, changed)

    def apply() -> None:
        ParkingSpace.objects.bulk_create(new, batch_size=1000)
        updates.save(ParkingSpace)

    plan.apply = apply
    return plan


# ---------------------------------------------------------------------------- readings


def _plan_readings(ctx: _Context, rows: list[Row]) -> _Plan:
    comms = ctx.communities()
    by_label = _units_by_label(ctx.company)
    meters = {
        (m.community_id, m.serial_no): m
        for m in Meter.objects.filter(community__company=ctx.company)
    }
    dates = {v["read_date"] for _, v in rows}
    readings = {
        (r.meter_id, r.read_date): r
        for r in MeterReading.objects.filter(
            meter__community__company=ctx.company, read_date__in=dates
        )
    }
    new_meters: dict[tuple[int, str], Meter] = {}
    new: list[MeterReading] = []
    updates = _Updates()
    plan = _Plan()
    for n, v in rows:
        comm = ctx.community(n, v, comms)
        if comm is None:
            continue
        ok, unit_id = _unit_for_label(ctx, n, "unit", v["unit"], comm, by_label)
        if not ok:
            continue
        mkey = (comm.pk, v["serial_no"])
        meter = meters.get(mkey) or new_meters.get(mkey)
        if meter is None:
            meter = Meter(community=comm, serial_no=v["serial_no"], kind=v["meter_kind"],
                          unit_id=unit_id)
            new_meters[mkey] = meter
        else:
            if meter.kind != v["meter_kind"]:
                ctx.error(n, "meter_kind", f"表 {meter.serial_no} 已登记为 "
                          f"{meter.get_kind_display()}", f"meter {meter.serial_no} is a "
                          f"{meter.kind} meter")
                continue
            if unit_id is not None and meter.unit_id != unit_id:
                ctx.error(n, "unit", f"表 {meter.serial_no} 已属于其他房屋",
                          f"meter {meter.serial_no} belongs to another unit")
                continue
        values = {"value": v["value"], "is_replacement": bool(v["is_replacement"])}
        reading = readings.get((meter.pk, v["read_date"])) if meter.pk else None
        if reading is None:
            new.append(MeterReading(meter=meter, read_date=v["read_date"], **values))
            plan.created += 1
            continue
        changed = _changed(reading, values, ctx.absent)
        updates.record(plan, reading, changed)

    def apply() -> None:
        Meter.objects.bulk_create(new_meters.values(), batch_size=1000)
        MeterReading.objects.bulk_create(new, batch_size=1000)
        updates.save(MeterReading)

    plan.apply = apply
    return plan


# ---------------------------------------------------------------------------- opening


def opening_row_key(
    *, kind: str, unit_id: int, fee_item_id: int | None, period_start: date | None
) -> str:
    """The natural key under which an opening arrear or prepayment is imported once."""
    if kind == OpeningBalance.Kind.ARREARS:
        assert period_start is not None
        return f"arrears:{unit_id}:{fee_item_id}:{period_start.isoformat()}"
    return f"prepaid:{unit_id}:{fee_item_id or 0}"


def _billed_periods(
    company: Company, rows: list[Row]
) -> dict[tuple[int, int], list[tuple[date, date]]]:
    """Periods Wuye itself has billed, per (unit, fee item), over the file's date range."""
    starts = [v["period_start"] for _, v in rows if v["period_start"] and v["owed_fen"]]
    ends = [v["period_end"] for _, v in rows if v["period_end"] and v["owed_fen"]]
    if not starts or not ends:
        return {}
    out: dict[tuple[int, int], list[tuple[date, date]]] = {}
    for unit_id, fee_item_id, start, end in (
        Bill.objects.filter(
            company=company, period_start__lte=max(ends), period_end__gt=min(starts)
        )
        .exclude(kind__in=[Bill.Kind.OPENING, Bill.Kind.LATE_FEE])
        .values_list("unit_id", "fee_item_id", "period_start", "period_end")
    ):
        out.setdefault((unit_id, fee_item_id), []).append((start, end))
    return out


def _plan_opening(ctx: _Context, rows: list[Row]) -> _Plan:
    comms = ctx.communities()
    units = _units_by_room(ctx.company)
    fee_items = {f.code: f for f in FeeItem.objects.filter(company=ctx.company)}
    imported = dict(
        OpeningBalance.objects.filter(company=ctx.company).values_list("row_key", "amount_fen")
    )
    other_bills = set(
        Bill.objects.filter(company=ctx.company, kind=Bill.Kind.OPENING, revision=0).values_list(
            "unit_id", "fee_item_id", "period_start"
        )
    )
    billed = _billed_periods(ctx.company, rows)
    seen: dict[str, int] = {}
    todo: list[tuple[OpeningBalance, Bill | None]] = []
    plan = _Plan()
    for n, v in rows:
        comm = ctx.community(n, v, comms)
        if comm is None:
            continue
        unit = _unit_for_room(ctx, n, v, comm, units)
        fee_item = None
        if v["fee_item"]:
            fee_item = fee_items.get(v["fee_item"])
            if fee_item is None:
                ctx.error(n, "fee_item", f"本公司没有编号为 {v['fee_item']} 的收费项目",
                          f"no fee item with code {v['fee_item']} in this company")
                continue
        owed, prepaid = v["owed_fen"] or 0, v["prepaid_fen"] or 0
        if bool(owed) == bool(prepaid):
            ctx.error(n, "owed_fen", "欠费金额和预存金额须填且只填一项(大于0)",
                      "fill exactly one of amount owed and amount prepaid (above zero)")
            continue
        if owed:
            kind = OpeningBalance.Kind.ARREARS
            bad = False
            for key in ("fee_item", "period_start", "period_end"):
                if not v[key]:
                    ctx.error(n, key, "欠费行必填", "required for arrears")
                    bad = True
            if bad:
                continue
            if v["period_end"] < v["period_start"]:
                ctx.error(n, "period_end", "账期结束早于账期开始",
                          "period end is before period start")
                continue
        else:
            kind = OpeningBalance.Kind.PREPAID
        if unit is None or (owed and fee_item is None):
            continue
        amount = owed or prepaid
        row_key = opening_row_key(
            kind=kind, unit_id=unit.pk, fee_item_id=fee_item.pk if fee_item else None,
            period_start=v["period_start"] if owed else None,
        )
        if row_key in seen:
            what = "同一房屋、费项、账期" if owed else "同一房屋、费项"
            ctx.error(n, "fee_item" if owed else "prepaid_fen",
                      f"与第{seen[row_key]}行重复({what})",
                      f"duplicates row {seen[row_key]} (same unit, fee item"
                      + (", period)" if owed else ")"))
            continue
        seen[row_key] = n
        if row_key in imported:
            if imported[row_key] == amount:
                plan.unchanged += 1
            else:
                ctx.error(
                    n, "owed_fen" if owed else "prepaid_fen",
                    f"已导入过, 金额为 {format_yuan(imported[row_key])} 元, 与本行不同; "
                    "请在系统中做调整",
                    f"already imported with {format_yuan(imported[row_key])} yuan; "
                    "correct it by an adjustment",
                )
            continue
        bill = None
        if owed:
            assert fee_item is not None
            if (unit.pk, fee_item.pk, v["period_start"]) in other_bills:
                ctx.error(n, "period_start", "该房屋该费项该账期已有期初账单",
                          "an opening bill for this unit, fee item and period already exists")
                continue
            end = v["period_end"] + timedelta(days=1)
            clash = next(
                (p for p in billed.get((unit.pk, fee_item.pk), ())
                 if p[0] < end and v["period_start"] < p[1]),
                None,
            )
            if clash is not None:
                last = clash[1] - timedelta(days=1)
                ctx.error(
                    n, "period_start",
                    f"该房屋该费项 {clash[0]}~{last} 已在系统中出账, 期初欠费会重复计费",
                    f"this unit and fee item were already billed in Wuye for {clash[0]}~{last}; "
                    "the arrear would be billed twice",
                )
                continue
            bill = Bill(
                company=ctx.company, community=comm, unit=unit, fee_item=fee_item,
                period_start=v["period_start"], period_end=v["period_end"] + timedelta(days=1),
                kind=Bill.Kind.OPENING, amount_fen=amount,
                due_date=v["due_date"] or v["period_start"] + timedelta(days=fee_item.due_days),
                issued_on=ctx.as_of, description=(v["note"] or "期初欠费导入")[:200],
            )
        todo.append((
            OpeningBalance(
                company=ctx.company, row_key=row_key, kind=kind, unit=unit, fee_item=fee_item,
                period_start=v["period_start"] if owed else None,
                period_end=v["period_end"] + timedelta(days=1) if owed else None,
                amount_fen=amount, batch=ctx.batch, note=v["note"] or "",
            ),
            bill,
        ))
        plan.created += 1

    def apply() -> None:
        if not todo:
            return
        Bill.objects.bulk_create([b for _, b in todo if b is not None], batch_size=1000)
        lines: list[Line] = []
        for ob, _bill in todo:
            dims = {
                "community_id": ob.unit.community_id, "household_id": ob.unit.pk,
                "fee_item_id": ob.fee_item.pk if ob.fee_item else None,
            }
            if ob.kind == OpeningBalance.Kind.ARREARS:
                lines.append(debit(AccountKind.RECEIVABLE, ob.amount_fen, **dims))
                lines.append(credit(AccountKind.OPENING_BALANCE, ob.amount_fen, **dims))
            else:
                lines.append(debit(AccountKind.OPENING_BALANCE, ob.amount_fen, **dims))
                lines.append(credit(AccountKind.PREPAID, ob.amount_fen, **dims))
        keys = "\n".join(sorted(ob.row_key for ob, _ in todo))
        entry = entry_post(
            company_id=ctx.company.pk,
            kind=JournalEntry.Kind.OPENING,
            memo=f"期初余额导入 {ctx.file_name} ({len(todo)} 行)",
            effective_date=ctx.as_of,
            lines=lines,
            idempotency_key=(
                f"import-opening:{ctx.company.pk}:{hashlib.sha256(keys.encode()).hexdigest()}"
            ),
            created_by_id=ctx.created_by_id,
        )
        for ob, bill in todo:
            ob.entry = entry
            ob.bill = bill
        OpeningBalance.objects.bulk_create([ob for ob, _ in todo], batch_size=1000)

    plan.apply = apply
    return plan


PLANNERS: dict[str, Callable[[_Context, list[Row]], _Plan]] = {
    "units": _plan_units,
    "residents": _plan_residents,
    "parking": _plan_parking,
    "readings": _plan_readings,
    "opening": _plan_opening,
}


# ---------------------------------------------------------------------------- entry points


def _parse_rows(ctx: _Context, raw: list[Row], progress: ProgressFn | None) -> list[Row]:
    """Parse every cell; return the rows without cell errors, recording the errors."""
    spec = ctx.spec
    good: list[Row] = []
    seen: dict[tuple[Any, ...], int] = {}
    total = len(raw)
    for i, (n, cells) in enumerate(raw, start=1):
        values: dict[str, Any] = {}
        bad = False
        for col in spec.columns:
            try:
                values[col.key] = col.parse(cells.get(col.key))
            except CellError as exc:
                ctx.error(n, col.key, exc.zh, exc.en)
                bad = True
        if not bad and spec.kind != "opening":
            key = tuple(values[k] for k in spec.key)
            if key in seen:
                ctx.error(n, spec.key[-1], f"与第{seen[key]}行重复",
                          f"duplicates row {seen[key]}")
                bad = True
            else:
                seen[key] = n
        if not bad:
            good.append((n, values))
        if progress is not None and (i % PROGRESS_EVERY == 0 or i == total):
            progress(i, total, "校验")
    return good


def import_file(
    *,
    kind: str,
    company_id: int,
    content: bytes,
    file_name: str,
    as_of: date,
    dry_run: bool = False,
    created_by_id: int | None = None,
    progress: ProgressFn | None = None,
    batch: ImportBatch | None = None,
) -> ImportReport:
    """Validate every row of an .xlsx file, then import all of it or nothing.

    With ``dry_run`` nothing is written but the log. A file with any error writes no data;
    its report names each bad row and column, and ``error_xlsx`` holds a copy of the file
    with those cells marked. ``as_of`` dates opening bills and their ledger entry. The
    import is logged as an :class:`ImportBatch` (``batch`` when given). Raises UnknownKind.
    """
    if kind not in SPECS:
        raise UnknownKind(kind)
    spec = spec_for(kind)
    company = Company.objects.get(pk=company_id)
    sha = hashlib.sha256(content).hexdigest()
    report = ImportReport(kind=kind, file_name=file_name, sha256=sha, dry_run=dry_run)
    previous = (
        ImportBatch.objects.filter(
            company=company, kind=kind, sha256=sha, status=ImportBatch.Status.IMPORTED
        )
        .exclude(pk=batch.pk if batch else 0)
        .values_list("pk", flat=True)
        .first()
    )
    report.previous_batch_id = previous
    ctx = _Context(company, spec, as_of, file_name, created_by_id, batch)
    sheet = None
    try:
        sheet = read_rows(content, spec)
    except SheetError as exc:
        report.errors.append(RowError(0, "", "", exc.zh, exc.en))
    if sheet is not None:
        report.rows_total = len(sheet.rows)
        if not sheet.rows:
            report.errors.append(
                RowError(0, "", "", "文件中没有数据行", "the file has no data rows")
            )
        ctx.absent = frozenset(c.key for c in spec.columns if c.key not in sheet.columns)
        rows = _parse_rows(ctx, sheet.rows, progress)
        plan = PLANNERS[kind](ctx, rows)
        ctx.errors.sort(key=lambda e: e.row)
        report.errors.extend(ctx.errors)
        report.created, report.updated, report.unchanged = (
            plan.created, plan.updated, plan.unchanged,
        )
        if report.ok and not dry_run:
            if progress is not None:
                progress(report.rows_total, report.rows_total, "写入")
            try:
                with transaction.atomic():
                    plan.apply()
            except IntegrityError:
                # Another import wrote the same keys between our checks and our writes.
                report.errors.append(RowError(
                    0, "", "", "导入期间数据被同时修改, 未导入任何数据, 请重试",
                    "the data changed while importing; nothing was imported, try again",
                ))
        if not report.ok:
            report.error_xlsx = error_workbook_bytes(
                content, sheet_title=sheet.sheet_title, columns=sheet.columns,
                header_row=sheet.header_row,
                errors=[(e.row, e.column or None, f"{e.message} / {e.message_en}")
                        for e in report.errors],
            )
    if not report.ok:
        report.created = report.updated = report.unchanged = 0
    _log(report, company=company, batch=batch, created_by_id=created_by_id)
    return report


def _log(
    report: ImportReport, *, company: Company, batch: ImportBatch | None,
    created_by_id: int | None,
) -> None:
    if batch is None:
        batch = ImportBatch(company=company, kind=report.kind, created_by_id=created_by_id)
    batch.file_name = report.file_name[:200]
    batch.sha256 = report.sha256
    batch.dry_run = report.dry_run
    batch.rows_total = report.rows_total
    batch.created_count = report.created
    batch.updated_count = report.updated
    batch.unchanged_count = report.unchanged
    batch.error_count = len(report.errors)
    batch.errors = [e.as_dict() for e in report.errors[:5000]]
    if not report.ok:
        batch.status = ImportBatch.Status.REJECTED
    elif report.dry_run:
        batch.status = ImportBatch.Status.VALIDATED
    else:
        batch.status = ImportBatch.Status.IMPORTED
    batch.finished_at = timezone.now()
    if report.error_xlsx:
        stem = report.file_name.rsplit(".", 1)[0][:80] or "import"
        batch.error_file.save(
            f"{stem}.errors.xlsx.sealed", ContentFile(seal(report.error_xlsx)), save=False
        )
    batch.save()
    report.batch_id = batch.pk
    if report.imported:
        audit_record(
            actor=batch.created_by, action="import", obj=batch, company=company,
            detail={"kind": report.kind, "created": report.created, "updated": report.updated,
                    "sha256": report.sha256},
        )


def template_build(*, kind: str) -> bytes:
    """Return the .xlsx template of ``kind``: headers, an example row, lists, a 说明 sheet.

    Raises UnknownKind.
    """
    if kind not in SPECS:
        raise UnknownKind(kind)
    return workbook_bytes(spec_for(kind), [], with_example=True)


def batch_create(
    *, user: Any, kind: str, company_id: int, file_name: str, content: bytes, dry_run: bool
) -> ImportBatch:
    """Store an upload and queue its import; only a company admin may import.

    Raises AccessDenied (accounts.selectors) for a user without the admin role there, and
    UnknownKind.
    """
    if kind not in SPECS:
        raise UnknownKind(kind)
    require_role(user, {Role.ADMIN.value}, company_id=company_id)
    job = Job.objects.create(
        kind="import", title=f"导入 {spec_for(kind).title_zh}: {file_name}"[:200],
        company_id=company_id, params={"kind": kind, "dry_run": dry_run},
        created_by=user if getattr(user, "pk", None) else None,
    )
    batch = ImportBatch(
        company_id=company_id, kind=kind, file_name=file_name[:200],
        sha256=hashlib.sha256(content).hexdigest(), dry_run=dry_run, job=job,
        created_by=user if getattr(user, "pk", None) else None,
    )
    batch.source_file.save(
        (file_name[-100:] or "upload.xlsx") + ".sealed", ContentFile(seal(content)), save=False
    )
    batch.save()
    return batch


def batch_run(*, batch_id: int, as_of: date) -> ImportReport | None:
    """Run a queued import (the background task's one call), recording progress on its job.

    Returns None if the batch already ran.
    """
    batch = ImportBatch.objects.select_related("job", "created_by").get(pk=batch_id)
    if batch.status != ImportBatch.Status.QUEUED:
        return None
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.RUNNING)
    job = batch.job
    if job is not None:
        job_start(job)
    try:
        with batch.source_file.open("rb") as fh:
            content = unseal(fh.read())
        report = import_file(
            kind=batch.kind, company_id=batch.company_id, content=content,
            file_name=batch.file_name, as_of=as_of, dry_run=batch.dry_run,
            created_by_id=batch.created_by_id, batch=batch,
            progress=job_progress_reporter(job.pk, every=PROGRESS_EVERY) if job else None,
        )
    except Exception as exc:
        _forget_upload(batch)
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=ImportBatch.Status.FAILED, finished_at=timezone.now()
        )
        if job is not None:
            job_finish(job, error=f"{type(exc).__name__}: {exc}")
        raise
    _forget_upload(batch)
    if job is not None:
        Job.objects.filter(pk=job.pk).update(
            progress_done=report.rows_total, progress_total=report.rows_total
        )
        job_finish(job, result={"batch_id": batch.pk, "summary": report.summary()})
    return report


def _forget_upload(batch: ImportBatch) -> None:
    """Delete the uploaded file once it has been processed: only its digest is kept."""
    if batch.source_file:
        batch.source_file.delete(save=False)
        ImportBatch.objects.filter(pk=batch.pk).update(source_file="")


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in settings.FIELD_ENCRYPTION_KEYS])


def seal(content: bytes) -> bytes:
    """Encrypt a file for storage: uploads and error reports can hold ID-card numbers."""
    return _fernet().encrypt(content)


def unseal(token: bytes) -> bytes:
    """Decrypt a file written by :func:`seal`. Raises cryptography's InvalidToken."""
    return _fernet().decrypt(token)


def batch_error_report(*, batch: ImportBatch) -> bytes:
    """Return the marked .xlsx of a rejected batch. Raises FileNotFoundError without one."""
    if not batch.error_file:
        raise FileNotFoundError(batch.pk)
    with batch.error_file.open("rb") as fh:
        return unseal(fh.read())


def export_file(*, user: Any, kind: str, company: Company) -> bytes:
    """Build an export for ``user`` and record it in the audit trail.

    Exports carry residents' names and phones, so who took which file is kept. Raises
    AccessDenied (accounts.selectors) without a role that may export, KeyError for an unknown
    kind. ``user`` None is the command line.
    """
    if user is not None:
        export_allowed(user=user, company_id=company.pk)
    content = export_build(kind=kind, company=company)
    audit_record(
        actor=user, action="export", obj=company, company=company,
        detail={"kind": kind, "bytes": len(content)},
    )
    return content
