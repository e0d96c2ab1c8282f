"""``wuye reconcile watch --inbox DIR [--once] [--interval S]``: import what lands in a folder.

Each new file in ``DIR`` is imported (kind sniffed) and moved to ``DIR/done/``, or to
``DIR/rejected/`` with ``<name>.error.txt`` beside it saying file, line and field. Files whose
size is still changing are left for the next pass; hidden and partial (``.part``, ``.tmp``)
files are ignored.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from wuye.reconciliation.inbox import inbox_scan

from ._common import company_pick, user_pick

HELP = "监视收件目录 import files dropped into an inbox folder"


def add_arguments(parser: CommandParser) -> None:
    """Add the ``watch`` subcommand's arguments to ``parser``."""
    parser.add_argument("--inbox", required=True, help="收件目录")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between passes")
    parser.add_argument("--account", default="", help="银行账号 for bank CSV files")
    parser.add_argument("--company", help="公司 id 或统一社会信用代码")
    parser.add_argument("--user", help="导入人 username")


def handle(command: Any, **opts: Any) -> None:
    """Scan the inbox once or forever (Ctrl-C stops); print what happened to each file."""
    company = company_pick(opts.get("company"))
    user = user_pick(opts.get("user"))
    if opts["interval"] <= 0:
        raise CommandError("--interval: must be positive")
    sizes: dict[str, int] = {}
    while True:
        try:
            outcomes = inbox_scan(
                opts["inbox"],
                company=company,
                user=user,
                account_no=opts["account"],
                seen_sizes=None if opts["once"] else sizes,
            )
        except NotADirectoryError as exc:
            raise CommandError(f"--inbox: {exc}") from None
        for o in outcomes:
            line = f"{o.name}: {o.status}" + (f" ({o.message})" if o.message else "")
            (command.stderr if o.status == "rejected" else command.stdout).write(line)
        if opts["once"]:
            return
        try:
            time.sleep(opts["interval"])
        except KeyboardInterrupt:  # pragma: no cover - interactive
            return
