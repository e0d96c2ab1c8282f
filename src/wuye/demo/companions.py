"""Processes ``wuye demo`` starts next to the web server and the task worker.

Each part that has something to run in the demo (a simulator, the demo POS terminal) adds one
entry: a name and the ``wuye`` sub-command line. ``serve --with-companions`` starts them in this
order and stops them with the server.
"""

from __future__ import annotations

DEMO_COMPANIONS: list[tuple[str, list[str]]] = [
    ("acquirer simulator", ["sim", "acquirer", "--port", "8583"]),
    ("WeChat Pay simulator", ["sim", "wechat", "--port", "8601"]),
    ("Alipay simulator", ["sim", "alipay", "--port", "8602"]),
    ("QR payments poll (lost notifications, expiry)", ["qr", "poll", "--every", "10"]),
    ("reconciliation inbox (files dropped in var/recon-inbox are imported)", ["reconcile", "watch", "--inbox", "var/recon-inbox"]),  # noqa: E501
    ("demo POS terminal", ["terminal", "run", "--tid", "10000001", "--headless", "--auto-card", "6222021000000000017", "--auto-pin", "123456"]),  # noqa: E501
]
