"""The interface every payment channel implements, and the guide to adding one.

A channel is a class with a ``code`` and a ``clearing_account`` that turns a
``PaymentRequest`` into a ``PaymentResponse`` (and a ``RefundRequest`` into a
``RefundResponse``). It never touches orders, bills or the ledger: ``wuye.payments`` does that
with whatever the channel answers. So a new channel (bank card, WeChat Pay/Alipay QR…) plugs
in without touching order code:

1. Make a package ``wuye/channels/<code>/`` with ``adapter.py`` (a ``Channel`` subclass),
   ``constants.py`` (result codes, timeouts) and, for a networked channel, a thin client with a
   timeout on every call plus recorded provider messages as test fixtures.
2. Set ``code`` (short, stable: it is written on ledger lines and payments) and
   ``clearing_account``: ``AccountKind.CASH`` for cash in a drawer, ``AccountKind.PREPAID``
   for a household's prepaid balance, ``AccountKind.CLEARING`` for money in transit through a
   provider (card, QR) until settlement.
3. Implement ``pay``, ``refund`` and ``query``. Map every provider answer to a
   ``ChannelResult``. A timeout or a lost connection is ``UNDEFINED`` — *never* a failure: the
   money may have moved, so the caller queues an inquiry (``query``) or a reversal. A request
   that provably never left the machine is ``NOT_SENT``. A clear refusal is ``DECLINED``.
4. Put the channel facts in ``details`` (keys from ``DETAIL_KEYS``: rrn, auth_code,
   masked_pan, card_type, tid, batch, stan, provider_txn_id, funding_source). Card data: a
   masked PAN only (first 6 + last 4, ``mask_pan``); never a full PAN, track data, PIN, PIN
   block or CVV, not in ``details``, not in ``message``, not in a log line.
5. Add the dotted path of the class to ``settings.WUYE_CHANNELS``; ``registry.channel_get``
   finds it by ``code``. Money then reaches the ledger through
   ``wuye.payments.services.payment_capture``: PROCESSED posts Dr ``clearing_account`` /
   Cr RECEIVABLE (and any surplus), idempotent on ``reference``.

``idempotency_key`` on requests is the caller's key for this attempt; a networked channel sends
it to the provider (out_trade_no, merchant order number) so a retry can never charge twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from wuye.ledger.models import AccountKind

DETAIL_KEYS = (
    "rrn",
    "auth_code",
    "masked_pan",
    "card_type",
    "tid",
    "batch",
    "stan",
    "provider_txn_id",
    "funding_source",
)
"""Channel facts a response may carry in ``details``; payments copies them onto the Payment."""


class ChannelResult(StrEnum):
    """The shared answer vocabulary of every channel."""

    PROCESSED = "processed"  # the money moved
    PENDING = "pending"  # accepted; the final answer comes later (notification or query)
    DECLINED = "declined"  # refused; no money moved
    UNDEFINED = "undefined"  # no answer (timeout…): not a failure; query or reverse later
    NOT_SENT = "not_sent"  # never left this machine; safe to retry with the same key


@dataclass(frozen=True)
class PaymentRequest:
    """Ask a channel to take ``amount_fen`` for an order."""

    order_id: int
    amount_fen: int
    idempotency_key: str
    community_id: int
    unit_id: int
    cashier_id: int | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentResponse:
    """What the channel answered. ``reference`` is the channel's own id for the payment."""

    result: ChannelResult
    amount_fen: int
    reference: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    """Ask a channel to give back ``amount_fen`` of the payment known as ``payment_reference``."""

    payment_id: int
    payment_reference: str
    amount_fen: int
    idempotency_key: str
    community_id: int
    unit_id: int
    cashier_id: int | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResponse:
    """What the channel answered about a refund."""

    result: ChannelResult
    amount_fen: int
    reference: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def mask_pan(pan: str) -> str:
    """Return a card number masked to first 6 + last 4 (``622848******1234``).

    Raise ValueError for something that is not 12–19 digits.
    """
    digits = "".join(ch for ch in pan if ch.isdigit())
    if not 12 <= len(digits) <= 19 or len(digits) != len(pan.replace(" ", "")):
        raise ValueError("card number: 12 to 19 digits expected")
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


class Channel(ABC):
    """A way of paying. Subclass it in ``wuye/channels/<code>/adapter.py``; see the module doc.

    Adapters hold no per-request state: the registry keeps one instance per process.
    """

    code: ClassVar[str]
    """Short stable code (``cash``, ``prepaid``, ``card``, ``wechat``…)."""
    name: ClassVar[str] = ""
    """Human name (Chinese source string; translate at display)."""
    clearing_account: ClassVar[AccountKind]
    """Where the money sits once taken: CASH, PREPAID or CLEARING."""
    counter_url: ClassVar[str | None] = None
    """URL name (one argument: the order's pk) of the page that takes this channel's money at
    the counter once the order exists — the card terminal's or the QR code's waiting page. None
    for channels the counter pays inline (cash, prepaid). The page sends the cashier on to
    ``counter:order`` when the order is settled."""

    def clearing_dims(
        self, *, community_id: int, unit_id: int, cashier_id: int | None
    ) -> dict[str, Any]:
        """Return the ledger dimensions of the clearing-account line for a payment.

        Default: community and channel (the CLEARING account is per channel). Cash adds the
        cashier (a drawer per cashier); prepaid adds the household (its balance).
        """
        return {"community_id": community_id, "channel": self.code}

    @abstractmethod
    def pay(self, request: PaymentRequest) -> PaymentResponse:
        """Take the money. Never raise for a provider refusal or a timeout: answer it."""

    @abstractmethod
    def refund(self, request: RefundRequest) -> RefundResponse:
        """Give (part of) a payment back through this channel."""

    @abstractmethod
    def query(self, reference: str) -> PaymentResponse:
        """Ask what became of a payment (after UNDEFINED or PENDING)."""
