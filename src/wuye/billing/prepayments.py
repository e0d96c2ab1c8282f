"""Prepayments (预存): deposits into a household's prepaid balance and offsets against bills.

The balance is not stored: it is the credit balance of ``AccountKind.PREPAID`` journal lines
for the household (``household`` dimension), general when the line has no fee item,
earmarked for a fee item when it has one. A deposit credits it; an offset debits it and
credits the household's receivable, writing ``Allocation(source=prepaid)`` rows and moving
``Bill.paid_fen`` in the same transaction.

Spending a balance locks the household's ``Unit`` row first (PostgreSQL; SQLite has one
writer), so two offsets — or an offset and a refund from another module that takes the same
lock — cannot spend the same fen twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from django.db import transaction
from django.db.models import Q, Sum

from wuye.billing.models import Allocation, Bill, FeeItem
from wuye.billing.selectors import prepaid_balance, prepaid_balances
from wuye.estates.models import Unit
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.services import Line, credit, debit, entry_post

__all__ = [
    "DEPOSIT_SOURCE_ACCOUNTS",
    "PrepaymentError",
    "PrepaymentKeyConflict",
    "prepaid_balance",
    "prepaid_offset_apply",
    "prepayment_deposit",
]

DEPOSIT_SOURCE_ACCOUNTS = frozenset(
    {AccountKind.OPENING_BALANCE, AccountKind.CASH, AccountKind.CLEARING, AccountKind.BANK}
)


class PrepaymentError(ValueError):
    """A deposit was refused: the message names the field and why. Nothing was written."""


class PrepaymentKeyConflict(PrepaymentError):
    """The idempotency key was already used for a different deposit."""


def prepayment_deposit(
    *,
    unit: Unit,
    amount_fen: int,
    on_date: date,
    reference: str,
    idempotency_key: str,
    fee_item: FeeItem | None = None,
    source_account: AccountKind = AccountKind.CASH,
    channel: str = "",
    cashier_id: int | None = None,
    created_by_id: int | None = None,
) -> JournalEntry:
    """Credit ``amount_fen`` to the household's prepaid balance (earmarked if ``fee_item``).

    Post Dr ``source_account`` / Cr PREPAID. ``source_account`` is where the money came from:
    CASH (per ``cashier_id``), CLEARING (per ``channel``), BANK, or OPENING_BALANCE for
    balances brought from an old system. The same ``idempotency_key`` with the same deposit
    returns the first entry. Raise PrepaymentError on bad input and PrepaymentKeyConflict
    when the key was used for a different deposit.
    """
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise PrepaymentError(
            f"amount_fen: must be a positive whole number of fen, got {amount_fen!r}"
        )
    if source_account not in DEPOSIT_SOURCE_ACCOUNTS:
        raise PrepaymentError(
            f"source_account: {source_account!r} is not one of "
            f"{sorted(str(a) for a in DEPOSIT_SOURCE_ACCOUNTS)}"
        )
    if not idempotency_key:
        raise PrepaymentError("idempotency_key: required, made by the caller and reused on retry")
    company_id = unit.community.company_id
    if fee_item is not None and fee_item.company_id != company_id:
        raise PrepaymentError(
            f"fee_item: {fee_item.code} belongs to another company than unit {unit.label}"
        )
    key = f"prepay:{idempotency_key}"
    fee_item_id = fee_item.pk if fee_item is not None else None
    existing = JournalEntry.objects.filter(idempotency_key=key).first()
    if existing is not None:
        _check_same_deposit(
            existing, unit_id=unit.pk, amount_fen=amount_fen, fee_item_id=fee_item_id
        )
        return existing
    source_dims: dict[str, object] = {"community_id": unit.community_id}
    if source_account == AccountKind.OPENING_BALANCE:
        source_dims.update(household_id=unit.pk, fee_item_id=fee_item_id)
    if channel:
        source_dims["channel"] = channel
    if cashier_id is not None:
        source_dims["cashier_id"] = cashier_id
    kind = (
        JournalEntry.Kind.OPENING
        if source_account == AccountKind.OPENING_BALANCE
        else JournalEntry.Kind.PAYMENT
    )
    with transaction.atomic():
        entry = entry_post(
            company_id=company_id,
            kind=kind,
            memo=f"预存 {unit.label} {reference}".strip(),
            effective_date=on_date,
            idempotency_key=key,
            created_by_id=created_by_id,
            lines=[
                debit(source_account, amount_fen, **source_dims),
                credit(
                    AccountKind.PREPAID,
                    amount_fen,
                    community_id=unit.community_id,
                    household_id=unit.pk,
                    fee_item_id=fee_item_id,
                ),
            ],
        )
        _check_same_deposit(entry, unit_id=unit.pk, amount_fen=amount_fen, fee_item_id=fee_item_id)
    return entry


def _check_same_deposit(
    entry: JournalEntry, *, unit_id: int, amount_fen: int, fee_item_id: int | None
) -> None:
    lines = [line for line in entry.lines.all() if line.account == AccountKind.PREPAID]
    if len(lines) != 1 or (lines[0].household_id, lines[0].fee_item_id, -lines[0].amount_fen) != (
        unit_id,
        fee_item_id,
        amount_fen,
    ):
        raise PrepaymentKeyConflict(
            f"idempotency_key: already used by entry #{entry.pk} for a different deposit"
        )


def prepaid_offset_apply(
    *, community_id: int, on_date: date, unit_ids: list[int] | None = None
) -> int:
    """Spend prepaid balances on the community's open bills; return the fen applied.

    For each household holding a balance (found with one aggregate query over the
    community's PREPAID lines): first its balances earmarked for a fee item, on open bills of
    that item; then its general balance, on open bills of items with ``prepay_offset``;
    oldest due first (then oldest bill). Only bills issued on or before ``on_date`` count.
    Each household gets one entry (Dr PREPAID / Cr RECEIVABLE per bill) with its
    ``Allocation(source=prepaid)`` rows and ``Bill.paid_fen`` moves, in one transaction.
    Never allocates more than a bill's outstanding nor more than the balance, both as of
    ``on_date`` and overall. Running it again finds nothing left to do.
    """
    candidates = prepaid_balances(community_id=community_id, as_of=on_date)
    households = sorted({hh for hh, _ in candidates})
    if unit_ids is not None:
        wanted = set(unit_ids)
        households = [hh for hh in households if hh in wanted]
    applied = 0
    for unit_id in households:
        applied += _offset_household(community_id=community_id, unit_id=unit_id, on_date=on_date)
    return applied


def _offset_household(*, community_id: int, unit_id: int, on_date: date) -> int:
    with transaction.atomic():
        unit = Unit.objects.select_for_update().select_related("community").get(pk=unit_id)
        balances = _household_balances(unit_id=unit_id, on_date=on_date)
        if not balances:
            return 0
        bills = list(
            Bill.objects.select_for_update()
            # By unit only: a community filter can lead the planner to the community index.
            .filter(unit_id=unit_id, issued_on__lte=on_date, amount_fen__gt=0)
            .select_related("fee_item")
            .order_by("pk")
        )
        bills = [b for b in bills if b.outstanding_fen > 0]
        bills.sort(key=lambda b: (b.due_date, b.pk))
        if not bills:
            return 0
        # (bill, prepaid fee item or None, amount)
        moves: list[tuple[Bill, int | None, int]] = []
        for fee_item_id, balance in sorted(
            ((k, v) for k, v in balances.items() if k is not None), key=lambda kv: kv[0]
        ):
            moves += _spend(bills, balance, earmark=fee_item_id)
        if balances.get(None, 0) > 0:
            moves += _spend(bills, balances[None], earmark=None)
        if not moves:
            return 0
        lines: list[Line] = []
        for bill, earmark, amount in moves:
            lines.append(
                debit(
                    AccountKind.PREPAID,
                    amount,
                    community_id=community_id,
                    household_id=unit_id,
                    fee_item_id=earmark,
                )
            )
            lines.append(
                credit(
                    AccountKind.RECEIVABLE,
                    amount,
                    community_id=community_id,
                    household_id=unit_id,
                    fee_item_id=bill.fee_item_id,
                )
            )
        entry = entry_post(
            company_id=unit.community.company_id,
            kind=JournalEntry.Kind.PREPAY_OFFSET,
            memo=f"预存抵扣 {unit.label} {on_date.isoformat()}",
            effective_date=on_date,
            lines=lines,
        )
        Allocation.objects.bulk_create(
            [
                Allocation(
                    bill=bill,
                    source=Allocation.Source.PREPAID,
                    amount_fen=amount,
                    allocated_on=on_date,
                    entry=entry,
                    reference=f"prepaid:{entry.pk}",
                )
                for bill, _, amount in moves
            ]
        )
        paid: dict[int, int] = defaultdict(int)
        for bill, _, amount in moves:
            paid[bill.pk] += amount
        touched = [b for b in bills if b.pk in paid]
        Bill.objects.bulk_update(touched, ["paid_fen"])
        return sum(paid.values())


def _household_balances(*, unit_id: int, on_date: date) -> dict[int | None, int]:
    """Spendable balance per earmark: the lower of the balance as of ``on_date`` and overall."""
    rows = (
        JournalLine.objects.filter(account=AccountKind.PREPAID, household_id=unit_id)
        .values("fee_item_id")
        .annotate(
            total=Sum("amount_fen"),
            until=Sum("amount_fen", filter=Q(entry__effective_date__lte=on_date)),
        )
        .values_list("fee_item_id", "total", "until")
    )
    out: dict[int | None, int] = {}
    for fee_item_id, total, until in rows:
        spendable = min(-int(total or 0), -int(until or 0))
        if spendable > 0:
            out[fee_item_id] = spendable
    return out


def _spend(
    bills: Iterable[Bill], balance: int, *, earmark: int | None
) -> list[tuple[Bill, int | None, int]]:
    """Allocate ``balance`` oldest due first; mutate ``paid_fen`` on the bills in memory."""
    moves: list[tuple[Bill, int | None, int]] = []
    for bill in bills:
        if balance <= 0:
            break
        if earmark is not None and bill.fee_item_id != earmark:
            continue
        if earmark is None and not bill.fee_item.prepay_offset:
            continue
        amount = min(balance, bill.outstanding_fen)
        if amount <= 0:
            continue
        bill.paid_fen += amount
        balance -= amount
        moves.append((bill, earmark, amount))
    return moves
