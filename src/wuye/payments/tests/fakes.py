"""A card-like channel for tests: it answers what the test tells it to, like a terminal."""

from __future__ import annotations

from wuye.channels.base import (
    Channel,
    ChannelResult,
    PaymentRequest,
    PaymentResponse,
    RefundRequest,
    RefundResponse,
)
from wuye.ledger.models import AccountKind


class FakeCardChannel(Channel):
    code = "fakecard"
    name = "测试银行卡"
    clearing_account = AccountKind.CLEARING
    refund_result = ChannelResult.PROCESSED

    def pay(self, request: PaymentRequest) -> PaymentResponse:
        return PaymentResponse(
            ChannelResult.PROCESSED,
            request.amount_fen,
            f"rrn-{request.idempotency_key}",
            details={"rrn": "123456789012", "masked_pan": "622848******1234", "card_type": "debit"},
        )

    def refund(self, request: RefundRequest) -> RefundResponse:
        return RefundResponse(
            self.refund_result, request.amount_fen, f"r-{request.idempotency_key}"
        )

    def query(self, reference: str) -> PaymentResponse:
        return PaymentResponse(ChannelResult.PROCESSED, 0, reference)


FAKE_CHANNELS = [
    "wuye.channels.cash.adapter.CashChannel",
    "wuye.channels.prepaid.adapter.PrepaidChannel",
    "wuye.payments.tests.fakes.FakeCardChannel",
]
