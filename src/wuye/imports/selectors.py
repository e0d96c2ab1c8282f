"""Reads for imports and exports: which company, what to export, who may see it.

Every export is written in the same layout as the import template of its kind, so an
exported file re-imports as it is (``balances`` is a report and has no import).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet, Sum

from wuye.accounts.models import Membership, Role
from wuye.accounts.selectors import require_role
from wuye.estates.models import Company, MeterReading, ParkingSpace, Resident, Unit
from wuye.imports.models import ImportBatch, OpeningBalance
from wuye.imports.specs import BALANCES, EXPORT_KINDS, SPECS
from wuye.imports.xlsx import workbook_bytes
from wuye.ledger.models import AccountKind, JournalLine

# Roles that may download a company's data (residents' ID numbers are masked in exports).
EXPORT_ROLES = {Role.ADMIN.value, Role.MANAGER.value, Role.FINANCE.value, Role.AUDITOR.value}


class CompanyNotFound(LookupError):
    """No company has that id or unified social credit code."""


def company_resolve(*, ref: str) -> Company:
    """Find a company by primary key or 统一社会信用代码. Raises CompanyNotFound."""
    ref = ref.strip()
    company = Company.objects.filter(uscc=ref.upper()).first()
    if company is None and ref.isdigit():
        company = Company.objects.filter(pk=int(ref)).first()
    if company is None:
        raise CompanyNotFound(ref)
    return company


def companies_for_import(*, user: Any) -> QuerySet[Company]:
    """Companies ``user`` may import into: those where they are an administrator."""
    if user.is_superuser:
        return Company.objects.order_by("name")
    ids = Membership.objects.filter(user=user, role=Role.ADMIN).values_list("company_id")
    return Company.objects.filter(pk__in=ids).order_by("name")


def companies_for_export(*, user: Any) -> QuerySet[Company]:
    if user.is_superuser:
        return Company.objects.order_by("name")
    ids = Membership.objects.filter(user=user, role__in=EXPORT_ROLES).values_list("company_id")
    return Company.objects.filter(pk__in=ids).order_by("name")


def batches_for_user(*, user: Any, limit: int = 20) -> QuerySet[ImportBatch]:
    qs = ImportBatch.objects.select_related("company", "job", "created_by")
    if not user.is_superuser:
        ids = Membership.objects.filter(user=user, role=Role.ADMIN).values_list("company_id")
        qs = qs.filter(company_id__in=ids)
    return qs.order_by("-id")[:limit]


def batch_for_user(*, user: Any, batch_id: int) -> ImportBatch:
    """Return an import batch the user may see. Raises ImportBatch.DoesNotExist or
    AccessDenied."""
    batch = ImportBatch.objects.select_related("company", "job").get(pk=batch_id)
    require_role(user, {Role.ADMIN.value}, company_id=batch.company_id)
    return batch


def _unit_rows(company: Company) -> Iterator[dict[str, Any]]:
    qs = (
        Unit.objects.filter(community__company=company)
        .select_related("community", "building")
        .order_by("community__code", "building__code", "room_no")
    )
    for u in qs.iterator(chunk_size=2000):
        yield {
            "community": u.community.code, "building": u.building.code,
            "building_name": u.building.name, "room": u.room_no, "floor": u.floor,
            "area_m2": u.area_m2, "inner_area_m2": u.inner_area_m2, "unit_type": u.unit_type,
            "state": u.state, "handover_date": u.handover_date,
        }


def _resident_rows(company: Company) -> Iterator[dict[str, Any]]:
    qs = (
        Resident.objects.filter(unit__community__company=company)
        .select_related("unit__community", "unit__building")
        .defer("id_card")  # never decrypted for an export: the mask is what leaves
        .order_by("unit__community__code", "unit__building__code", "unit__room_no", "id")
    )
    for r in qs.iterator(chunk_size=2000):
        yield {
            "community": r.unit.community.code, "building": r.unit.building.code,
            "room": r.unit.room_no, "name": r.name, "role": r.role, "phone": r.phone,
            "id_card": r.id_card_masked, "is_primary": r.is_primary,
            "move_in_date": r.move_in_date,
        }


def _parking_rows(company: Company) -> Iterator[dict[str, Any]]:
    qs = (
        ParkingSpace.objects.filter(community__company=company)
        .select_related("community", "unit")
        .order_by("community__code", "code")
    )
    for p in qs.iterator(chunk_size=2000):
        yield {
            "community": p.community.code, "code": p.code, "kind": p.kind,
            "unit": p.unit.label if p.unit else "", "plate_no": p.plate_no,
            "area_m2": p.area_m2,
        }


def _reading_rows(company: Company) -> Iterator[dict[str, Any]]:
    qs = (
        MeterReading.objects.filter(meter__community__company=company)
        .select_related("meter__community", "meter__unit")
        .order_by("meter__community__code", "meter__serial_no", "read_date")
    )
    for r in qs.iterator(chunk_size=2000):
        m = r.meter
        yield {
            "community": m.community.code, "serial_no": m.serial_no, "meter_kind": m.kind,
            "unit": m.unit.label if m.unit else "", "read_date": r.read_date,
            "value": r.value, "is_replacement": r.is_replacement,
        }


def _opening_rows(company: Company) -> Iterator[dict[str, Any]]:
    qs = (
        OpeningBalance.objects.filter(company=company)
        .select_related("unit__community", "unit__building", "fee_item", "bill")
        .order_by("unit__community__code", "unit__building__code", "unit__room_no", "kind",
                  "period_start")
    )
    for ob in qs.iterator(chunk_size=2000):
        arrears = ob.kind == OpeningBalance.Kind.ARREARS
        yield {
            "community": ob.unit.community.code, "building": ob.unit.building.code,
            "room": ob.unit.room_no, "fee_item": ob.fee_item.code if ob.fee_item else "",
            "period_start": ob.period_start,
            "period_end": ob.period_end - timedelta(days=1) if ob.period_end else None,
            "owed_fen": ob.amount_fen if arrears else None,
            "prepaid_fen": None if arrears else ob.amount_fen,
            "due_date": ob.bill.due_date if ob.bill else None, "note": ob.note,
        }


def household_balances(*, company: Company) -> list[dict[str, Any]]:
    """Per household with a balance: owed (receivable, fen) and prepaid (fen), from the ledger.

    One grouped query over the journal; households with neither are left out.
    """
    sums: dict[int, dict[str, int]] = {}
    for household_id, account, total in (
        JournalLine.objects.filter(
            entry__company=company,
            account__in=[AccountKind.RECEIVABLE, AccountKind.PREPAID],
            household__isnull=False,
        )
        .values("household_id", "account")
        .annotate(total=Sum("amount_fen"))
        .values_list("household_id", "account", "total")
    ):
        sums.setdefault(household_id, {})[account] = int(total or 0)
    owners = dict(
        Resident.objects.filter(unit_id__in=list(sums), role=Resident.Role.OWNER)
        .order_by("unit_id", "-is_primary", "id")
        .values_list("unit_id", "name")
        .reverse()  # the first owner (primary first) wins in the dict
    )
    rows = []
    units = (
        Unit.objects.filter(pk__in=list(sums))
        .select_related("community", "building")
        .order_by("community__code", "building__code", "room_no")
    )
    for u in units:
        owed = sums[u.pk].get(AccountKind.RECEIVABLE.value, 0)
        prepaid = -sums[u.pk].get(AccountKind.PREPAID.value, 0)
        if not owed and not prepaid:
            continue
        rows.append({
            "unit_id": u.pk, "community": u.community.code, "community_name": u.community.name,
            "building": u.building.code, "room": u.room_no, "label": u.label,
            "owner": owners.get(u.pk, ""), "owed_fen": owed, "prepaid_fen": prepaid,
        })
    return rows


ROW_SOURCES = {
    "units": _unit_rows,
    "residents": _resident_rows,
    "parking": _parking_rows,
    "readings": _reading_rows,
    "opening": _opening_rows,
}


def export_build(*, kind: str, company: Company) -> bytes:
    """Return an .xlsx of the company's ``kind`` data in its import layout.

    Raises KeyError for an unknown kind.
    """
    if kind not in EXPORT_KINDS:
        raise KeyError(kind)
    if kind == "balances":
        return workbook_bytes(BALANCES, household_balances(company=company),
                              with_instructions=False)
    return workbook_bytes(SPECS[kind], ROW_SOURCES[kind](company))


def export_allowed(*, user: Any, company_id: int) -> None:
    """Raise AccessDenied unless ``user`` may download the company's data."""
    require_role(user, EXPORT_ROLES, company_id=company_id)

