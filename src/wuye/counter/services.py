"""Writes at the counter: open and close a shift (交班), cash paid in and out, and taking payment.

How a shift's cash is booked (all lines on ``CASH`` with the shift's community):

- **Opening float** (备用金): Dr CASH (cashier) / Cr CASH (the community's safe: no cashier).
- **Cash payments and cash refunds** (``payments``): Dr/Cr CASH (cashier) against the
  household's receivable or prepaid balance, posted by the payments services.
- **Paid in** (现金存入, e.g. more change from the bank): Dr CASH (cashier) / Cr BANK.
  **Paid out** (现金取出, e.g. a banking run): Dr BANK / Cr CASH (cashier).
- **Close** (交班): the cashier's whole CASH balance leaves the drawer. Dr CASH (safe) with
  the cash counted, Cr CASH (cashier) with the cash expected, and the difference on
  CASH_OVER_SHORT (现金长短款, the community's): a shortage is a debit there, an overage a
  credit, until finance clears it. The safe's CASH balance is therefore the cash really there.

So the cashier's CASH balance is zero between shifts, and the cash expected at closing is
exactly the cashier's CASH balance in the community: float + cash payments − cash refunds +
paid in − paid out, whatever posted it. ``counter.selectors.shift_report`` shows the same
figure built up from the payments, and the tests assert the two agree.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied, require_role
from wuye.core.money import format_yuan
from wuye.core.services import audit_record
from wuye.counter.models import CashMovement, Shift
from wuye.counter.selectors import drawer_cash
from wuye.estates.models import Community, Unit
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import credit, debit, entry_post

SHIFT_ROLES = frozenset({Role.CASHIER, Role.FINANCE, Role.ADMIN})
OVER_SHORT_CHANNEL = "over_short"
CASH_CHANNEL = "cash"
MAX_CASH_FEN = 100_000_000_00  # one hundred million yuan: anything above is a typing error


class ShiftError(ValueError):
    """A shift cannot be opened, closed or written to as asked."""


class ShiftAlreadyOpen(ShiftError):
    """The cashier already has an open shift; close it first."""


class ShiftNotOpen(ShiftError):
    """The shift is closed: nothing more can be taken or moved on it."""


class ShiftDifferenceNeedsNote(ShiftError):
    """Counted cash differs from expected and no note says why."""


def _check_fen(name: str, value: Any, *, positive: bool) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShiftError(_("%(name)s: 金额须为整数(分)") % {"name": name})
    if value < 0 or (positive and value == 0):
        raise ShiftError(
            (_("%(name)s: 金额须大于零") if positive else _("%(name)s: 金额不能为负"))
            % {"name": name}
        )
    if value > MAX_CASH_FEN:
        raise ShiftError(_("%(name)s: 金额过大") % {"name": name})


def _drawer(shift: Shift) -> dict[str, Any]:
    return {"community_id": shift.community_id, "cashier_id": shift.cashier_id}


def _safe(shift: Shift, channel: str = "") -> dict[str, Any]:
    return {"community_id": shift.community_id, "channel": channel}


def shift_open(
    *, cashier: Any, community: Community, counter_name: str, opening_float_fen: int, now: datetime
) -> Shift:
    """Open a shift for ``cashier`` at ``counter_name`` with a float of change in the drawer.

    Post the float (Dr CASH cashier / Cr CASH safe) in the same transaction. Raise
    AccessDenied if the user may not take money in that community, ShiftError for a bad
    float, and ShiftAlreadyOpen if the cashier has an open shift (anywhere).
    """
    require_role(
        cashier, set(SHIFT_ROLES), company_id=community.company_id, community_id=community.pk
    )
    _check_fen("opening_float_fen", opening_float_fen, positive=False)
    counter_name = counter_name.strip()[:40]
    if Shift.objects.filter(cashier=cashier, state=Shift.State.OPEN).exists():
        raise ShiftAlreadyOpen(_("%(cashier)s 已有未交班的班次, 请先交班") % {"cashier": cashier})
    try:
        with transaction.atomic():
            shift = Shift.objects.create(
                cashier=cashier,
                community=community,
                counter_name=counter_name,
                opened_at=now,
                opening_float_fen=opening_float_fen,
            )
            if opening_float_fen:
                entry_post(
                    company_id=community.company_id,
                    kind=JournalEntry.Kind.ADJUSTMENT,
                    memo=f"备用金 班次#{shift.pk} {counter_name}",
                    effective_date=timezone.localdate(now),
                    idempotency_key=f"shift:{shift.pk}:float",
                    created_by_id=cashier.pk,
                    lines=[
                        debit(AccountKind.CASH, opening_float_fen, **_drawer(shift)),
                        credit(AccountKind.CASH, opening_float_fen, **_safe(shift)),
                    ],
                )
            audit_record(
                actor=cashier,
                action="shift_open",
                obj=shift,
                company=community.company,
                detail={"counter": counter_name, "float_fen": opening_float_fen},
            )
    except IntegrityError as exc:
        # Two opens at once: the partial unique index lets one through.
        if Shift.objects.filter(cashier=cashier, state=Shift.State.OPEN).exists():
            raise ShiftAlreadyOpen(
                _("%(cashier)s 已有未交班的班次, 请先交班") % {"cashier": cashier}
            ) from exc
        raise
    return shift


def _lock_open(shift: Shift) -> Shift:
    locked = Shift.objects.select_for_update().get(pk=shift.pk)
    if locked.state != Shift.State.OPEN:
        raise ShiftNotOpen(_("班次已交班, 请重新开班"))
    return locked


def cash_movement_record(
    *, shift: Shift, kind: str, amount_fen: int, reason: str, user: Any, now: datetime
) -> CashMovement:
    """Record cash paid into (``paid_in``) or out of (``paid_out``) the drawer of an open shift.

    Paid in: Dr CASH (cashier) / Cr BANK; paid out: Dr BANK / Cr CASH (cashier). Only the
    shift's cashier, finance or an administrator may. Raise ShiftNotOpen, ShiftError (bad
    kind, amount or empty reason; paying out more than the drawer holds) or AccessDenied.
    """
    if kind not in CashMovement.Kind.values:
        raise ShiftError(_("未知的现金存取类型: %(kind)s") % {"kind": kind})
    _check_fen("amount_fen", amount_fen, positive=True)
    reason = reason.strip()
    if not reason:
        raise ShiftError(_("请填写事由"))
    if user.pk != shift.cashier_id:
        require_role(
            user,
            {Role.FINANCE, Role.ADMIN},
            company_id=shift.community.company_id,
            community_id=shift.community_id,
        )
    with transaction.atomic():
        locked = _lock_open(shift)
        if kind == CashMovement.Kind.PAID_OUT:
            in_drawer = drawer_cash(cashier_id=locked.cashier_id, community_id=locked.community_id)
            if amount_fen > in_drawer:
                raise ShiftError(
                    _("取出 %(out)s 元, 但钱箱只有 %(has)s 元")
                    % {"out": format_yuan(amount_fen), "has": format_yuan(in_drawer)}
                )
        cash = AccountKind.CASH
        bank = AccountKind.BANK
        bank_dims = {"community_id": locked.community_id}
        if kind == CashMovement.Kind.PAID_IN:
            lines = [
                debit(cash, amount_fen, **_drawer(locked)),
                credit(bank, amount_fen, **bank_dims),
            ]
        else:
            lines = [
                debit(bank, amount_fen, **bank_dims),
                credit(cash, amount_fen, **_drawer(locked)),
            ]
        label = CashMovement.Kind(kind).label
        entry = entry_post(
            company_id=locked.community.company_id,
            kind=JournalEntry.Kind.ADJUSTMENT,
            memo=f"{label} 班次#{locked.pk} {reason}",
            effective_date=timezone.localdate(now),
            created_by_id=user.pk,
            lines=lines,
        )
        movement = CashMovement.objects.create(
            shift=locked,
            kind=kind,
            amount_fen=amount_fen,
            reason=reason[:200],
            created_at=now,
            created_by=user,
            entry=entry,
        )
    return movement


def shift_close(*, shift: Shift, counted_cash_fen: int, note: str, now: datetime) -> Shift:
    """Close ``shift`` with the cash counted in the drawer.

    Expected is the cashier's CASH balance (see the module docstring); difference = counted −
    expected. Post the hand-over to the safe and the difference to over/short, and record
    expected, counted and difference on the shift. Raise ShiftNotOpen, ShiftError for a bad
    amount, and ShiftDifferenceNeedsNote when they differ and ``note`` is empty.
    """
    _check_fen("counted_cash_fen", counted_cash_fen, positive=False)
    note = note.strip()
    with transaction.atomic():
        locked = _lock_open(shift)
        expected = drawer_cash(cashier_id=locked.cashier_id, community_id=locked.community_id)
        difference = counted_cash_fen - expected
        if difference and not note:
            raise ShiftDifferenceNeedsNote(
                _("实点 %(counted)s 元, 应有 %(expected)s 元: 请填写差异说明")
                % {"counted": format_yuan(counted_cash_fen), "expected": format_yuan(expected)}
            )
        if counted_cash_fen or expected:
            entry_post(
                company_id=locked.community.company_id,
                kind=JournalEntry.Kind.ADJUSTMENT,
                memo=f"交班 班次#{locked.pk} {locked.counter_name}",
                effective_date=timezone.localdate(now),
                idempotency_key=f"shift:{locked.pk}:close",
                created_by_id=locked.cashier_id,
                lines=[
                    debit(AccountKind.CASH, counted_cash_fen, **_safe(locked)),
                    credit(AccountKind.CASH, expected, **_drawer(locked)),
                    # A shortage (difference < 0) is a debit on over/short, an overage a credit.
                    debit(
                        AccountKind.CASH_OVER_SHORT,
                        -difference,
                        **_safe(locked, OVER_SHORT_CHANNEL),
                    ),
                ],
            )
        locked.state = Shift.State.CLOSED
        locked.closed_at = now
        locked.counted_cash_fen = counted_cash_fen
        locked.expected_cash_fen = expected
        locked.difference_fen = difference
        locked.difference_note = note[:200]
        locked.save(
            update_fields=[
                "state",
                "closed_at",
                "counted_cash_fen",
                "expected_cash_fen",
                "difference_fen",
                "difference_note",
            ]
        )
        audit_record(
            actor=locked.cashier,
            action="shift_close",
            obj=locked,
            company=locked.community.company,
            detail={"expected_fen": expected, "counted_fen": counted_cash_fen, "diff": difference},
        )
    return locked


__all__ = [
    "AccessDenied",
    "ShiftAlreadyOpen",
    "ShiftDifferenceNeedsNote",
    "ShiftError",
    "ShiftNotOpen",
    "cash_movement_record",
    "shift_close",
    "shift_open",
]


# --- taking payment --------------------------------------------------------------------------


class CounterPayError(ValueError):
    """The counter could not take this payment; the message says why. Nothing was charged."""


class PaymentsUnavailable(CounterPayError):
    """The payments part of Wuye is not installed yet."""


@dataclass(frozen=True)
class CheckoutResult:
    """What the counter shows after paying: the order, the payment and the change to give."""

    order: Any
    payment: Any
    change_fen: int


def _payments_services() -> Any:
    try:
        module = importlib.import_module("wuye.payments.services")
    except ImportError as exc:
        raise PaymentsUnavailable(_("收款功能尚未安装")) from exc
    return module


def counter_checkout(
    *,
    shift: Shift,
    unit: Unit,
    bill_ids: list[int],
    amount_fen: int | None,
    channel: str,
    idempotency_key: str,
    now: datetime,
    tendered_fen: int | None = None,
    card_no: str | None = None,
    password: str | None = None,
) -> CheckoutResult:
    """Take a payment at the counter of an open shift: create the order, then pay it.

    ``bill_ids`` are the ticked bills; ``amount_fen`` None pays them in full (late fees as of
    ``now`` included), less pays part of them (oldest first), more pays them and prepays the
    rest; with no bills ticked the amount is a prepayment. ``channel`` ``cash``
    (``tendered_fen``, None meaning exact) or ``prepaid`` (the household's balance, or its card
    with ``card_no`` and ``password``). The same ``idempotency_key`` returns the same order
    and payment: a double click or a resubmitted form charges once.

    When paying fails after the order was made, the order is cancelled so its bills are free
    again (a new attempt needs a new key). Raise ShiftNotOpen, CounterPayError for bad input,
    and the payments errors (``payments.services.PaymentError`` and subclasses) as they come.
    """
    if not Shift.objects.filter(pk=shift.pk, state=Shift.State.OPEN).exists():
        raise ShiftNotOpen(_("班次已交班, 请重新开班"))
    if unit.community_id != shift.community_id:
        raise CounterPayError(_("房屋 %(label)s 不属于本班次的小区") % {"label": unit.label})
    if not idempotency_key:
        raise CounterPayError("idempotency_key: required")
    if amount_fen is not None:
        _check_fen("amount_fen", amount_fen, positive=True)
    if not bill_ids and amount_fen is None:
        raise CounterPayError(_("请勾选账单或输入金额"))
    if tendered_fen is not None:
        _check_fen("tendered_fen", tendered_fen, positive=False)
    if channel == CASH_CHANNEL:
        from wuye.payments.posting import cash_checkout

        payment = cash_checkout(
            unit=unit,
            bill_ids=list(bill_ids),
            amount_fen=amount_fen,
            tendered_fen=tendered_fen or None,
            idempotency_key=idempotency_key,
            cashier=shift.cashier,
            shift_id=shift.pk,
            now=now,
        )
        return CheckoutResult(
            order=payment.order, payment=payment, change_fen=int(payment.change_fen or 0)
        )
    svc = _payments_services()
    order = svc.order_create(
        unit=unit,
        bill_ids=list(bill_ids),
        amount_fen=amount_fen,
        channel=channel,
        idempotency_key=idempotency_key,
        cashier=shift.cashier,
        shift_id=shift.pk,
        now=now,
    )
    try:
        if channel == CASH_CHANNEL:
            tendered = order.amount_fen if tendered_fen is None else tendered_fen
            payment = svc.cash_pay(order=order, tendered_fen=tendered, now=now)
        else:
            payment = svc.prepaid_pay(
                order=order, now=now, card_no=card_no or None, password=password
            )
    except Exception:
        # Nothing was charged: free the bills for the next attempt (a paid order stays paid).
        try:
            svc.order_cancel(order=order, now=now)
        except svc.OrderNotPending:
            pass
        raise
    change = payment.change_fen if channel == CASH_CHANNEL else 0
    return CheckoutResult(order=order, payment=payment, change_fen=int(change or 0))


def external_channels() -> dict[str, Any]:
    """Registered channels the counter hands over to their own page (card terminal, QR)."""
    from wuye.channels.registry import channels_all

    return {code: c for code, c in channels_all().items() if c.counter_url}


def counter_order_start(
    *,
    shift: Shift,
    unit: Unit,
    bill_ids: list[int],
    amount_fen: int | None,
    channel: str,
    idempotency_key: str,
    now: datetime,
) -> Any:
    """Create the pending order of a channel paid on its own page (card, QR); return it.

    The channel's ``counter_url`` page then takes the money (pushes the amount to the terminal,
    shows the QR code) and ``payments.services.payment_capture`` posts it. The same key returns
    the same order. Raise ShiftNotOpen, CounterPayError and the payments errors.
    """
    if channel not in external_channels():
        raise CounterPayError(_("支付方式 %(c)s 不能在收费台使用") % {"c": channel})
    if not Shift.objects.filter(pk=shift.pk, state=Shift.State.OPEN).exists():
        raise ShiftNotOpen(_("班次已交班, 请重新开班"))
    if unit.community_id != shift.community_id:
        raise CounterPayError(_("房屋 %(label)s 不属于本班次的小区") % {"label": unit.label})
    if amount_fen is not None:
        _check_fen("amount_fen", amount_fen, positive=True)
    if not bill_ids and amount_fen is None:
        raise CounterPayError(_("请勾选账单或输入金额"))
    return _payments_services().order_create(
        unit=unit,
        bill_ids=list(bill_ids),
        amount_fen=amount_fen,
        channel=channel,
        idempotency_key=idempotency_key,
        cashier=shift.cashier,
        shift_id=shift.pk,
        now=now,
    )


def _is_qr(code: str) -> bool:
    from wuye.channels.qrpay.base import QrChannel
    from wuye.channels.registry import channels_all

    return isinstance(channels_all().get(code), QrChannel)


def counter_refund(
    *,
    payment: Any,
    amount_fen: int,
    reason: str,
    user: Any,
    now: datetime,
    shift: Shift | None = None,
) -> Any:
    """Refund ``amount_fen`` of ``payment`` through its channel, approved by ``user`` (finance).

    Cash goes back from the drawer of ``shift`` (an open shift in the payment's community; its
    cashier hands the cash over and the refund counts in that shift's report), so a cash refund
    needs one. Raise CounterPayError for that, ShiftNotOpen, PaymentsUnavailable, and the
    payments errors (``RefundError``, AccessDenied…) as they come.
    """
    svc = _payments_services()
    if shift is not None:
        if shift.state != Shift.State.OPEN:
            raise ShiftNotOpen(_("班次已交班, 请重新开班"))
        if shift.community_id != payment.community_id:
            raise CounterPayError(_("退款班次不属于该小区"))
    if payment.channel == CASH_CHANNEL and shift is None:
        raise CounterPayError(_("现金退款须选择付出现金的当班收费台"))
    if _is_qr(payment.channel):
        # Through the provider; one it is still processing is finished by its notification
        # or the QR poll job, so the answer may be a pending QrRefund.
        from wuye.channels.qrpay.services import qr_refund

        return qr_refund(
            payment=payment,
            amount_fen=amount_fen,
            reason=reason,
            requested_by=shift.cashier if shift is not None else user,
            approved_by=user,
            now=now,
        )
    if payment.channel == CASH_CHANNEL and shift is not None:
        # The cash comes out of this drawer: never more than it holds (as for a paid-out),
        # checked with the shift locked so two refunds cannot both take the last of it.
        with transaction.atomic():
            locked = _lock_open(shift)
            in_drawer = drawer_cash(cashier_id=locked.cashier_id, community_id=locked.community_id)
            if isinstance(amount_fen, int) and amount_fen > in_drawer:
                raise CounterPayError(
                    _("退款 %(out)s 元, 但钱箱只有 %(has)s 元")
                    % {"out": format_yuan(amount_fen), "has": format_yuan(in_drawer)}
                )
            return svc.refund_create(
                payment=payment,
                amount_fen=amount_fen,
                reason=reason,
                requested_by=locked.cashier,
                approved_by=user,
                shift_id=locked.pk,
                now=now,
            )
    return svc.refund_create(
        payment=payment,
        amount_fen=amount_fen,
        reason=reason,
        requested_by=shift.cashier if shift is not None else user,
        approved_by=user,
        shift_id=shift.pk if shift is not None else None,
        now=now,
    )
