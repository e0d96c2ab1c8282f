"""Reads for payments: an order's payment, what is still refundable, allocations, totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, Sum

from wuye.billing.models import Allocation
from wuye.channels.base import ChannelResult
from wuye.payments.models import Order, Payment, PaymentAttempt, PrepaidCard, Refund


def order_by_key(*, idempotency_key: str) -> Order | None:
    """Return the order made with ``idempotency_key``, or None."""
    return Order.objects.filter(idempotency_key=idempotency_key).first()


def attempts_unresolved(*, created_before: datetime | None = None) -> list[PaymentAttempt]:
    """Return attempts answered PENDING or UNDEFINED whose order is still unpaid, oldest first.

    These are the inquiries to make (``services.payment_inquire``): no answer is never a
    failure, so each one is asked again until the channel says PROCESSED or DECLINED.
    """
    qs = PaymentAttempt.objects.filter(
        result__in=[ChannelResult.PENDING, ChannelResult.UNDEFINED],
        payment__isnull=True,
        order__state=Order.State.PENDING,
    )
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    return list(qs.order_by("created_at", "pk"))


def order_payment(*, order_id: int) -> Payment | None:
    """Return the (first) payment of an order, or None while it is unpaid."""
    return Payment.objects.filter(order_id=order_id).order_by("pk").first()


def payment_allocations(*, payment: Payment) -> list[Allocation]:
    """Return the allocations of ``payment`` and the reversals of them, oldest first."""
    return list(
        Allocation.objects.filter(
            Q(reference=payment.allocation_reference)
            | Q(reverses__reference=payment.allocation_reference)
        )
        .select_related("bill__fee_item")
        .order_by("pk")
    )


def payment_refundable_fen(*, payment_id: int) -> int:
    """Return what can still be refunded of a payment (paid minus refunded), in fen."""
    row = Payment.objects.filter(pk=payment_id).values_list("amount_fen", "refunded_fen").get()
    return int(row[0]) - int(row[1])


def prepaid_cards_of(*, unit_id: int) -> list[PrepaidCard]:
    """Return the household's prepaid cards, newest first."""
    return list(PrepaidCard.objects.filter(unit_id=unit_id).order_by("-pk"))


@dataclass(frozen=True)
class ChannelTotals:
    """Money per channel over a shift or a period: what came in and what went back."""

    channel: str
    payments: int
    paid_fen: int
    change_fen: int
    refunds: int
    refunded_fen: int

    @property
    def net_fen(self) -> int:
        return self.paid_fen - self.refunded_fen


def payment_totals(
    *,
    community_id: int | None = None,
    shift_id: int | None = None,
    cashier_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, ChannelTotals]:
    """Return ``{channel: ChannelTotals}`` of payments and refunds matching every filter.

    ``start``/``end`` are half-open ``[start, end)`` on the payment's and the refund's own
    time, so a refund today of last week's payment counts today. Two grouped queries.
    """
    payments = Payment.objects.all()
    refunds = Refund.objects.all()
    if community_id is not None:
        payments = payments.filter(community_id=community_id)
        refunds = refunds.filter(payment__community_id=community_id)
    if shift_id is not None:
        payments = payments.filter(shift_id=shift_id)
        refunds = refunds.filter(shift_id=shift_id)
    if cashier_id is not None:
        payments = payments.filter(cashier_id=cashier_id)
        refunds = refunds.filter(requested_by_id=cashier_id)
    if start is not None:
        payments = payments.filter(paid_at__gte=start)
        refunds = refunds.filter(created_at__gte=start)
    if end is not None:
        payments = payments.filter(paid_at__lt=end)
        refunds = refunds.filter(created_at__lt=end)
    paid: dict[str, dict[str, Any]] = {
        row["channel"]: dict(row)
        for row in payments.values("channel").annotate(
            n=Count("id"), s=Sum("amount_fen"), c=Sum("change_fen")
        )
    }
    back: dict[str, dict[str, Any]] = {
        row["channel"]: dict(row)
        for row in refunds.values("channel").annotate(n=Count("id"), s=Sum("amount_fen"))
    }
    out: dict[str, ChannelTotals] = {}
    for channel in sorted(set(paid) | set(back)):
        p: dict[str, Any] = paid.get(channel, {})
        r: dict[str, Any] = back.get(channel, {})
        out[channel] = ChannelTotals(
            channel=channel,
            payments=int(p.get("n") or 0),
            paid_fen=int(p.get("s") or 0),
            change_fen=int(p.get("c") or 0),
            refunds=int(r.get("n") or 0),
            refunded_fen=int(r.get("s") or 0),
        )
    return out
