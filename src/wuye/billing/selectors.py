"""Reads for billing: prepaid balances, open bills and a household's statement as of a date."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from types import EllipsisType

from django.db.models import F, Q, Sum

from wuye.billing.latefees import late_fees_for_units
from wuye.billing.models import Allocation, Bill
from wuye.ledger.models import AccountKind, JournalLine

ALL_FEE_ITEMS = ...
"""Pass as ``fee_item_id`` to ``prepaid_balance`` for general and earmarked balances together."""


def prepaid_balance(
    *,
    unit_id: int,
    fee_item_id: int | EllipsisType | None = ALL_FEE_ITEMS,
    as_of: date | None = None,
) -> int:
    """Return a household's prepaid (预存) balance in fen, positive when it has money.

    ``fee_item_id``: ``...`` (default) for everything, ``None`` for the general balance only,
    an id for the balance earmarked for that fee item. ``as_of`` counts entries dated on or
    before it; ``None`` counts all.
    """
    qs = JournalLine.objects.filter(account=AccountKind.PREPAID, household_id=unit_id)
    if fee_item_id is None:
        qs = qs.filter(fee_item__isnull=True)
    elif not isinstance(fee_item_id, EllipsisType):
        qs = qs.filter(fee_item_id=fee_item_id)
    if as_of is not None:
        qs = qs.filter(entry__effective_date__lte=as_of)
    return -int(qs.aggregate(s=Sum("amount_fen"))["s"] or 0)


def prepaid_balances(
    *, community_id: int, as_of: date | None = None
) -> dict[tuple[int, int | None], int]:
    """Return ``{(unit_id, fee_item_id or None): balance}`` for households holding money.

    One aggregate query over the community's PREPAID journal lines; households without a
    positive balance are not returned, so this stays small when few households prepay.
    ``as_of`` bounds the entries counted; with it, the balance is also capped by the balance
    over all entries, so that spending it never drives the later balance negative.
    """
    base = JournalLine.objects.filter(account=AccountKind.PREPAID, community_id=community_id)
    if as_of is None:
        rows = (
            base.values("household_id", "fee_item_id")
            .annotate(total=Sum("amount_fen"))
            .filter(total__lt=0)
            .values_list("household_id", "fee_item_id", "total")
        )
        return {(hh, fi): -int(total) for hh, fi, total in rows if hh is not None}
    rows2 = (
        base.values("household_id", "fee_item_id")
        .annotate(
            total=Sum("amount_fen"),
            until=Sum("amount_fen", filter=Q(entry__effective_date__lte=as_of)),
        )
        .filter(total__lt=0, until__lt=0)
        .values_list("household_id", "fee_item_id", "total", "until")
    )
    return {
        (hh, fi): min(-int(total), -int(until)) for hh, fi, total, until in rows2 if hh is not None
    }


@dataclass(frozen=True)
class StatementLine:
    """One bill on a statement, with what settled it up to the statement date."""

    bill_id: int
    fee_item_id: int
    fee_item_name: str
    kind: str
    period_start: date
    period_end: date
    due_date: date
    issued_on: date
    parent_id: int | None
    billed_fen: int
    paid_fen: int
    waived_fen: int
    outstanding_fen: int
    late_fee_fen: int
    """Late fee accrued on this bill and not yet charged into a late-fee bill."""


@dataclass(frozen=True)
class Statement:
    """A household's account as of a date: bills, what settled them, late fees, prepaid."""

    unit_id: int
    as_of: date
    lines: tuple[StatementLine, ...]
    billed_fen: int
    paid_fen: int
    waived_fen: int
    outstanding_fen: int
    late_fee_fen: int
    prepaid_fen: int
    prepaid_general_fen: int
    prepaid_earmarked_fen: dict[int, int]

    @property
    def total_due_fen(self) -> int:
        """What the household owes as of the date: outstanding bills plus uncharged late fee."""
        return self.outstanding_fen + self.late_fee_fen


def _statement_lines(*, unit_id: int, as_of: date) -> list[StatementLine]:
    bills = list(
        Bill.objects.filter(unit_id=unit_id, issued_on__lte=as_of)
        .select_related("fee_item")
        .order_by("due_date", "id")
    )
    if not bills:
        return []
    settled: dict[int, dict[str, int]] = defaultdict(lambda: {"paid": 0, "waived": 0})
    rows = (
        Allocation.objects.filter(bill__unit_id=unit_id, allocated_on__lte=as_of)
        .values("bill_id", "source")
        .annotate(s=Sum("amount_fen"))
        .values_list("bill_id", "source", "s")
    )
    for bill_id, source, total in rows:
        key = "waived" if source == Allocation.Source.WAIVER else "paid"
        settled[bill_id][key] += int(total or 0)
    uncharged = late_fees_for_units(unit_ids=[unit_id], as_of=as_of, uncharged_only=True)
    lines = []
    for bill in bills:
        paid = settled[bill.pk]["paid"] if bill.pk in settled else 0
        waived = settled[bill.pk]["waived"] if bill.pk in settled else 0
        lines.append(
            StatementLine(
                bill_id=bill.pk,
                fee_item_id=bill.fee_item_id,
                fee_item_name=bill.fee_item.name,
                kind=bill.kind,
                period_start=bill.period_start,
                period_end=bill.period_end,
                due_date=bill.due_date,
                issued_on=bill.issued_on,
                parent_id=bill.parent_id,
                billed_fen=bill.amount_fen,
                paid_fen=paid,
                waived_fen=waived,
                outstanding_fen=bill.amount_fen - paid - waived,
                late_fee_fen=uncharged.get(bill.pk, 0),
            )
        )
    return lines


