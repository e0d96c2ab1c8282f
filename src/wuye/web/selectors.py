"""Reads behind the screens: dashboard figures, household search, bill filters.

Every function takes a queryset already scoped to what the user may see (``web.access``) or
the user itself, and the date it should compute "as of": the screens pass today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from wuye.billing.models import Bill
from wuye.core.money import div_round
from wuye.core.periods import add_months
from wuye.estates.models import Community, ParkingSpace, Resident, Unit


@dataclass(frozen=True)
class CommunityFigures:
    """One community's month on the dashboard; amounts in fen."""

    community_id: int
    name: str
    billed_fen: int
    waived_fen: int
    received_fen: int
    arrears_fen: int

    @property
    def rate_permille(self) -> int | None:
        """Collection rate, amount basis, in ‰: received ÷ (billed − waived), or None."""
        base = self.billed_fen - self.waived_fen
        if base <= 0:
            return None
        return div_round(self.received_fen * 1000, base)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def dashboard_month(*, bills: QuerySet[Bill], today: date) -> date:
    """The month the dashboard opens on: this month, or the latest billed month before it."""
    this_month = _month_start(today)
    if bills.filter(
        period_start__gte=this_month, period_start__lt=add_months(this_month, 1)
    ).exists():
        return this_month
    latest = (
        bills.filter(period_start__lt=this_month)
        .order_by("-period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    return _month_start(latest) if latest else this_month


def dashboard_figures(
    *, communities: QuerySet[Community], bills: QuerySet[Bill], month: date, today: date
) -> list[CommunityFigures]:
    """Per community: a month's billed, waived and received, and arrears overdue today.

    The month's figures are over the bills whose period starts in ``month``; received is what
    has been paid on them (payments and prepayment offsets). Arrears is the outstanding amount
    of every bill due before ``today``. Waivers reduce the rate's denominator.
    """
    start = _month_start(month)
    end = add_months(start, 1)
    in_month = Q(period_start__gte=start, period_start__lt=end)
    overdue = Q(due_date__lt=today)
    zero = 0
    rows = (
        bills.filter(community__in=communities)
        .values("community_id")
        .annotate(
            billed=Coalesce(Sum("amount_fen", filter=in_month), zero),
            waived=Coalesce(Sum("waived_fen", filter=in_month), zero),
            received=Coalesce(Sum("paid_fen", filter=in_month), zero),
            arrears=Coalesce(
                Sum(F("amount_fen") - F("paid_fen") - F("waived_fen"), filter=overdue), zero
            ),
        )
    )
    by_id = {r["community_id"]: r for r in rows}
    out = []
    for c in communities.order_by("company_id", "code"):
        r: Any = by_id.get(c.pk, {})
        out.append(
            CommunityFigures(
                community_id=c.pk,
                name=c.name,
                billed_fen=int(r.get("billed", 0)),
                waived_fen=int(r.get("waived", 0)),
                received_fen=int(r.get("received", 0)),
                arrears_fen=int(r.get("arrears", 0)),
            )
        )
    return out


def dashboard_totals(figures: list[CommunityFigures]) -> CommunityFigures:
    """Sum the communities' figures into one row."""
    return CommunityFigures(
        community_id=0,
        name="",
        billed_fen=sum(f.billed_fen for f in figures),
        waived_fen=sum(f.waived_fen for f in figures),
        received_fen=sum(f.received_fen for f in figures),
        arrears_fen=sum(f.arrears_fen for f in figures),
    )


def dashboard_chart_data(figures: list[CommunityFigures]) -> dict[str, Any]:
    """The chart's data: labels, yuan strings for billed/received/arrears, rate in percent."""
    from wuye.core.money import format_yuan

    return {
        "labels": [f.name for f in figures],
        "billed": [format_yuan(f.billed_fen) for f in figures],
        "received": [format_yuan(f.received_fen) for f in figures],
        "arrears": [format_yuan(f.arrears_fen) for f in figures],
        "rate": [
            None if f.rate_permille is None else f"{f.rate_permille // 10}.{f.rate_permille % 10}"
            for f in figures
        ],
    }


def unit_search(*, units: QuerySet[Unit], text: str, limit: int = 50) -> QuerySet[Unit]:
    """Units matching ``text`` by label or room, resident name or phone, or car plate."""
    text = text.strip()
    qs = units.select_related("community", "building")
    if not text:
        return qs.none()
    residents = Resident.objects.filter(unit=OuterRef("pk")).filter(
        Q(name__icontains=text) | Q(phone__contains=text)
    )
    plates = ParkingSpace.objects.filter(unit=OuterRef("pk"), plate_no__icontains=text)
    return qs.filter(
        Q(label__icontains=text) | Q(room_no__iexact=text) | Exists(residents) | Exists(plates)
    ).order_by("community_id", "label")[:limit]


def primary_residents(unit_ids: list[int]) -> dict[int, Resident]:
    """The primary (else first) resident of each unit, keyed by unit id."""
    out: dict[int, Resident] = {}
    for r in Resident.objects.filter(unit_id__in=unit_ids).order_by("unit_id", "-is_primary", "id"):
        out.setdefault(r.unit_id, r)
    return out


BILL_STATUSES = ("unpaid", "overdue", "settled")


def bills_filtered(
    *,
    bills: QuerySet[Bill],
    today: date,
    community_id: int | None = None,
    period: date | None = None,
    fee_item_id: int | None = None,
    status: str = "",
) -> QuerySet[Bill]:
    """Bills narrowed by community, period month, fee item and status.

    ``status``: ``unpaid`` (something outstanding), ``overdue`` (outstanding and due before
    ``today``), ``settled`` (nothing outstanding), or empty for all.
    """
    qs = bills.select_related("unit", "fee_item", "community")
    if community_id:
        qs = qs.filter(community_id=community_id)
    if period:
        start = _month_start(period)
        qs = qs.filter(period_start__gte=start, period_start__lt=add_months(start, 1))
    if fee_item_id:
        qs = qs.filter(fee_item_id=fee_item_id)
    outstanding = F("amount_fen") - F("paid_fen") - F("waived_fen")
    qs = qs.annotate(outstanding=outstanding)
    if status == "unpaid":
        qs = qs.exclude(outstanding=0)
    elif status == "overdue":
        qs = qs.exclude(outstanding=0).filter(due_date__lt=today)
    elif status == "settled":
        qs = qs.filter(outstanding=0)
    return qs.order_by("-period_start", "community_id", "unit__label", "fee_item_id", "revision")


def bills_summary(bills: QuerySet[Bill]) -> dict[str, int]:
    """Totals of a bill list in fen: amount, paid, waived, outstanding, count."""
    agg = bills.aggregate(
        amount=Coalesce(Sum("amount_fen"), 0),
        paid=Coalesce(Sum("paid_fen"), 0),
        waived=Coalesce(Sum("waived_fen"), 0),
    )
    amount, paid, waived = int(agg["amount"]), int(agg["paid"]), int(agg["waived"])
    return {
        "amount_fen": amount,
        "paid_fen": paid,
        "waived_fen": waived,
        "outstanding_fen": amount - paid - waived,
    }
