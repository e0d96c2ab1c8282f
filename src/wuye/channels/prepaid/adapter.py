"""The prepaid-balance channel: money already held for the household.

The balance lives in the ledger (PREPAID lines of the household); the payments service locks
the household, checks the card and its password, and passes the spendable balance in
``extra['available_fen']``. This adapter only decides from it, like a provider would.
"""

from __future__ import annotations

from typing import Any

from wuye.channels.base import (
    Channel,
    ChannelResult,
    PaymentRequest,
    PaymentResponse,
    RefundRequest,
    RefundResponse,
)
from wuye.channels.prepaid.constants import AVAILABLE_KEY, CODE
from wuye.ledger.models import AccountKind


class PrepaidChannel(Channel):
    """Spend the household's prepaid balance (Dr PREPAID per household); refunds go back to it."""

    code = CODE
    name = "预存余额"
    clearing_account = AccountKind.PREPAID

    def clearing_dims(
        self, *, community_id: int, unit_id: int, cashier_id: int | None
    ) -> dict[str, Any]:
        return {"community_id": community_id, "household_id": unit_id}

    def pay(self, request: PaymentRequest) -> PaymentResponse:
        """Accept when the available balance covers the amount."""
        available = request.extra.get(AVAILABLE_KEY, 0)
        if not isinstance(available, int) or available < request.amount_fen:
            return PaymentResponse(
                ChannelResult.DECLINED, request.amount_fen, "", message="预存余额不足"
            )
        return PaymentResponse(
            ChannelResult.PROCESSED,
            request.amount_fen,
            f"prepaid:{request.idempotency_key}",
            details={"funding_source": "prepaid"},
        )

    def refund(self, request: RefundRequest) -> RefundResponse:
        """A refund goes back to the balance: always processed."""
        return RefundResponse(
            ChannelResult.PROCESSED,
            request.amount_fen,
            f"prepaid-refund:{request.idempotency_key}",
        )

    def query(self, reference: str) -> PaymentResponse:
        return PaymentResponse(ChannelResult.PROCESSED, 0, reference)
