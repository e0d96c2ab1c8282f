"""Reads at the counter: the open shift, the drawer's cash, and shift and end-of-day reports.

Reports are built from facts — one ``PaymentFact`` per payment or refund — that add up by
construction and are checked in ``Report.check``:

- per channel: net = payments − refunds, and payments = old bills + current bills + prepaid +
  surplus (every fen of a payment settles a bill of an earlier period, a bill of this period,
  becomes prepaid balance, or is a surplus awaiting refund by the community's policy);
- cash: expected = opening float + cash payments − cash refunds + paid in − paid out (+ any
  other cash the ledger holds for the cashier, shown on its own line, normally zero), and
  difference = counted − expected.

*Old bills* (往期) are bills whose period ended before the first day of the month the payment
was taken in; everything else is *current* (当期, including bills paid in advance).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.billing.selectors import StatementLine, open_bills, prepaid_balance
from wuye.core.money import format_yuan
from wuye.counter.models import CashMovement, Shift
from wuye.estates.models import Community, ParkingSpace, Resident, Unit
from wuye.ledger.models import AccountKind, JournalLine

CASH = "cash"


def drawer_cash(*, cashier_id: int, community_id: int) -> int:
    """Return the CASH balance in fen of one cashier's drawer in one community."""
    total = JournalLine.objects.filter(
        account=AccountKind.CASH, cashier_id=cashier_id, community_id=community_id
    ).aggregate(s=Sum("amount_fen"))["s"]
    return int(total or 0)


def shift_current(*, cashier: Any) -> Shift | None:
    """Return the cashier's open shift, or None."""
    if not getattr(cashier, "pk", None):
        return None
    return (
        Shift.objects.filter(cashier=cashier, state=Shift.State.OPEN)
        .select_related("community", "community__company", "cashier")
        .first()
    )


def shift_expected_cash(*, shift: Shift) -> int:
    """Return the cash in fen the drawer should hold now (closed: the figure at closing)."""
    if shift.state == Shift.State.CLOSED and shift.expected_cash_fen is not None:
        return shift.expected_cash_fen
    return drawer_cash(cashier_id=shift.cashier_id, community_id=shift.community_id)


# --- report facts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFact:
    """One payment (``kind="payment"``) or refund (``kind="refund"``), amounts in fen ≥ 0."""

    kind: str
    channel: str
    amount_fen: int
    old_bills_fen: int = 0
    current_bills_fen: int = 0
    prepaid_fen: int = 0
    surplus_fen: int = 0
    tendered_fen: int | None = None
    change_fen: int = 0
    shift_id: int | None = None
    at: datetime | None = None
    label: str = ""
    reference: str = ""
    payment_id: int | None = None


@dataclass
class ChannelLine:
    """One channel's takings; ``net_fen`` = payments − refunds."""

    channel: str
    name: str
    payments_count: int = 0
    payments_fen: int = 0
    refunds_count: int = 0
    refunds_fen: int = 0
    old_bills_fen: int = 0
    current_bills_fen: int = 0
    prepaid_fen: int = 0
    surplus_fen: int = 0

    @property
    def net_fen(self) -> int:
        return self.payments_fen - self.refunds_fen


@dataclass
class CashSummary:
    """The drawer: what should be there and what was counted, in fen."""

    opening_float_fen: int = 0
    cash_payments_fen: int = 0
    cash_refunds_fen: int = 0
    paid_in_fen: int = 0
    paid_out_fen: int = 0
    other_fen: int = 0
    counted_fen: int | None = None
    tendered_fen: int = 0
    """Cash handed over by payers; tendered − change given = cash payments."""
    change_given_fen: int = 0

    @property
    def expected_fen(self) -> int:
        return (
            self.opening_float_fen
            + self.cash_payments_fen
            - self.cash_refunds_fen
            + self.paid_in_fen
            - self.paid_out_fen
            + self.other_fen
        )

    @property
    def difference_fen(self) -> int | None:
        return None if self.counted_fen is None else self.counted_fen - self.expected_fen


