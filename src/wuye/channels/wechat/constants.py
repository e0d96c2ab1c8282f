"""Constants of the WeChat Pay channel."""

from __future__ import annotations

CODE = "wechat"

NATIVE = "/v3/pay/transactions/native"
QUERY_OUT_TRADE_NO = "/v3/pay/transactions/out-trade-no/{out_trade_no}"
QUERY_ID = "/v3/pay/transactions/id/{transaction_id}"
CLOSE = "/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
REFUNDS = "/v3/refund/domestic/refunds"
REFUND_QUERY = "/v3/refund/domestic/refunds/{out_refund_no}"
TRADEBILL = "/v3/bill/tradebill"
MICROPAY = "/pay/micropay"
ORDERQUERY = "/pay/orderquery"
REVERSE = "/secapi/pay/reverse"

# v3 trade_state → what it means for us.
PAID_STATES = frozenset({"SUCCESS", "REFUND"})
OPEN_STATES = frozenset({"NOTPAY", "USERPAYING", "ACCEPT"})
DEAD_STATES = frozenset({"CLOSED", "REVOKED", "PAYERROR"})

BALANCE_BANK_TYPE = "OTHERS"
"""``bank_type`` of a payment from the WeChat balance (零钱); cards are ``<BANK>_DEBIT|CREDIT``."""

# WeChat's notification back-off after a failed delivery (seconds): 15s/15s/30s/3m/10m/20m/
# 30m/30m/30m/60m/3h/3h/3h/6h/6h, 24h4m in all.
NOTIFY_BACKOFF_S = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)


def funding_source(bank_type: str) -> str:
    """Return the receipt's funding source for a WeChat ``bank_type``."""
    if not bank_type:
        return ""
    if bank_type == BALANCE_BANK_TYPE:
        return "零钱/OTHERS"
    if bank_type.endswith("_CREDIT"):
        return f"信用卡/{bank_type}"[:32]
    if bank_type.endswith("_DEBIT"):
        return f"储蓄卡/{bank_type}"[:32]
    return bank_type[:32]
