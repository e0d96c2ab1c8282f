"""Orders, payments, allocation (销账), surplus and refunds: the writes of the payments app.

Contract (other apps code against these signatures; implementations follow).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wuye.channels.base import PaymentResponse


class PaymentError(ValueError):
    """A payment request was refused; the message says what and why. Nothing was written."""


class BillInPendingOrder(PaymentError):
    """A chosen bill is already in another pending order (``bill_id``, ``order_id`` name it)."""

    def __init__(self, message: str, *, bill_id: int, order_id: int | None = None) -> None:
        super().__init__(message)
        self.bill_id = bill_id
        self.order_id = order_id


class OrderNotPending(PaymentError):
    """The order is paid or cancelled already."""


class InsufficientTender(PaymentError):
    """Cash tendered is less than the amount due."""


class PrepaidCardError(PaymentError):
    """The prepaid card is unknown, blocked, locked or the password is wrong."""


class RefundError(PaymentError):
    """A refund was refused: more than refundable, wrong role, channel declined…"""


def order_create(
    *,
    unit: Any,
    bill_ids: list[int],
    amount_fen: int | None = None,
    prepay_fen: int = 0,
    prepay_fee_item_id: int | None = None,
    channel: str,
    idempotency_key: str,
    cashier: Any,
    shift_id: int | None = None,
    now: datetime,
) -> Any:
    raise NotImplementedError


def cash_pay(*, order: Any, tendered_fen: int, now: datetime) -> Any:
    raise NotImplementedError


def prepaid_pay(
    *, order: Any, now: datetime, card_no: str | None = None, password: str | None = None
) -> Any:
    raise NotImplementedError


def payment_capture(*, order: Any, response: PaymentResponse, now: datetime) -> Any:
    raise NotImplementedError


def order_cancel(*, order: Any, now: datetime) -> Any:
    raise NotImplementedError


def refund_create(
    *,
    payment: Any,
    amount_fen: int,
    reason: str,
    requested_by: Any,
    approved_by: Any,
    now: datetime,
) -> Any:
    raise NotImplementedError