@dataclass
class Report:
    """A shift report (one shift) or a day report (a community's shifts and payments of a day)."""

    title: str
    community: Community
    day: date
    shifts: list[Shift]
    channels: list[ChannelLine]
    cash: CashSummary
    movements: list[CashMovement]
    facts: list[PaymentFact] = field(default_factory=list)

    @property
    def total(self) -> ChannelLine:
        t = ChannelLine(channel="", name="")
        for c in self.channels:
            t.payments_count += c.payments_count
            t.payments_fen += c.payments_fen
            t.refunds_count += c.refunds_count
            t.refunds_fen += c.refunds_fen
            t.old_bills_fen += c.old_bills_fen
            t.current_bills_fen += c.current_bills_fen
            t.prepaid_fen += c.prepaid_fen
            t.surplus_fen += c.surplus_fen
        return t

    def check(self) -> list[str]:
        """Return what does not add up (empty when every figure adds up)."""
        problems = []
        for c in self.channels:
            parts = c.old_bills_fen + c.current_bills_fen + c.prepaid_fen + c.surplus_fen
            if c.payments_fen != parts:
                problems.append(
                    _("%(channel)s: 收款 ≠ 往期 + 当期 + 预存 + 多付待退") % {"channel": c.name}
                )
        cash_line = next((c for c in self.channels if c.channel == CASH), None)
        if cash_line is not None and (
            cash_line.payments_fen != self.cash.cash_payments_fen
            or cash_line.refunds_fen != self.cash.cash_refunds_fen
        ):
            problems.append(_("现金渠道合计与钱箱现金收退款不一致 (有班次外的现金收退款)"))
        if self.cash.tendered_fen - self.cash.change_given_fen != self.cash.cash_payments_fen:
            problems.append(_("现金: 实收 − 找零 ≠ 现金收款"))
        if self.cash.other_fen:
            problems.append(
                _("钱箱中有 %(amount)s 元来自本班次收退款和存取以外")
                % {"amount": format_yuan(self.cash.other_fen)}
            )
        return problems


def channel_lines(facts: Iterable[PaymentFact]) -> list[ChannelLine]:
    """Sum facts per channel: cash first, then the other channels in name order."""
    from wuye.channels.registry import channels_all

    names = {code: str(ch.name or code) for code, ch in channels_all().items()}
    lines: dict[str, ChannelLine] = {}
    for f in facts:
        line = lines.setdefault(f.channel, ChannelLine(f.channel, names.get(f.channel, f.channel)))
        if f.kind == "refund":
            line.refunds_count += 1
            line.refunds_fen += f.amount_fen
        else:
            line.payments_count += 1
            line.payments_fen += f.amount_fen
            line.old_bills_fen += f.old_bills_fen
            line.current_bills_fen += f.current_bills_fen
            line.prepaid_fen += f.prepaid_fen
            line.surplus_fen += f.surplus_fen
    order = {code: i for i, code in enumerate(names)}
    return sorted(
        lines.values(), key=lambda c: (c.channel != CASH, order.get(c.channel, 99), c.channel)
    )


def payment_facts(
    *, community_id: int, shift_ids: list[int] | None = None, day: date | None = None
) -> list[PaymentFact]:
    """Return the payments and refunds of some shifts, or of a community on a day.

    Read from ``wuye.payments`` (another part of Wuye); empty while it is not installed.
    """
    return _payment_facts_from_models(community_id=community_id, shift_ids=shift_ids, day=day)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def _payment_facts_from_models(
    *, community_id: int, shift_ids: list[int] | None, day: date | None
) -> list[PaymentFact]:
    try:
        from wuye.payments import models as pm
    except ImportError:
        return []
    if not hasattr(pm, "Payment"):
        return []
    return _facts_from_payments(pm, community_id=community_id, shift_ids=shift_ids, day=day)


