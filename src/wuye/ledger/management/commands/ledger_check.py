"""``wuye ledger_check``: check the ledger's invariants; exit 1 if any is broken."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wuye.billing.selectors import negative_prepaid_balances, receivable_mismatches
from wuye.core.integrity import dangling_dimensions
from wuye.ledger.selectors import unbalanced_entry_ids


class Command(BaseCommand):
    help = (
        "检查账务不变量: 每张凭证借贷平衡; 每户应收余额等于其账单未收之和; 预存余额不为负;"
        " 维度列(公司、小区、房屋、收银员等)不指向不存在的记录。"
        " Check that every entry balances, each household's receivable equals its bills'"
        " outstanding, no prepaid balance is negative, and no dimension column (company,"
        " community, household, cashier… kept without a database foreign key) names a missing"
        " row. Exit status 1 if not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--community", type=int, help="只检查该小区 (id)")
        parser.add_argument("--limit", type=int, default=20, help="每类最多列出几条")
        parser.add_argument("--json", action="store_true", help="以 JSON 输出")

    def handle(self, *args: Any, **opts: Any) -> None:
        community_id = opts["community"]
        limit = opts["limit"]
        unbalanced = unbalanced_entry_ids(limit=limit)
        mismatches = receivable_mismatches(community_id=community_id, limit=limit)
        negative = negative_prepaid_balances(community_id=community_id, limit=limit)
        dangling = dangling_dimensions()
        report = {
            "unbalanced_entries": unbalanced,
            "receivable_mismatches": [
                {
                    "unit_id": m.unit_id,
                    "receivable_fen": m.receivable_fen,
                    "outstanding_fen": m.outstanding_fen,
                }
                for m in mismatches
            ],
            "negative_prepaid_balances": [
                {"unit_id": u, "fee_item_id": f, "balance_fen": b} for u, f, b in negative
            ],
            "dangling_dimensions": [
                {"table": d.table, "column": d.column, "target": d.target, "rows": d.count}
                for d in dangling
            ],
        }
        ok = not (unbalanced or mismatches or negative or dangling)
        if opts["json"]:
            self.stdout.write(json.dumps({"ok": ok, **report}, ensure_ascii=False))
        else:
            self.stdout.write(f"不平衡凭证 unbalanced entries: {len(unbalanced)} {unbalanced}")
            self.stdout.write(f"应收与账单不符 receivable mismatches: {len(mismatches)}")
            for m in mismatches:
                self.stdout.write(
                    f"  unit {m.unit_id}: receivable {m.receivable_fen} ≠ "
                    f"outstanding {m.outstanding_fen}"
                )
            self.stdout.write(f"预存为负 negative prepaid balances: {len(negative)}")
            for u, f, b in negative:
                self.stdout.write(f"  unit {u} fee item {f}: {b}")
            self.stdout.write(f"维度列指向不存在的记录 dangling dimension columns: {len(dangling)}")
            for d in dangling:
                self.stdout.write(f"  {d.table}.{d.column} → {d.target}: {d.count} rows")
            self.stdout.write("OK" if ok else "FAILED")
        if not ok:
            raise CommandError("ledger invariants broken", returncode=1)
