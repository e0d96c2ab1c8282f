"""Orders, payments, allocation (销账), surplus and refunds: the writes of the payments app.

The flow: ``order_create`` (bills of one household and/or a prepayment, one channel, one
idempotency key) → a channel takes the money (``cash_pay``, ``prepaid_pay``, or any other
channel through ``payment_capture``) → in *one* transaction the order becomes paid, late fees
are crystallised (``billing.latefees.late_fee_charge``), the money is allocated to the bills,
``Bill.paid_fen`` moves, the balanced journal entry is posted, the receipt takes its number,
and the ``Payment`` and its ``PaymentAttempt`` are written. A failure anywhere leaves nothing.

Ledger shapes (see docs/adr/0004-payments-and-channels.md):

- payment: Dr the channel's clearing account (CASH per cashier, CLEARING per channel,
  PREPAID per household) / Cr RECEIVABLE per bill (household, fee item); a prepayment or a
  surplus Cr PREPAID (household, earmark); a surplus under the refund policy Cr REFUND_PAYABLE.
- refund: the mirror image for the part undone, Cr the channel's clearing account.

Locks, always in this order: household (``Unit``, only when a prepaid balance is spent or
given back), order or payment, bills (by id). A cash or card payment does not lock the
household, so many payments to one household only meet on the bills they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.accounts.models import Role
from wuye.accounts.selectors import require_role
from wuye.billing.latefees import late_fee_anchor, late_fee_charge, late_fees_for_units
from wuye.billing.models import Allocation, Bill, FeeItem
from wuye.channels.base import (
    DETAIL_KEYS,
    Channel,
    ChannelResult,
    PaymentRequest,
    PaymentResponse,
    RefundRequest,
    RefundResponse,
    mask_pan,
)
from wuye.channels.cash.constants import CODE as CASH
from wuye.channels.cash.constants import TENDERED_KEY
from wuye.channels.prepaid.constants import AVAILABLE_KEY, MAX_PASSWORD_TRIES
from wuye.channels.prepaid.constants import CODE as PREPAID
from wuye.channels.registry import UnknownChannel, channel_get
from wuye.core.money import format_yuan
from wuye.core.services import audit_record
from wuye.estates.models import Community, Resident, Unit
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.services import Line, credit, debit, entry_post
from wuye.payments.models import (
    Order,
    OrderBill,
    Payment,
    PaymentAttempt,
    PrepaidCard,
    Refund,
    RefundAttempt,
)


class PaymentError(ValueError):
    """A payment request was refused; the message says what and why. Nothing was written."""


class BillInPendingOrder(PaymentError):
    """A chosen bill is already in another pending order (``bill_id``, ``order_id`` name it)."""

    def __init__(self, message: str, *, bill_id: int, order_id: int | None = None) -> None:
        super().__init__(message)
        self.bill_id = bill_id
        self.order_id = order_id


class IdempotencyKeyConflict(PaymentError):
    """The idempotency key was already used for a different order."""


class OrderNotPending(PaymentError):
    """The order is paid or cancelled already."""


class InsufficientTender(PaymentError):
    """Cash tendered is less than the amount due."""


class PaymentDeclined(PaymentError):
    """The channel declined; the attempt is recorded (``attempt_id``), no money moved."""

    def __init__(self, message: str, *, attempt_id: int | None = None) -> None:
        super().__init__(message)
        self.attempt_id = attempt_id


class PaymentNotFinal(PaymentError):
    """The channel answered PENDING, UNDEFINED or NOT_SENT: not a failure, ask again later.

    The attempt is recorded (``attempt_id``); query the channel (``Channel.query``) and pass
    the final answer to ``payment_capture``.
    """

    def __init__(self, message: str, *, attempt_id: int | None, result: ChannelResult) -> None:
        super().__init__(message)
        self.attempt_id = attempt_id
        self.result = result


class PrepaidCardError(PaymentError):
    """The prepaid card is unknown, blocked, locked or the password is wrong."""


class PrepaidCardLocked(PrepaidCardError):
    """Too many wrong passwords: the card is locked until finance resets its password."""


class RefundError(PaymentError):
    """A refund was refused: more than refundable, channel declined… Nothing was written."""


# --- helpers --------------------------------------------------------------------------------


def _on_date(now: datetime) -> date:
    if timezone.is_naive(now):
        raise PaymentError("now: an aware datetime is required")
    return timezone.localtime(now).date()


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _channel(code: str) -> Channel:
    try:
        return channel_get(code)
    except UnknownChannel as exc:
        raise PaymentError(str(exc)) from None


def _may_accrue(bill: Bill, on_date: date) -> bool:
    """Cheap pre-check: could ``bill`` have a late fee as of ``on_date``? (no queries)."""
    item = bill.fee_item
    return (
        item.late_fee_enabled
        and item.late_fee_daily_ppm > 0
        and bill.kind != Bill.Kind.LATE_FEE
        and bill.amount_fen > 0
        and late_fee_anchor(bill) < on_date
    )


def _bills_with_late_fee_bills(ids: Sequence[int] | QuerySet[Any], *, lock: bool) -> list[Bill]:
    qs = Bill.objects.filter(Q(pk__in=ids) | Q(parent_id__in=ids, kind=Bill.Kind.LATE_FEE))
    if lock:
        qs = qs.select_for_update(of=("self",))
    return list(qs.select_related("fee_item").order_by("pk"))


# --- orders ---------------------------------------------------------------------------------


def order_create(
    *,
    unit: Unit,
    bill_ids: list[int],
    amount_fen: int | None = None,
    prepay_fen: int = 0,
    prepay_fee_item_id: int | None = None,
    channel: str,
    idempotency_key: str,
    cashier: Any,
    shift_id: int | None = None,
    now: datetime,
) -> Order:
    """Create the order for ``bill_ids`` of ``unit`` (and/or a prepayment); return it.

    ``amount_fen`` None: the chosen bills in full — their outstanding plus late fees as of
    ``now`` (charged late-fee bills of a chosen bill come along) — plus ``prepay_fen``. A
    smaller amount is a partial payment (allocated oldest due first, late fee before principal
    unless ``settings.WUYE_ALLOCATE_LATE_FEE_FIRST`` is False); a larger one puts the excess
    into the prepaid balance (earmarked for ``prepay_fee_item_id`` if given).

    The same ``idempotency_key`` always returns the same order (IdempotencyKeyConflict if it
    was used for another household or channel). A bill can be in only one pending order at a
    time (a partial unique index): BillInPendingOrder names it. Raise PaymentError on bad
    input.
    """
    if not idempotency_key or len(idempotency_key) > 120:
        raise PaymentError(_("idempotency_key: 必填, 不超过120个字符"))
    existing = Order.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_order(existing, unit=unit, channel=channel)
    on_date = _on_date(now)
    chan = _channel(channel)
    if amount_fen is not None and (not _is_fen(amount_fen) or amount_fen <= 0):
        raise PaymentError(_("amount_fen: 须为正整数(分)"))
    if not _is_fen(prepay_fen) or prepay_fen < 0:
        raise PaymentError(_("prepay_fen: 须为非负整数(分)"))
    ids = sorted(set(bill_ids))
    bills = _bills_with_late_fee_bills(ids, lock=False) if ids else []
    found = {b.pk for b in bills}
    missing = [i for i in ids if i not in found]
    if missing:
        raise PaymentError(_("账单不存在: %(ids)s") % {"ids": missing})
    foreign = [b.pk for b in bills if b.unit_id != unit.pk]
    if foreign:
        raise PaymentError(_("账单不属于该房屋: %(ids)s") % {"ids": foreign})
    uncharged: dict[int, int] = {}
    if any(_may_accrue(b, on_date) for b in bills):
        uncharged = late_fees_for_units(unit_ids=[unit.pk], as_of=on_date, uncharged_only=True)
    lines: list[OrderBill] = []
    for bill in bills:
        late = uncharged.get(bill.pk, 0) if bill.pk in ids else 0
        outstanding = max(0, bill.outstanding_fen)
        if bill.pk not in ids and outstanding == 0:
            continue  # a settled late-fee bill of a chosen bill
        if outstanding == 0 and late == 0:
            raise PaymentError(_("账单 #%(id)s 已结清") % {"id": bill.pk})
        lines.append(OrderBill(bill=bill, outstanding_fen=outstanding, late_fee_fen=late))
    due = sum(x.outstanding_fen + x.late_fee_fen for x in lines)
    amount = due + prepay_fen if amount_fen is None else amount_fen
    if amount <= 0:
        raise PaymentError(_("没有需要支付的金额"))
    if amount < prepay_fen:
        raise PaymentError(_("amount_fen: 不能少于预存金额"))
    bills_fen = min(amount - prepay_fen, due)
    prepay = amount - bills_fen
    if prepay and chan.clearing_account == AccountKind.PREPAID:
        raise PaymentError(_("预存余额不能用于预存"))
    company_id = unit.community.company_id
    if (
        prepay_fee_item_id is not None
        and not FeeItem.objects.filter(pk=prepay_fee_item_id, company_id=company_id).exists()
    ):
        raise PaymentError(_("prepay_fee_item_id: 该公司没有这个收费项目"))
    # One transaction, no savepoints: a unique violation (the same key from a concurrent
    # request, or a bill already in a pending order) rolls it back and is explained after.
    try:
        with transaction.atomic():
            order = Order.objects.create(
                company_id=company_id,
                community_id=unit.community_id,
                unit=unit,
                channel=chan.code,
                amount_fen=amount,
                bills_fen=bills_fen,
                prepay_fen=prepay,
                prepay_fee_item_id=prepay_fee_item_id if prepay else None,
                idempotency_key=idempotency_key,
                cashier=cashier if getattr(cashier, "pk", None) else None,
                shift_id=shift_id,
                created_at=now,
            )
            for line in lines:
                line.order = order
            OrderBill.objects.bulk_create(lines)
    except IntegrityError:
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_order(existing, unit=unit, channel=channel)
        taken = (
            OrderBill.objects.filter(bill_id__in=[x.bill_id for x in lines], pending=True)
            .order_by("bill_id")
            .first()
        )
        if taken is None:
            raise
        raise BillInPendingOrder(
            _("账单 #%(bill)s 已在待支付的收款单 #%(order)s 中")
            % {"bill": taken.bill_id, "order": taken.order_id},
            bill_id=taken.bill_id,
            order_id=taken.order_id,
        ) from None
    return order


def _same_order(order: Order, *, unit: Unit, channel: str) -> Order:
    if order.unit_id != unit.pk or order.channel != channel:
        raise IdempotencyKeyConflict(
            _("idempotency_key: 已用于收款单 #%(id)s (其他房屋或支付方式)") % {"id": order.pk}
        )
    return order


def order_cancel(*, order: Order, now: datetime) -> Order:
    """Cancel a pending order, freeing its bills for another order; return it.

    Cancelling a cancelled order returns it unchanged; a paid order raises OrderNotPending.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.state == Order.State.CANCELLED:
            return locked
        if locked.state != Order.State.PENDING:
            raise OrderNotPending(_("收款单 #%(id)s 已支付, 不能取消") % {"id": locked.pk})
        Order.objects.filter(pk=locked.pk).update(state=Order.State.CANCELLED, closed_at=now)
        OrderBill.objects.filter(order_id=locked.pk, pending=True).update(pending=False)
        locked.state = Order.State.CANCELLED
        locked.closed_at = now
        return locked