def household_statement(*, unit_id: int, as_of: date) -> Statement:
    """Return the statement of household ``unit_id`` as of the end of ``as_of``.

    Counts only bills issued and allocations dated on or before ``as_of``; late fees are
    computed as of that day; prepaid balances count journal entries dated on or before it.
    """
    lines = _statement_lines(unit_id=unit_id, as_of=as_of)
    prepaid_rows = (
        JournalLine.objects.filter(
            account=AccountKind.PREPAID, household_id=unit_id, entry__effective_date__lte=as_of
        )
        .values("fee_item_id")
        .annotate(s=Sum("amount_fen"))
        .values_list("fee_item_id", "s")
    )
    general = 0
    earmarked: dict[int, int] = {}
    for fee_item_id, total in prepaid_rows:
        balance = -int(total or 0)
        if fee_item_id is None:
            general = balance
        elif balance:
            earmarked[fee_item_id] = balance
    return Statement(
        unit_id=unit_id,
        as_of=as_of,
        lines=tuple(lines),
        billed_fen=sum(x.billed_fen for x in lines),
        paid_fen=sum(x.paid_fen for x in lines),
        waived_fen=sum(x.waived_fen for x in lines),
        outstanding_fen=sum(x.outstanding_fen for x in lines),
        late_fee_fen=sum(x.late_fee_fen for x in lines),
        prepaid_fen=general + sum(earmarked.values()),
        prepaid_general_fen=general,
        prepaid_earmarked_fen=earmarked,
    )


def open_bills(*, unit_id: int, as_of: date) -> list[StatementLine]:
    """Return the household's bills with something left to pay as of ``as_of``, oldest due first.

    Credits (negative outstanding, e.g. an unsettled downward adjustment) are included too.
    """
    return [
        line
        for line in _statement_lines(unit_id=unit_id, as_of=as_of)
        if line.outstanding_fen != 0 or line.late_fee_fen != 0
    ]


@dataclass(frozen=True)
class ReceivableMismatch:
    """A household whose RECEIVABLE balance differs from its bills' outstanding."""

    unit_id: int
    receivable_fen: int
    outstanding_fen: int


def receivable_mismatches(
    *, community_id: int | None = None, limit: int = 100
) -> list[ReceivableMismatch]:
    """Return households whose ledger receivable differs from their bills (should be none).

    Two grouped queries (journal lines by household, bills by unit), compared in Python.
    """
    lines = JournalLine.objects.filter(account=AccountKind.RECEIVABLE)
    bills = Bill.objects.all()
    if community_id is not None:
        lines = lines.filter(community_id=community_id)
        bills = bills.filter(community_id=community_id)
    receivable = dict(
        lines.values("household_id").annotate(s=Sum("amount_fen")).values_list("household_id", "s")
    )
    outstanding = dict(
        bills.values("unit_id")
        .annotate(s=Sum(F("amount_fen") - F("paid_fen") - F("waived_fen")))
        .values_list("unit_id", "s")
    )
    found: list[ReceivableMismatch] = []
    for unit_id in sorted(set(receivable) | set(outstanding), key=lambda u: (u is None, u or 0)):
        r = int(receivable.get(unit_id) or 0)
        o = int(outstanding.get(unit_id) or 0)
        if r != o:
            found.append(
                ReceivableMismatch(unit_id=unit_id or 0, receivable_fen=r, outstanding_fen=o)
            )
            if len(found) >= limit:
                break
    return found


def negative_prepaid_balances(
    *, community_id: int | None = None, limit: int = 100
) -> list[tuple[int, int | None, int]]:
    """Return ``(unit_id, fee_item_id, balance_fen)`` for prepaid balances below zero."""
    qs = JournalLine.objects.filter(account=AccountKind.PREPAID)
    if community_id is not None:
        qs = qs.filter(community_id=community_id)
    rows = (
        qs.values("household_id", "fee_item_id")
        .annotate(s=Sum("amount_fen"))
        .filter(s__gt=0)
        .order_by("household_id", "fee_item_id")
        .values_list("household_id", "fee_item_id", "s")[:limit]
    )
    return [(hh or 0, fi, -int(s)) for hh, fi, s in rows]
