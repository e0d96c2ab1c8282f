"""``wuye late_fees``: list a community's late fees as of a date, or charge them (--charge)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wuye.billing.latefees import late_fees_charge, late_fees_for_units
from wuye.core.money import format_yuan
from wuye.estates.models import Community, Unit


class Command(BaseCommand):
    help = "列出小区截至某日未出账的滞纳金; 加 --charge 则生成滞纳金账单并记账 (可重复执行)。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--community", required=True, help="小区编号或 id")
        parser.add_argument("--as-of", required=True, help="截至日期 YYYY-MM-DD")
        parser.add_argument("--charge", action="store_true", help="生成滞纳金账单")
        parser.add_argument("--json", action="store_true", help="以 JSON 输出 (金额单位: 分)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            as_of = date.fromisoformat(opts["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of 应为 YYYY-MM-DD: {opts['as_of']!r}") from exc
        ref = opts["community"]
        matches = list(Community.objects.filter(code=ref)[:2])
        if not matches and ref.isdigit():
            matches = list(Community.objects.filter(pk=int(ref)))
        if len(matches) != 1:
            raise CommandError(f"--community 找不到唯一的小区(编号或 id): {ref!r}")
        community = matches[0]
        if opts["charge"]:
            bills = late_fees_charge(community_id=community.pk, as_of=as_of, user_id=None)
            total = sum(b.amount_fen for b in bills)
            if opts["json"]:
                self.stdout.write(json.dumps({"bills": len(bills), "total_fen": total}))
            else:
                self.stdout.write(f"已生成滞纳金账单 {len(bills)} 张, 合计 {format_yuan(total)} 元")
            return
        unit_ids = list(Unit.objects.filter(community=community).values_list("pk", flat=True))
        owed = late_fees_for_units(unit_ids=unit_ids, as_of=as_of, uncharged_only=True)
        if opts["json"]:
            self.stdout.write(json.dumps({"as_of": str(as_of), "late_fees_fen": owed}))
        else:
            self.stdout.write(
                f"{community.name} 截至 {as_of}: {len(owed)} 张账单有未出账滞纳金, "
                f"合计 {format_yuan(sum(owed.values()))} 元"
            )
