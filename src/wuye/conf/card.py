"""Settings of this part, read by wuye.settings (environment first, sensible defaults).

``CHANNELS``: dotted paths appended to ``WUYE_CHANNELS``. Anything else upper-case becomes
a Django setting.
"""

CHANNELS: list[str] = []
