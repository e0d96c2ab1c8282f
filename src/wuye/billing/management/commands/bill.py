"""``wuye bill run`` issues a community's bills for a period; ``wuye bill runs`` lists runs."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.billing.models import BillingRun
from wuye.billing.services import BillingRunError, billing_run_execute
from wuye.core.money import format_yuan
from wuye.estates.models import Community, Company


def _parse_period(text: str) -> date:
    try:
        year, month = text.split("-")[:2]
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise CommandError(
            _("--period 应为 YYYY-MM, 例如 2026-01: %(text)r") % {"text": text}
        ) from exc


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(
            _("%(option)s 应为 YYYY-MM-DD: %(text)r") % {"option": option, "text": text}
        ) from exc


def _find_community(ref: str, company_ref: str | None) -> Community:
    qs = Community.objects.all()
    if company_ref:
        companies = Company.objects.filter(
            Q(uscc=company_ref) | Q(short_name=company_ref) | Q(name=company_ref)
            | (Q(pk=int(company_ref)) if company_ref.isdigit() else Q(pk__in=[]))
        )
        if not companies.exists():
            raise CommandError(_("--company 找不到公司: %(ref)r") % {"ref": company_ref})
        qs = qs.filter(company__in=companies)
    matches = list(qs.filter(code=ref))
    if not matches and ref.isdigit():
        matches = list(qs.filter(pk=int(ref)))
    if not matches:
        raise CommandError(_("--community 找不到小区(编号或 id): %(ref)r") % {"ref": ref})
    if len(matches) > 1:
        raise CommandError(
            _("--community %(ref)r 在多个公司下都有, 请用 --company 指定公司") % {"ref": ref}
        )
    return matches[0]


class _Bar:
    """A text progress bar on stderr, redrawn at most every 0.1 s."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        filled = int(frac * 30)
        self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%} {message[:40]:<40}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class Command(BaseCommand):
    help = "出账: wuye bill run --community C001 --period 2026-01 [--months 3]; wuye bill runs"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="为小区按账期出账(可重复运行, 只补差额)")
        run.add_argument("--community", required=True, help="小区编号或 id")
        run.add_argument("--company", help="公司 id、统一社会信用代码或名称(小区编号重复时)")
        run.add_argument("--period", required=True, help="账期开始月份 YYYY-MM")
        run.add_argument("--months", type=int, default=1, choices=[1, 3, 6, 12], help="计费周期")
        run.add_argument("--issued-on", help="出账日期 YYYY-MM-DD (默认今天)")
        run.add_argument("--fee-item", type=int, action="append", dest="fee_items",
                         help="只出这些收费项目(id, 可重复)")
        run.add_argument("--quiet", action="store_true", help="不显示进度条")
        runs = sub.add_parser("runs", help="最近的出账批次")
        runs.add_argument("--community", help="小区编号或 id")
        runs.add_argument("--company", help="公司")
        runs.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "run":
            self._run(opts)
        else:
            self._list(opts)

    def _run(self, opts: dict[str, Any]) -> None:
        community = _find_community(opts["community"], opts.get("company"))
        period_start = _parse_period(opts["period"])
        issued_on = (
            _parse_date(opts["issued_on"], "--issued-on") if opts.get("issued_on")
            else timezone.localdate()
        )
        bar = _Bar(sys.stderr)
        started = time.monotonic()
        try:
            run = billing_run_execute(
                community_id=community.pk,
                period_start=period_start,
                cycle_months=opts["months"],
                issued_on=issued_on,
                fee_item_ids=opts.get("fee_items"),
                progress=None if opts["quiet"] else bar,
            )
        except BillingRunError as exc:
            bar.close()
            raise CommandError(str(exc)) from exc
        bar.close()
        summary = {
            "run": run.pk,
            "community": community.code,
            "period": f"{run.period_start}~{run.period_end}",
            "bills": run.bills_created,
            "adjustments": run.adjustments_created,
            "unchanged": run.unchanged,
            "total": format_yuan(run.total_fen),
            "seconds": round(time.monotonic() - started, 2),
        }
        self.stdout.write(json.dumps(summary, ensure_ascii=False))

    def _list(self, opts: dict[str, Any]) -> None:
        qs = BillingRun.objects.select_related("community").order_by("-id")
        if opts.get("community"):
            qs = qs.filter(community=_find_community(opts["community"], opts.get("company")))
        rows = list(qs[: opts["limit"]])
        if not rows:
            self.stdout.write("(无出账批次)")
            return
        self.stdout.write("id\t小区\t账期\t状态\t新出账单\t调整\t未变化\t金额\t时间")
        for r in rows:
            at = timezone.localtime(r.created_at)
            self.stdout.write(
                f"{r.pk}\t{r.community.code}\t{r.period_start}~{r.period_end}\t"
                f"{r.get_status_display()}\t{r.bills_created}\t{r.adjustments_created}\t"
                f"{r.unchanged}\t{format_yuan(r.total_fen)}\t{at:%Y-%m-%d %H:%M}"
            )
