"""Admin for fee items, fee standards with tiers, billing runs, bills, allocations, waivers.

Bills, allocations and runs are written by the billing engine and the payment services (with
their ledger entries), so the admin shows them read-only; fee items, standards and waiver
requests are entered here.
"""

from __future__ import annotations

from django.contrib import admin

from wuye.billing.models import (
    Allocation,
    Bill,
    BillingRun,
    FeeItem,
    FeeStandard,
    PriceTier,
    Waiver,
)
from wuye.core.admin import CompanyScopedAdmin, CompanyScopedInline, ReadOnlyAdmin


@admin.register(FeeItem)
class FeeItemAdmin(CompanyScopedAdmin):
    list_display = (
        "code",
        "name",
        "kind",
        "company",
        "due_days",
        "late_fee_enabled",
        "late_fee_daily_ppm",
        "late_fee_cap_percent",
        "prepay_offset",
        "active",
    )
    list_filter = ("kind", "late_fee_enabled", "active", "company")
    search_fields = ("code", "name")
    list_select_related = ("company",)


class PriceTierInline(CompanyScopedInline):
    model = PriceTier
    fields = ("up_to", "unit_price")


@admin.register(FeeStandard)
class FeeStandardAdmin(CompanyScopedAdmin):
    list_display = (
        "fee_item",
        "community",
        "unit_type",
        "method",
        "unit_price",
        "fixed_fen",
        "cycle_months",
        "vacant_percent",
        "effective_from",
    )
    list_filter = ("method", "community", "fee_item")
    search_fields = ("fee_item__name", "note")
    date_hierarchy = "effective_from"
    list_select_related = ("fee_item", "community")
    inlines = [PriceTierInline]


@admin.register(PriceTier)
class PriceTierAdmin(CompanyScopedAdmin):
    list_display = ("standard", "up_to", "unit_price")
    list_select_related = ("standard__fee_item",)


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "community",
        "period_start",
        "period_end",
        "status",
        "bills_created",
        "adjustments_created",
        "unchanged",
        "total_fen",
        "created_at",
    )
    list_filter = ("status", "community")
    date_hierarchy = "period_start"
    list_select_related = ("community",)


class AllocationInline(CompanyScopedInline):
    model = Allocation
    extra = 0
    can_delete = False
    fields = ("source", "amount_fen", "allocated_on", "reference", "entry", "reverses")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Bill)
class BillAdmin(ReadOnlyAdmin):
    list_display = (
        "unit",
        "fee_item",
        "period_start",
        "period_end",
        "kind",
        "revision",
        "amount_fen",
        "paid_fen",
        "waived_fen",
        "due_date",
        "community",
    )
    list_filter = ("kind", "fee_item", "community")
    search_fields = ("unit__label", "description")
    date_hierarchy = "period_start"
    list_select_related = ("unit", "fee_item", "community")
    inlines = [AllocationInline]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = ("bill", "source", "amount_fen", "allocated_on", "reference", "entry")
    list_filter = ("source",)
    search_fields = ("reference", "bill__unit__label")
    date_hierarchy = "allocated_on"
    list_select_related = ("bill__fee_item", "entry")


@admin.register(Waiver)
class WaiverAdmin(ReadOnlyAdmin):
    """Waivers are requested and approved through ``billing.waivers`` (with ledger entries)."""

    list_display = (
        "bill",
        "target",
        "amount_fen",
        "reason",
        "state",
        "requested_by",
        "approved_by",
        "decided_at",
    )
    list_filter = ("state", "target")
    search_fields = ("reason", "bill__unit__label")
    list_select_related = ("bill__fee_item", "requested_by", "approved_by")
