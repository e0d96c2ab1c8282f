"""``wuye sim <name> ...``: run a provider simulator (``acquirer``, ``wechat``, ``alipay``).

Each simulator lives in ``wuye/sims/<name>/`` and exposes ``cli.main(argv) -> int``; this
command only finds it and hands over the rest of the command line.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError

SIMULATORS = ("acquirer", "wechat", "alipay")


class Command(BaseCommand):
    help = "运行模拟器 (run a simulator): acquirer | wechat | alipay"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", choices=SIMULATORS)
        parser.add_argument("args", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            cli = importlib.import_module(f"wuye.sims.{opts['name']}.cli")
        except ModuleNotFoundError as exc:
            raise CommandError(f"simulator {opts['name']!r} is not installed: {exc}") from exc
        code = int(cli.main(list(args)) or 0)
        if code:
            raise SystemExit(code)