def orders_cancel_stale(*, created_before: datetime, now: datetime) -> int:
    """Cancel pending orders made before ``created_before``; return how many were cancelled.

    A counter that crashed or a payer who walked away leaves a pending order holding its
    bills; this frees them. An order with an unanswered channel attempt (PENDING/UNDEFINED)
    is left alone: the money may have moved, so it waits for ``payment_inquire``.
    """
    unresolved = PaymentAttempt.objects.filter(
        result__in=[ChannelResult.PENDING, ChannelResult.UNDEFINED], payment__isnull=True
    ).values("order_id")
    stale = (
        Order.objects.filter(state=Order.State.PENDING, created_at__lt=created_before)
        .exclude(pk__in=unresolved)
        .order_by("pk")
    )
    cancelled = 0
    for order in stale:
        if order_cancel(order=order, now=now).state == Order.State.CANCELLED:
            cancelled += 1
    return cancelled


def _lock_order(order: Order) -> Order:
    owner = (
        Resident.objects.filter(unit_id=OuterRef("unit_id"), role=Resident.Role.OWNER)
        .order_by("-is_primary", "id")
        .values("name")[:1]
    )
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("unit", "community__company", "cashier")
        .annotate(payer_name=Subquery(owner))
        .get(pk=order.pk)
    )


