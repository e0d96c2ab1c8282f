"""Money in transit: each channel's CLEARING balance per settlement date, from the ledger.

A card or QR payment debits the channel's CLEARING account on the day it is taken; the channel
settles it the next day (the acquirer's ``settle_date`` is the transaction date + 1, and WeChat
Pay and Alipay settle their daily bill on D+1), so a payment or refund line counts towards the
settlement date ``effective_date + SETTLE_LAG``. Reconciliation's own postings (arrival, fee
difference, refund due, a payment reversed because the channel never had it) name their
settlement date in their idempotency key (``recon:<what>:<channel>:<YYYYMMDD>:<company>:…``)
and count towards it; a reversing entry counts where the entry it reverses counted. A
settlement date's balance is then zero exactly when everything the channel took that day
reached the bank.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Q, Sum

from wuye.ledger.models import AccountKind, JournalEntry, JournalLine

SETTLE_LAG = timedelta(days=1)
RECON_KEY_PREFIX = "recon:"
# A full refund of a payment the channel never had (see resolution.internal_only_reverse)
# carries this channel reference, and counts where the payment counted.
RECON_VOID_PREFIX = "recon-void:"


def recon_key(what: str, channel: str, settle_date: date, company_id: int, *parts: object) -> str:
    """Return the idempotency key of a reconciliation posting for ``settle_date`` (ledger keys
    are unique across companies, so the company is part of it)."""
    tail = ":".join(str(p) for p in parts)
    key = f"{RECON_KEY_PREFIX}{what}:{channel}:{settle_date:%Y%m%d}:{company_id}"
    return f"{key}:{tail}" if tail else key


def settle_date_from_key(key: str | None) -> date | None:
    """Return the settlement date named in a reconciliation key, or None for any other key."""
    if not key or not key.startswith(RECON_KEY_PREFIX):
        return None
    parts = key.split(":")
    if len(parts) < 4:
        return None
    try:
        return datetime.strptime(parts[3], "%Y%m%d").date()
    except ValueError:
        return None


@dataclass(frozen=True)
class Transit:
    """What is still in transit for one channel and settlement date (debit positive, fen)."""

    channel: str
    settle_date: date
    balance_fen: int

    @property
    def arrived(self) -> bool:
        return self.balance_fen == 0


def _bucket(kind: str, effective_date: date, key: str | None) -> date:
    named = settle_date_from_key(key)
    if named is not None:
        return named
    if kind in (JournalEntry.Kind.PAYMENT, JournalEntry.Kind.REFUND):
        return effective_date + SETTLE_LAG
    return effective_date


def _void_refund_buckets(entry_ids: list[int]) -> dict[int, date]:
    """Refund entries of payments reversed by reconciliation → the payment's settlement date."""
    from wuye.payments.models import Refund

    rows = Refund.objects.filter(
        entry_id__in=entry_ids, reference__startswith=RECON_VOID_PREFIX
    ).values_list("entry_id", "payment__entry__effective_date")
    return {entry_id: paid_on + SETTLE_LAG for entry_id, paid_on in rows}


