"""Settings of this part, read by wuye.settings (environment first, sensible defaults).

``CHANNELS``: dotted paths appended to ``WUYE_CHANNELS``. Anything else upper-case becomes
a Django setting.
"""

import os

CHANNELS: list[str] = ["wuye.channels.card.adapter.CardChannel"]

# How long a purchase pushed to a terminal waits for the terminal to start it (docs/terminal-api.md
# ``expires_at``); a void or refund waits longer (finance may walk to the counter).
WUYE_CARD_REQUEST_TTL_S = int(os.environ.get("WUYE_CARD_REQUEST_TTL_S", "120"))
WUYE_CARD_REFUND_TTL_S = int(os.environ.get("WUYE_CARD_REFUND_TTL_S", "600"))
# A terminal silent for longer than this shows offline; offline longer than the second is flagged.
WUYE_TERMINAL_OFFLINE_AFTER_S = int(os.environ.get("WUYE_TERMINAL_OFFLINE_AFTER_S", "120"))
WUYE_TERMINAL_OFFLINE_TOO_LONG_S = int(os.environ.get("WUYE_TERMINAL_OFFLINE_TOO_LONG_S", "1800"))
