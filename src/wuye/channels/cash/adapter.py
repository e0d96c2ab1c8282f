"""The cash channel: no provider, the answer is immediate."""

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
from wuye.channels.cash.constants import CODE, TENDERED_KEY
from wuye.ledger.models import AccountKind


class CashChannel(Channel):
    """Cash into the cashier's drawer (Dr CASH per cashier); change = tendered − amount."""

    code = CODE
    name = "现金"
    clearing_account = AccountKind.CASH

    def clearing_dims(
        self, *, community_id: int, unit_id: int, cashier_id: int | None
    ) -> dict[str, Any]:
        return {"community_id": community_id, "channel": self.code, "cashier_id": cashier_id}

    def pay(self, request: PaymentRequest) -> PaymentResponse:
        """Accept when tendered ≥ amount; ``details['change_fen']`` is what to hand back."""
        tendered = request.extra.get(TENDERED_KEY, request.amount_fen)
        if not isinstance(tendered, int) or tendered < request.amount_fen:
            return PaymentResponse(
                ChannelResult.DECLINED, request.amount_fen, "", message="付款金额不足"
            )
        return PaymentResponse(
            ChannelResult.PROCESSED,
            request.amount_fen,
            f"cash:{request.idempotency_key}",
            details={"tendered_fen": tendered, "change_fen": tendered - request.amount_fen},
        )

    def refund(self, request: RefundRequest) -> RefundResponse:
        """Cash is handed back from the drawer: always processed."""
        return RefundResponse(
            ChannelResult.PROCESSED, request.amount_fen, f"cash-refund:{request.idempotency_key}"
        )

    def query(self, reference: str) -> PaymentResponse:
        """Cash never leaves an open question."""
        return PaymentResponse(ChannelResult.PROCESSED, 0, reference)
