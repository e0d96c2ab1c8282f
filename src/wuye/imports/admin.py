"""The import log and opening balances in the admin: read-only (imports go through /imports/).

Uploaded files and error reports are sealed at rest and may hold ID-card numbers, so the admin
does not offer them; the import pages do, to the people allowed to see them.
"""

from __future__ import annotations

from django.contrib import admin

from wuye.core.admin import ReadOnlyAdmin
from wuye.imports.models import ImportBatch, OpeningBalance


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "company",
        "kind",
        "file_name",
        "dry_run",
        "status",
        "rows_total",
        "created_count",
        "updated_count",
        "unchanged_count",
        "error_count",
        "created_at",
    )
    list_filter = ("status", "kind", "dry_run", "company")
    search_fields = ("file_name", "sha256")
    date_hierarchy = "created_at"
    fields = (
        "company",
        "kind",
        "file_name",
        "sha256",
        "dry_run",
        "status",
        "rows_total",
        "created_count",
        "updated_count",
        "unchanged_count",
        "error_count",
        "job",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_select_related = ("company",)


@admin.register(OpeningBalance)
class OpeningBalanceAdmin(ReadOnlyAdmin):
    list_display = (
        "unit",
        "kind",
        "fee_item",
        "period_start",
        "period_end",
        "amount_fen",
        "company",
        "batch",
        "created_at",
    )
    list_filter = ("kind", "company")
    search_fields = ("unit__label", "row_key", "note")
    list_select_related = ("unit", "fee_item", "company")
