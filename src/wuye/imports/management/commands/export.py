"""``wuye export KIND --company ID|USCC --out FILE.xlsx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wuye.imports.selectors import CompanyNotFound, company_resolve
from wuye.imports.services import export_file
from wuye.imports.specs import EXPORT_KINDS


class Command(BaseCommand):
    help = f"导出 Excel export to .xlsx. KIND: {', '.join(EXPORT_KINDS)}"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=EXPORT_KINDS)
        parser.add_argument("--company", required=True, help="company id or 统一社会信用代码")
        parser.add_argument("--out", help="output file (default KIND.xlsx)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            company = company_resolve(ref=opts["company"])
        except CompanyNotFound as exc:
            raise CommandError(f"找不到公司 company not found: {exc}") from exc
        path = Path(opts["out"] or f"{opts['kind']}.xlsx")
        path.write_bytes(export_file(user=None, kind=opts["kind"], company=company))
        self.stdout.write(f"已导出 exported: {path}")
