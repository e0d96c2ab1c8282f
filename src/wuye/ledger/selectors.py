"""Balances as of any date."""

from __future__ import annotations

from datetime import date

from django.db.models import Sum

from wuye.ledger.models import AccountKind, JournalLine


def account_balance(
    *,
    account: AccountKind,
    as_of: date | None = None,
    company_id: int | None = None,
    community_id: int | None = None,
    household_id: int | None = None,
    fee_item_id: int | None = None,
    channel: str | None = None,
) -> int:
    """Signed balance in fen (debit positive) of ``account`` over the given dimensions."""
    qs = JournalLine.objects.filter(account=account)
    if as_of is not None:
        qs = qs.filter(entry__effective_date__lte=as_of)
    if company_id is not None:
        qs = qs.filter(entry__company_id=company_id)
    if community_id is not None:
        qs = qs.filter(community_id=community_id)
    if household_id is not None:
        qs = qs.filter(household_id=household_id)
    if fee_item_id is not None:
        qs = qs.filter(fee_item_id=fee_item_id)
    if channel is not None:
        qs = qs.filter(channel=channel)
    return int(qs.aggregate(s=Sum("amount_fen"))["s"] or 0)


def unbalanced_entry_ids(limit: int = 100) -> list[int]:
    """Entries whose lines do not sum to zero (should always be empty)."""
    return list(
        JournalLine.objects.values("entry_id")
        .annotate(s=Sum("amount_fen"))
        .exclude(s=0)
        .values_list("entry_id", flat=True)[:limit]
    )