def _facts_from_payments(
    pm: Any, *, community_id: int, shift_ids: list[int] | None, day: date | None
) -> list[PaymentFact]:
    """Build facts from ``payments.Payment`` and ``payments.Refund``.

    A payment's bill part is split into old and current bills by its allocations
    (``reference="payment:<id>"``, originals only); its prepaid part and any surplus awaiting
    refund come from the payment itself.
    """
    from wuye.billing.models import Allocation

    payments = pm.Payment.objects.filter(community_id=community_id).select_related("unit")
    refunds = pm.Refund.objects.filter(payment__community_id=community_id).select_related(
        "payment__unit"
    )
    if shift_ids is not None:
        payments = payments.filter(shift_id__in=shift_ids)
        refunds = refunds.filter(shift_id__in=shift_ids)
    if day is not None:
        start, end = _day_bounds(day)
        payments = payments.filter(paid_at__gte=start, paid_at__lt=end)
        refunds = refunds.filter(created_at__gte=start, created_at__lt=end)
    payments = payments.order_by("paid_at", "pk")
    by_ref = {p.allocation_reference: p for p in payments}
    old: dict[int, int] = {}
    for ref, period_end, amount in Allocation.objects.filter(
        reference__in=list(by_ref), reverses__isnull=True
    ).values_list("reference", "bill__period_end", "amount_fen"):
        p = by_ref[ref]
        month_start = timezone.localdate(p.paid_at).replace(day=1)
        if period_end <= month_start:
            old[p.pk] = old.get(p.pk, 0) + int(amount)
    facts = [
        PaymentFact(
            kind="payment",
            channel=p.channel,
            amount_fen=p.amount_fen,
            old_bills_fen=old.get(p.pk, 0),
            current_bills_fen=p.allocated_fen - old.get(p.pk, 0),
            prepaid_fen=p.prepaid_fen,
            surplus_fen=p.refund_due_fen,
            tendered_fen=p.tendered_fen,
            change_fen=p.change_fen or 0,
            shift_id=p.shift_id,
            at=p.paid_at,
            label=p.unit.label,
            reference=p.receipt_number or p.reference,
            payment_id=p.pk,
        )
        for p in payments
    ]
    facts += [
        PaymentFact(
            kind="refund",
            channel=r.channel,
            amount_fen=r.amount_fen,
            shift_id=r.shift_id,
            at=r.created_at,
            label=r.payment.unit.label,
            reference=r.receipt_number or r.reference,
            payment_id=r.payment_id,
        )
        for r in refunds.order_by("created_at", "pk")
    ]
    return facts


# --- reports ---------------------------------------------------------------------------------


def _movements(shift_ids: list[int]) -> list[CashMovement]:
    return list(
        CashMovement.objects.filter(shift_id__in=shift_ids)
        .select_related("created_by", "shift")
        .order_by("created_at", "pk")
    )


def _cash_summary(
    shifts: list[Shift], facts: list[PaymentFact], movements: list[CashMovement]
) -> CashSummary:
    cash = CashSummary()
    cash.opening_float_fen = sum(s.opening_float_fen for s in shifts)
    for f in facts:
        if f.channel != CASH:
            continue
        if f.kind == "refund":
            cash.cash_refunds_fen += f.amount_fen
        else:
            cash.cash_payments_fen += f.amount_fen
            cash.tendered_fen += (
                f.amount_fen + f.change_fen if f.tendered_fen is None else f.tendered_fen
            )
            cash.change_given_fen += f.change_fen
    for m in movements:
        if m.kind == CashMovement.Kind.PAID_IN:
            cash.paid_in_fen += m.amount_fen
        else:
            cash.paid_out_fen += m.amount_fen
    ledger_expected = sum(shift_expected_cash(shift=s) for s in shifts)
    cash.other_fen = ledger_expected - cash.expected_fen
    if shifts and all(s.state == Shift.State.CLOSED for s in shifts):
        cash.counted_fen = sum(s.counted_cash_fen or 0 for s in shifts)
    return cash


