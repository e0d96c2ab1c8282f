"""Constants of the Alipay channel (OpenAPI gateway, RSA2)."""

from __future__ import annotations

CODE = "alipay"

# OpenAPI methods Wuye calls.
PRECREATE = "alipay.trade.precreate"
PAY = "alipay.trade.pay"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
CANCEL = "alipay.trade.cancel"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
BILL_URL = "alipay.data.dataservice.bill.downloadurl.query"
METHODS = (PRECREATE, PAY, QUERY, CLOSE, CANCEL, REFUND, REFUND_QUERY, BILL_URL)

# Gateway result codes (``code`` of every ``*_response``).
SUCCESS = "10000"
WAITING = "10003"  # alipay.trade.pay: the buyer must confirm in the wallet (WAIT_BUYER_PAY)
UNKNOWN = "20000"  # service temporarily unavailable: the outcome is unknown
AUTH_FAILED = "20001"
MISSING_PARAM = "40001"
INVALID_PARAM = "40002"
BUSINESS_FAILED = "40004"

# trade_status values.
WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"
TRADE_CLOSED = "TRADE_CLOSED"

TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"

FUNDING_LABELS = {
    "PCREDIT": "花呗",
    "ALIPAYACCOUNT": "余额",
    "BANKCARD": "银行卡",
    "DEBIT_CARD": "借记卡",
    "CREDIT_CARD": "信用卡",
    "MCARD": "商家储值卡",
    "PCARD": "预付卡",
    "POINT": "集分宝",
    "COUPON": "红包",
    "MCOUPON": "商家红包",
    "DISCOUNT": "折扣券",
}
"""``fund_bill_list[].fund_channel`` → what the receipt says (``花呗/PCREDIT``)."""

CREDIT_FUNDING = frozenset({"PCREDIT", "CREDIT_CARD"})
"""Funding that the merchant contract prices at the credit rate (``qr_credit``)."""

NOTIFY_ACK = b"success"
"""What Alipay expects back from a notification once it is handled."""

TIMEOUT_S = 10.0
"""Default timeout of every gateway call."""
