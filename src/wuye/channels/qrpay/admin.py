"""Read-only admin for the QR records: trades, notifications, exceptions and refunds."""

from __future__ import annotations

from django.contrib import admin

from wuye.channels.qrpay.models import QrException, QrNotification, QrRefund, QrTrade
from wuye.payments.admin import ReadOnlyAdmin


@admin.register(QrTrade)
class QrTradeAdmin(ReadOnlyAdmin):
    list_display = (
        "out_trade_no",
        "channel",
        "kind",
        "amount_fen",
        "state",
        "funding_source",
        "recovered_by_query",
        "created_at",
    )
    list_filter = ("channel", "kind", "state", "recovered_by_query")
    search_fields = ("out_trade_no", "provider_txn_id")


@admin.register(QrNotification)
class QrNotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "notify_id",
        "channel",
        "kind",
        "out_trade_no",
        "amount_fen",
        "outcome",
        "times",
        "received_at",
    )
    list_filter = ("channel", "outcome", "kind")
    search_fields = ("notify_id", "out_trade_no", "reference")


@admin.register(QrException)
class QrExceptionAdmin(ReadOnlyAdmin):
    list_display = (
        "channel",
        "kind",
        "out_trade_no",
        "reference",
        "expected_fen",
        "reported_fen",
        "created_at",
        "resolved_at",
    )
    list_filter = ("channel", "kind")
    search_fields = ("out_trade_no", "reference")


@admin.register(QrRefund)
class QrRefundAdmin(ReadOnlyAdmin):
    list_display = (
        "out_refund_no",
        "channel",
        "payment",
        "amount_fen",
        "state",
        "automatic",
        "created_at",
        "completed_at",
    )
    list_filter = ("channel", "state", "automatic")
    search_fields = ("out_refund_no", "provider_ref")