def _existing_payment(order: Order) -> Payment:
    payment = Payment.objects.filter(order_id=order.pk).order_by("pk").first()
    if payment is None:  # pragma: no cover - a paid order always has its payment
        raise OrderNotPending(_("收款单 #%(id)s 状态异常") % {"id": order.pk})
    return payment


# --- allocation -----------------------------------------------------------------------------


@dataclass
class _Move:
    bill: Bill
    before_fen: int
    amount_fen: int


def _allocation_order(bills: list[Bill], *, late_fee_first: bool) -> list[Bill]:
    """Oldest due first (then oldest bill); a bill's late-fee bills before it (or after)."""
    ids = {b.pk for b in bills}
    groups: dict[int, list[Bill]] = {}
    roots: dict[int, Bill] = {}
    for bill in bills:
        root = bill.parent_id if bill.kind == Bill.Kind.LATE_FEE and bill.parent_id in ids else None
        key = root if root is not None else bill.pk
        groups.setdefault(key, []).append(bill)
        if root is None:
            roots[bill.pk] = bill
    ordered: list[Bill] = []
    for key in sorted(roots, key=lambda k: (roots[k].due_date, k)):
        members = groups[key]
        late = sorted((b for b in members if b.pk != key), key=lambda b: (b.due_date, b.pk))
        principal = [b for b in members if b.pk == key]
        ordered += late + principal if late_fee_first else principal + late
    return ordered


def _plan(order: Order, *, on_date: date, budget: int, user_id: int | None) -> list[_Move]:
    """Lock the order's bills, crystallise their late fees, allocate ``budget`` to them."""
    if budget <= 0:
        return []
    # The chosen bills and their late-fee bills in one query (the late-fee ones come only
    # through ``parent``, so every bill here that is not a late fee was chosen).
    chosen = OrderBill.objects.filter(order_id=order.pk).values("bill_id")
    bills = _bills_with_late_fee_bills(chosen, lock=True)
    known = {b.pk for b in bills}
    for bill in list(bills):
        if _may_accrue(bill, on_date):
            late = late_fee_charge(bill=bill, as_of=on_date, user_id=user_id)
            if late is not None and late.pk not in known:
                late.fee_item = bill.fee_item
                bills.append(late)
                known.add(late.pk)
    moves: list[_Move] = []
    left = budget
    late_first = getattr(settings, "WUYE_ALLOCATE_LATE_FEE_FIRST", True)
    for bill in _allocation_order(bills, late_fee_first=late_first):
        if left <= 0:
            break
        amount = min(left, bill.outstanding_fen)
        if amount <= 0:
            continue
        moves.append(_Move(bill, bill.outstanding_fen, amount))
        left -= amount
    return moves


# --- payments -------------------------------------------------------------------------------


def cash_pay(*, order: Order, tendered_fen: int, now: datetime) -> Payment:
    """Take cash for ``order``: change = tendered − amount; return the Payment.

    Paying a paid order again returns its payment (the same request twice charges once).
    Raise InsufficientTender when tendered < amount, OrderNotPending for a cancelled order.
    """
    if not _is_fen(tendered_fen) or tendered_fen <= 0:
        raise PaymentError(_("tendered_fen: 须为正整数(分)"))
    if order.channel != CASH:
        raise PaymentError(_("收款单 #%(id)s 不是现金支付") % {"id": order.pk})
    chan = _channel(CASH)
    with transaction.atomic():
        locked = _lock_order(order)
        if locked.state == Order.State.PAID:
            return _existing_payment(locked)
        if locked.state != Order.State.PENDING:
            raise OrderNotPending(_("收款单 #%(id)s 已取消") % {"id": locked.pk})
        if tendered_fen < locked.amount_fen:
            raise InsufficientTender(
                _("实收 %(t)s 元少于应收 %(a)s 元")
                % {"t": format_yuan(tendered_fen), "a": format_yuan(locked.amount_fen)}
            )
        response = chan.pay(_request(locked, extra={TENDERED_KEY: tendered_fen}))
        if response.result != ChannelResult.PROCESSED:  # pragma: no cover - cash always takes
            raise PaymentDeclined(response.message)
        return _post(locked, chan, response, now)


def payment_capture(*, order: Order, response: PaymentResponse, now: datetime) -> Payment:
    """Record what a channel answered for ``order``; on PROCESSED post the payment.

    The generic path for channels that answer from outside (card terminal, QR notification):
    idempotent on the channel's ``reference`` (the same answer twice returns the same
    Payment). Money that arrives for an order already paid or cancelled is never a silent
    double: it becomes prepaid balance or a refund due, by ``Community.surplus_policy``.

    DECLINED raises PaymentDeclined; PENDING, UNDEFINED and NOT_SENT raise PaymentNotFinal.
    Both record the attempt first and post nothing.
    """
    chan = _channel(order.channel)
    if chan.clearing_account == AccountKind.PREPAID:
        # Spending a balance needs the household lock and the balance check of prepaid_pay.
        raise PaymentError(_("预存余额支付请使用 prepaid_pay"))
    if response.result != ChannelResult.PROCESSED:
        attempt = _attempt_record(order, response, now)
        if response.result == ChannelResult.DECLINED:
            raise PaymentDeclined(response.message or _("支付被拒绝"), attempt_id=attempt.pk)
        raise PaymentNotFinal(
            _("支付结果未定, 请稍后查询"), attempt_id=attempt.pk, result=response.result
        )
    if not response.reference:
        raise PaymentError(_("渠道未返回流水号"))
    if not _is_fen(response.amount_fen) or response.amount_fen <= 0:
        raise PaymentError(_("渠道返回的金额无效"))
    existing = Payment.objects.filter(channel=chan.code, reference=response.reference).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        locked = _lock_order(order)
        existing = Payment.objects.filter(channel=chan.code, reference=response.reference).first()
        if existing is not None:
            return existing
        return _post(locked, chan, response, now)


