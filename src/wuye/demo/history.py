"""The demo's counter history: shifts, payments, prepayments, a refund and a voided receipt.

Replayed after the 12 months of bills through the real services (``counter``, ``payments``,
``receipts``), never by writing rows, with ``now`` values in the past: office hours,
Asia/Shanghai, every working day (Monday to Friday) of the last ``HISTORY_MONTHS`` full months
and of this month up to yesterday.

Who pays what (drawn from the seed, per household with something to pay):

- about 70% come once in the window (at most ``MAX_VISITS`` households over both
  communities, to keep the load fast: in the default 2,400-unit demo one in six) and
  pay everything billed up to a month: the month before the visit, so each payment is dated
  in the month after its newest bill (older bills are paid late, with their late fees). The
  later the month, the fewer have paid it: of those who come, 93% have paid the older months,
  about 73%, 47% and 20% the last three;
- a few of them pay part of what they owe, or pay more than the bills (the rest goes to the
  prepaid balance);
- a few top up a prepaid balance in the first month and pay their bills from it later, two
  per community with a prepaid card (password ``DEMO_CARD_PASSWORD``);
- the others do not come: their bills stay overdue and late fees accrue.

Each shift opens at 08:30 with a ¥500 float, banks the cash above the float at 16:40 (paid
out) and closes at 17:15 with the cash counted; one shift is ¥10 short, with a note. Finance
refunds one cash payment in full (the household paid twice), and the cashier's request to void
that payment's receipt is approved by finance.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F, Sum

from wuye.accounts.models import User
from wuye.billing.latefees import late_fees_for_units
from wuye.billing.models import Bill
from wuye.core.periods import add_months
from wuye.counter.models import CashMovement, Shift
from wuye.counter.selectors import drawer_cash
from wuye.counter.services import (
    cash_movement_record,
    counter_checkout,
    counter_refund,
    shift_close,
    shift_open,
)
from wuye.estates.models import Community, Unit
from wuye.payments.models import Payment, PrepaidCard
from wuye.payments.services import PaymentDeclined, prepaid_card_issue
from wuye.receipts.models import Receipt
from wuye.receipts.services import receipt_void_approve, receipt_void_request

TZ = ZoneInfo("Asia/Shanghai")
HISTORY_MONTHS = 3
DEMO_CARD_PASSWORD = "135790"  # noqa: S105 - the demo's prepaid cards; documented in the README
FLOAT_FEN = 50_000
SHORTAGE_FEN = 1_000
SHORTAGE_NOTE = "找零差错, 短款10元, 收银员已签字确认"
REFUND_REASON = "业主已由单位代缴, 重复缴费, 全额退回"
VOID_REASON = "款项已全额退回, 原收据收回作废"
BANKING_REASON = "解款存入银行"
REFUND_CASH_REASON = "银行取现备付退款"
OPEN_AT = 8 * 60 + 30
CLOSE_AT = 17 * 60 + 15
BANK_AT = 16 * 60 + 40
CARDS_PER_COMMUNITY = 2
TOPUPS_PER_COMMUNITY = 4
# Households coming to the counter, over both communities. A catch-up payment crystallises the
# late fees of every overdue bill it pays (about 0.1 s a visit on a busy 2-core machine), so the
# default demo pays a sample: every household in a small demo, a few hundred in a large one.
MAX_VISITS = 400


@dataclass
class HistoryResult:
    """What the counter history did."""

    shifts: int = 0
    payments: int = 0
    cash_payments: int = 0
    prepaid_payments: int = 0
    partial_payments: int = 0
    prepayments: int = 0
    cards: int = 0
    paid_out: int = 0
    refunds: int = 0
    voids: int = 0
    shortage_fen: int = 0
    declined: int = 0
    collection_permille: dict[str, int] = field(default_factory=dict)


@dataclass
class _Visit:
    unit: Unit
    kind: str  # cash | partial | prepay | topup | prepaid | card
    upto: date | None  # pay the bills of periods up to this month; None: no bills (top-up)
    minute: int = 0
    topup_fen: int = 0
    card: bool = False  # a top-up that comes with a prepaid card


def at(day: date, minute: int) -> datetime:
    """``day`` at ``minute`` minutes after midnight, Asia/Shanghai."""
    return datetime.combine(day, time(0), tzinfo=TZ) + timedelta(minutes=minute)


def working_days(start: date, end: date) -> list[date]:
    """Monday to Friday from ``start`` up to (not including) ``end``."""
    return [
        start + timedelta(days=i)
        for i in range((end - start).days)
        if (start + timedelta(days=i)).weekday() < 5
    ]


def _outstanding(unit_ids: list[int]) -> dict[int, list[tuple[int, date, int]]]:
    """``{unit id: [(bill id, period start, outstanding fen)]}`` of bills with money owed."""
    rows = (
        Bill.objects.filter(unit_id__in=unit_ids)
        .annotate(left=F("amount_fen") - F("paid_fen") - F("waived_fen"))
        .filter(left__gt=0)
        .order_by("unit_id", "period_start", "pk")
        .values_list("unit_id", "pk", "period_start", "left")
    )
    out: dict[int, list[tuple[int, date, int]]] = defaultdict(list)
    for unit_id, pk, start, left in rows:
        out[unit_id].append((pk, start, int(left)))
    return out


def _round_up(fen: int, step: int = 10_000) -> int:
    return -(-fen // step) * step


def _plan(
    *,
    rng: random.Random,
    community: Community,
    units: list[Unit],
    owed: dict[int, list[tuple[int, date, int]]],
    month: date,
    days_by_month: dict[date, list[date]],
    max_visits: int,
) -> dict[date, list[_Visit]]:
    """Who comes on which day, and what for."""
    visits: dict[date, list[_Visit]] = defaultdict(list)
    first_month = add_months(month, -HISTORY_MONTHS)
    topups: list[_Visit] = []
    owing = [u for u in units if u.pk in owed]
    coming = {u.pk for u in rng.sample(owing, min(round(len(owing) * 0.75), max_visits))}
    for unit in owing:
        if unit.pk not in coming:
            continue
        roll = rng.random() * 0.75
        # pay through the month k months before this one, visiting in the month after it
        k = 1 if roll < 0.15 else 2 if roll < 0.35 else 3 if roll < 0.55 else 4
        if roll >= 0.70:
            if roll < 0.75 and days_by_month[first_month]:  # pays something towards arrears
                visits[rng.choice(days_by_month[first_month])].append(
                    _Visit(unit, "partial", add_months(month, -HISTORY_MONTHS - 1))
                )
            continue
        upto = add_months(month, -k)
        visit_month = add_months(upto, 1)
        days = days_by_month.get(visit_month) or days_by_month[add_months(visit_month, -1)]
        if not days:
            continue
        kind_roll = rng.random()
        kind = "partial" if kind_roll < 0.06 else "prepay" if kind_roll < 0.10 else "cash"
        visit = _Visit(unit, kind, upto)
        if k in (2, 3) and len(topups) < TOPUPS_PER_COMMUNITY:
            # tops up in the first month, pays from the balance later
            due = sum(left for _pk, start, left in owed[unit.pk] if start <= upto)
            card = len(topups) < CARDS_PER_COMMUNITY
            visit.kind = "card" if card else "prepaid"
            top = _Visit(
                unit, "topup", None, topup_fen=_round_up(due * 12 // 10 + 20_000), card=card
            )
            topups.append(top)
            visits[rng.choice(days_by_month[first_month][:10])].append(top)
            days = [d for d in days if d >= days_by_month[first_month][10]] or days
        visits[rng.choice(days)].append(visit)
    for day_visits in visits.values():
        minutes = sorted(rng.sample(range(OPEN_AT + 15, BANK_AT - 10), len(day_visits)))
        rng.shuffle(day_visits)
        for v, minute in zip(day_visits, minutes, strict=True):
            v.minute = minute
    return visits


def _due(unit_id: int, bills: list[tuple[int, date, int]], on_date: date) -> int:
    late = late_fees_for_units(unit_ids=[unit_id], as_of=on_date, uncharged_only=True)
    return sum(left + late.get(pk, 0) for pk, _start, left in bills)


def _take(
    *,
    rng: random.Random,
    shift: Shift,
    visit: _Visit,
    day: date,
    key: str,
    owed: dict[int, list[tuple[int, date, int]]],
    result: HistoryResult,
) -> Payment | None:
    now = at(day, visit.minute)
    unit = visit.unit
    if visit.kind == "topup":
        checkout = counter_checkout(
            shift=shift,
            unit=unit,
            bill_ids=[],
            amount_fen=visit.topup_fen,
            channel="cash",
            idempotency_key=key,
            now=now,
            tendered_fen=visit.topup_fen,
        )
        result.prepayments += 1
        result.cash_payments += 1
        result.payments += 1
        return checkout.payment
    assert visit.upto is not None
    bills = [b for b in owed.get(unit.pk, []) if b[1] <= visit.upto]
    if not bills:
        return None
    ids = [pk for pk, _start, _left in bills]
    if visit.kind in ("prepaid", "card"):
        card_no = (
            PrepaidCard.objects.filter(unit=unit).values_list("card_no", flat=True).first()
            if visit.kind == "card"
            else None
        )
        try:
            checkout = counter_checkout(
                shift=shift,
                unit=unit,
                bill_ids=ids,
                amount_fen=None,
                channel="prepaid",
                idempotency_key=key,
                now=now,
                card_no=card_no,
                password=DEMO_CARD_PASSWORD if card_no else None,
            )
        except PaymentDeclined:  # the balance fell short: pays cash instead
            result.declined += 1
            visit.kind = "cash"
            key += ":cash"
        else:
            result.prepaid_payments += 1
            result.payments += 1
            return checkout.payment
    due = _due(unit.pk, bills, day)
    amount: int | None = None
    if visit.kind == "partial":
        part = (due * rng.randrange(30, 71) // 100) // 10_000 * 10_000
        if 0 < part < due:
            amount = part
            result.partial_payments += 1
    elif visit.kind == "prepay":
        amount = due + rng.choice([60_000, 120_000, 200_000])
        result.prepayments += 1
    to_pay = due if amount is None else amount
    tendered = to_pay if rng.random() < 0.3 else _round_up(to_pay)
    checkout = counter_checkout(
        shift=shift,
        unit=unit,
        bill_ids=ids,
        amount_fen=amount,
        channel="cash",
        idempotency_key=key,
        now=now,
        tendered_fen=tendered,
    )
    result.cash_payments += 1
    result.payments += 1
    return checkout.payment


def history_replay(
    *,
    rng: random.Random,
    communities: list[Community],
    cashiers: list[User],
    finance: User,
    today: date,
    say: Any = None,
) -> HistoryResult:
    """Replay the counter history of ``communities`` (one cashier each) up to yesterday."""
    out = say or (lambda _msg: None)
    result = HistoryResult()
    month = today.replace(day=1)
    first_month = add_months(month, -HISTORY_MONTHS)
    days = working_days(first_month, today)
    days_by_month: dict[date, list[date]] = defaultdict(list)
    for d in days:
        days_by_month[d.replace(day=1)].append(d)
    plans = {}
    owed_by_community = {}
    total_units = Unit.objects.filter(community__in=communities).count() or 1
    for community in communities:
        units = list(Unit.objects.filter(community=community).order_by("pk"))
        owed = _outstanding([u.pk for u in units])
        owed_by_community[community.pk] = owed
        plans[community.pk] = _plan(
            rng=rng,
            community=community,
            units=units,
            owed=owed,
            month=month,
            days_by_month=days_by_month,
            max_visits=MAX_VISITS * len(units) // total_units,
        )
    last_month_days = days_by_month.get(add_months(month, -1), [])
    refund_day = last_month_days[len(last_month_days) // 2] if last_month_days else None
    short_month = days_by_month.get(add_months(month, -2), []) or days
    short_day = short_month[len(short_month) // 3] if short_month else None
    cash_paid: list[Payment] = []
    for day in days:
        _day_replay(
            rng=rng,
            day=day,
            communities=communities,
            cashiers=cashiers,
            finance=finance,
            plans=plans,
            owed_by_community=owed_by_community,
            cash_paid=cash_paid,
            refund_day=refund_day,
            short_day=short_day,
            result=result,
        )
        if day.day <= 7 and day == days_by_month[day.replace(day=1)][0]:
            out(f"  收费 {day:%Y-%m} …")
    billed = Bill.objects.filter(community__in=communities, period_start__lt=month)
    for period, amount, paid, waived in (
        billed.values_list("period_start")
        .annotate(a=Sum("amount_fen"), p=Sum("paid_fen"), w=Sum("waived_fen"))
        .order_by("period_start")
    ):
        if amount - waived > 0:
            result.collection_permille[f"{period:%Y-%m}"] = paid * 1000 // (amount - waived)
    return result


@transaction.atomic  # one commit a day: the load spends its time on the services, not on fsync
def _day_replay(
    *,
    rng: random.Random,
    day: date,
    communities: list[Community],
    cashiers: list[User],
    finance: User,
    plans: dict[int, dict[date, list[_Visit]]],
    owed_by_community: dict[int, dict[int, list[tuple[int, date, int]]]],
    cash_paid: list[Payment],
    refund_day: date | None,
    short_day: date | None,
    result: HistoryResult,
) -> None:
    """One working day at both counters: open, take payments, refund, bank, close."""
    for community, cashier in zip(communities, cashiers, strict=True):
        shift = shift_open(
            cashier=cashier,
            community=community,
            counter_name=f"{community.name.split('·')[-1]}服务中心1号台",
            opening_float_fen=FLOAT_FEN,
            now=at(day, OPEN_AT + rng.randrange(0, 10)),
        )
        result.shifts += 1
        owed = owed_by_community[community.pk]
        for n, visit in enumerate(sorted(plans[community.pk].get(day, []), key=lambda v: v.minute)):
            if visit.card:
                prepaid_card_issue(
                    unit=visit.unit,
                    card_no=f"8860{community.pk:04d}{visit.unit.pk:08d}",
                    password=DEMO_CARD_PASSWORD,
                    now=at(day, visit.minute - 2),
                )
                result.cards += 1
            payment = _take(
                rng=rng,
                shift=shift,
                visit=visit,
                day=day,
                key=f"demo:{community.code}:{day:%Y%m%d}:{n}",
                owed=owed,
                result=result,
            )
            if payment is not None and payment.channel == "cash" and payment.prepaid_fen == 0:
                cash_paid.append(payment)
        if day == refund_day and community == communities[0]:
            earlier = [
                p for p in cash_paid if p.community_id == community.pk and p.paid_at < at(day, 0)
            ]
            if earlier:
                victim = min(earlier, key=lambda p: (p.amount_fen, p.pk))
                has = drawer_cash(cashier_id=cashier.pk, community_id=community.pk)
                if victim.amount_fen > has:  # cash for the refund from the bank first
                    cash_movement_record(
                        shift=shift,
                        kind=CashMovement.Kind.PAID_IN,
                        amount_fen=_round_up(victim.amount_fen - has),
                        reason=REFUND_CASH_REASON,
                        user=cashier,
                        now=at(day, BANK_AT - 15),
                    )
                counter_refund(
                    payment=victim,
                    amount_fen=victim.amount_fen,
                    reason=REFUND_REASON,
                    user=finance,
                    now=at(day, BANK_AT - 8),
                    shift=shift,
                )
                result.refunds += 1
                receipt = Receipt.objects.get(
                    community_id=community.pk, number=victim.receipt_number
                )
                receipt_void_request(
                    receipt_id=receipt.pk,
                    user=cashier,
                    reason=VOID_REASON,
                    now=at(day, BANK_AT - 6),
                )
                receipt_void_approve(receipt_id=receipt.pk, user=finance, now=at(day, BANK_AT - 4))
                result.voids += 1
        in_drawer = drawer_cash(cashier_id=cashier.pk, community_id=community.pk)
        bank = (in_drawer - FLOAT_FEN) // 10_000 * 10_000
        if bank > 0:
            cash_movement_record(
                shift=shift,
                kind=CashMovement.Kind.PAID_OUT,
                amount_fen=bank,
                reason=BANKING_REASON,
                user=cashier,
                now=at(day, BANK_AT),
            )
            result.paid_out += 1
            in_drawer -= bank
        short = day == short_day and community == communities[0] and in_drawer >= SHORTAGE_FEN
        shift_close(
            shift=shift,
            counted_cash_fen=in_drawer - (SHORTAGE_FEN if short else 0),
            note=SHORTAGE_NOTE if short else "",
            now=at(day, CLOSE_AT + rng.randrange(0, 15)),
        )
        if short:
            result.shortage_fen = SHORTAGE_FEN
