"""Post balanced, append-only journal entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction

from wuye.ledger.models import AccountKind, JournalEntry, JournalLine


class UnbalancedEntry(ValueError):
    """The lines of an entry do not sum to zero, or an entry has no lines."""


@dataclass(frozen=True)
class Line:
    """One side of a posting. ``amount_fen``: debit positive, credit negative."""

    account: AccountKind
    amount_fen: int
    community_id: int | None = None
    household_id: int | None = None
    fee_item_id: int | None = None
    channel: str = ""
    cashier_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def negated(self) -> Line:
        return Line(
            self.account,
            -self.amount_fen,
            self.community_id,
            self.household_id,
            self.fee_item_id,
            self.channel,
            self.cashier_id,
        )


def debit(account: AccountKind, amount_fen: int, **dims: Any) -> Line:
    return Line(account, amount_fen, **dims)


def credit(account: AccountKind, amount_fen: int, **dims: Any) -> Line:
    return Line(account, -amount_fen, **dims)


def _check_balanced(lines: Sequence[Line]) -> None:
    if not lines:
        raise UnbalancedEntry("an entry needs at least one line")
    for line in lines:
        if not isinstance(line.amount_fen, int) or isinstance(line.amount_fen, bool):
            raise UnbalancedEntry(f"amount must be int fen, got {line.amount_fen!r}")
    total = sum(line.amount_fen for line in lines)
    if total != 0:
        raise UnbalancedEntry(f"entry does not balance: lines sum to {total} fen")


def entry_lines_check(lines: Iterable[Line]) -> list[Line]:
    """Return ``lines`` without zero lines, checked to balance.

    For writers that insert an entry's rows themselves (``payments.posting``). Raises
    UnbalancedEntry if the lines do not sum to zero, are not int fen, or none is left.
    """
    kept = [line for line in lines if line.amount_fen != 0]
    _check_balanced(kept)
    return kept


def entry_post(
    *,
    company_id: int,
    kind: str,
    memo: str,
    effective_date: date,
    lines: Iterable[Line],
    idempotency_key: str | None = None,
    created_by_id: int | None = None,
    reverses_id: int | None = None,
) -> JournalEntry:
    """Post a balanced journal entry, or return the one already posted under the same key.

    Zero lines are dropped. Must be called inside the caller's transaction together with the
    state change it records. Raises UnbalancedEntry if the lines do not sum to zero.
    """
    kept = entry_lines_check(lines)
    if idempotency_key:
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    # A savepoint only when a key is given: then a concurrent poster's unique violation is
    # caught and its entry returned. Without a key a failure fails the caller's transaction.
    try:
        with transaction.atomic(savepoint=bool(idempotency_key)):
            entry = JournalEntry.objects.create(
                company_id=company_id,
                kind=kind,
                memo=memo[:200],
                effective_date=effective_date,
                idempotency_key=idempotency_key,
                created_by_id=created_by_id,
                reverses_id=reverses_id,
            )
            JournalLine.objects.bulk_create(
                [
                    JournalLine(
                        entry=entry,
                        account=line.account,
                        amount_fen=line.amount_fen,
                        community_id=line.community_id,
                        household_id=line.household_id,
                        fee_item_id=line.fee_item_id,
                        channel=line.channel,
                        cashier_id=line.cashier_id,
                    )
                    for line in kept
                ]
            )
    except IntegrityError:
        if idempotency_key:
            existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return entry


def entry_reverse(
    *, entry: JournalEntry, memo: str, effective_date: date, created_by_id: int | None = None
) -> JournalEntry:
    """Post the mirror image of ``entry``. An entry can be reversed once."""
    lines = [
        Line(
            AccountKind(line.account),
            -line.amount_fen,
            line.community_id,
            line.household_id,
            line.fee_item_id,
            line.channel,
            line.cashier_id,
        )
        for line in entry.lines.all()
    ]
    return entry_post(
        company_id=entry.company_id,
        kind=JournalEntry.Kind.REVERSAL,
        memo=memo,
        effective_date=effective_date,
        lines=lines,
        idempotency_key=f"reverse:{entry.pk}",
        created_by_id=created_by_id,
        reverses_id=entry.pk,
    )