def payment_inquire(*, attempt: PaymentAttempt, now: datetime) -> Payment | None:
    """Ask the channel what became of an attempt that was PENDING or UNDEFINED.

    The inquiry the UNDEFINED answer queued (``selectors.attempts_unresolved`` lists them):
    ``Channel.query`` with the attempt's reference, or the order's key when the channel gave
    none. PROCESSED posts through ``payment_capture`` (idempotent, so asking twice is safe)
    and returns the Payment; DECLINED marks the attempt declined and returns None; anything
    else leaves it for the next inquiry and returns None.
    """
    order = Order.objects.get(pk=attempt.order_id)
    chan = _channel(attempt.channel)
    answer = chan.query(attempt.reference or order.idempotency_key)
    if answer.result == ChannelResult.PROCESSED:
        if not answer.reference or not _is_fen(answer.amount_fen) or answer.amount_fen <= 0:
            return None
        payment = payment_capture(order=order, response=answer, now=now)
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            result=str(ChannelResult.PROCESSED), payment=payment
        )
        return payment
    if answer.result == ChannelResult.DECLINED:
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            result=str(ChannelResult.DECLINED), message=answer.message[:200]
        )
    return None


def prepaid_pay(
    *, order: Order, now: datetime, card_no: str | None = None, password: str | None = None
) -> Payment:
    """Pay ``order`` from the household's prepaid balance; return the Payment.

    With ``card_no`` (typed or swiped) the household's prepaid card and its ``password`` are
    checked first, like a PIN: hashed, ``MAX_PASSWORD_TRIES`` wrong in a row lock the card
    (the count survives the refusal), never logged. The balance earmarked for a bill's fee item
    is spent first, then the general balance. Only what the bills still need is taken.
    Raise PrepaidCardError / PrepaidCardLocked, PaymentDeclined when the balance is short.
    """
    if order.channel != PREPAID:
        raise PaymentError(_("收款单 #%(id)s 不是预存支付") % {"id": order.pk})
    if card_no is not None:
        prepaid_card_check(unit_id=order.unit_id, card_no=card_no, password=password, now=now)
    chan = _channel(PREPAID)
    on_date = _on_date(now)
    with transaction.atomic():
        # The household first, as billing.prepayments does: one spender of a balance at a time.
        Unit.objects.select_for_update().filter(pk=order.unit_id).values_list("pk").first()
        locked = _lock_order(order)
        if locked.state == Order.State.PAID:
            return _existing_payment(locked)
        if locked.state != Order.State.PENDING:
            raise OrderNotPending(_("收款单 #%(id)s 已取消") % {"id": locked.pk})
        moves = _plan(locked, on_date=on_date, budget=locked.bills_fen, user_id=locked.cashier_id)
        needed = sum(m.amount_fen for m in moves)
        if needed <= 0:
            raise PaymentError(_("账单已结清, 无需支付"))
        balances = _prepaid_balances(unit_id=locked.unit_id)
        draws = _prepaid_draws(moves, balances)
        available = sum(a for _, a in draws) if draws is not None else 0
        response = chan.pay(_request(locked, amount_fen=needed, extra={AVAILABLE_KEY: available}))
        if response.result != ChannelResult.PROCESSED or draws is None:
            raise PaymentDeclined(_("预存余额不足: 需要 %(n)s 元") % {"n": format_yuan(needed)})
        dims = chan.clearing_dims(
            community_id=locked.community_id, unit_id=locked.unit_id, cashier_id=None
        )
        debits = [
            debit(AccountKind.PREPAID, amount, fee_item_id=earmark, **dims)
            for earmark, amount in draws
        ]
        return _post(
            locked,
            chan,
            response,
            now,
            moves=moves,
            debits=debits,
            source=Allocation.Source.PREPAID,
        )


def _prepaid_balances(*, unit_id: int) -> dict[int | None, int]:
    rows = (
        JournalLine.objects.filter(account=AccountKind.PREPAID, household_id=unit_id)
        .values("fee_item_id")
        .annotate(s=Sum("amount_fen"))
        .values_list("fee_item_id", "s")
    )
    return {fi: -int(s or 0) for fi, s in rows if -int(s or 0) > 0}


def _prepaid_draws(
    moves: list[_Move], balances: dict[int | None, int]
) -> list[tuple[int | None, int]] | None:
    """Return ``[(earmark or None, amount)]`` covering ``moves``, or None if short."""
    left = dict(balances)
    draws: dict[int | None, int] = {}
    for move in moves:
        need = move.amount_fen
        for earmark in (move.bill.fee_item_id, None):
            take = min(need, left.get(earmark, 0))
            if take > 0:
                left[earmark] -= take
                draws[earmark] = draws.get(earmark, 0) + take
                need -= take
        if need > 0:
            return None
    return sorted(draws.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))


def _request(
    order: Order, *, amount_fen: int | None = None, extra: dict[str, Any] | None = None
) -> PaymentRequest:
    return PaymentRequest(
        order_id=order.pk,
        amount_fen=order.amount_fen if amount_fen is None else amount_fen,
        idempotency_key=order.idempotency_key,
        community_id=order.community_id,
        unit_id=order.unit_id,
        cashier_id=order.cashier_id,
        extra=extra or {},
    )


def _safe_details(details: dict[str, Any]) -> dict[str, Any]:
    """Keep only known channel facts (never a PAN, track, PIN or CVV) as short strings."""
    out = {k: str(details[k])[:64] for k in DETAIL_KEYS if details.get(k)}
    pan = out.get("masked_pan", "")
    if sum(ch.isdigit() for ch in pan) > 10:  # a channel handed over a full card number
        try:
            out["masked_pan"] = mask_pan(pan)
        except ValueError:
            del out["masked_pan"]
    for key in ("tendered_fen", "change_fen"):
        if _is_fen(details.get(key)):
            out[key] = details[key]
    return out


