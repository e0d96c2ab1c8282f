"""Resolving reconciliation exceptions: the postings behind each action, and the state machine.

Every action that moves money posts a balanced entry through the ledger
(``wuye.payments.services`` or ``wuye.ledger.services.entry_post``) in the same transaction as
the exception's state change and its history event (``ReconExceptionEvent``), and leaves an
audit event. The postings (see docs/reconciliation.md, "Resolving exceptions"):

- channel only → post it: an order for the household's open bills (found from our order
  number, the channel reference of an attempt we recorded, or chosen by finance) captured
  with the channel's PROCESSED answer: Dr CLEARING (channel) / Cr RECEIVABLE (or PREPAID);
- channel only → refund due: Dr CLEARING (channel) / Cr REFUND_PAYABLE (household if known);
- internal only → reverse: the channel never had the money, so the payment is given back in
  full with ``payments.services.refund_create`` and an out-of-band answer whose reference
  starts ``recon-void:`` (bills reopen, the receipt gets its red counterpart, Dr RECEIVABLE /
  Cr CLEARING); the clearing module counts it where the payment counted;
- fee difference: Dr FEE_EXPENSE / Cr CLEARING (channel) for what the channel charged beyond
  the contract (the sides swap when it charged less);
- arrival: Dr BANK (the bank's credit) + Dr FEE_EXPENSE (the fee the contract allows) /
  Cr CLEARING (channel) — the settlement date's clearing balance reaches zero when all of it
  arrived; a short arrival leaves the shortfall visibly in transit;
- chase (a missing or late arrival): state and note only, no posting.

Undo (of an automatic or a manual resolution) reverses exactly what was posted: the ledger
entries with ``entry_reverse``; a payment posted from a channel-only record with a full
``recon-void`` refund, so its bills reopen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.accounts.models import Role
from wuye.accounts.selectors import require_role
from wuye.billing.selectors import open_bills
from wuye.channels.base import ChannelResult, PaymentResponse, RefundResponse
from wuye.core.money import format_yuan
from wuye.estates.models import Unit
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import Line, credit, debit, entry_post, entry_reverse
from wuye.payments.models import Order, OrderBill, Payment, PaymentAttempt
from wuye.payments.services import order_create, payment_capture, refund_create
from wuye.reconciliation.clearing import RECON_VOID_PREFIX, recon_key

RESOLVE_ROLES: set[str] = {Role.FINANCE, Role.ADMIN}
"""Who may resolve an exception or undo a resolution (admin acts as finance)."""


class ResolutionError(ValueError):
    """An action that cannot be taken: wrong state, bad amount, household not found…"""


class HouseholdNotFound(ResolutionError):
    """A channel-only payment whose household Wuye cannot find: choose it by hand."""


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _local_date(now: datetime) -> date:
    if timezone.is_naive(now):
        raise ResolutionError("now: an aware datetime is required")
    return timezone.localtime(now).date()


# --- finding the household --------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """Where a channel-only payment belongs: the household and, if still open, our order."""

    unit: Unit
    order: Order | None
    how: str  # "order_no" | "attempt" | "chosen"


def household_find(
    *,
    company_id: int,
    channel: str,
    reference: str,
    order_no: str = "",
    unit_id: int | None = None,
) -> Found:
    """Return the household a channel-only payment belongs to.

    Tried in order: ``unit_id`` chosen by finance; our order number (the ``out_trade_no`` a QR
    channel echoes, i.e. ``Order.idempotency_key``); an attempt we recorded with the channel's
    reference (a terminal that timed out after the card was charged). Raise HouseholdNotFound
    when none gives a household of ``company_id``.
    """
    if unit_id is not None:
        unit = Unit.objects.filter(pk=unit_id, community__company_id=company_id).first()
        if unit is None:
            raise HouseholdNotFound(_("房屋 #%(id)s 不属于本公司") % {"id": unit_id})
        order = None
        if order_no:
            order = Order.objects.filter(
                idempotency_key=order_no, unit_id=unit.pk, channel=channel
            ).first()
        return Found(unit, order, "chosen")
    if order_no:
        order = (
            Order.objects.filter(idempotency_key=order_no, company_id=company_id)
            .select_related("unit")
            .first()
        )
        if order is not None:
            return Found(order.unit, order, "order_no")
    if reference:
        attempt = (
            PaymentAttempt.objects.filter(
                channel=channel, reference=reference, order__company_id=company_id
            )
            .select_related("order__unit")
            .first()
        )
        if attempt is not None:
            return Found(attempt.order.unit, attempt.order, "attempt")
    raise HouseholdNotFound(
        _("找不到渠道流水 %(ref)s (订单号 %(no)s) 对应的房屋, 请手工选择房屋")
        % {"ref": reference, "no": order_no or "-"}
    )


# --- postings ---------------------------------------------------------------------------------


def channel_payment_post(
    *,
    company_id: int,
    channel: str,
    reference: str,
    amount_fen: int,
    paid_at: datetime,
    order_no: str = "",
    unit_id: int | None = None,
    details: dict[str, Any] | None = None,
    user: Any = None,
) -> Payment:
    """Post a payment the channel took but Wuye never recorded; return the Payment.

    When our order for it is still pending (the notification was lost, the terminal timed
    out) the channel's answer is captured on that order, paying the bills the resident chose.
    Otherwise a new order takes the household's open bills, oldest due first (a larger amount
    goes to the prepaid balance, a smaller one pays part). ``paid_at`` is when the channel
    took the money, so the payment counts towards that day's settlement. Idempotent on
    (channel, reference). Raise HouseholdNotFound or ResolutionError; nothing is then written.
    """
    if not _is_fen(amount_fen) or amount_fen <= 0:
        raise ResolutionError(_("amount_fen: 须为正整数(分)"))
    if not reference:
        raise ResolutionError(_("缺少渠道流水号"))
    existing = Payment.objects.filter(channel=channel, reference=reference).first()
    if existing is not None:
        return existing
    found = household_find(
        company_id=company_id,
        channel=channel,
        reference=reference,
        order_no=order_no,
        unit_id=unit_id,
    )
    response = PaymentResponse(
        ChannelResult.PROCESSED, amount_fen, reference, details=dict(details or {})
    )
    with transaction.atomic():
        order = found.order
        if order is None or order.state != Order.State.PENDING or order.channel != channel:
            on_date = _local_date(paid_at)
            busy = set(
                OrderBill.objects.filter(bill__unit_id=found.unit.pk, pending=True).values_list(
                    "bill_id", flat=True
                )
            )
            bill_ids = _bills_within(
                [
                    line
                    for line in open_bills(unit_id=found.unit.pk, as_of=on_date)
                    if line.outstanding_fen > 0 and line.bill_id not in busy
                ],
                amount_fen,
            )
            order = order_create(
                unit=found.unit,
                bill_ids=bill_ids,
                amount_fen=amount_fen,
                prepay_fen=0 if bill_ids else amount_fen,
                channel=channel,
                idempotency_key=f"recon:{channel}:{reference}"[:120],
                cashier=None,
                now=paid_at,
            )
        return payment_capture(order=order, response=response, now=paid_at)


def _bills_within(lines: list[Any], amount_fen: int) -> list[int]:
    """The oldest open bills the amount reaches, so a partial payment does not hold every
    bill of the household in its order (late-fee bills come along through order_create)."""
    chosen: list[int] = []
    covered = 0
    for line in lines:
        if covered >= amount_fen:
            break
        if line.parent_id is not None:
            continue
        chosen.append(line.bill_id)
        covered += line.outstanding_fen + line.late_fee_fen
    return chosen


def refund_due_post(
    *,
    company_id: int,
    channel: str,
    settle_date: date,
    reference: str,
    amount_fen: int,
    unit: Unit | None,
    on_date: date,
    user: Any = None,
) -> JournalEntry:
    """Record that money the channel took for nobody must go back: Dr CLEARING / Cr
    REFUND_PAYABLE (on the household when known). Raise ResolutionError on a bad amount."""
    if not _is_fen(amount_fen) or amount_fen <= 0:
        raise ResolutionError(_("amount_fen: 须为正整数(分)"))
    dims: dict[str, Any] = {}
    if unit is not None:
        dims = {"community_id": unit.community_id, "household_id": unit.pk}
    lines = [
        debit(AccountKind.CLEARING, amount_fen, channel=channel),
        credit(AccountKind.REFUND_PAYABLE, amount_fen, **dims),
    ]
    return entry_post(
        company_id=company_id,
        kind=JournalEntry.Kind.ADJUSTMENT,
        memo=f"对账 单边账待退款 {channel} {reference}",
        effective_date=on_date,
        lines=lines,
        idempotency_key=recon_key("refunddue", channel, settle_date, reference)[:120],
        created_by_id=getattr(user, "pk", None),
    )


def internal_only_reverse(*, payment: Payment, reason: str, user: Any, now: datetime) -> Any:
    """Give back in full a payment the channel never had; return the payments ``Refund``.

    The honest posting the payments API offers: ``refund_create`` with an out-of-band
    PROCESSED answer (the channel is not asked: it has nothing to refund), so the allocations
    are undone, the bills reopen, the payment shows as refunded, Dr RECEIVABLE (or PREPAID) /
    Cr CLEARING. ``user`` must be finance (AccessDenied). Raise RefundError when refused.
    """
    left = payment.amount_fen - payment.refunded_fen
    if left <= 0:
        raise ResolutionError(_("收款 #%(id)s 已全部退回") % {"id": payment.pk})
    response = RefundResponse(
        ChannelResult.PROCESSED, left, f"{RECON_VOID_PREFIX}{payment.channel}:{payment.reference}"
    )
    return refund_create(
        payment=payment,
        amount_fen=left,
        reason=reason,
        requested_by=user,
        approved_by=user,
        now=now,
        channel_response=response,
    )


def fee_difference_post(
    *,
    company_id: int,
    channel: str,
    settle_date: date,
    difference_fen: int,
    reference: str,
    on_date: date,
    user: Any = None,
) -> JournalEntry:
    """Book what the channel charged beyond the contracted fee: Dr FEE_EXPENSE / Cr CLEARING
    (a negative difference, a fee below contract, swaps the sides). Raise ResolutionError
    for a zero or non-integer difference."""
    if not _is_fen(difference_fen) or difference_fen == 0:
        raise ResolutionError(_("手续费差额须为非零整数(分)"))
    lines = [
        debit(AccountKind.FEE_EXPENSE, difference_fen, channel=channel),
        credit(AccountKind.CLEARING, difference_fen, channel=channel),
    ]
    return entry_post(
        company_id=company_id,
        kind=JournalEntry.Kind.SETTLEMENT,
        memo=f"对账 手续费差额 {channel} {settle_date:%Y%m%d} {reference}",
        effective_date=on_date,
        lines=lines,
        idempotency_key=recon_key("fee", channel, settle_date, reference)[:120],
        created_by_id=getattr(user, "pk", None),
    )


def arrival_post(
    *,
    company_id: int,
    channel: str,
    settle_date: date,
    bank_fen: int,
    fee_fen: int,
    value_date: date,
    bank_reference: str,
    user: Any = None,
) -> JournalEntry:
    """Book a settlement's arrival at the bank: Dr BANK ``bank_fen`` + Dr FEE_EXPENSE
    ``fee_fen`` / Cr CLEARING (channel) for both, dated the bank's value date and counted
    towards ``settle_date``. Idempotent on the bank serial number. Raise ResolutionError on
    bad amounts."""
    if not _is_fen(bank_fen) or not _is_fen(fee_fen):
        raise ResolutionError(_("金额须为整数(分)"))
    if bank_fen <= 0:
        raise ResolutionError(_("到账金额须为正数"))
    lines: list[Line] = [
        debit(AccountKind.BANK, bank_fen, channel=channel),
        debit(AccountKind.FEE_EXPENSE, fee_fen, channel=channel),
        credit(AccountKind.CLEARING, bank_fen + fee_fen, channel=channel),
    ]
    return entry_post(
        company_id=company_id,
        kind=JournalEntry.Kind.ARRIVAL,
        memo=(
            f"到账 {channel} {settle_date:%Y%m%d} {format_yuan(bank_fen)}"
            f" 手续费 {format_yuan(fee_fen)} {bank_reference}"
        ),
        effective_date=value_date,
        lines=lines,
        idempotency_key=recon_key("arrival", channel, settle_date, bank_reference)[:120],
        created_by_id=getattr(user, "pk", None),
    )


def posting_undo(*, entry: JournalEntry, user: Any, now: datetime, reason: str) -> JournalEntry:
    """Reverse one reconciliation posting (arrival, fee difference, refund due); return the
    reversing entry. Raise ResolutionError for an entry that is not ours or already reversed."""
    if not (entry.idempotency_key or "").startswith("recon:"):
        raise ResolutionError(_("凭证 #%(id)s 不是对账凭证") % {"id": entry.pk})
    if JournalEntry.objects.filter(reverses_id=entry.pk).exists():
        raise ResolutionError(_("凭证 #%(id)s 已冲正") % {"id": entry.pk})
    return entry_reverse(
        entry=entry,
        memo=f"撤销对账处理 {reason}"[:200],
        effective_date=_local_date(now),
        created_by_id=getattr(user, "pk", None),
    )


def resolver_check(user: Any, *, company_id: int) -> None:
    """Raise AccessDenied unless ``user`` may resolve exceptions in the company."""
    require_role(user, RESOLVE_ROLES, company_id=company_id)
