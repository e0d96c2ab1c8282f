"""``wuye orders_cancel_stale --minutes 30``: free the bills of abandoned pending orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.payments.services import orders_cancel_stale


class Command(BaseCommand):
    help = "Cancel pending orders older than --minutes (not those awaiting a channel's answer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--minutes", type=int, default=30)

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        n = orders_cancel_stale(
            created_before=now - timedelta(minutes=max(1, options["minutes"])), now=now
        )
        self.stdout.write(_("已取消 %(n)s 张过期待支付收款单") % {"n": n})
