"""Receipt test helpers: a realistic content and a receipt issued for it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from wuye.estates.models import Community
from wuye.receipts.content import ReceiptContent, ReceiptLine
from wuye.receipts.models import Receipt
from wuye.receipts.services import receipt_issue

PAID_AT = datetime(2026, 11, 22, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
_refs = itertools.count(1)


def sample_content(**kw: Any) -> ReceiptContent:
    """Return a cash payment of two bills with a late fee, a waiver and a surplus to prepaid."""
    values: dict[str, Any] = {
        "company_name": "上海示范物业服务有限公司",
        "company_uscc": "91310000000000001X",
        "community_name": "阳光花园",
        "community_phone": "021-55551234",
        "household_label": "3-2-1502",
        "payer_name": "张伟",
        "lines": (
            ReceiptLine("物业费", "2026-01", 26_850, 134, 0, 26_984),
            ReceiptLine("停车费", "2026-01至2026-03", 45_000, 0, 5_000, 40_000, "车位 B-012"),
        ),
        "amount_fen": 80_000,
        "channel": "cash",
        "channel_label": "现金",
        "cashier_name": "李娜",
        "tendered_fen": 100_000,
        "change_fen": 20_000,
        "prepaid_credit_fen": 13_016,
        "prepaid_balance_after_fen": 13_016,
        "allocation_note": "按到期日从早到晚销账，先滞纳金后本金；多付 130.16 元转入预存。",
        "paid_at": PAID_AT,
    }
    values.update(kw)
    return ReceiptContent(**values)


def issue(
    community: Community,
    *,
    content: ReceiptContent | None = None,
    reference: str | None = None,
    issued_at: datetime = PAID_AT,
    kind: str = "payment",
) -> Receipt:
    return receipt_issue(
        company_id=community.company_id,
        community_id=community.pk,
        reference=reference or f"P{next(_refs):08d}",
        content=content or sample_content(),
        issued_at=issued_at,
        kind=kind,
    )
