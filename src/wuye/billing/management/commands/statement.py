"""``wuye statement``: a household's statement (对账单) as of a date."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wuye.billing.selectors import household_statement
from wuye.core.money import format_yuan
from wuye.estates.models import Unit


def find_unit(ref: str, community: str | None) -> Unit:
    """Find a unit by id, or by label ("1-2-301") within a community code or id."""
    qs = Unit.objects.select_related("community")
    if community:
        qs = (
            qs.filter(community__code=community)
            if not community.isdigit()
            else qs.filter(community_id=int(community))
        )
    matches = list(qs.filter(label=ref)[:2])
    if not matches and ref.isdigit() and not community:
        matches = list(qs.filter(pk=int(ref)))
    if not matches:
        raise CommandError(f"--unit 找不到房屋(编号或 id): {ref!r}")
    if len(matches) > 1:
        raise CommandError(f"--unit {ref!r} 在多个小区都有, 请用 --community 指定小区")
    return matches[0]


class Command(BaseCommand):
    help = "输出一户截至某日的对账单: 应收、已收、减免、欠费、滞纳金、预存余额。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--unit", required=True, help="房屋编号 (如 1-2-301) 或 id")
        parser.add_argument("--community", help="小区编号或 id")
        parser.add_argument("--as-of", required=True, help="截至日期 YYYY-MM-DD")
        parser.add_argument("--json", action="store_true", help="以 JSON 输出 (金额单位: 分)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            as_of = date.fromisoformat(opts["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of 应为 YYYY-MM-DD: {opts['as_of']!r}") from exc
        unit = find_unit(opts["unit"], opts["community"])
        st = household_statement(unit_id=unit.pk, as_of=as_of)
        if opts["json"]:
            data = asdict(st)
            data["total_due_fen"] = st.total_due_fen
            data["unit_label"] = unit.label
            self.stdout.write(json.dumps(data, ensure_ascii=False, default=str))
            return
        y = format_yuan
        self.stdout.write(f"{unit.community.name} {unit.label} 对账单 截至 {as_of}")
        self.stdout.write(
            f"{'费项':<8}{'账期':<24}{'应收':>12}{'已收':>12}{'减免':>10}{'欠费':>12}{'滞纳金':>10}"
        )
        for line in st.lines:
            period = f"{line.period_start}~{line.period_end}"
            self.stdout.write(
                f"{line.fee_item_name:<8}{period:<24}{y(line.billed_fen):>12}"
                f"{y(line.paid_fen):>12}{y(line.waived_fen):>10}{y(line.outstanding_fen):>12}"
                f"{y(line.late_fee_fen):>10}"
            )
        self.stdout.write(
            f"合计 应收 {y(st.billed_fen)} 已收 {y(st.paid_fen)} 减免 {y(st.waived_fen)} "
            f"欠费 {y(st.outstanding_fen)} 滞纳金 {y(st.late_fee_fen)} 应缴 {y(st.total_due_fen)}"
        )
        self.stdout.write(
            f"预存余额 {y(st.prepaid_fen)} (通用 {y(st.prepaid_general_fen)}, 专项 "
            + ", ".join(f"费项#{k} {y(v)}" for k, v in sorted(st.prepaid_earmarked_fen.items()))
            + ")"
        )