def _attempt_record(order: Order, response: PaymentResponse, now: datetime) -> PaymentAttempt:
    key = f"{order.idempotency_key}:{order.channel}:{response.reference or response.result}"
    attempt, _created = PaymentAttempt.objects.get_or_create(
        idempotency_key=key[:160],
        defaults={
            "order_id": order.pk,
            "channel": order.channel,
            "amount_fen": response.amount_fen if _is_fen(response.amount_fen) else 0,
            "result": str(response.result),
            "reference": response.reference[:120],
            "message": response.message[:200],
            "details": _safe_details(response.details),
            "created_at": now,
        },
    )
    return attempt


def _post(
    order: Order,
    chan: Channel,
    response: PaymentResponse,
    now: datetime,
    *,
    moves: list[_Move] | None = None,
    debits: list[Line] | None = None,
    source: str = Allocation.Source.PAYMENT,
) -> Payment:
    """Post a PROCESSED payment of locked ``order``: ledger, allocation, bills, receipt."""
    on_date = _on_date(now)
    amount = response.amount_fen
    first = order.state == Order.State.PENDING
    if moves is None:
        budget = min(order.bills_fen, amount) if first else 0
        moves = _plan(order, on_date=on_date, budget=budget, user_id=order.cashier_id)
    allocated = sum(m.amount_fen for m in moves)
    intended_prepay = min(order.prepay_fen, amount - allocated) if first else 0
    unexpected = amount - allocated - intended_prepay
    community = order.community
    to_refund = unexpected if community.surplus_policy == Community.SurplusPolicy.REFUND else 0
    if chan.clearing_account == AccountKind.PREPAID:
        to_refund = 0  # the money never left the balance: a surplus simply stays there
    unit_dims = {"community_id": order.community_id, "household_id": order.unit_id}
    if debits is None:
        dims = chan.clearing_dims(
            community_id=order.community_id, unit_id=order.unit_id, cashier_id=order.cashier_id
        )
        debits = [debit(chan.clearing_account, amount, **dims)]
    lines: list[Line] = list(debits)
    lines += [
        credit(AccountKind.RECEIVABLE, m.amount_fen, fee_item_id=m.bill.fee_item_id, **unit_dims)
        for m in moves
    ]
    if intended_prepay:
        lines.append(
            credit(
                AccountKind.PREPAID,
                intended_prepay,
                fee_item_id=order.prepay_fee_item_id,
                **unit_dims,
            )
        )
    if unexpected - to_refund:
        lines.append(credit(AccountKind.PREPAID, unexpected - to_refund, **unit_dims))
    if to_refund:
        lines.append(credit(AccountKind.REFUND_PAYABLE, to_refund, **unit_dims))
    key = f"payment:{chan.code}:{response.reference}"
    # No ledger idempotency key: the locked order and Payment's unique (channel, reference)
    # already make this posting happen once, and the key would cost a query.
    entry = entry_post(
        company_id=order.company_id,
        kind=JournalEntry.Kind.PAYMENT,
        memo=f"收款 {order.unit.label} {chan.code} 单#{order.pk} {response.reference}",
        effective_date=on_date,
        lines=lines,
        created_by_id=order.cashier_id,
    )
    details = _safe_details(response.details)
    payment = Payment.objects.create(
        order=order,
        company_id=order.company_id,
        community_id=order.community_id,
        unit_id=order.unit_id,
        channel=chan.code,
        amount_fen=amount,
        reference=response.reference[:120],
        tendered_fen=details.get("tendered_fen"),
        change_fen=details.get("change_fen"),
        allocated_fen=allocated,
        prepaid_fen=amount - allocated - to_refund,
        refund_due_fen=to_refund,
        surplus_to=(
            ""
            if not unexpected
            else Payment.SurplusTo.REFUND
            if to_refund
            else Payment.SurplusTo.PREPAID
        ),
        cashier_id=order.cashier_id,
        shift_id=order.shift_id,
        entry=entry,
        paid_at=now,
        **{k: details[k] for k in DETAIL_KEYS if k in details},
    )
    if moves:
        Allocation.objects.bulk_create(
            [
                Allocation(
                    bill=m.bill,
                    source=source,
                    amount_fen=m.amount_fen,
                    allocated_on=on_date,
                    entry=entry,
                    reference=payment.allocation_reference,
                )
                for m in moves
            ]
        )
        for m in moves:
            m.bill.paid_fen += m.amount_fen
        Bill.objects.bulk_update([m.bill for m in moves], ["paid_fen"])
    if first:
        Order.objects.filter(pk=order.pk).update(state=Order.State.PAID, closed_at=now)
        OrderBill.objects.filter(order_id=order.pk, pending=True).update(pending=False)
        order.state = Order.State.PAID
    PaymentAttempt.objects.create(
        order_id=order.pk,
        channel=chan.code,
        idempotency_key=f"{order.idempotency_key}:{chan.code}:{response.reference}"[:160],
        amount_fen=amount,
        result=str(response.result),
        reference=response.reference[:120],
        message=response.message[:200],
        details=details,
        payment=payment,
        created_at=now,
    )
    # Last: the community's receipt sequence row stays locked until commit, so take it when
    # everything else is written (concurrent payments of a community queue only here).
    payment.receipt_number = _receipt(
        order,
        chan,
        response,
        now,
        reference=key,
        moves=moves,
        prepaid_fen=amount - allocated - to_refund,
        details=details,
    )
    Payment.objects.filter(pk=payment.pk).update(receipt_number=payment.receipt_number)
    return payment


# --- receipts -------------------------------------------------------------------------------


def _period(bill: Bill) -> str:
    return f"{bill.period_start:%Y-%m-%d}~{bill.period_end:%Y-%m-%d}"


def _payer_name(unit_id: int) -> str:
    name = (
        Resident.objects.filter(unit_id=unit_id, role=Resident.Role.OWNER)
        .order_by("-is_primary", "id")
        .values_list("name", flat=True)
        .first()
    )
    return name or ""


