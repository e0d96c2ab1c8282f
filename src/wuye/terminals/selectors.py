"""Reads of terminal management: the registered terminals for the acquirer host, the fleet
with its flags, a batch's totals as Wuye posted them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from wuye.accounts.selectors import user_community_filter
from wuye.terminals.models import Terminal, TerminalReport

OFFLINE_AFTER_S_DEFAULT = 120
"""A terminal heartbeats every 30 s; silent for longer than this it shows offline."""
OFFLINE_TOO_LONG_S_DEFAULT = 30 * 60
"""Offline for longer than this is flagged on the fleet page."""


@dataclass(frozen=True)
class AcquirerTerminal:
    """A registered terminal as the acquirer host knows it (TID, MID, clear TMK)."""

    tid: str
    mid: str
    tmk: bytes
    merchant_name: str


def acquirer_terminals() -> list[AcquirerTerminal]:
    """Return every enabled terminal with its clear TMK, for the acquirer host simulator."""
    rows = Terminal.objects.filter(enabled=True).select_related("merchant", "company")
    return [
        AcquirerTerminal(
            tid=t.tid,
            mid=t.mid,
            tmk=t.tmk_bytes,
            merchant_name=t.merchant.name if t.merchant else t.company.name,
        )
        for t in rows.order_by("tid")
    ]


def terminals_for(user: Any, roles: frozenset[str]) -> QuerySet[Terminal]:
    """Terminals of the communities ``user`` may see with one of ``roles``."""
    return Terminal.objects.filter(user_community_filter(user, roles=set(roles))).select_related(
        "community", "merchant"
    )


def terminal_for_counter(*, community_id: int, counter_name: str) -> Terminal | None:
    """The enabled terminal bound to ``counter_name`` of the community, if any."""
    return Terminal.objects.filter(
        community_id=community_id, counter_name=counter_name.strip(), enabled=True
    ).first()


def offline_after() -> timedelta:
    return timedelta(
        seconds=getattr(settings, "WUYE_TERMINAL_OFFLINE_AFTER_S", OFFLINE_AFTER_S_DEFAULT)
    )


def offline_too_long() -> timedelta:
    return timedelta(
        seconds=getattr(settings, "WUYE_TERMINAL_OFFLINE_TOO_LONG_S", OFFLINE_TOO_LONG_S_DEFAULT)
    )


@dataclass(frozen=True)
class FleetRow:
    """A terminal on the fleet page with what it needs attention for."""

    terminal: Terminal
    online: bool
    offline_too_long: bool
    unsettled: bool


def terminal_online(terminal: Terminal, *, now: datetime) -> bool:
    """Whether the terminal's last heartbeat is recent enough to call it online."""
    return terminal.last_seen_at is not None and now - terminal.last_seen_at <= offline_after()


def terminal_unsettled(terminal: Terminal, *, now: datetime) -> bool:
    """Open transactions in the batch from an earlier day than today: a missed settlement."""
    if terminal.batch_open_count <= 0:
        return False
    last = terminal.last_txn_at or terminal.last_seen_at
    return last is not None and timezone.localtime(last).date() < timezone.localtime(now).date()


def fleet(
    terminals: QuerySet[Terminal],
    *,
    now: datetime,
    community_id: int | None = None,
    status: str = "",
    unsettled_only: bool = False,
) -> list[FleetRow]:
    """The fleet filtered by community, ``status`` (``online``/``offline``) and unsettled."""
    if community_id:
        terminals = terminals.filter(community_id=community_id)
    cutoff = now - offline_after()
    if status == "online":
        terminals = terminals.filter(last_seen_at__gte=cutoff)
    elif status == "offline":
        terminals = terminals.filter(Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True))
    rows = []
    for t in terminals.order_by("community__name", "counter_name"):
        online = terminal_online(t, now=now)
        too_long = not online and (
            t.last_seen_at is None or now - t.last_seen_at > offline_too_long()
        )
        row = FleetRow(t, online, too_long and t.enabled, terminal_unsettled(t, now=now))
        if unsettled_only and not row.unsettled:
            continue
        rows.append(row)
    return rows


@dataclass(frozen=True)
class BatchTotals:
    """A batch's totals as Wuye recorded them (debit: purchases; credit: voids and refunds)."""

    debit_total_fen: int
    debit_count: int
    credit_total_fen: int
    credit_count: int


def batch_totals(*, tid: str, batch: str) -> BatchTotals:
    """What Wuye posted for ``tid`` and ``batch``: approved, not reversed, not training.

    Debit counts every posted purchase (one voided later included, as the acquirer counts
    it); credit counts the voids and refunds Wuye booked.
    """
    base = TerminalReport.objects.filter(
        terminal__tid=tid, batch=batch, approved=True, reversed=False, training=False
    )
    debit = base.filter(kind="purchase", status=TerminalReport.Status.POSTED).aggregate(
        s=Sum("amount_fen"), n=Count("pk")
    )
    credit = base.filter(
        kind__in=["void", "refund"],
        status__in=[TerminalReport.Status.REFUNDED, TerminalReport.Status.VOIDED],
    ).aggregate(s=Sum("amount_fen"), n=Count("pk"))
    return BatchTotals(
        debit_total_fen=int(debit["s"] or 0),
        debit_count=int(debit["n"] or 0),
        credit_total_fen=int(credit["s"] or 0),
        credit_count=int(credit["n"] or 0),
    )


def unmatched_reports(terminals: QuerySet[Terminal]) -> QuerySet[TerminalReport]:
    """Approved money Wuye could not tie to an order or payment, kept for reconciliation."""
    return TerminalReport.objects.filter(
        terminal__in=terminals, status=TerminalReport.Status.UNMATCHED
    ).select_related("terminal")
