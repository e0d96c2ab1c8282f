"""Shifts and cash movements in the admin: read-only (they are written with their ledger
entries by ``counter.services``), scoped to the staff user's companies."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from wuye.core.admin import ReadOnlyAdmin, admin_company_ids
from wuye.counter.models import CashMovement, Shift


def _scoped(qs: QuerySet[Any], request: HttpRequest, path: str) -> QuerySet[Any]:
    ids = admin_company_ids(request.user)
    return qs if ids is None else qs.filter(**{f"{path}__in": ids})


@admin.register(Shift)
class ShiftAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "community",
        "counter_name",
        "cashier",
        "state",
        "opened_at",
        "closed_at",
        "opening_float_fen",
        "expected_cash_fen",
        "counted_cash_fen",
        "difference_fen",
    )
    list_filter = ("state", "community")
    date_hierarchy = "opened_at"
    list_select_related = ("community", "cashier")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _scoped(
            admin.ModelAdmin.get_queryset(self, request), request, "community__company_id"
        )


@admin.register(CashMovement)
class CashMovementAdmin(ReadOnlyAdmin):
    list_display = ("shift", "kind", "amount_fen", "reason", "created_at", "created_by", "entry")
    list_filter = ("kind",)
    date_hierarchy = "created_at"
    list_select_related = ("shift", "created_by", "entry")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _scoped(
            admin.ModelAdmin.get_queryset(self, request), request, "shift__community__company_id"
        )
