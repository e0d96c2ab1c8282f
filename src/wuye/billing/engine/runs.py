"""Billing runs: compute every household's lines for a period and issue only the differences.

For each (unit, fee item, period) the run compares the amount it computes with the sum of the
bills already issued for that line (all revisions): equal, nothing; none yet, revision 0;
different, an adjustment bill holding the difference (negative: a credit note, netted against
the line's outstanding, any remainder the household already paid going to its prepaid
balance). Issued bills' amounts are never edited. Bills, settlements and ONE journal entry for
the run are written in one transaction.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Max, Sum, Value
from django.db.models.functions import Cast, Round
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.billing.engine import calculation as calc
from wuye.billing.engine.writer import (
    BillConstants,
    BillRow,
    JournalRow,
    bills_write,
    journal_lines_write,
)
from wuye.billing.models import Allocation, Bill, BillingRun, FeeItem, FeeStandard, PriceTier
from wuye.core.money import Rounding, decimal_to_scaled_int, div_round
from wuye.core.periods import Period, cycle_period
from wuye.core.services import ProgressFn
from wuye.estates.models import Community, Meter, MeterReading, Unit
from wuye.ledger.models import AccountKind, JournalEntry

CONSTRAINTS_IMMEDIATE = True
LINE_KINDS = (Bill.Kind.REGULAR, Bill.Kind.METERED, Bill.Kind.ONE_OFF, Bill.Kind.ADJUSTMENT)
METER_KIND_FOR_FEE: dict[str, str] = {
    FeeItem.Kind.WATER.value: Meter.Kind.WATER.value,
    FeeItem.Kind.POWER.value: Meter.Kind.POWER.value,
}


_TypeInfo = tuple[list[calc.Standard], calc.Standard | None, list[calc.Standard]]


class BillingRunError(ValueError):
    """The run's parameters are wrong (names which and why); nothing was written."""


@dataclass(frozen=True)
class _Item:
    id: int
    name: str
    kind: str
    rounding: Rounding
    due_days: int


def billing_run_execute(
    *,
    community_id: int,
    period_start: date,
    cycle_months: int = 1,
    issued_on: date,
    fee_item_ids: list[int] | None = None,
    user_id: int | None = None,
    progress: ProgressFn | None = None,
    job_id: int | None = None,
) -> BillingRun:
    """Bill a community for the cycle starting on ``period_start``; return the finished run.

    Re-running the same period issues only differences (adjustment bills). Raises
    BillingRunError for a bad community, period, cycle or fee item (nothing written); any
    other failure rolls the run's bills and entry back and marks the run failed.
    """
    if cycle_months not in calc.CYCLES:
        raise BillingRunError(
            _("计费周期(月)必须是 1、3、6 或 12, 而不是 %(months)s") % {"months": cycle_months}
        )
    if period_start.day != 1:
        raise BillingRunError(
            _("账期开始必须是某月1日, 而不是 %(day)s") % {"day": period_start.isoformat()}
        )
    period = cycle_period(period_start, cycle_months)
    community = Community.objects.filter(pk=community_id).first()
    if community is None:
        raise BillingRunError(_("小区不存在: id=%(id)s") % {"id": community_id})
    items_qs = FeeItem.objects.filter(company_id=community.company_id, active=True)
    if fee_item_ids is not None:
        wanted = set(fee_item_ids)
        items_qs = items_qs.filter(pk__in=wanted)
        missing = wanted - set(items_qs.values_list("pk", flat=True))
        if missing:
            raise BillingRunError(
                _("收费项目不存在、未启用或不属于该小区的公司: %(ids)s") % {"ids": sorted(missing)}
            )
    items = [
        _Item(pk, name, kind, Rounding(rounding), due_days)
        for pk, name, kind, rounding, due_days in items_qs.order_by("pk").values_list(
            "pk", "name", "kind", "rounding", "due_days"
        )
    ]
    mixed = next(
        iter(
            Bill.objects.filter(
                community_id=community_id, period_start=period.start, kind__in=LINE_KINDS,
                fee_item_id__in=[i.id for i in items],
            )
            .exclude(period_end=period.end)
            .order_by()
            .values_list("period_end", flat=True)[:1]
        ),
        None,
    )
    if mixed is not None:
        raise BillingRunError(
            _("%(start)s 起的账期已按另一周期出账(至 %(end)s), 不能再按 %(months)s 个月出账")
            % {"start": period.start.isoformat(), "end": mixed.isoformat(), "months": cycle_months}
        )

    run = BillingRun.objects.create(
        community=community, period_start=period.start, period_end=period.end,
        job_id=job_id, created_by_id=user_id,
    )
    try:
        with transaction.atomic():
            Community.objects.select_for_update().filter(pk=community_id).first()
            if connection.vendor == "postgresql" and CONSTRAINTS_IMMEDIATE:
                # Check foreign keys as each COPY finishes, not all at commit, so the
                # progress shown covers the work (the cost is the same).
                with connection.cursor() as cur:
                    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            _Run(run, community, period, cycle_months, items, issued_on, user_id, progress).go()
            if connection.vendor == "postgresql" and CONSTRAINTS_IMMEDIATE:
                # Back to Django's default for the rest of a caller's transaction (this block
                # may be a savepoint inside it): SET CONSTRAINTS lasts until the transaction ends.
                with connection.cursor() as cur:
                    cur.execute("SET CONSTRAINTS ALL DEFERRED")
            run.status = BillingRun.Status.DONE
            run.finished_at = timezone.now()
            run.save()
    except Exception:
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRun.Status.FAILED, finished_at=timezone.now()
        )
        raise
    _prepaid_offset(community_id=community_id, on_date=issued_on)
    return run


