"""Read-only admin for payments: money records are changed through the services only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from wuye.payments.models import Order, OrderBill, Payment, PaymentAttempt, PrepaidCard, Refund


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: orders, payments and refunds move money with the ledger."""

    show_full_result_count = False

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class OrderBillInline(admin.TabularInline):
    model = OrderBill
    extra = 0
    can_delete = False
    readonly_fields = ("bill", "outstanding_fen", "late_fee_fen", "pending")

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "unit", "channel", "amount_fen", "state", "cashier", "created_at")
    list_filter = ("state", "channel")
    search_fields = ("idempotency_key", "unit__label")
    raw_id_fields = ("unit", "cashier", "shift", "prepay_fee_item")
    inlines = [OrderBillInline]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "unit",
        "channel",
        "amount_fen",
        "refunded_fen",
        "state",
        "receipt_number",
        "cashier",
        "paid_at",
    )
    list_filter = ("channel", "state", "surplus_to")
    search_fields = ("reference", "receipt_number", "rrn", "unit__label")
    raw_id_fields = ("order", "unit", "cashier", "shift", "entry")


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "channel", "amount_fen", "result", "reference", "created_at")
    list_filter = ("result", "channel")
    raw_id_fields = ("order", "payment")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "payment", "channel", "amount_fen", "approved_by", "created_at")
    raw_id_fields = ("payment", "requested_by", "approved_by", "shift", "entry")


@admin.register(PrepaidCard)
class PrepaidCardAdmin(ReadOnlyAdmin):
    # The password hash is never shown.
    list_display = ("id", "__str__", "unit", "active", "failed_tries", "locked_at")
    fields = ("unit", "active", "failed_tries", "locked_at", "issued_at")
    raw_id_fields = ("unit",)
