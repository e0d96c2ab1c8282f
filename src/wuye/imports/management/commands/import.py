"""``wuye import KIND FILE.xlsx --company ID|USCC [--dry-run]`` and
``wuye import template KIND --out FILE.xlsx``."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from wuye.imports.selectors import CompanyNotFound, company_resolve
from wuye.imports.services import import_file, template_build
from wuye.imports.specs import SPECS


class ProgressBar:
    """A one-line progress bar on stderr, redrawn in place."""

    def __init__(self, stream: Any, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int, message: str = "") -> None:
        filled = self.width * done // total if total else self.width
        percent = 100 * done // total if total else 100
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {percent:3d}% {done}/{total} {message}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = (
        "导入 Excel: wuye import KIND FILE.xlsx --company ID|USCC [--dry-run]; "
        "下载模板: wuye import template KIND --out FILE.xlsx. "
        f"KIND: {', '.join(SPECS)}"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", help=f"{' | '.join(SPECS)} | template")
        parser.add_argument("target", help="FILE.xlsx to import, or KIND after 'template'")
        parser.add_argument("--company", help="company id or 统一社会信用代码")
        parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
        parser.add_argument("--out", help="where to write the template")
        parser.add_argument(
            "--as-of", type=date.fromisoformat,
            help="date of opening bills and their ledger entry (default today)",
        )
        parser.add_argument("--errors-out", help="error report .xlsx (default FILE.errors.xlsx)")
        parser.add_argument("--english", action="store_true", help="report in English")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["what"] == "template":
            self._template(opts["target"], opts["out"])
            return
        kind = opts["what"]
        if kind not in SPECS:
            raise CommandError(f"未知类型 unknown kind {kind!r}: {', '.join(SPECS)} | template")
        if not opts["company"]:
            raise CommandError("需要 --company ID|USCC (company is required)")
        try:
            company = company_resolve(ref=opts["company"])
        except CompanyNotFound as exc:
            raise CommandError(f"找不到公司 company not found: {exc}") from exc
        path = Path(opts["target"])
        if not path.is_file():
            raise CommandError(f"文件不存在 no such file: {path}")
        report = import_file(
            kind=kind, company_id=company.pk, content=path.read_bytes(), file_name=path.name,
            as_of=opts["as_of"] or timezone.localdate(), dry_run=opts["dry_run"],
            progress=ProgressBar(sys.stderr),
        )
        english = opts["english"]
        if report.previous_batch_id:
            self.stdout.write(
                f"this file was imported before (batch {report.previous_batch_id})" if english
                else f"此文件已导入过(批次 {report.previous_batch_id}), 重复导入不会产生重复数据"
            )
        for error in report.errors:
            self.stderr.write(error.text(english=english))
        if report.error_xlsx:
            out = Path(opts["errors_out"] or path.with_name(path.stem + ".errors.xlsx"))
            out.write_bytes(report.error_xlsx)
            self.stderr.write(
                f"error report: {out}" if english else f"错误报告(出错单元格已标红): {out}"
            )
        if not report.ok:
            raise CommandError(report.summary(english=english))
        self.stdout.write(report.summary(english=english))

    def _template(self, kind: str, out: str | None) -> None:
        if kind not in SPECS:
            raise CommandError(f"未知类型 unknown kind {kind!r}: {', '.join(SPECS)}")
        path = Path(out or f"{kind}-template.xlsx")
        path.write_bytes(template_build(kind=kind))
        self.stdout.write(f"模板已写入 template written: {path}")