def _prepaid_offset(*, community_id: int, on_date: date) -> None:
    """Offset prepaid balances against the new bills, once h2's prepayments module exists."""
    try:
        module = importlib.import_module("wuye.billing.prepayments")
    except ModuleNotFoundError:
        return
    apply: Callable[..., object] | None = getattr(module, "prepaid_offset_apply", None)
    if apply is not None:
        apply(community_id=community_id, on_date=on_date)


def _price_c(value: Decimal) -> int:
    return decimal_to_scaled_int(value, 4)


def _load_standards(community_id: int, item_ids: list[int], period: Period) -> list[calc.Standard]:
    rows = list(
        FeeStandard.objects.filter(
            community_id=community_id, fee_item_id__in=item_ids, effective_from__lt=period.end
        ).values_list(
            "pk", "fee_item_id", "unit_type", "method", "unit_price", "fixed_fen",
            "vacant_percent", "bill_unsold", "effective_from",
        )
    )
    tiers: dict[int, list[tuple[int | None, int]]] = defaultdict(list)
    for sid, up_to, price in PriceTier.objects.filter(
        standard_id__in=[r[0] for r in rows]
    ).values_list("standard_id", "up_to", "unit_price"):
        tiers[sid].append(
            (None if up_to is None else decimal_to_scaled_int(up_to, 3), _price_c(price))
        )
    out = []
    for sid, fid, utype, method, price, fixed, vacant, unsold, eff in rows:
        steps = sorted(tiers.get(sid, []), key=lambda t: (t[0] is None, t[0] or 0))
        out.append(
            calc.Standard(
                id=sid, fee_item_id=fid, unit_type=utype, method=method, effective_from=eff,
                price_c=_price_c(price), fixed_fen=fixed, vacant_percent=vacant,
                bill_unsold=unsold, tiers=tuple(steps),
            )
        )
    return out


def _milli(value: Decimal) -> int:
    return decimal_to_scaled_int(value, 3)


def _fmt_scaled(value: int, places: int) -> str:
    q, r = divmod(value, 10**places)
    return f"{q}.{r:0{places}d}"