def _allocation_note(moves: list[_Move], *, prepaid_fen: int, refund_fen: int) -> str:
    parts = [_("按到期日先后销账") + ("; " + _("先滞纳金后本金") if moves else "")]
    short = [m for m in moves if m.amount_fen < m.before_fen]
    for m in short:
        parts.append(
            _("%(item)s %(period)s 部分缴纳, 尚欠 %(left)s 元")
            % {
                "item": m.bill.fee_item.name,
                "period": f"{m.bill.period_start:%Y-%m}",
                "left": format_yuan(m.before_fen - m.amount_fen),
            }
        )
    if prepaid_fen:
        parts.append(_("%(n)s 元转入预存") % {"n": format_yuan(prepaid_fen)})
    if refund_fen:
        parts.append(_("多付 %(n)s 元待退款") % {"n": format_yuan(refund_fen)})
    return "; ".join(parts)


def _receipt_content(
    *,
    company_name: str,
    company_uscc: str,
    community_name: str,
    community_phone: str,
    household_label: str,
    payer_name: str,
    cashier_name: str,
    chan: Channel,
    amount_fen: int,
    moves: list[_Move],
    prepaid_fen: int,
    details: dict[str, Any],
    now: datetime,
    kind: str = "payment",
) -> Any:
    """Return the ``ReceiptContent`` of a payment (or refund) from facts already in hand."""
    from wuye.receipts.content import ReceiptContent, ReceiptLine

    sign = -1 if kind == "refund" else 1
    lines = tuple(
        ReceiptLine(
            fee_item=m.bill.fee_item.name,
            period=_period(m.bill),
            principal_fen=0 if m.bill.kind == Bill.Kind.LATE_FEE else m.bill.amount_fen,
            late_fee_fen=m.bill.amount_fen if m.bill.kind == Bill.Kind.LATE_FEE else 0,
            waived_fen=m.bill.waived_fen,
            paid_fen=sign * m.amount_fen,
            note=_("滞纳金") if m.bill.kind == Bill.Kind.LATE_FEE else "",
        )
        for m in moves
    )
    refund_due = amount_fen - sum(m.amount_fen for m in moves) - prepaid_fen
    return ReceiptContent(
        company_name=company_name,
        company_uscc=company_uscc,
        community_name=community_name,
        community_phone=community_phone,
        household_label=household_label,
        payer_name=payer_name,
        lines=lines,
        amount_fen=sign * amount_fen,
        channel=chan.code,
        channel_label=_(chan.name) if chan.name else chan.code,
        funding_source=details.get("funding_source", ""),
        masked_pan=details.get("masked_pan", ""),
        rrn=details.get("rrn", ""),
        auth_code=details.get("auth_code", ""),
        cashier_name=cashier_name,
        tendered_fen=details.get("tendered_fen"),
        change_fen=details.get("change_fen"),
        prepaid_credit_fen=sign * prepaid_fen,
        allocation_note=(
            _("退款")
            if kind == "refund"
            else _allocation_note(moves, prepaid_fen=prepaid_fen, refund_fen=refund_due)
        ),
        paid_at=now,
    )


def _cashier_name(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.username)


def _receipt(
    order: Order,
    chan: Channel,
    response: PaymentResponse,
    now: datetime,
    *,
    reference: str,
    moves: list[_Move],
    prepaid_fen: int,
    details: dict[str, Any],
    kind: str = "payment",
    amount_fen: int | None = None,
) -> str:
    """Issue the receipt inside the payment's transaction; return its number."""
    from wuye.receipts.services import receipt_issue

    company = order.community.company
    content = _receipt_content(
        company_name=company.name,
        company_uscc=company.uscc,
        community_name=order.community.name,
        community_phone=order.community.phone,
        household_label=order.unit.label,
        payer_name=(
            order.payer_name or "" if hasattr(order, "payer_name") else _payer_name(order.unit_id)
        ),
        cashier_name=_cashier_name(order.cashier),
        chan=chan,
        amount_fen=response.amount_fen if amount_fen is None else amount_fen,
        moves=moves,
        prepaid_fen=prepaid_fen,
        details=details,
        now=now,
        kind=kind,
    )
    receipt = receipt_issue(
        company_id=order.company_id,
        community_id=order.community_id,
        reference=reference,
        content=content,
        issued_at=now,
        kind=kind,
    )
    return str(receipt.number)


# --- prepaid cards --------------------------------------------------------------------------


def _card_number(raw: str) -> str:
    """The card number from typed digits or a swiped track (``;6200…=…?``)."""
    text = raw.strip().lstrip(";%B").split("=")[0].split("^")[0].rstrip("?")
    return "".join(ch for ch in text if ch.isdigit())


def _check_card_password(password: str) -> None:
    if not (isinstance(password, str) and password.isdigit() and len(password) == 6):
        raise PrepaidCardError(_("密码须为6位数字"))


def prepaid_card_issue(*, unit: Unit, card_no: str, password: str, now: datetime) -> PrepaidCard:
    """Issue a prepaid card for ``unit`` with a 6-digit ``password`` (stored hashed)."""
    number = _card_number(card_no)
    if not 8 <= len(number) <= 32:
        raise PrepaidCardError(_("卡号须为8到32位数字"))
    _check_card_password(password)
    try:
        with transaction.atomic():
            return PrepaidCard.objects.create(
                unit=unit, card_no=number, password_hash=make_password(password), issued_at=now
            )
    except IntegrityError:
        raise PrepaidCardError(_("卡号已被使用")) from None


def prepaid_card_password_reset(
    *, card: PrepaidCard, password: str, reset_by: Any, now: datetime
) -> PrepaidCard:
    """Set a new password and unlock the card; finance or admin only (AccessDenied)."""
    unit = Unit.objects.select_related("community").get(pk=card.unit_id)
    require_role(
        reset_by,
        {Role.FINANCE, Role.ADMIN},
        company_id=unit.community.company_id,
        community_id=unit.community_id,
    )
    _check_card_password(password)
    with transaction.atomic():
        PrepaidCard.objects.filter(pk=card.pk).update(
            password_hash=make_password(password), failed_tries=0, locked_at=None
        )
        audit_record(
            actor=reset_by,
            action="prepaid_card.password_reset",
            obj=card,
            company=unit.community.company,
            detail={"card": str(card)},
        )
    card.refresh_from_db()
    return card


