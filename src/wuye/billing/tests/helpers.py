"""Helpers for billing tests: issue a bill with the same ledger shape as the billing run."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import F

from wuye.billing.models import Allocation, Bill, FeeItem
from wuye.estates.models import Unit
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import credit, debit, entry_post


def issue_bill(
    *,
    unit: Unit,
    fee_item: FeeItem,
    amount_fen: int,
    period_start: date = date(2026, 1, 1),
    period_end: date | None = None,
    due_date: date | None = None,
    issued_on: date | None = None,
    **kw: Any,
) -> Bill:
    """Create a bill and post Dr RECEIVABLE (household, fee item) / Cr REVENUE, as the run does."""
    if period_end is None:
        month = period_start.month % 12 + 1
        year = period_start.year + (period_start.month == 12)
        period_end = date(year, month, 1)
    bill = Bill.objects.create(
        company_id=fee_item.company_id,
        community_id=unit.community_id,
        unit=unit,
        fee_item=fee_item,
        period_start=period_start,
        period_end=period_end,
        amount_fen=amount_fen,
        due_date=due_date or period_start,
        issued_on=issued_on or period_start,
        **kw,
    )
    dims = {"community_id": unit.community_id, "fee_item_id": fee_item.pk}
    entry_post(
        company_id=fee_item.company_id,
        kind=JournalEntry.Kind.BILLING,
        memo=f"出账 {unit.label}",
        effective_date=bill.issued_on,
        lines=[
            debit(AccountKind.RECEIVABLE, amount_fen, household_id=unit.pk, **dims),
            credit(AccountKind.REVENUE, amount_fen, **dims),
        ],
    )
    return bill


def pay_bill(*, bill: Bill, amount_fen: int, on_date: date) -> Allocation:
    """Settle part of a bill with cash as the payments module will: allocation, paid, ledger."""
    dims = {"community_id": bill.community_id}
    entry = entry_post(
        company_id=bill.company_id,
        kind=JournalEntry.Kind.PAYMENT,
        memo=f"收款 账单#{bill.pk}",
        effective_date=on_date,
        lines=[
            debit(AccountKind.CASH, amount_fen, **dims),
            credit(
                AccountKind.RECEIVABLE,
                amount_fen,
                household_id=bill.unit_id,
                fee_item_id=bill.fee_item_id,
                **dims,
            ),
        ],
    )
    allocation = Allocation.objects.create(
        bill=bill,
        source=Allocation.Source.PAYMENT,
        amount_fen=amount_fen,
        allocated_on=on_date,
        entry=entry,
    )
    Bill.objects.filter(pk=bill.pk).update(paid_fen=F("paid_fen") + amount_fen)
    bill.refresh_from_db(fields=["paid_fen"])
    return allocation
