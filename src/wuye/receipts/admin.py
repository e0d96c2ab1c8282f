"""Receipts in the admin: read only (issue, print and void go through the services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from wuye.receipts.models import Receipt, ReceiptSequence


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Receipt)
class ReceiptAdmin(_ReadOnly):
    list_display = (
        "number",
        "community",
        "kind",
        "household_label",
        "amount_fen",
        "issued_at",
        "state",
        "reprint_count",
    )
    list_filter = ("state", "kind")
    search_fields = ("number", "reference", "household_label")
    date_hierarchy = "issued_at"
    show_full_result_count = False
    list_select_related = ("community",)
    exclude = ("verify_token",)


@admin.register(ReceiptSequence)
class ReceiptSequenceAdmin(_ReadOnly):
    list_display = ("prefix", "community", "year", "last_seq")
