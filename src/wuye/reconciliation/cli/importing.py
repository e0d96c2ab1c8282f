"""``wuye reconcile import FILE... [--kind K] [--account NO] [--company C]``.

Each file is checked whole and imported all or nothing; a file already imported is reported
and skipped. Exit status 1 if any file was rejected (the others are still imported).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from wuye.reconciliation.importers import KINDS, FileRejected, file_import

from ._common import company_pick, user_pick

NAME = "import"
HELP = "导入结算文件/银行流水 import settlement files and bank statements"


def add_arguments(parser: CommandParser) -> None:
    """Add the ``import`` subcommand's arguments to ``parser``."""
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--kind", choices=KINDS, help="文件类型 (default: sniffed)")
    parser.add_argument("--account", default="", help="银行账号 (bank CSV has no account column)")
    parser.add_argument("--company", help="公司 id 或统一社会信用代码")
    parser.add_argument("--user", help="导入人 username")


def handle(command: Any, **opts: Any) -> None:
    """Import each file; print one line per file; raise CommandError if any was rejected."""
    company = company_pick(opts.get("company"))
    user = user_pick(opts.get("user"))
    rejected = 0
    for path in opts["files"]:
        try:
            result = file_import(
                path,
                company=company,
                kind=opts.get("kind"),
                user=user,
                account_no=opts.get("account") or "",
            )
        except FileRejected as exc:
            rejected += 1
            command.stderr.write(f"REJECTED {exc}")
            continue
        sf = result.source
        state = "imported" if result.created else "already imported"
        command.stdout.write(
            f"{path}: {state} as #{sf.pk} {sf.kind}, {sf.row_count} rows, {sf.total_fen} fen"
        )
    if rejected:
        raise CommandError(f"{rejected} file(s) rejected, nothing of them imported")