def shift_report(*, shift: Shift) -> Report:
    """Return the report of one shift (open: as of now; closed: as closed)."""
    shift = Shift.objects.select_related("community", "community__company", "cashier").get(
        pk=shift.pk
    )
    facts = payment_facts(community_id=shift.community_id, shift_ids=[shift.pk])
    movements = _movements([shift.pk])
    return Report(
        title=f"班次 #{shift.pk}",
        community=shift.community,
        day=timezone.localdate(shift.opened_at),
        shifts=[shift],
        channels=channel_lines(facts),
        cash=_cash_summary([shift], facts, movements),
        movements=movements,
        facts=facts,
    )


def day_report(*, community: Community, day: date) -> Report:
    """Return the end-of-day report of ``community`` for ``day``, per channel.

    The day is the business day: every shift opened that day with all its payments and
    refunds (also those after midnight), plus the payments and refunds of that calendar day
    taken outside any shift (online, QR…). So every payment is in exactly one day report.
    """
    start, end = _day_bounds(day)
    shifts = list(
        Shift.objects.filter(community=community, opened_at__gte=start, opened_at__lt=end)
        .select_related("cashier", "community")
        .order_by("opened_at", "pk")
    )
    shift_ids = [s.pk for s in shifts]
    shift_facts = payment_facts(community_id=community.pk, shift_ids=shift_ids) if shift_ids else []
    loose = [f for f in payment_facts(community_id=community.pk, day=day) if f.shift_id is None]
    facts = sorted(shift_facts + loose, key=lambda f: (f.at is None, f.at or start))
    movements = _movements(shift_ids)
    return Report(
        title=f"{community.name} {day:%Y-%m-%d}",
        community=community,
        day=day,
        shifts=shifts,
        channels=channel_lines(facts),
        cash=_cash_summary(shifts, shift_facts, movements),
        movements=movements,
        facts=facts,
    )


# --- the household panel ---------------------------------------------------------------------


@dataclass(frozen=True)
class PanelBill:
    """An open bill at the counter: outstanding plus the late fee not yet charged, as of a day."""

    line: StatementLine
    overdue: bool

    @property
    def bill_id(self) -> int:
        return self.line.bill_id

    @property
    def due_fen(self) -> int:
        return self.line.outstanding_fen + self.line.late_fee_fen


@dataclass(frozen=True)
class HouseholdPanel:
    """What the cashier sees of a household: open bills oldest first, prepaid, payments."""

    bills: list[PanelBill]
    prepaid_fen: int
    payments: list[Any]

    @property
    def total_due_fen(self) -> int:
        return sum(b.due_fen for b in self.bills if b.due_fen > 0)

    @property
    def late_fee_fen(self) -> int:
        return sum(b.line.late_fee_fen for b in self.bills)


def household_panel(*, unit: Any, as_of: date, payments_limit: int = 10) -> HouseholdPanel:
    """Return the counter's view of ``unit`` as of ``as_of`` (late fees computed that day)."""

    bills = [
        PanelBill(line=x, overdue=x.due_date < as_of and x.outstanding_fen > 0)
        for x in open_bills(unit_id=unit.pk, as_of=as_of)
    ]
    return HouseholdPanel(
        bills=bills,
        prepaid_fen=prepaid_balance(unit_id=unit.pk, as_of=as_of),
        payments=household_payments(unit_id=unit.pk, limit=payments_limit),
    )


def household_payments(*, unit_id: int, limit: int = 10) -> list[Any]:
    """Return the household's latest payments (newest first); empty without payments."""
    try:
        from wuye.payments.models import Payment
    except ImportError:
        return []
    return list(
        Payment.objects.filter(unit_id=unit_id)
        .select_related("cashier")
        .order_by("-paid_at", "-pk")[:limit]
    )


def payment_for(*, pk: int, units: Any) -> Any:
    """Return payment ``pk`` if its household is among ``units`` (a queryset of unit ids)."""
    try:
        from wuye.payments.models import Payment
    except ImportError:
        return None
    return Payment.objects.filter(pk=pk, unit_id__in=units).select_related("unit").first()


def payment_for_key(*, idempotency_key: str, unit_id: int) -> Any:
    """Return the payment already taken under a counter form's key (a resubmit), or None."""
    if not idempotency_key:
        return None
    try:
        from wuye.payments.selectors import order_by_key, order_payment
    except ImportError:
        return None
    order = order_by_key(idempotency_key=idempotency_key)
    if order is None or order.unit_id != unit_id:
        return None
    return order_payment(order_id=order.pk)


