"""The journal in the admin: read-only. A correction is a reversing entry, posted by code."""

from __future__ import annotations

from django.contrib import admin

from wuye.core.admin import CompanyScopedInline, ReadOnlyAdmin
from wuye.ledger.models import JournalEntry, JournalLine


class JournalLineInline(CompanyScopedInline):
    model = JournalLine
    extra = 0
    can_delete = False
    fields = ("account", "amount_fen", "community", "household", "fee_item", "channel", "cashier")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "effective_date", "kind", "memo", "company", "reverses", "created_at")
    list_filter = ("kind", "company")
    search_fields = ("memo", "idempotency_key")
    date_hierarchy = "effective_date"
    list_select_related = ("company",)
    inlines = [JournalLineInline]


@admin.register(JournalLine)
class JournalLineAdmin(ReadOnlyAdmin):
    list_display = (
        "entry",
        "account",
        "amount_fen",
        "community",
        "household",
        "fee_item",
        "channel",
    )
    list_filter = ("account",)
    search_fields = ("entry__memo", "household__label")
    list_select_related = ("entry", "community", "household", "fee_item")
