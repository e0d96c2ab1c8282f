"""Constants of the prepaid channel."""

CODE = "prepaid"
AVAILABLE_KEY = "available_fen"
"""``PaymentRequest.extra`` key: the balance the payments service found (and locked)."""
MAX_PASSWORD_TRIES = 5
"""Wrong card passwords in a row before the card locks (like a bank PIN)."""