def prepaid_card_check(
    *, unit_id: int, card_no: str, password: str | None, now: datetime
) -> PrepaidCard:
    """Check a prepaid card of household ``unit_id`` and its password; return the card.

    A wrong password counts (committed even though this raises); ``MAX_PASSWORD_TRIES`` in a
    row lock the card. A right one resets the count. Call it (and ``prepaid_pay``) outside any
    transaction of the caller's: an outer transaction rolled back on the error would undo
    the count. Raise PrepaidCardError or
    PrepaidCardLocked; the messages never contain the password or the full card number.
    """
    number = _card_number(card_no)
    wrong_left: int | None = None
    with transaction.atomic():
        card = PrepaidCard.objects.select_for_update().filter(card_no=number).first()
        if card is None or not card.active or card.unit_id != unit_id:
            raise PrepaidCardError(_("预付费卡无效"))
        if card.locked_at is not None:
            raise PrepaidCardLocked(_("密码错误次数过多, 卡已锁定, 请联系财务重置"))
        if check_password(password or "", card.password_hash):
            if card.failed_tries:
                PrepaidCard.objects.filter(pk=card.pk).update(failed_tries=0)
                card.failed_tries = 0
            return card
        tries = card.failed_tries + 1
        locked_at = now if tries >= MAX_PASSWORD_TRIES else None
        PrepaidCard.objects.filter(pk=card.pk).update(failed_tries=tries, locked_at=locked_at)
        wrong_left = MAX_PASSWORD_TRIES - tries
    if wrong_left <= 0:
        raise PrepaidCardLocked(_("密码错误次数过多, 卡已锁定, 请联系财务重置"))
    raise PrepaidCardError(_("密码错误, 还可尝试 %(n)s 次") % {"n": wrong_left})


# --- refunds --------------------------------------------------------------------------------


def refund_create(
    *,
    payment: Payment,
    amount_fen: int,
    reason: str,
    requested_by: Any,
    approved_by: Any,
    now: datetime,
    shift_id: int | None = None,
    channel_response: RefundResponse | None = None,
) -> Refund:
    """Give back ``amount_fen`` of ``payment`` through the channel that took it; return it.

    ``channel_response``: the channel's PROCESSED answer when the refund was done out of band
    before this call (a card void/refund performed on the terminal, a QR refund confirmed by
    notification or query); the channel is then not asked again. Its ``amount_fen`` must equal
    ``amount_fen``.

    ``approved_by`` must hold the finance role (AccessDenied). Full or partial, never more
    than paid minus refunded. Undoes, in this order, the surplus held as refund due, the
    surplus put into the prepaid balance (as far as the balance still holds it), then the
    allocations of the newest bills first, each with an ``Allocation`` row pointing at the one
    it reverses; ``Bill.paid_fen`` moves back; the mirror ledger lines are posted Cr the
    channel's clearing account (cash from the drawer of ``requested_by``, prepaid back to the
    household's balance). Raise RefundError when refused; nothing is then written.
    """
    if not _is_fen(amount_fen) or amount_fen <= 0:
        raise RefundError(_("退款金额须为正整数(分)"))
    if not reason or not reason.strip():
        raise RefundError(_("请填写退款原因"))
    require_role(
        approved_by,
        {Role.FINANCE},
        company_id=payment.company_id,
        community_id=payment.community_id,
    )
    chan = _channel(payment.channel)
    on_date = _on_date(now)
    with transaction.atomic():
        Unit.objects.select_for_update().filter(pk=payment.unit_id).values_list("pk").first()
        locked = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("order__unit", "order__community__company", "order__cashier")
            .get(pk=payment.pk)
        )
        if amount_fen > locked.refundable_fen:
            raise RefundError(_("最多可退 %(n)s 元") % {"n": format_yuan(locked.refundable_fen)})
        unit_dims = {"community_id": locked.community_id, "household_id": locked.unit_id}
        left = amount_fen
        lines: list[Line] = []
        # 1. Surplus waiting to be refunded.
        due_left = locked.refund_due_fen - _reversed_surplus(locked, AccountKind.REFUND_PAYABLE)
        take = min(left, max(0, due_left))
        if take:
            lines.append(debit(AccountKind.REFUND_PAYABLE, take, **unit_dims))
            left -= take
        # 2. Surplus put into the prepaid balance, as far as the balance still holds it.
        prepaid_left = locked.prepaid_fen - _reversed_surplus(locked, AccountKind.PREPAID)
        if left and prepaid_left > 0:
            earmarks = _payment_prepaid_credits(locked)
            balances = _prepaid_balances(unit_id=locked.unit_id)
            for earmark, credited in earmarks:
                take = min(left, credited, balances.get(earmark, 0))
                if take > 0:
                    lines.append(debit(AccountKind.PREPAID, take, fee_item_id=earmark, **unit_dims))
                    balances[earmark] -= take
                    left -= take
        # 3. Allocations, newest bills first.
        undo: list[tuple[Allocation, int]] = []
        if left:
            for allocation, net in _net_allocations(locked):
                take = min(left, net)
                if take > 0:
                    undo.append((allocation, take))
                    left -= take
                if not left:
                    break
        if left:
            raise RefundError(
                _("最多可退 %(n)s 元 (预存余额已被使用的部分不能退)")
                % {"n": format_yuan(amount_fen - left)}
            )
        for allocation, take in undo:
            lines.append(
                debit(
                    AccountKind.RECEIVABLE,
                    take,
                    fee_item_id=allocation.bill.fee_item_id,
                    **unit_dims,
                )
            )
        drawer = getattr(requested_by, "pk", None)
        dims = chan.clearing_dims(
            community_id=locked.community_id, unit_id=locked.unit_id, cashier_id=drawer
        )
        lines.append(credit(chan.clearing_account, amount_fen, **dims))
        n = RefundAttempt.objects.filter(payment_id=locked.pk).count() + 1
        key = f"refund:{locked.channel}:{locked.reference}:{n}"
        if channel_response is not None:
            if channel_response.amount_fen != amount_fen:
                raise RefundError(_("渠道退款金额与申请金额不符"))
            response = channel_response
        else:
            response = chan.refund(
                RefundRequest(
                    payment_id=locked.pk,
                    payment_reference=locked.reference,
                    amount_fen=amount_fen,
                    idempotency_key=key,
                    community_id=locked.community_id,
                    unit_id=locked.unit_id,
                    cashier_id=drawer,
                )
            )
        if response.result != ChannelResult.PROCESSED:
            raise RefundError(response.message or _("渠道未完成退款"))
        entry = entry_post(
            company_id=locked.company_id,
            kind=JournalEntry.Kind.REFUND,
            memo=f"退款 {locked.order.unit.label} 收款#{locked.pk}",
            effective_date=on_date,
            lines=lines,
            idempotency_key=key[:120],
            created_by_id=getattr(approved_by, "pk", None),
        )
        refund = Refund.objects.create(
            payment=locked,
            channel=chan.code,
            amount_fen=amount_fen,
            reason=reason.strip()[:200],
            reference=response.reference[:120],
            requested_by=requested_by,
            approved_by=approved_by,
            shift_id=shift_id,
            entry=entry,
            created_at=now,
        )
        if undo:
            Allocation.objects.bulk_create(
                [
                    Allocation(
                        bill=allocation.bill,
                        source=allocation.source,
                        amount_fen=-take,
                        allocated_on=on_date,
                        entry=entry,
                        reference=f"refund:{refund.pk}",
                        reverses=allocation,
                    )
                    for allocation, take in undo
                ]
            )
            bills = {a.bill_id: a.bill for a, _t in undo}
            for allocation, take in undo:
                bills[allocation.bill_id].paid_fen -= take
            Bill.objects.bulk_update(list(bills.values()), ["paid_fen"])
        refunded = locked.refunded_fen + amount_fen
        state = (
            Payment.State.REFUNDED
            if refunded == locked.amount_fen
            else Payment.State.PARTIALLY_REFUNDED
        )
        Payment.objects.filter(pk=locked.pk).update(
            refunded_fen=F("refunded_fen") + amount_fen, state=state
        )
        payment.refunded_fen = refunded
        payment.state = state
        RefundAttempt.objects.create(
            payment=locked,
            idempotency_key=key[:160],
            amount_fen=amount_fen,
            result=str(response.result),
            reference=response.reference[:120],
            message=response.message[:200],
            details=_safe_details(response.details),
            refund=refund,
            created_at=now,
        )
        moves = [_Move(a.bill, a.amount_fen, take) for a, take in undo]
        number = _receipt(
            locked.order,
            chan,
            PaymentResponse(ChannelResult.PROCESSED, amount_fen, response.reference),
            now,
            reference=f"refund:{refund.pk}",
            moves=moves,
            prepaid_fen=amount_fen - sum(t for _a, t in undo),
            details={},
            kind="refund",
        )
        Refund.objects.filter(pk=refund.pk).update(receipt_number=number)
        refund.receipt_number = number
        audit_record(
            actor=approved_by,
            action="payment.refund",
            obj=refund,
            company=locked.order.community.company,
            detail={"payment": locked.pk, "amount_fen": amount_fen, "reason": refund.reason},
        )
        return refund


