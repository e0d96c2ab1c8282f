"""The import log and imported opening balances in the admin: read-only, company-scoped.

Imports are made through the import page or ``wuye import``; the admin only shows them.
"""

from __future__ import annotations

from django.contrib import admin

from wuye.core.admin import ReadOnlyAdmin
from wuye.imports.models import ImportBatch, OpeningBalance


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "company", "kind", "file_name", "dry_run", "status", "rows_total",
        "created_count", "updated_count", "unchanged_count", "error_count", "created_by",
        "created_at",
    )
    list_filter = ("kind", "status", "dry_run")
    search_fields = ("file_name", "sha256")
    list_select_related = ("company", "created_by")
    exclude = ("source_file", "error_file")


@admin.register(OpeningBalance)
class OpeningBalanceAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "company", "kind", "unit", "fee_item", "period_start", "period_end",
        "amount_fen", "entry", "batch", "created_at",
    )
    list_filter = ("kind",)
    search_fields = ("unit__label", "row_key", "note")
    list_select_related = ("company", "unit", "fee_item", "entry", "batch")
