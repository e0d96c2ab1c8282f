"""What a QR channel (WeChat Pay, Alipay) adds to ``Channel``: the contract both implement.

``wuye.channels.qrpay`` owns everything the two share — the counter's QR page
(``counter_url``), the notification endpoint's handling, the background query/close job, the
double-payment policy — and talks to a provider only through this interface. An adapter maps
its provider's API onto it; the provider's own reference for a payment (微信订单号 /
支付宝交易号) is ``PaymentResponse.reference`` and our order number (``out_trade_no``) is the
request's ``idempotency_key``.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from wuye.channels.base import (
    Channel,
    ChannelResult,
    PaymentRequest,
    PaymentResponse,
    RefundResponse,
)
from wuye.ledger.models import AccountKind


class BadSignature(ValueError):
    """A provider message (notification or response) whose signature does not verify."""


@dataclass(frozen=True)
class QrCode:
    """A merchant-presented (主扫) code for one order: show ``code_url`` as a QR image."""

    code_url: str
    out_trade_no: str
    expires_at: datetime


@dataclass(frozen=True)
class Notification:
    """A verified payment or refund notification, mapped to our vocabulary.

    ``kind`` is ``payment`` or ``refund``; ``response`` carries the result, the amount the
    provider says it took (checked against the order by the caller, never trusted blindly), the
    provider's reference and ``details`` (``provider_txn_id``, ``funding_source``…).
    ``ack`` is the body the provider expects back once the notification is handled.
    """

    kind: str
    out_trade_no: str
    response: PaymentResponse
    ack_body: bytes
    ack_content_type: str
    raw: dict[str, Any] = field(default_factory=dict)


class QrChannel(Channel):
    """A QR payment provider. ``pay()`` means customer-presented (被扫) with the payment code in
    ``request.extra["auth_code"]``; ``precreate()`` is merchant-presented (主扫)."""

    clearing_account: ClassVar[AccountKind] = AccountKind.CLEARING
    counter_url: ClassVar[str | None] = "qrpay:order"
    notify_timeout_s: ClassVar[int] = 60
    """How long after payment we wait for a notification before querying."""

    @abstractmethod
    def precreate(self, request: PaymentRequest, *, expires_at: datetime) -> QrCode:
        """Create a dynamic QR for the order (WeChat ``native``, Alipay ``precreate``).

        Raise ``ChannelUnavailable`` (below) when the provider cannot be reached."""

    @abstractmethod
    def close(self, out_trade_no: str) -> ChannelResult:
        """Close an unpaid order (or cancel/reverse a micropay left USERPAYING): PROCESSED when
        closed, DECLINED when it was paid meanwhile (query it and post), UNDEFINED on timeout."""

    @abstractmethod
    def parse_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        """Verify and decode a notification; raise BadSignature (post nothing, answer 4xx)."""

    def refund_query(self, number: str) -> RefundResponse:
        """Ask the state of a refund that ``refund`` answered PENDING or UNDEFINED.

        ``number`` is the ``details["out_refund_no"]`` of that answer (our refund number at
        the provider). Optional (added after the first version of this interface): the
        default answers UNDEFINED, so such a refund waits for its notification.
        """
        return RefundResponse(ChannelResult.UNDEFINED, 0, "", "refund_query not implemented")


class ChannelUnavailable(RuntimeError):
    """The provider could not be reached for a call that moves no money (precreate, close)."""
