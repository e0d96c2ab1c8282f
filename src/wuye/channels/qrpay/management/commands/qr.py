"""``wuye qr poll [--every SECONDS]``: recover lost notifications, close expired QR orders.

Once, or in a loop (the demo runs ``wuye qr poll --every 10`` next to the server). Each round
is ``qrpay.services.qr_poll_due``: orders whose notification is overdue are queried and
posted, expired ones closed and their orders cancelled, processing refunds finished.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils import timezone

from wuye.channels.qrpay.services import qr_poll_due


class Command(BaseCommand):
    help = "扫码支付后台查询 (QR payments: query overdue orders, close expired ones)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["poll"])
        parser.add_argument(
            "--every", type=float, default=0.0, help="每隔多少秒重复 (repeat every N seconds)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        every = float(opts["every"])
        while True:
            counts = qr_poll_due(now=timezone.now())
            if opts["verbosity"] > 1 or any(counts.values()):
                self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            if every <= 0:
                return
            close_old_connections()
            try:
                time.sleep(every)
            except KeyboardInterrupt:
                return