def clearing_in_transit(
    *,
    company_id: int,
    channel: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    include_zero: bool = False,
) -> list[Transit]:
    """Return the CLEARING balance per channel and settlement date, oldest first.

    ``date_from``/``date_to`` bound the settlement dates (inclusive). Settlement dates whose
    balance is zero (arrived) are left out unless ``include_zero``.
    """
    base = JournalLine.objects.filter(
        account=AccountKind.CLEARING, entry__company_id=company_id
    ).exclude(channel="")
    if channel is not None:
        base = base.filter(channel=channel)
    # Payments (nearly all the rows): their settlement date is their day + SETTLE_LAG, so the
    # date bounds apply to the entry's date directly and the index on it does the work.
    payments = base.filter(entry__kind=JournalEntry.Kind.PAYMENT)
    if date_from is not None:
        payments = payments.filter(entry__effective_date__gte=date_from - SETTLE_LAG)
    if date_to is not None:
        payments = payments.filter(entry__effective_date__lte=date_to - SETTLE_LAG)
    # Everything else is few rows; keyed postings may be dated after their settlement date and
    # reversals count where their original did, so those are bounded exactly below.
    lines = base.exclude(entry__kind=JournalEntry.Kind.PAYMENT)
    if date_to is not None:
        lines = lines.filter(
            Q(entry__effective_date__lte=date_to)
            | Q(entry__idempotency_key__startswith=RECON_KEY_PREFIX)
            | Q(entry__kind=JournalEntry.Kind.REVERSAL)
            | Q(entry__kind=JournalEntry.Kind.REFUND)
        )
    if date_from is not None:
        lines = lines.filter(
            Q(entry__effective_date__gte=date_from - SETTLE_LAG)
            | Q(entry__idempotency_key__startswith=RECON_KEY_PREFIX)
            | Q(entry__kind=JournalEntry.Kind.REVERSAL)
        )
    totals: dict[tuple[str, date], int] = defaultdict(int)
    # Payments: many rows, summed per channel and day in the database.
    for chan, eff, amount in (
        payments.values_list("channel", "entry__effective_date")
        .annotate(s=Sum("amount_fen"))
        .values_list("channel", "entry__effective_date", "s")
    ):
        totals[(chan, eff + SETTLE_LAG)] += int(amount)
    # Everything else (refunds, settlement, arrival, adjustments, reversals): few rows, per entry.
    others = list(
        lines.values_list(
            "channel",
            "entry_id",
            "entry__kind",
            "entry__effective_date",
            "entry__idempotency_key",
            "entry__reverses_id",
            "entry__reverses__kind",
            "entry__reverses__effective_date",
            "entry__reverses__idempotency_key",
        )
        .annotate(s=Sum("amount_fen"))
        .values_list(
            "channel",
            "entry_id",
            "entry__kind",
            "entry__effective_date",
            "entry__idempotency_key",
            "entry__reverses_id",
            "entry__reverses__kind",
            "entry__reverses__effective_date",
            "entry__reverses__idempotency_key",
            "s",
        )
    )
    refund_ids = [r[1] for r in others if r[2] == JournalEntry.Kind.REFUND]
    refund_ids += [r[5] for r in others if r[6] == JournalEntry.Kind.REFUND and r[5] is not None]
    voids = _void_refund_buckets(refund_ids) if refund_ids else {}
    for chan, entry_id, kind, eff, key, rev_id, rev_kind, rev_eff, rev_key, amount in others:
        if rev_id is not None and rev_kind is not None:
            bucket = voids.get(rev_id) or _bucket(rev_kind, rev_eff, rev_key)
        else:
            bucket = voids.get(entry_id) or _bucket(kind, eff, key)
        totals[(chan, bucket)] += int(amount)
    out = [
        Transit(chan, day, bal)
        for (chan, day), bal in totals.items()
        if (include_zero or bal != 0)
        and (date_from is None or day >= date_from)
        and (date_to is None or day <= date_to)
    ]
    out.sort(key=lambda t: (t.settle_date, t.channel))
    return out


def clearing_balance(*, company_id: int, channel: str, settle_date: date) -> int:
    """Return what is still in transit for ``channel`` and ``settle_date`` (fen, debit +)."""
    rows = clearing_in_transit(
        company_id=company_id,
        channel=channel,
        date_from=settle_date,
        date_to=settle_date,
        include_zero=True,
    )
    return sum(t.balance_fen for t in rows)


def clearing_by_channel(*, company_id: int, as_of: date | None = None) -> dict[str, int]:
    """Return the total still in transit per channel (settlement dates up to ``as_of``)."""
    out: dict[str, int] = defaultdict(int)
    for t in clearing_in_transit(company_id=company_id, date_to=as_of):
        out[t.channel] += t.balance_fen
    return dict(out)
