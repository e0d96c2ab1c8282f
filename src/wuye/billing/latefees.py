"""Late fees (滞纳金): computed as of any date, charged into a bill only on demand.

The rule, per fee item (``FeeItem.late_fee_*``):

- Only bills of an item with ``late_fee_enabled``, of a kind other than ``late_fee``, with a
  positive amount and issued on or before ``as_of`` accrue a late fee.
- The anchor is ``max(due_date + late_fee_grace_days, late_fee_start_date)``. As for any
  period counted in days (民法典 art. 201), the anchor day itself is not counted: every day
  ``d`` with ``anchor < d <= as_of`` accrues.
- Day by day, on the outstanding principal *of that day*: the bill's amount minus every
  allocation (payment, prepaid offset, principal waiver, credit note; reversals add back)
  dated *before* ``d``. A payment made on day ``d`` still bears day ``d`` — it was that
  many days late — and stops the accrual from the next day.
- Simple interest: ``gross = HALF_UP(Σ_d outstanding_d × late_fee_daily_ppm / 1,000,000)``,
  rounded once, at the end.
- Cap: ``DOWN(amount × late_fee_cap_percent / 100)``, never above the principal (the model
  refuses a cap above 100 %).
- Waivers (approved, target ``late_fee``, effective on or before ``as_of``) are subtracted
  after the cap, never below zero. A waiver without an amount (全免) stops the late fee for
  good: from its effective date on, the late fee is what had already been charged into
  late-fee bills by then.

``late_fee_as_of`` is the whole late fee owed on a bill as of a date, charged or not;
``late_fee_charge`` turns the part not yet charged into a ``Bill(kind=late_fee)`` so a
payment can settle it like any bill.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max, Sum

from wuye.billing.models import Allocation, Bill, FeeItem, Waiver
from wuye.core.money import Rounding, div_round
from wuye.core.services import audit_record
from wuye.estates.models import Unit
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import credit, debit, entry_post

PPM = 1_000_000
_CHUNK = 500
_UNIT_CHUNK = 2_000
_ONE_DAY = timedelta(days=1)


def _chunks(ids: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def late_fee_anchor(bill: Bill) -> date:
    """Return the last day that bears no late fee for ``bill`` (the day before accrual)."""
    item = bill.fee_item
    anchor = bill.due_date + timedelta(days=item.late_fee_grace_days)
    if item.late_fee_start_date is not None and item.late_fee_start_date > anchor:
        anchor = item.late_fee_start_date
    return anchor


def _accrues(bill: Bill, as_of: date) -> bool:
    item = bill.fee_item
    return (
        item.late_fee_enabled
        and item.late_fee_daily_ppm > 0
        and bill.kind != Bill.Kind.LATE_FEE
        and bill.amount_fen > 0
        and bill.issued_on <= as_of
        and late_fee_anchor(bill) < as_of
    )


def outstanding_day_sum(
    *, amount_fen: int, allocations: Iterable[tuple[date, int]], first: date, last: date
) -> int:
    """Return Σ over days ``first..last`` (inclusive) of that day's outstanding, in fen·days.

    The outstanding on day ``d`` is ``amount_fen`` minus the allocations dated before ``d``,
    and never below zero.
    """
    if last < first:
        return 0
    settled_before = 0
    changes: dict[date, int] = defaultdict(int)
    for on, amount in allocations:
        if on < first:
            settled_before += amount
        elif on < last:
            changes[on + _ONE_DAY] += amount
    total = 0
    outstanding = amount_fen - settled_before
    day = first
    for change_day in sorted(changes):
        total += max(0, outstanding) * (change_day - day).days
        outstanding -= changes[change_day]
        day = change_day
    total += max(0, outstanding) * ((last - day).days + 1)
    return total


class _Accrual(NamedTuple):
    bill_id: int
    amount_fen: int
    anchor: date
    daily_ppm: int
    cap_percent: int


_Related = tuple[
    dict[int, list[tuple[date, int]]],  # allocations per bill: (allocated_on, amount)
    dict[int, list[tuple[date | None, int | None]]],  # late-fee waivers: (effective, amount)
    dict[int, list[tuple[date, int]]],  # late-fee bills per parent: (issued_on, amount)
]


def _load_related(
    *, as_of: date, bill_ids: Sequence[int] = (), unit_ids: Sequence[int] = ()
) -> _Related:
    """Load what the late fee depends on, for some bills or for all bills of some units."""
    allocations: dict[int, list[tuple[date, int]]] = defaultdict(list)
    waivers: dict[int, list[tuple[date | None, int | None]]] = defaultdict(list)
    charged: dict[int, list[tuple[date, int]]] = defaultdict(list)
    if bill_ids:
        by_bill: dict[str, Any] = {"bill_id__in": bill_ids}
        by_parent: dict[str, Any] = {"parent_id__in": bill_ids}
    else:
        by_bill = {"bill__unit_id__in": unit_ids}
        by_parent = {"unit_id__in": unit_ids}
    for bill_id, on, amount in Allocation.objects.filter(
        allocated_on__lt=as_of, **by_bill
    ).values_list("bill_id", "allocated_on", "amount_fen"):
        allocations[bill_id].append((on, amount))
    for bill_id, w_on, w_amount in Waiver.objects.filter(
        target=Waiver.Target.LATE_FEE,
        state=Waiver.State.APPROVED,
        effective_date__lte=as_of,
        **by_bill,
    ).values_list("bill_id", "effective_date", "amount_fen"):
        waivers[bill_id].append((w_on, w_amount))
    for parent_id, on, amount in Bill.objects.filter(
        kind=Bill.Kind.LATE_FEE, issued_on__lte=as_of, parent__isnull=False, **by_parent
    ).values_list("parent_id", "issued_on", "amount_fen"):
        charged[parent_id].append((on, amount))
    return allocations, waivers, charged


def _compute(
    accruing: Iterable[_Accrual], related: _Related, as_of: date, *, uncharged_only: bool
) -> dict[int, int]:
    allocations, waivers, charged = related
    result: dict[int, int] = {}
    for a in accruing:
        fen_days = outstanding_day_sum(
            amount_fen=a.amount_fen,
            allocations=allocations.get(a.bill_id, ()),
            first=a.anchor + _ONE_DAY,
            last=as_of,
        )
        gross = div_round(fen_days * a.daily_ppm, PPM, Rounding.HALF_UP)
        cap = min(a.amount_fen, div_round(a.amount_fen * a.cap_percent, 100, Rounding.DOWN))
        bill_waivers = waivers.get(a.bill_id, [])
        partial = sum(w for _, w in bill_waivers if w is not None)
        fee = max(0, min(gross, cap) - partial)
        full_on = min((on for on, w in bill_waivers if w is None and on is not None), default=None)
        if full_on is not None:
            fee = sum(c for on, c in charged.get(a.bill_id, ()) if on <= full_on)
        if uncharged_only:
            fee = max(0, fee - sum(c for _, c in charged.get(a.bill_id, ())))
        if fee:
            result[a.bill_id] = fee
    return result


def _accrual(bill: Bill) -> _Accrual:
    item = bill.fee_item
    return _Accrual(
        bill.pk,
        bill.amount_fen,
        late_fee_anchor(bill),
        item.late_fee_daily_ppm,
        item.late_fee_cap_percent,
    )


def late_fee_as_of(*, bill: Bill, as_of: date) -> int:
    """Return the whole late fee owed on ``bill`` as of ``as_of``, in fen (charged or not).

    Computed, not stored: see the module docstring for the rule.
    """
    if not _accrues(bill, as_of):
        return 0
    related = _load_related(as_of=as_of, bill_ids=[bill.pk])
    return _compute([_accrual(bill)], related, as_of, uncharged_only=False).get(bill.pk, 0)


def late_fees_for_units(
    *, unit_ids: Iterable[int], as_of: date, uncharged_only: bool = False
) -> dict[int, int]:
    """Return ``{bill_id: late fee in fen}`` for every bill of ``unit_ids`` with a late fee.

    Bills without a late fee as of ``as_of`` are left out. Same rule as ``late_fee_as_of``:
    the whole late fee, charged or not. With ``uncharged_only`` return only the part not yet
    charged into late-fee bills (issued on or before ``as_of``), which is what to add to the
    bills' outstanding for a total owed without counting a charged late fee twice.
    Four queries per 2,000 households, plain tuples rather than model instances.
    """
    items = {
        pk: (grace, start, ppm, cap)
        for pk, grace, start, ppm, cap in FeeItem.objects.filter(
            late_fee_enabled=True, late_fee_daily_ppm__gt=0
        ).values_list(
            "pk",
            "late_fee_grace_days",
            "late_fee_start_date",
            "late_fee_daily_ppm",
            "late_fee_cap_percent",
        )
    }
    result: dict[int, int] = {}
    if not items:
        return result
    for chunk in _chunks(sorted(set(unit_ids)), _UNIT_CHUNK):
        accruing: list[_Accrual] = []
        for pk, fee_item_id, amount, due in (
            Bill.objects.filter(
                unit_id__in=chunk,
                fee_item_id__in=list(items),
                amount_fen__gt=0,
                issued_on__lte=as_of,
                due_date__lt=as_of,
            )
            .exclude(kind=Bill.Kind.LATE_FEE)
            .values_list("pk", "fee_item_id", "amount_fen", "due_date")
        ):
            grace, start, ppm, cap = items[fee_item_id]
            anchor = due + timedelta(days=grace)
            if start is not None and start > anchor:
                anchor = start
            if anchor < as_of:
                accruing.append(_Accrual(pk, amount, anchor, ppm, cap))
        if accruing:
            related = _load_related(as_of=as_of, unit_ids=chunk)
            result.update(_compute(accruing, related, as_of, uncharged_only=uncharged_only))
    return result


def late_fee_charged(*, bill: Bill, as_of: date | None = None) -> int:
    """Return the late fee already charged into late-fee bills on ``bill`` (issued ≤ as_of)."""
    qs = Bill.objects.filter(parent_id=bill.pk, kind=Bill.Kind.LATE_FEE)
    if as_of is not None:
        qs = qs.filter(issued_on__lte=as_of)
    return int(qs.aggregate(s=Sum("amount_fen"))["s"] or 0)


def late_fee_charge(*, bill: Bill, as_of: date, user_id: int | None) -> Bill | None:
    """Charge the late fee on ``bill`` not yet charged, as of ``as_of``, into a late-fee bill.

    Create a ``Bill(kind=late_fee, parent=bill)`` due on ``as_of`` and post Dr RECEIVABLE /
    Cr LATE_FEE_REVENUE for the household, in one transaction. Idempotent per
    (bill, as_of): charging again returns the same late-fee bill. Return None when there is
    nothing to charge.
    """
    with transaction.atomic():
        locked = Bill.objects.select_for_update().select_related("fee_item").get(pk=bill.pk)
        existing = Bill.objects.filter(
            parent_id=locked.pk, kind=Bill.Kind.LATE_FEE, issued_on=as_of
        ).first()
        if existing is not None:
            return existing
        amount = late_fee_as_of(bill=locked, as_of=as_of) - late_fee_charged(bill=locked)
        if amount <= 0:
            return None
        last_revision = Bill.objects.filter(
            unit_id=locked.unit_id,
            fee_item_id=locked.fee_item_id,
            period_start=locked.period_start,
            kind=Bill.Kind.LATE_FEE,
        ).aggregate(m=Max("revision"))["m"]
        late = Bill.objects.create(
            company_id=locked.company_id,
            community_id=locked.community_id,
            unit_id=locked.unit_id,
            fee_item_id=locked.fee_item_id,
            period_start=locked.period_start,
            period_end=locked.period_end,
            revision=0 if last_revision is None else last_revision + 1,
            kind=Bill.Kind.LATE_FEE,
            amount_fen=amount,
            due_date=as_of,
            issued_on=as_of,
            parent=locked,
            description=f"滞纳金 截至 {as_of.isoformat()}",
        )
        dims = {"community_id": locked.community_id, "fee_item_id": locked.fee_item_id}
        entry_post(
            company_id=locked.company_id,
            kind=JournalEntry.Kind.LATE_FEE,
            memo=f"滞纳金 账单#{locked.pk} 截至 {as_of.isoformat()}",
            effective_date=as_of,
            idempotency_key=f"late_fee:{locked.pk}:{as_of.isoformat()}",
            created_by_id=user_id,
            lines=[
                debit(AccountKind.RECEIVABLE, amount, household_id=locked.unit_id, **dims),
                credit(AccountKind.LATE_FEE_REVENUE, amount, **dims),
            ],
        )
        audit_record(
            actor=None if user_id is None else _user(user_id),
            action="late_fee.charge",
            obj=late,
            company=locked.company,
            detail={"parent_bill": locked.pk, "as_of": as_of.isoformat(), "amount_fen": amount},
        )
        return late


def _user(user_id: int) -> Any:

    return get_user_model().objects.filter(pk=user_id).first()


def late_fees_charge(*, community_id: int, as_of: date, user_id: int | None) -> list[Bill]:
    """Charge every uncharged late fee in a community as of ``as_of``; return the new bills.

    The daily job: finds bills with an uncharged late fee (in chunks of households) and calls
    ``late_fee_charge`` on each, so it is idempotent per (bill, as_of) and one bill's
    transaction never holds another's lock.
    """
    unit_ids = list(
        Unit.objects.filter(community_id=community_id).order_by("pk").values_list("pk", flat=True)
    )
    charged: list[Bill] = []
    for chunk in _chunks(unit_ids, 5_000):
        owed = late_fees_for_units(unit_ids=chunk, as_of=as_of, uncharged_only=True)
        for bill in Bill.objects.filter(pk__in=sorted(owed)).select_related("fee_item"):
            late = late_fee_charge(bill=bill, as_of=as_of, user_id=user_id)
            if late is not None:
                charged.append(late)
    return charged
