"""Settings of the QR payments core (WeChat Pay, Alipay), from the environment.

``CHANNELS``: dotted paths appended to ``WUYE_CHANNELS``. Anything else upper-case becomes
a Django setting.
"""

from __future__ import annotations

import os

CHANNELS: list[str] = []

WUYE_QR_EXPIRY_S = int(os.environ.get("WUYE_QR_EXPIRY_S", "900"))
"""How long a counter QR code stays payable (WeChat ``time_expire``, Alipay timeout)."""
WUYE_QR_MICROPAY_TIMEOUT_S = int(os.environ.get("WUYE_QR_MICROPAY_TIMEOUT_S", "60"))
"""How long a payment code left USERPAYING (entering the password) is polled before reversal."""
WUYE_QR_MICROPAY_POLL_S = float(os.environ.get("WUYE_QR_MICROPAY_POLL_S", "3"))
"""Seconds between queries of a USERPAYING payment code (``qr_scan``'s own loop)."""
WUYE_QR_AUTO_REFUND = os.environ.get("WUYE_QR_AUTO_REFUND", "1") != "0"
"""With ``Community.surplus_policy`` REFUND, refund a double QR payment through its channel
at once (0: leave it as a refund due for finance)."""
