"""``wuye reconcile report --date YYYYMMDD --format json|xlsx|pdf [--out FILE]``.

The ``reconcile`` command dispatches its ``report`` subcommand here: ``add_arguments`` fills
the subparser, ``handle`` runs it. JSON goes to stdout unless ``--out`` names a file; Excel
and PDF need ``--out`` (binary on a terminal helps nobody).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from wuye.estates.models import Company
from wuye.reconciliation.models import Channel
from wuye.reconciliation.report import FORMATS, day_report, render

HELP = "对账日报 reconciliation report for one settlement date (JSON, Excel or PDF)"


def add_arguments(parser: CommandParser) -> None:
    """Add the ``report`` subcommand's arguments to ``parser``."""
    parser.add_argument("--date", required=True, help="结算日期 settlement date, YYYYMMDD")
    parser.add_argument("--format", default="json", choices=FORMATS, help="json|xlsx|pdf")
    parser.add_argument("--out", help="输出文件 output file (stdout for JSON if omitted)")
    parser.add_argument(
        "--company",
        help="公司 id 或统一社会信用代码 (only one company: may be omitted)",
    )
    parser.add_argument("--channel", choices=list(Channel.values), help="只看一个渠道")


def parse_date(text: str) -> date:
    """Parse ``YYYYMMDD``; raise CommandError naming the option otherwise."""
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except (TypeError, ValueError):
        raise CommandError(f"--date: expected YYYYMMDD, got {text!r}") from None


def company_pick(value: str | None) -> Company:
    """Return the company named by id or USCC, or the only one; raise CommandError."""
    if value:
        qs = Company.objects.filter(pk=int(value)) if value.isdigit() else Company.objects.none()
        company = qs.first() or Company.objects.filter(uscc=value).first()
        if company is None:
            raise CommandError(f"--company: no company {value!r}")
        return company
    companies = list(Company.objects.order_by("pk")[:2])
    if len(companies) != 1:
        raise CommandError(
            "--company: required (there are %s companies)" % ("no" if not companies else "several")
        )
    return companies[0]


def handle(command: Any, **opts: Any) -> None:
    """Run ``wuye reconcile report`` for the parsed ``opts``; write to ``command.stdout``."""
    settle_date = parse_date(opts["date"])
    fmt = opts.get("format") or "json"
    out = opts.get("out")
    if fmt != "json" and not out:
        raise CommandError(f"--out: required for --format {fmt}")
    company = company_pick(opts.get("company"))
    report = day_report(company=company, settle_date=settle_date, channel=opts.get("channel"))
    data = render(report, fmt)
    if out:
        Path(out).write_bytes(data)
        command.stdout.write(f"{out}: {len(data)} bytes")
    else:
        command.stdout.write(data.decode("utf-8"))
