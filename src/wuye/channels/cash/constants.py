"""Constants of the cash channel."""

CODE = "cash"
TENDERED_KEY = "tendered_fen"
"""``PaymentRequest.extra`` key: what the payer handed over, in fen."""