class _Run:
    """The work of one run inside its transaction."""

    def __init__(
        self,
        run: BillingRun,
        community: Community,
        period: Period,
        cycle_months: int,
        items: list[_Item],
        issued_on: date,
        user_id: int | None,
        progress: ProgressFn | None,
    ) -> None:
        self.run = run
        self.community = community
        self.period = period
        self.months = cycle_months
        self.items = items
        self.issued_on = issued_on
        self.user_id = user_id
        self.progress = progress

    # -- loading -------------------------------------------------------------------------

    def _load_units(self) -> list[tuple[int, str, str, date | None, int, int | None]]:
        hundred = Value(Decimal(100))
        return list(
            Unit.objects.filter(community_id=self.community.pk)
            .order_by("pk")
            .annotate(
                a=Cast(Round(F("area_m2") * hundred), BigIntegerField()),
                ia=Cast(Round(F("inner_area_m2") * hundred), BigIntegerField()),
            )
            .values_list("pk", "unit_type", "state", "handover_date", "a", "ia")
        )

    def _load_existing(self) -> dict[int, dict[int, tuple[int, int]]]:
        """Return ``{fee item: {unit: (sum issued, last revision)}}`` for this period."""
        rows = (
            Bill.objects.filter(
                community_id=self.community.pk, period_start=self.period.start,
                fee_item_id__in=[i.id for i in self.items], kind__in=LINE_KINDS,
            )
            .values_list("unit_id", "fee_item_id")
            .annotate(total=Sum("amount_fen"), rev=Max("revision"))
            .order_by()
        )
        out: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
        for u, f, t, r in rows:
            out[f][u] = (int(t), int(r))
        return out

    def _load_opening(self) -> set[tuple[int, int]]:
        """Return the (unit, fee item) lines of this period brought in as opening arrears.

        The old system billed them (the arrears are what was left unpaid), so the run leaves
        them alone rather than billing the period a second time.
        """
        return set(
            Bill.objects.filter(
                community_id=self.community.pk, period_start=self.period.start,
                fee_item_id__in=[i.id for i in self.items], kind=Bill.Kind.OPENING,
            ).values_list("unit_id", "fee_item_id")
        )

    def _load_consumption(self, meter_kinds: set[str]) -> dict[tuple[int, str], int]:
        """Return consumption × multiplier (0.001 units) per (unit id, meter kind)."""
        meters = {
            mid: (uid, kind, mult)
            for mid, uid, kind, mult in Meter.objects.filter(
                community_id=self.community.pk, unit__isnull=False, kind__in=meter_kinds
            ).values_list("pk", "unit_id", "kind", "multiplier")
        }
        readings: dict[int, list[calc.Reading]] = defaultdict(list)
        for mid, day, value, repl in MeterReading.objects.filter(
            meter_id__in=list(meters), read_date__lt=self.period.end
        ).values_list("meter_id", "read_date", "value", "is_replacement"):
            readings[mid].append(calc.Reading(day, _milli(value), repl))
        out: dict[tuple[int, str], int] = defaultdict(int)
        for mid, (uid, kind, mult) in meters.items():
            try:
                used = calc.meter_consumption(readings.get(mid, []), self.period)
            except calc.CalculationError as exc:
                raise BillingRunError(
                    _("仪表 id=%(id)s: %(error)s") % {"id": mid, "error": exc}
                ) from exc
            out[(uid, kind)] += used * mult
        return out

    # -- the run ---------------------------------------------------------------------------

    def go(self) -> None:
        period, months = self.period, self.months
        standards = _load_standards(self.community.pk, [i.id for i in self.items], period)
        units = self._load_units()
        existing = self._load_existing()
        opening = self._load_opening()
        n_units = len(units)
        n_items = len(self.items)
        total_steps = max(1, 2 * n_units * n_items)
        step = max(1, n_units // 100)
        done = 0
        report = self.progress or (lambda d, t, m: None)
        report(0, total_steps, "计算账单")

        metered_kinds = {
            METER_KIND_FOR_FEE[i.kind]
            for i in self.items
            if i.kind in METER_KIND_FOR_FEE
            and any(s.method == calc.METERED for s in standards if s.fee_item_id == i.id)
        }
        consumption = self._load_consumption(metered_kinds) if metered_kinds else {}

        rows: list[BillRow] = []
        receivable = [0] * n_units
        revenue: dict[int, int] = {}
        negatives: list[tuple[int, int, int, int]] = []  # (unit idx, unit id, fee id, -amount)
        created = adjusted = unchanged = 0
        last_day = period.end - timedelta(days=1)
        regular, metered_kind, one_off_kind = (
            Bill.Kind.REGULAR.value, Bill.Kind.METERED.value, Bill.Kind.ONE_OFF.value
        )
        adjustment = Bill.Kind.ADJUSTMENT.value
        pstart, pend = period.start, period.end
        area_text: dict[int, str] = {}

        for item in self.items:
            fid = item.id
            item_standards = [s for s in standards if s.fee_item_id == fid]
            issued_by_unit = existing.get(fid, {})
            if not item_standards and not issued_by_unit:
                done += n_units
                continue
            per_type: dict[str, _TypeInfo] = {}
            coeffs: dict[tuple[str, str, date | None], calc.Coefficients] = {}
            meter_kind = METER_KIND_FOR_FEE.get(item.kind)
            rounding = item.rounding
            half_up = rounding is Rounding.HALF_UP
            item_total = 0
            for lo in range(0, n_units, step):
                for idx in range(lo, min(lo + step, n_units)):
                    uid, utype, state, hand, a, ia = units[idx]
                    info = per_type.get(utype)
                    if info is None:
                        vs = calc.select_standards(item_standards, fee_item_id=fid, unit_type=utype)
                        info = per_type[utype] = (
                            vs, calc.standard_on(vs, last_day), calc.one_off_standards(vs, period)
                        )
                    vs, current, one_offs = info
                    amount = 0
                    qty: str | None = None
                    kind = regular
                    if vs and (hand is None or hand < pend):
                        key = (utype, state, hand if hand is not None and hand > pstart else None)
                        c = coeffs.get(key)
                        if c is None:
                            c = coeffs[key] = calc.periodic_coefficients(
                                vs, period=period, state=state, billable_from=key[2]
                            )
                        if c.area or c.inner or c.fixed:
                            n = a * c.area + (ia or 0) * c.inner + c.fixed
                            d = c.denominator
                            amount = (
                                (2 * n + d) // (2 * d) if half_up and n >= 0
                                else div_round(n, d, rounding)
                            )
                            if c.area:
                                qty = area_text.get(a)
                                if qty is None:
                                    qty = area_text[a] = _fmt_scaled(a, 2)
                            elif c.inner and ia is not None:
                                qty = _fmt_scaled(ia, 2)
                        if (
                            current is not None and current.method == calc.METERED
                            and meter_kind is not None
                        ):
                            facts = calc.UnitFacts(uid, utype, state, hand, a, ia)
                            if calc.is_billable(facts, current, period):
                                used = consumption.get((uid, meter_kind), 0)
                                amount += calc.metered_amount(
                                    used, current, months=months, rounding=rounding
                                )
                                qty = _fmt_scaled(used, 3)
                                kind = metered_kind
                        for s in one_offs:
                            facts = calc.UnitFacts(uid, utype, state, hand, a, ia)
                            if calc.is_billable(facts, s, period):
                                amount += s.fixed_fen
                                kind = one_off_kind
                    if opening and (uid, fid) in opening:
                        unchanged += 1
                        continue
                    prior = issued_by_unit.get(uid) if issued_by_unit else None
                    if prior is None:
                        if amount:
                            rows.append((uid, fid, 0, kind, amount, qty))
                            receivable[idx] += amount
                            item_total += amount
                            created += 1
                        continue
                    issued, rev = prior
                    diff = amount - issued
                    if diff == 0:
                        unchanged += 1
                        continue
                    rows.append((uid, fid, rev + 1, adjustment, diff, qty))
                    receivable[idx] += diff
                    item_total += diff
                    adjusted += 1
                    if diff < 0:
                        negatives.append((idx, uid, fid, -diff))
                done += min(step, n_units - lo)
                report(done, total_steps, f"计算账单: {item.name}")
            if item_total:
                revenue[fid] = item_total

        self.run.bills_created = created
        self.run.adjustments_created = adjusted
        self.run.unchanged = unchanged
        self.run.total_fen = sum(revenue.values())
        if not rows:
            report(total_steps, total_steps, "无新账单")
            return

        settle = self._plan_credit_notes(negatives) if negatives else _Settlement()
        for idx, extra in settle.receivable_extra.items():
            receivable[idx] += extra

        company_id = self.community.company_id
        entry = JournalEntry.objects.create(
            company_id=company_id,
            kind=JournalEntry.Kind.BILLING,
            memo=f"出账 {self.community.name} {period.label()} 批次#{self.run.pk}"[:200],
            effective_date=self.issued_on,
            idempotency_key=f"billing-run:{self.run.pk}",
            created_by_id=self.user_id,
        )
        constants = {
            i.id: BillConstants(
                fee_item_id=i.id, company_id=company_id, community_id=self.community.pk,
                period_start=pstart, period_end=pend,
                due_date=pstart + timedelta(days=i.due_days),
                description=f"{i.name} {period.label()}"[:200],
                run_id=self.run.pk, issued_on=self.issued_on,
            )
            for i in self.items
        }
        cid = self.community.pk
        lines: list[JournalRow] = []
        receivable_kind = AccountKind.RECEIVABLE.value
        for idx, amt in enumerate(receivable):
            if amt:
                lines.append((receivable_kind, amt, cid, units[idx][0], None))
        for idx, r in settle.to_prepaid.items():
            lines.append((AccountKind.PREPAID.value, -r, cid, units[idx][0], None))
        for (idx, fid), released in settle.released_by_fee.items():
            lines.append((AccountKind.WAIVER_EXPENSE.value, -released, cid, units[idx][0], fid))
        for fid, amt in revenue.items():
            lines.append((AccountKind.REVENUE.value, -amt, cid, None, fid))

        # The second half of the bar is the writing: bills, then the journal lines (one
        # statement, so the bar waits at the journal's share until it is done).
        base = n_units * n_items
        n_rows = len(rows)
        bill_share = (base - 1) * n_rows // (n_rows + len(lines))
        bills_write(
            rows, constants=constants, created_at=timezone.now(),
            progress=lambda w: report(base + w * bill_share // n_rows, total_steps, "写入账单"),
        )
        if negatives:
            self._apply_credit_notes(settle, entry)
        report(base + bill_share, total_steps, "记账")
        journal_lines_write(entry.pk, lines)
        report(total_steps, total_steps, "完成")

    # -- credit notes ------------------------------------------------------------------------

    def _plan_credit_notes(self, negatives: list[tuple[int, int, int, int]]) -> _Settlement:
        """Settle each credit note against its line: first the outstanding, then any waiver
        that is no longer needed (released), and what is left, which the household had paid,
        goes to its prepaid balance."""
        wanted = {(n[1], n[2]) for n in negatives}
        # [bill id, paid, outstanding, waived] per open line bill, oldest revision first
        line_bills: dict[tuple[int, int], list[list[int]]] = defaultdict(list)
        for bid, uid, fid, amount, paid, waived in (
            Bill.objects.filter(
                community_id=self.community.pk, period_start=self.period.start,
                fee_item_id__in={n[2] for n in negatives}, kind__in=LINE_KINDS,
                amount_fen__gt=0,
            )
            .order_by("revision", "pk")
            .values_list("pk", "unit_id", "fee_item_id", "amount_fen", "paid_fen", "waived_fen")
        ):
            if (uid, fid) in wanted and (amount - paid - waived > 0 or waived > 0):
                line_bills[(uid, fid)].append([bid, paid, amount - paid - waived, waived])
        plan = _Settlement()
        for idx, uid, fid, credit in negatives:
            left = credit
            bills = line_bills.get((uid, fid), [])
            for bill in bills:
                take = min(left, bill[2])
                if take:
                    bill[1] += take
                    bill[2] -= take
                    left -= take
                    plan.original[bill[0]] = (bill[1], bill[3])
                    plan.netted.append((uid, fid, bill[0], take))
            for bill in bills:
                take = min(left, bill[3])
                if take:
                    bill[3] -= take
                    bill[1] += take
                    left -= take
                    plan.original[bill[0]] = (bill[1], bill[3])
                    plan.netted.append((uid, fid, bill[0], take))
                    plan.released.append((uid, fid, bill[0], take))
                    plan.receivable_extra[idx] = plan.receivable_extra.get(idx, 0) + take
                    key = (idx, fid)
                    plan.released_by_fee[key] = plan.released_by_fee.get(key, 0) + take
            if left:
                plan.to_prepaid[idx] = plan.to_prepaid.get(idx, 0) + left
                plan.receivable_extra[idx] = plan.receivable_extra.get(idx, 0) + left
                plan.prepaid_alloc.append((uid, fid, left))
        return plan

    def _apply_credit_notes(self, plan: _Settlement, entry: JournalEntry) -> None:
        notes = {
            (uid, fid): bid
            for bid, uid, fid in Bill.objects.filter(run=self.run, amount_fen__lt=0).values_list(
                "pk", "unit_id", "fee_item_id"
            )
        }
        Bill.objects.filter(run=self.run, amount_fen__lt=0).update(paid_fen=F("amount_fen"))
        if plan.original:
            Bill.objects.bulk_update(
                [
                    Bill(pk=bid, paid_fen=paid, waived_fen=waived)
                    for bid, (paid, waived) in plan.original.items()
                ],
                ["paid_fen", "waived_fen"], batch_size=500,
            )
        ref = f"billing-run:{self.run.pk}"
        allocations: list[Allocation] = []
        for uid, fid, original_id, take in plan.netted:
            note_id = notes[(uid, fid)]
            allocations.append(Allocation(
                bill_id=note_id, source=Allocation.Source.CREDIT_NOTE, amount_fen=-take,
                allocated_on=self.issued_on, entry=entry, reference=ref,
            ))
            allocations.append(Allocation(
                bill_id=original_id, source=Allocation.Source.CREDIT_NOTE, amount_fen=take,
                allocated_on=self.issued_on, entry=entry, reference=ref,
            ))
        for _uid, _fid, original_id, take in plan.released:
            allocations.append(Allocation(
                bill_id=original_id, source=Allocation.Source.WAIVER, amount_fen=-take,
                allocated_on=self.issued_on, entry=entry, reference=ref,
            ))
        for uid, fid, left in plan.prepaid_alloc:
            allocations.append(Allocation(
                bill_id=notes[(uid, fid)], source=Allocation.Source.PREPAID, amount_fen=-left,
                allocated_on=self.issued_on, entry=entry, reference=ref,
            ))
        Allocation.objects.bulk_create(allocations, batch_size=1000)


class _Settlement:
    """How the run's credit notes are settled."""

    def __init__(self) -> None:
        self.original: dict[int, tuple[int, int]] = {}  # bill id -> new (paid_fen, waived_fen)
        self.netted: list[tuple[int, int, int, int]] = []  # (unit, fee, original bill, fen)
        self.released: list[tuple[int, int, int, int]] = []  # waiver released on a bill
        self.released_by_fee: dict[tuple[int, int], int] = {}  # (unit idx, fee) -> fen
        self.prepaid_alloc: list[tuple[int, int, int]] = []  # (unit, fee, fen to prepaid)
        self.to_prepaid: dict[int, int] = {}  # unit index -> fen to prepaid
        self.receivable_extra: dict[int, int] = {}  # unit index -> Dr receivable beyond bills
