"""``wuye demo``: create the database if needed, load the demo company and serve it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

from wuye.demo.generator import (
    ACQUIRER_MID,
    ACQUIRER_TID,
    DEFAULT_UNITS,
    DEMO_PASSWORD,
    DEMO_USERS,
    demo_load,
)
from wuye.demo.history import DEMO_CARD_PASSWORD
from wuye.estates.models import Company


def channels_history_load(*, today: date, say: Callable[[str], None], server_url: str) -> None:
    """Register the demo POS terminal and replay card, QR and bill-notice payments through the
    real channels against in-process simulators (each part's ``demo`` module says how)."""
    from wuye.channels.card.demo import demo_load_card
    from wuye.channels.qrpay.demo import demo_load_qr
    from wuye.notices.demo import demo_load_notices
    from wuye.terminals.demo import demo_load_terminals

    say("POS 终端与银行卡 (terminal and card payments)…")
    demo_load_terminals(today=today, say=say, server_url=server_url)
    demo_load_card(today=today, say=say)
    say("扫码支付 (QR payments: WeChat Pay, Alipay, Huabei)…")
    demo_load_qr(today=today, say=say)
    demo_load_notices(today=today, say=say)


class Command(BaseCommand):
    help = "创建数据库、载入演示公司并启动服务 (load the demo company and serve it)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="删除现有数据后重建 (drop everything and start again)",
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="只载入数据, 不启动服务 (load only)"
        )
        parser.add_argument(
            "--no-channels",
            action="store_true",
            help="不载入银行卡/扫码历史 (skip the card, QR and bill-notice histories)",
        )
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--units",
            type=int,
            default=DEFAULT_UNITS,
            help=f"两个小区的房屋总数 (default {DEFAULT_UNITS})",
        )
        parser.add_argument(
            "--today",
            type=date.fromisoformat,
            default=None,
            help="演示数据的“今天” YYYY-MM-DD (default: today)",
        )
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["reset"]:
            self._reset()
        call_command("migrate", interactive=False, verbosity=0)
        if Company.objects.exists():
            self.stdout.write("数据库已有数据, 不再载入 (database not empty: --reset reloads)")
        else:
            today = opts["today"] or timezone.localdate()
            self.stdout.write(f"载入演示公司 (loading the demo company, {opts['units']} units)…")
            try:
                result = demo_load(
                    today=today, units=opts["units"], seed=opts["seed"], say=self.stdout.write
                )
                if not opts["no_channels"]:
                    channels_history_load(
                        today=today,
                        say=self.stdout.write,
                        server_url=f"http://127.0.0.1:{opts['port']}",
                    )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                self.style.SUCCESS(
                    f"完成: {result.units} 户, {result.billing_runs} 次出账, "
                    f"{result.bills} 张账单, "
                    f"{result.waivers} 笔减免, 用时 {result.seconds['total']}s"
                )
            )
            for missing in result.notes:
                self.stdout.write(self.style.WARNING(f"未安装 (not installed yet): {missing}"))
        self._print_logins(opts["port"])
        if not opts["no_serve"]:
            os.environ["WUYE_DEBUG"] = "0"  # the demo runs as in production: DEBUG off
            call_command("serve", port=opts["port"], with_companions=True)

    def _reset(self) -> None:
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            connections.close_all()
            path = settings.DATA_DIR / "wuye.sqlite3" if not db["NAME"] else db["NAME"]
            for suffix in ("", "-wal", "-shm"):
                p = type(settings.DATA_DIR)(f"{path}{suffix}")
                if p.exists():
                    p.unlink()
            self.stdout.write(f"已删除 {path}")
        else:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("flush", interactive=False, verbosity=0)
            self.stdout.write("已清空数据库 (flushed)")

    def _print_logins(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}"
        w = self.stdout.write
        w("")
        w(f"Wuye 演示: {url}/   (后台 admin: {url}/admin/)")
        w(f"演示账号 (demo logins), 密码均为 password for all: {DEMO_PASSWORD}")
        for username, display, role in DEMO_USERS:
            w(f"  {username:<9} {display}  ({role or 'superuser'})")
        w("  cashier 只看得到锦绣苑, cashier2 只看得到滨江花园 (each cashier sees one community)")
        w(f"演示预付卡密码 (demo prepaid-card password): {DEMO_CARD_PASSWORD}")
        w(f"收单商户号 MID {ACQUIRER_MID}, 终端号 TID {ACQUIRER_TID}")
        w("")