def payment_allocation_rows(*, payment: Any) -> list[Any]:
    """Return the bills a payment settled and any reversals of them (from ``payments``)."""
    try:
        from wuye.payments.selectors import payment_allocations
    except ImportError:
        return []
    return payment_allocations(payment=payment)


def household_cards(*, unit_id: int) -> list[str]:
    """Return the household's active prepaid cards, masked (``****2222``)."""
    try:
        from wuye.payments.selectors import prepaid_cards_of
    except ImportError:
        return []
    return [str(card) for card in prepaid_cards_of(unit_id=unit_id) if card.active]


# --- household search --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One way a text finds households, readable three ways on PostgreSQL.

    ``candidates`` selects the unit ids it finds through an index (GIN trigram or grams,
    b-tree); ``test`` is the same test on one unit row (a ``LIKE`` on the label, or an
    ``EXISTS`` probe of the unit's residents or parking spaces), for walking the units in page
    order. ``cap``: read at most this many candidates; a part that finds more is walked.
    ``ordered=True``: the part has an index in page order of its own and is read as its own
    ordered query.
    """

    name: str
    candidates: str
    params: tuple[Any, ...]
    test: str
    test_params: tuple[Any, ...]
    cap: int = 0
    ordered: bool = False


@dataclass
class SearchResult:
    """A page of households; ``more``: the text finds more than the page holds (not counted:
    the counter asks the cashier to type more). ``plan``: how each part was read on
    PostgreSQL (``ordered``, ``sort``, ``hash`` or ``walk``), for the bench and tests."""

    units: list[Unit]
    more: bool
    plan: dict[str, str] = field(default_factory=dict)


# Choosing the plan (the rows never depend on it; measured on the bench's million units, 2
# shared cores, 128 MB shared buffers, see docs/payments-speed.md). A candidate read and sorted
# costs about 7 µs (its row, then its unit by primary key); a step of the walk about 0.5 µs
# testing the label, 4–5 µs probing residents or parking spaces; a candidate put in a hash
# for the walk to test against about 3 µs. Hence:
ESTIMATE_UP_TO = 3  # texts this short: ask the planner's estimate first (one EXPLAIN)
DENSE_SHARE = 0.005  # estimated to find ≥ 0.5 % of all units: walk at once (≤ 4,200 steps)
SORT_MAX = 1500  # up to this many candidates: sort them; more: walk against their hash
LABEL_CAP = 1200  # more labels than this: walk (a label test needs no probe)
RESIDENT_CAP = 5000  # more residents or plates than this: walk with probes
PLATE_CAP = 5000

# SQL of the parts; ``{unit}``, ``{resident}``, ``{parking}``: the quoted table names.
# ``OFFSET 0`` in the probes: without it PostgreSQL may turn an ``EXISTS`` into a hashed list
# of every matching unit (reading all of them first), which is what the walk avoids.
_ROOM_IDS = "SELECT id FROM {unit} WHERE upper(room_no) = %s"
_ROOM_TEST = "upper({unit}.room_no) = %s"
_LABEL_EQ_IDS = "SELECT id FROM {unit} WHERE label = %s OR label = %s"
_LABEL_EQ_TEST = "({unit}.label = %s OR {unit}.label = %s)"
_LABEL_IDS = "SELECT id FROM {unit} WHERE upper(label) LIKE %s"
# Four characters or more: the label's and the phone's four-character pieces
# (``wuye_grams4``, ``estates.0003_search_order_indexes``), whose index lists are short where
# the digits' trigrams are long; ``|| ''`` keeps the planner from adding the trigram index.
_LABEL4_IDS = (
    "SELECT id FROM {unit} WHERE wuye_grams4(upper(label)) @> wuye_grams4(%s)"
    " AND upper(label) || '' LIKE %s"
)
_PHONE4_LIKE = "(wuye_grams4({p}phone) @> wuye_grams4(%s) AND {p}phone || '' LIKE %s)"
# ``|| ''``: the walk's test must not become an index lookup of its own (the planner would
# read every match through the trigram index and sort them, which is what the walk avoids).
_LABEL_TEST = "upper({unit}.label) || '' LIKE %s"
_GRAMS_IDS = "SELECT unit_id FROM {resident} WHERE wuye_grams12(upper(name)) @> ARRAY[%s]::text[]"
_NAME_TEST = (
    "EXISTS (SELECT 1 FROM {resident} r WHERE r.unit_id = {unit}.id AND upper(r.name) LIKE %s"
    " OFFSET 0)"
)
# Name and phone apart: in one ``OR`` PostgreSQL rechecks every row against both conditions,
# ``wuye_grams4`` included, a function call per row.
_RESIDENT_IDS = (
    "SELECT unit_id FROM {resident} WHERE upper(name) LIKE %s"
    " UNION ALL SELECT unit_id FROM {resident} WHERE {phone}"
)
_RESIDENT_TEST = (
    "EXISTS (SELECT 1 FROM {resident} r WHERE r.unit_id = {unit}.id"
    " AND (upper(r.name) LIKE %s OR {phone}) OFFSET 0)"
)
# A text that is not all digits finds only phones that aren't either (a landline's ``-``):
# those have an index of their own (``estates_resident_phone_other_trgm``), a small one; the
# digits' trigrams are in most of the million mobile numbers, costly to intersect.
_PHONE_LIKE = "{p}phone LIKE %s"
_PHONE_OTHER_LIKE = "({p}phone LIKE %s AND {p}phone !~ '^[0-9]*$')"
_PLATE_IDS = "SELECT unit_id FROM {parking} WHERE upper(plate_no) LIKE %s"
_PLATE_TEST = (
    "EXISTS (SELECT 1 FROM {parking} p WHERE p.unit_id = {unit}.id"
    " AND upper(p.plate_no) LIKE %s OFFSET 0)"
)
_AMONG = "{unit}.id = ANY({ids})"
_ARRAYS = " || "
# ``id + 0``: not the primary key's index, so PostgreSQL walks the units in page order and
# tests each against a hash of the array, instead of reading every candidate by its key.
_HASHED = "({unit}.id + 0) = ANY({ids})"
_CANDIDATES = "(SELECT {i}, c.u FROM ({sql}) AS c (u) LIMIT {cap:d})"
_COUNTED = (
    "SELECT x.i, count(*), (array_agg(x.u) FILTER (WHERE x.u IS NOT NULL))::text"
    " FROM ({sql}) AS x (i, u) GROUP BY x.i"
)
_ESTIMATE = "EXPLAIN (FORMAT JSON) {sql}"
# The LIMIT keeps each part one branch of the plan (a part's own UNION ALL is not merged in).
_ESTIMATE_PART = "(SELECT 1 FROM ({sql}) AS c LIMIT 1000000000)"
_FIRSTS = "{unit}.id = ANY(ARRAY({sql}))"
_ALL_UNITS = "SELECT id FROM {unit}"


def _tables() -> dict[str, str]:
    return {
        "unit": connection.ops.quote_name(Unit._meta.db_table),
        "resident": connection.ops.quote_name(Resident._meta.db_table),
        "parking": connection.ops.quote_name(ParkingSpace._meta.db_table),
    }


def _search_parts(text: str) -> list[_Part]:
    t = _tables()
    key = text.upper()
    like = "%" + connection.ops.prep_for_like_query(key) + "%"
    room = _Part(
        "room", _ROOM_IDS.format(**t), (key,), _ROOM_TEST.format(**t), (key,), ordered=True
    )
    if len(text) < 3:
        # Trigrams can't serve one or two characters: names through their one- and
        # two-character pieces (``wuye_grams12``; the walk's LIKE is the same test), the
        # label only when equal.
        label_eq = _LABEL_EQ_TEST.format(**t)
        return [
            room,
            _Part(
                "label", _LABEL_EQ_IDS.format(**t), (key, text), label_eq, (key, text), LABEL_CAP
            ),
            _Part(
                "resident",
                _GRAMS_IDS.format(**t),
                (key,),
                _NAME_TEST.format(**t),
                (like,),
                RESIDENT_CAP,
            ),
        ]
    phone = "%" + connection.ops.prep_for_like_query(text) + "%"
    digits = text.isdigit() and text.isascii()
    phone_like = _PHONE_LIKE if digits else _PHONE_OTHER_LIKE
    label_params: tuple[str, ...] = (like,)
    phone_params: tuple[str, ...] = (phone,)
    label_ids, phone_ids = _LABEL_IDS, phone_like
    if len(text) >= 4:
        label_ids, label_params = _LABEL4_IDS, (key, like)
        if digits:
            phone_ids, phone_params = _PHONE4_LIKE, (text, phone)
    return [
        room,
        _Part(
            "label",
            label_ids.format(**t),
            label_params,
            _LABEL_TEST.format(**t),
            (like,),
            LABEL_CAP,
        ),
        _Part(
            "resident",
            _RESIDENT_IDS.format(phone=phone_ids.format(p=""), **t),
            (like, *phone_params),
            _RESIDENT_TEST.format(phone=phone_like.format(p="r."), **t),
            (like, phone),
            RESIDENT_CAP,
        ),
        _Part(
            "plate", _PLATE_IDS.format(**t), (like,), _PLATE_TEST.format(**t), (like,), PLATE_CAP
        ),
    ]


def _estimates(parts: list[_Part]) -> tuple[list[float], float]:
    """The planner's estimate of each part's candidates, and of all units (one EXPLAIN)."""
    t = _tables()
    sql = " UNION ALL ".join(
        _ESTIMATE_PART.format(sql=sql)
        for sql in [p.candidates for p in parts] + [_ALL_UNITS.format(**t)]
    )
    with connection.cursor() as cursor:
        cursor.execute(_ESTIMATE.format(sql=sql), [x for p in parts for x in p.params])
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    rows = [float(sub["Plan Rows"]) for sub in plan[0]["Plan"]["Plans"]]
    return rows[:-1], max(rows[-1], 1.0)


def _candidates(parts: list[_Part]) -> list[tuple[int, str]]:
    """Each part's number of candidates (at most its cap + 1) and their unit ids, as the text
    of a PostgreSQL array: they go back into the page's statement as they came, unparsed."""
    if not parts:
        return []
    sql = _COUNTED.format(
        sql=" UNION ALL ".join(
            _CANDIDATES.format(i=i, sql=p.candidates, cap=p.cap + 1) for i, p in enumerate(parts)
        )
    )
    found = [(0, "{}") for _ in parts]
    with connection.cursor() as cursor:
        cursor.execute(sql, [x for p in parts for x in p.params])
        for i, count, ids in cursor.fetchall():
            found[i] = (int(count), ids or "{}")
    return found


_ORDER = ("community_id", "label", "id")


def _page(qs: QuerySet[Unit], limit: int) -> list[Unit]:
    return list(qs.select_related("community", "building").order_by(*_ORDER)[:limit])


def _raw(sql: str, params: Iterable[Any]) -> RawSQL:
    return RawSQL(sql, tuple(params), output_field=BooleanField())  # noqa: S611 - our SQL


def household_search(*, units: QuerySet[Unit], text: str, limit: int = 20) -> list[Unit]:
    """Return up to ``limit`` households of ``units`` that ``text`` finds, by community, label.

    A household is found by its label (contains) or room number (exact), a resident's name
    (contains) or phone (contains), or a car plate (contains); case does not matter.
    See :func:`household_search_page` (which this returns the rows of) for how, and for the
    one difference between the databases (one or two characters).
    """
    return household_search_page(units=units, text=text, limit=limit).units


def household_search_page(*, units: QuerySet[Unit], text: str, limit: int = 20) -> SearchResult:
    """Return the first ``limit`` households ``text`` finds, and whether there are more.

    Ordered by community, label (and id, for equal labels). On PostgreSQL (indexes of
    migrations ``estates.0002_search_indexes`` and ``0003_search_order_indexes``) each way of
    finding — room number, label, a resident's name or phone, a plate — is read the way the
    planner's estimate of how many households it finds makes cheapest:

    - few (a whole phone, a name, a plate): its candidates from its index, sorted;
    - many (a surname alone, ``180`` as a phone is typed): walk the units in page order
      through the ``(community_id, label)`` index, testing each, until the page is full;
    - in between: the same walk, testing each unit against a hash of the candidates;
    - the room number always walks its own ``(upper(room_no), community_id, label)`` index.

    The parts' pages are merged. A wrong estimate costs time, never rows: every way returns
    the first rows in page order. So no text reads more than a few thousand households.

    One or two characters find names containing them (through ``wuye_grams12``) and rooms or
    labels equal to them, but not phones or plates containing them, on PostgreSQL. SQLite
    (meant for a few thousand units): the ORM query of ``web.selectors.unit_search``, label,
    phone and plate included.
    """
    text = text.strip()
    if not text:
        return SearchResult(units=[], more=False)
    if connection.vendor != "postgresql":
        from wuye.web.selectors import unit_search

        # The scope as a test of each unit, not a join: SQLite then walks the units in page
        # order and stops at the page (a surname: 5 ms instead of 250 at 100,000 units).
        scoped = Unit.objects.filter(Exists(units.filter(pk=OuterRef("pk"))))
        found = list(unit_search(units=scoped, text=text, limit=limit + 1))
        return SearchResult(units=found[:limit], more=len(found) > limit)
    parts = _search_parts(text)
    n = limit + 1  # one more than the page: are there more?
    plan: dict[str, str] = {}
    rest = [p for p in parts if not p.ordered]
    if len(text) <= ESTIMATE_UP_TO:
        # Dense by the planner's estimate (its estimates of LIKE are good for common texts
        # and too low for rare ones, so only "dense" is believed): walk without reading
        # candidates, whose trigram lists are long for such short texts.
        estimates, all_units = _estimates(rest)
        for p, estimate in zip(rest, estimates, strict=True):
            if estimate > n and estimate >= DENSE_SHARE * all_units:
                plan[p.name] = "walk"
    probe = [p for p in rest if p.name not in plan]
    sort_ids: list[str] = []  # arrays of ids, as text
    hashed: list[str] = []
    for p, (count, ids) in zip(probe, _candidates(probe), strict=True):
        if count > p.cap:
            plan[p.name] = "walk"
        elif count <= SORT_MAX:
            plan[p.name] = "sort"
            sort_ids.append(ids)
        else:
            plan[p.name] = "hash"
            hashed.append(ids)
    # Each way's first rows in page order, then those households: one statement.
    table = connection.ops.quote_name(Unit._meta.db_table)
    pages: list[QuerySet[Unit]] = []
    for p in parts:
        if p.ordered:
            plan[p.name] = "ordered"
            pages.append(units.filter(_raw(p.test, p.test_params)))
    if sort_ids:
        among = _AMONG.format(unit=table, ids=_ARRAYS.join(["%s::bigint[]"] * len(sort_ids)))
        pages.append(units.filter(_raw(among, sort_ids)))
    walk = [p for p in rest if plan[p.name] == "walk"]
    if walk or hashed:
        tests = [f"({p.test})" for p in walk]
        if hashed:
            tests.append(
                _HASHED.format(unit=table, ids=_ARRAYS.join(["%s::bigint[]"] * len(hashed)))
            )
        params = [x for p in walk for x in p.test_params] + hashed
        pages.append(units.filter(_raw(" OR ".join(tests), params)))
    firsts = [qs.order_by(*_ORDER).values("id")[:n].query.sql_with_params() for qs in pages]
    sql = _FIRSTS.format(unit=table, sql=" UNION ALL ".join(f"({q})" for q, _params in firsts))
    rows = _page(Unit.objects.filter(_raw(sql, [x for _q, ps in firsts for x in ps])), n)
    return SearchResult(units=rows[:limit], more=len(rows) > limit, plan=plan)