def _payment_prepaid_credits(payment: Payment) -> list[tuple[int | None, int]]:
    """The PREPAID credits of the payment's entry, by earmark (general last)."""
    rows = JournalLine.objects.filter(
        entry_id=payment.entry_id, account=AccountKind.PREPAID, amount_fen__lt=0
    ).values_list("fee_item_id", "amount_fen")
    out: dict[int | None, int] = {}
    for fee_item_id, amount in rows:
        out[fee_item_id] = out.get(fee_item_id, 0) - int(amount)
    return sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))


def _reversed_surplus(payment: Payment, account: AccountKind) -> int:
    """What earlier refunds of ``payment`` already took back from ``account``."""
    entry_ids = Refund.objects.filter(payment_id=payment.pk).values("entry_id")
    total = JournalLine.objects.filter(
        entry_id__in=entry_ids, account=account, household_id=payment.unit_id, amount_fen__gt=0
    ).aggregate(s=Sum("amount_fen"))["s"]
    return int(total or 0)


def _net_allocations(payment: Payment) -> list[tuple[Allocation, int]]:
    """The payment's allocations still standing, newest bill first (due date, then id)."""
    originals = list(
        Allocation.objects.select_for_update(of=("self",))
        .filter(reference=payment.allocation_reference, reverses__isnull=True)
        .select_related("bill__fee_item")
    )
    if not originals:
        return []
    undone: dict[int, int] = {}
    for reverses_id, amount in Allocation.objects.filter(
        reverses_id__in=[a.pk for a in originals]
    ).values_list("reverses_id", "amount_fen"):
        undone[reverses_id] = undone.get(reverses_id, 0) + int(amount)
    # Lock the bills themselves before moving paid_fen back.
    locked = {
        b.pk: b
        for b in Bill.objects.select_for_update()
        .filter(pk__in=sorted({a.bill_id for a in originals}))
        .select_related("fee_item")
        .order_by("pk")
    }
    out = []
    for allocation in originals:
        allocation.bill = locked[allocation.bill_id]
        net = allocation.amount_fen + undone.get(allocation.pk, 0)
        if net > 0:
            out.append((allocation, net))
    out.sort(key=lambda an: (an[0].bill.due_date, an[0].bill_id, an[0].pk), reverse=True)
    return out


__all__ = [
    "BillInPendingOrder",
    "IdempotencyKeyConflict",
    "InsufficientTender",
    "OrderNotPending",
    "PaymentDeclined",
    "PaymentError",
    "PaymentNotFinal",
    "PrepaidCardError",
    "PrepaidCardLocked",
    "RefundError",
    "cash_pay",
    "order_cancel",
    "order_create",
    "orders_cancel_stale",
    "payment_capture",
    "payment_inquire",
    "prepaid_card_check",
    "prepaid_card_issue",
    "prepaid_card_password_reset",
    "prepaid_pay",
    "refund_create",
]
