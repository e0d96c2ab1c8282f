"""Admin for the merchant set-up: merchants per channel, fee rates, documents on file."""

from __future__ import annotations

from django.contrib import admin

from wuye.core.admin import CompanyScopedAdmin, CompanyScopedInline
from wuye.merchants.models import FeeRate, Merchant, MerchantDocument


class FeeRateInline(CompanyScopedInline):
    model = FeeRate
    fields = ("card_type", "rate_ppm", "cap_fen", "min_fen", "effective_from")


class DocumentInline(CompanyScopedInline):
    model = MerchantDocument
    fields = ("company", "kind", "title", "number", "issued_on", "expires_on", "file")


@admin.register(Merchant)
class MerchantAdmin(CompanyScopedAdmin):
    list_display = (
        "name",
        "channel",
        "merchant_no",
        "institution",
        "company",
        "settlement_days",
        "active",
    )
    list_filter = ("channel", "active", "company")
    search_fields = ("name", "merchant_no", "institution")
    filter_horizontal = ("communities", "fee_items")
    list_select_related = ("company",)
    inlines = [FeeRateInline, DocumentInline]


@admin.register(FeeRate)
class FeeRateAdmin(CompanyScopedAdmin):
    list_display = ("merchant", "card_type", "rate_ppm", "cap_fen", "min_fen", "effective_from")
    list_filter = ("card_type", "merchant__channel")
    search_fields = ("merchant__name", "merchant__merchant_no")
    list_select_related = ("merchant",)


@admin.register(MerchantDocument)
class MerchantDocumentAdmin(CompanyScopedAdmin):
    list_display = ("title", "kind", "company", "merchant", "community", "number", "expires_on")
    list_filter = ("kind", "company")
    search_fields = ("title", "number")
    date_hierarchy = "expires_on"
    list_select_related = ("company", "merchant", "community")
