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
- amount mismatch (the channel took another amount than Wuye recorded for a payment) →
  adjust to the channel's amount: took more, Dr CLEARING / Cr PREPAID or REFUND_PAYABLE
  (household, by the community's surplus policy unless finance chooses); took less, either
  the household owes it again (a partial ``recon-void`` refund of our payment: its bills
  reopen by the difference, Dr RECEIVABLE / Cr CLEARING) or it is written off (Dr
  CASH_OVER_SHORT / Cr CLEARING);
- duplicate (the channel charged the payer twice) → record the second charge as money
  received: Dr CLEARING / Cr PREPAID or REFUND_PAYABLE (household, by policy);
- chase (a missing, late or short arrival): no posting; who chases it and when to follow up.
  The exception stays open, so the re-run that finds the money closes it.

Every entry a resolution posts is linked to the exception (``ReconExceptionEntry``, role
``posted``), and so is every reversal an undo posts (role ``reversal``).

Undo (of an automatic or a manual resolution) reverses exactly what was posted: the ledger
entries with ``entry_reverse`` (a prepaid credit only while the household's balance still
holds it); a payment posted from a channel-only record with a full ``recon-void`` refund, so
its bills reopen. A payment given back (reverse, or the household owing a shortfall again) is
final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from wuye.accounts.models import Role
from wuye.accounts.selectors import require_role
from wuye.billing.models import Bill
from wuye.channels.base import ChannelResult, PaymentResponse, RefundResponse
from wuye.core.money import format_yuan
from wuye.core.services import audit_record
from wuye.estates.models import Community, Company, Unit
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.services import Line, credit, debit, entry_post, entry_reverse
from wuye.payments.models import Order, OrderBill, Payment, PaymentAttempt
from wuye.payments.services import order_create, payment_capture, refund_create
from wuye.reconciliation.clearing import RECON_VOID_PREFIX, recon_key
from wuye.reconciliation.models import (
    BankMovement,
    Category,
    ChannelRecord,
    ChannelSettlement,
    ReconException,
    ReconExceptionEntry,
    ReconExceptionEvent,
)

RESOLVE_ROLES: set[str] = {Role.FINANCE, Role.ADMIN}
"""Who may resolve an exception or undo a resolution (admin acts as finance)."""


class ResolutionError(ValueError):
    """An action that cannot be taken: wrong state, bad amount, household not found…"""


class HouseholdNotFound(ResolutionError):
    """A channel-only payment whose household Wuye cannot find: choose it by hand."""


def _fresh_key(key: str) -> str:
    """``key``, or ``key~n`` when earlier postings under it were reversed (undone and done
    again); the same un-reversed posting asked for twice still finds the first."""
    key = key[:110]
    n = 1
    candidate = key
    while True:
        entry = JournalEntry.objects.filter(idempotency_key=candidate).first()
        if entry is None or not JournalEntry.objects.filter(reverses_id=entry.pk).exists():
            return candidate
        n += 1
        candidate = f"{key}~{n}"


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
    channel echoes: ``Order.idempotency_key`` or a ``qrpay`` trade's number); an attempt we
    recorded with the channel's reference (a terminal that timed out after the card was
    charged). Raise HouseholdNotFound
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
        ) or _qr_order(order_no, company_id)
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


def _qr_order(out_trade_no: str, company_id: int) -> Order | None:
    """The order behind a QR channel's ``out_trade_no`` (``qrpay`` numbers each provider
    order itself), or None when the QR part is not installed or knows no such number."""
    try:
        from wuye.channels.qrpay.models import QrTrade
    except ImportError:  # pragma: no cover - qrpay is part of the standard install
        return None
    trade = (
        QrTrade.objects.filter(out_trade_no=out_trade_no, order__company_id=company_id)
        .select_related("order__unit")
        .first()
    )
    return trade.order if trade is not None else None


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
    reference = _fresh_reference(channel, reference)
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
            bill_ids = _bills_within(_open_bills(found.unit.pk, on_date), amount_fen)
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


def _fresh_reference(channel: str, reference: str) -> str:
    """The channel reference, or ``reference~n`` when the payment posted under it earlier was
    given back by an undo (``recon-void``) and it is now posted again (another household)."""
    candidate, n = reference, 1
    while True:
        payment = Payment.objects.filter(channel=channel, reference=candidate).first()
        if (
            payment is None
            or not payment.refunds.filter(reference__startswith=RECON_VOID_PREFIX)
            .exclude(reference__endswith=ADJUST_SUFFIX)
            .exists()
        ):
            return candidate
        n += 1
        candidate = f"{reference}~{n}"


def _open_bills(unit_id: int, on_date: date) -> list[Bill]:
    """The household's bills issued by ``on_date`` with something left to pay now, oldest due
    first, leaving out late-fee bills (they come with their bill) and bills another pending
    order holds."""
    busy = OrderBill.objects.filter(bill__unit_id=unit_id, pending=True).values("bill_id")
    return list(
        Bill.objects.filter(unit_id=unit_id, issued_on__lte=on_date, parent__isnull=True)
        .exclude(pk__in=busy)
        .annotate(left=F("amount_fen") - F("paid_fen") - F("waived_fen"))
        .filter(left__gt=0)
        .order_by("due_date", "id")
    )


def _bills_within(bills: list[Bill], amount_fen: int) -> list[int]:
    """The oldest open bills the amount reaches, so a partial payment does not hold every
    bill of the household in its order."""
    chosen: list[int] = []
    covered = 0
    for bill in bills:
        if covered >= amount_fen:
            break
        chosen.append(bill.pk)
        covered += bill.outstanding_fen
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
        idempotency_key=_fresh_key(
            recon_key("refunddue", channel, settle_date, company_id, reference)
        ),
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
        idempotency_key=_fresh_key(recon_key("fee", channel, settle_date, company_id, reference)),
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
        idempotency_key=_fresh_key(
            recon_key("arrival", channel, settle_date, company_id, bank_reference)
        ),
        created_by_id=getattr(user, "pk", None),
    )


ADJUST_SUFFIX = ":adjust"
"""Ends the reference of the ``recon-void`` refund by which a household owes a shortfall again
(a partial give-back of a payment the channel took less for, not the undo of a posted one)."""


class SurplusTo(models.TextChoices):
    """Where money the channel took beyond what Wuye recorded goes (finance may override the
    community's policy)."""

    POLICY = "", gettext_lazy("按小区政策")
    PREPAID = "prepaid", gettext_lazy("转为住户预存")
    REFUND = "refund", gettext_lazy("记应退款")


def surplus_account(unit: Unit, surplus_to: str = "") -> AccountKind:
    """PREPAID or REFUND_PAYABLE: ``surplus_to`` when given, else ``Community.surplus_policy``
    of the household's community. Raise ResolutionError for an unknown choice."""
    if surplus_to == SurplusTo.PREPAID:
        return AccountKind.PREPAID
    if surplus_to == SurplusTo.REFUND:
        return AccountKind.REFUND_PAYABLE
    if surplus_to:
        raise ResolutionError(_("未知的多收款处理方式: %(s)s") % {"s": surplus_to})
    policy = Community.objects.values_list("surplus_policy", flat=True).get(pk=unit.community_id)
    if policy == Community.SurplusPolicy.REFUND:
        return AccountKind.REFUND_PAYABLE
    return AccountKind.PREPAID


_TO = {AccountKind.PREPAID: "预存", AccountKind.REFUND_PAYABLE: "应退款"}
"""Where a surplus went, as the ledger memo says it (memos are not translated)."""


def channel_surplus_post(
    *,
    company_id: int,
    channel: str,
    settle_date: date,
    reference: str,
    amount_fen: int,
    unit: Unit,
    what: str,
    on_date: date,
    surplus_to: str = "",
    user: Any = None,
) -> JournalEntry:
    """Record money a channel took from a household beyond what Wuye recorded (more than our
    payment, or the same payment charged twice) as received: Dr CLEARING (channel) / Cr
    PREPAID (the household's balance) or REFUND_PAYABLE (household), by ``surplus_to`` or the
    community's policy. ``what`` names the posting in its ledger key (``adjust``,
    ``duplicate``). Idempotent on (what, channel, date, reference). Raise ResolutionError on a
    bad amount."""
    if not _is_fen(amount_fen) or amount_fen <= 0:
        raise ResolutionError(_("amount_fen: 须为正整数(分)"))
    account = surplus_account(unit, surplus_to)
    lines = [
        debit(AccountKind.CLEARING, amount_fen, channel=channel),
        credit(account, amount_fen, community_id=unit.community_id, household_id=unit.pk),
    ]
    label = "重复扣款" if what == "duplicate" else "渠道多收"
    return entry_post(
        company_id=company_id,
        kind=JournalEntry.Kind.ADJUSTMENT,
        memo=f"对账 {label} {channel} {reference} {format_yuan(amount_fen)} → {_TO[account]}",
        effective_date=on_date,
        lines=lines,
        idempotency_key=_fresh_key(recon_key(what, channel, settle_date, company_id, reference)),
        created_by_id=getattr(user, "pk", None),
    )


def shortfall_write_off_post(
    *,
    company_id: int,
    channel: str,
    settle_date: date,
    reference: str,
    amount_fen: int,
    on_date: date,
    user: Any = None,
) -> JournalEntry:
    """Write off what a channel took less than Wuye recorded for a payment: Dr
    CASH_OVER_SHORT (长短款, channel) / Cr CLEARING (channel). The household keeps its bills
    paid. Raise ResolutionError on a bad amount."""
    if not _is_fen(amount_fen) or amount_fen <= 0:
        raise ResolutionError(_("amount_fen: 须为正整数(分)"))
    lines = [
        debit(AccountKind.CASH_OVER_SHORT, amount_fen, channel=channel),
        credit(AccountKind.CLEARING, amount_fen, channel=channel),
    ]
    return entry_post(
        company_id=company_id,
        kind=JournalEntry.Kind.ADJUSTMENT,
        memo=f"对账 渠道少收核销 {channel} {reference} {format_yuan(amount_fen)}",
        effective_date=on_date,
        lines=lines,
        idempotency_key=_fresh_key(
            recon_key("writeoff", channel, settle_date, company_id, reference)
        ),
        created_by_id=getattr(user, "pk", None),
    )


def shortfall_receivable(
    *, payment: Payment, amount_fen: int, reason: str, user: Any, now: datetime
) -> Any:
    """The household owes again what the channel took less than Wuye recorded: give back
    ``amount_fen`` of ``payment`` with an out-of-band ``recon-void`` answer (bills reopen by
    that much, Dr RECEIVABLE / Cr CLEARING; clearing counts it where the payment counted);
    return the ``Refund``. ``user`` must be finance (AccessDenied); RefundError when refused."""
    response = RefundResponse(
        ChannelResult.PROCESSED,
        amount_fen,
        f"{RECON_VOID_PREFIX}{payment.channel}:{payment.reference}{ADJUST_SUFFIX}",
    )
    return refund_create(
        payment=payment,
        amount_fen=amount_fen,
        reason=reason,
        requested_by=user,
        approved_by=user,
        now=now,
        channel_response=response,
    )


def _prepaid_still_held(entry: JournalEntry) -> None:
    """Raise ResolutionError when reversing ``entry`` would take back prepaid balance the
    household has already spent (its balance would go negative). Locks the household."""
    for line in entry.lines.all():
        if line.account != AccountKind.PREPAID or line.amount_fen >= 0 or not line.household_id:
            continue
        Unit.objects.select_for_update().filter(pk=line.household_id).values_list("pk").first()
        held = -int(
            JournalLine.objects.filter(
                account=AccountKind.PREPAID,
                household_id=line.household_id,
                fee_item_id=line.fee_item_id,
            ).aggregate(s=models.Sum("amount_fen"))["s"]
            or 0
        )
        if held < -line.amount_fen:
            raise ResolutionError(
                _("住户预存余额只剩 %(held)s 元, 不足以冲回 %(amount)s 元 (已被使用)")
                % {"held": format_yuan(held), "amount": format_yuan(-line.amount_fen)}
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


# --- exceptions: state, owner, history -------------------------------------------------------


class Action(models.TextChoices):
    """What finance (or a rule) can do to an exception; each is one history event."""

    POST_PAYMENT = "post_payment", gettext_lazy("补记收款(销账)")
    REFUND_DUE = "refund_due", gettext_lazy("记应退款")
    REVERSE_PAYMENT = "reverse_payment", gettext_lazy("冲销我方收款")
    RECORD_REFUND = "record_refund", gettext_lazy("补记渠道退款")
    BOOK_FEE = "book_fee", gettext_lazy("入账手续费差额")
    BOOK_ARRIVAL = "book_arrival", gettext_lazy("确认到账")
    ADJUST_SURPLUS = "adjust_surplus", gettext_lazy("按渠道金额调整: 多收部分转预存/应退")
    ADJUST_RECEIVABLE = "adjust_receivable", gettext_lazy("按渠道金额调整: 少收部分由住户补缴")
    ADJUST_WRITE_OFF = "adjust_write_off", gettext_lazy("按渠道金额调整: 少收部分核销")
    RECORD_DUPLICATE = "record_duplicate", gettext_lazy("重复扣款记为收款(转预存/应退)")
    CHASE = "chase", gettext_lazy("催查到账")
    DISMISS = "dismiss", gettext_lazy("忽略")
    ASSIGN = "assign", gettext_lazy("指派")
    NOTE = "note", gettext_lazy("备注")
    UNDO = "undo", gettext_lazy("撤销处理")


ACTIONS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    Category.CHANNEL_ONLY: (Action.POST_PAYMENT, Action.REFUND_DUE, Action.RECORD_REFUND),
    Category.INTERNAL_ONLY: (Action.REVERSE_PAYMENT,),
    Category.FEE_MISMATCH: (Action.BOOK_FEE,),
    Category.ARRIVAL_MISSING: (Action.CHASE,),
    Category.ARRIVAL_LATE: (Action.BOOK_ARRIVAL, Action.CHASE),
    Category.ARRIVAL_SHORT: (Action.BOOK_ARRIVAL, Action.CHASE),
    Category.AMOUNT_MISMATCH: (
        Action.ADJUST_SURPLUS,
        Action.ADJUST_RECEIVABLE,
        Action.ADJUST_WRITE_OFF,
    ),
    Category.DUPLICATE: (Action.RECORD_DUPLICATE, Action.REVERSE_PAYMENT),
}
"""Resolving actions offered per category (dismiss with a note, assign and note: always).
For an amount mismatch and a duplicate, ``actions_for`` keeps those that fit the exception."""


def _fits(exc: ReconException, action: str) -> bool:
    """Whether ``action`` fits this amount mismatch or duplicate (its side and sign)."""
    if exc.category == Category.AMOUNT_MISMATCH:
        if exc.payment_id is None or exc.refund_id is not None:
            return False  # a refund's amount differs: resolve it by hand
        if action == Action.ADJUST_SURPLUS:
            return exc.amount_fen > 0
        return exc.amount_fen < 0
    if exc.category == Category.DUPLICATE:
        if action == Action.RECORD_DUPLICATE:
            return exc.channel_record_id is not None and exc.amount_fen > 0
        return exc.payment_id is not None  # we recorded one payment twice: reverse one
    return True


OPEN_STATES = {ReconException.State.OPEN}
DONE_STATES = {ReconException.State.RESOLVED, ReconException.State.AUTO_RESOLVED}


def actions_for(exc: ReconException) -> list[str]:
    """Return the resolving actions open to ``exc`` in its state (undo when resolved)."""
    if exc.state == ReconException.State.OPEN:
        offered = [a for a in ACTIONS_BY_CATEGORY.get(exc.category, ()) if _fits(exc, a)]
        return [*offered, Action.DISMISS]
    if exc.state in DONE_STATES and exc.resolution in UNDOABLE:
        return [Action.UNDO]
    if exc.state == ReconException.State.DISMISSED:
        return [Action.UNDO]
    return []


UNDOABLE = {
    Action.POST_PAYMENT,
    Action.REFUND_DUE,
    Action.BOOK_FEE,
    Action.BOOK_ARRIVAL,
    Action.ADJUST_SURPLUS,
    Action.ADJUST_WRITE_OFF,
    Action.RECORD_DUPLICATE,
}
"""Resolutions undone by reversing what they posted. A payment given back (reversed, or a
shortfall the household owes again: a refund) is final: take the money again through the
counter if it was a mistake."""


def _event(
    exc: ReconException, *, action: str, user: Any, now: datetime, note: str = "", **data: Any
) -> ReconExceptionEvent:
    return ReconExceptionEvent.objects.create(
        exception=exc,
        at=now,
        by=user if getattr(user, "pk", None) else None,
        action=action,
        note=note,
        data=data,
    )


def _link(
    exc: ReconException, entry_ids: list[int], *, role: str, action: str, now: datetime
) -> None:
    """Link the journal entries ``action`` posted (or reversed) to the exception."""
    known = set(exc.entry_links.filter(entry_id__in=entry_ids).values_list("entry_id", flat=True))
    ReconExceptionEntry.objects.bulk_create(
        [
            ReconExceptionEntry(exception=exc, entry_id=i, role=role, action=action, at=now)
            for i in dict.fromkeys(entry_ids)
            if i not in known
        ]
    )


def posted_entries(exc: ReconException) -> list[JournalEntry]:
    """The entries the exception's current resolution posted and nobody reversed yet: the
    linked ones, or for rows resolved before links existed the entry ids in the resolving
    event's data, else ``exc.entry``."""
    ids = list(
        exc.entry_links.filter(role=ReconExceptionEntry.Role.POSTED).values_list(
            "entry_id", flat=True
        )
    )
    if not ids:
        event = exc.events.filter(action=exc.resolution).order_by("-at", "-id").first()
        data = (event.data or {}) if event is not None else {}
        ids = [int(i) for i in data.get("entry_ids", []) if str(i).isdigit()]
    if not ids and exc.entry_id is not None:
        ids = [exc.entry_id]
    reversed_ids = set(
        JournalEntry.objects.filter(reverses_id__in=ids).values_list("reverses_id", flat=True)
    )
    return list(
        JournalEntry.objects.filter(pk__in=[i for i in ids if i not in reversed_ids])
        .prefetch_related("lines")
        .order_by("pk")
    )


def _lock(exc: ReconException) -> ReconException:
    return ReconException.objects.select_for_update().get(pk=exc.pk)


def _done(
    exc: ReconException,
    *,
    action: str,
    user: Any,
    now: datetime,
    note: str,
    auto: bool,
    entry_ids: list[int],
    **fields: Any,
) -> None:
    exc.state = ReconException.State.AUTO_RESOLVED if auto else ReconException.State.RESOLVED
    exc.resolution = action
    exc.resolution_note = note
    exc.resolved_at = now
    exc.resolved_by = user if getattr(user, "pk", None) else None
    exc.entry_id = entry_ids[-1] if entry_ids else None
    _link(exc, entry_ids, role=ReconExceptionEntry.Role.POSTED, action=action, now=now)
    for k, v in fields.items():
        setattr(exc, k, v)
    exc.save(
        update_fields=[
            "state",
            "resolution",
            "resolution_note",
            "resolved_at",
            "resolved_by",
            "entry",
            *fields,
        ]
    )


def _company(exc: ReconException) -> Company:
    return Company.objects.get(pk=exc.company_id)


def _audit(exc: ReconException, *, user: Any, action: str, detail: dict[str, Any]) -> None:
    audit_record(
        actor=user,
        action=f"reconciliation.{action}",
        obj=exc,
        company=_company(exc),
        detail={"category": exc.category, "channel": exc.channel, **detail},
    )


def contracted_fee(settlement: ChannelSettlement) -> int:
    """The day's fee as the contract has it: the file's fee less the fee differences found."""
    diffs = ReconException.objects.filter(
        company_id=settlement.company_id,
        channel=settlement.channel,
        settle_date=settlement.settle_date,
        category=Category.FEE_MISMATCH,
    ).filter(Q(merchant_no=settlement.merchant_no) | Q(merchant_no=""))
    total = 0
    for expected, actual in diffs.values_list("expected_fen", "actual_fen"):
        if expected is not None and actual is not None:
            total += actual - expected
    return settlement.fee_fen - total


CHASE_DAYS = 3
"""Days to the next follow-up of a chase when none is given."""


def exception_resolve(
    *,
    exception: ReconException,
    action: str,
    user: Any,
    now: datetime,
    note: str = "",
    unit_id: int | None = None,
    auto: bool = False,
    surplus_to: str = "",
    follow_up_on: date | None = None,
) -> ReconException:
    """Take ``action`` on an open exception and post what it means, in one transaction.

    ``unit_id``: the household finance chose for a channel-only payment or a duplicate.
    ``surplus_to``: where money the channel took beyond our record goes (``SurplusTo``; the
    community's policy when empty). ``follow_up_on``: when to follow up a chase (default in
    ``CHASE_DAYS`` days). ``auto``: a rule acts (state ``auto_resolved``; ``user`` may be
    None). A person must hold the finance or admin role in the company (AccessDenied);
    reversing a payment or making a household owe a shortfall needs finance. Raise
    ResolutionError when the action does not fit the exception's category or state, or a
    note is missing where one is required; nothing is then written.
    """
    if not auto:
        resolver_check(user, company_id=exception.company_id)
    if (
        action not in ACTIONS_BY_CATEGORY.get(exception.category, ())
        or not _fits(exception, action)
    ) and action not in (Action.DISMISS,):
        raise ResolutionError(
            _("差异类型 %(cat)s 不能执行 %(action)s")
            % {"cat": exception.category, "action": action}
        )
    if action in (Action.DISMISS, Action.CHASE) and not note.strip():
        raise ResolutionError(_("请填写说明"))
    if action == Action.ADJUST_WRITE_OFF and not note.strip():
        raise ResolutionError(_("核销请填写说明"))
    on_date = _local_date(now)
    with transaction.atomic():
        exc = _lock(exception)
        if exc.state != ReconException.State.OPEN:
            raise ResolutionError(
                _("差异 #%(id)s 已是 %(state)s 状态")
                % {"id": exc.pk, "state": exc.get_state_display()}
            )
        data: dict[str, Any] = {}
        done: dict[str, Any] | None = None  # what a posting resolution records on the exception
        if action == Action.POST_PAYMENT:
            record = exc.channel_record
            paid_at = record.txn_at if record is not None else now
            payment = channel_payment_post(
                company_id=exc.company_id,
                channel=exc.channel,
                reference=exc.reference,
                amount_fen=exc.amount_fen,
                paid_at=paid_at,
                order_no=exc.order_no or (record.order_no if record else ""),
                unit_id=unit_id,
                details=_record_details(record),
                user=user,
            )
            data = {
                "payment_id": payment.pk,
                "entry_ids": [payment.entry_id],
                "unit_id": payment.unit_id,
            }
            done = {"entry_ids": [payment.entry_id], "payment": payment}
        elif action == Action.REFUND_DUE:
            unit = None
            if unit_id is not None:
                unit = household_find(
                    company_id=exc.company_id,
                    channel=exc.channel,
                    reference=exc.reference,
                    unit_id=unit_id,
                ).unit
            entry = refund_due_post(
                company_id=exc.company_id,
                channel=exc.channel,
                settle_date=exc.settle_date,
                reference=exc.reference or str(exc.pk),
                amount_fen=exc.amount_fen,
                unit=unit,
                on_date=on_date,
                user=user,
            )
            data = {"entry_ids": [entry.pk], "unit_id": unit.pk if unit else None}
            done = {"entry_ids": [entry.pk]}
        elif action == Action.RECORD_REFUND:
            refund = channel_refund_record(exc, user=user, note=note, now=now)
            data = {"refund_id": refund.pk, "entry_ids": [refund.entry_id]}
            done = {"entry_ids": [refund.entry_id], "refund": refund}
        elif action == Action.REVERSE_PAYMENT:
            if exc.payment_id is None:
                raise ResolutionError(_("差异 #%(id)s 没有对应的我方收款") % {"id": exc.pk})
            refund = internal_only_reverse(
                payment=Payment.objects.get(pk=exc.payment_id),
                reason=note.strip() or _("对账: 渠道无此交易"),
                user=user,
                now=now,
            )
            data = {"refund_id": refund.pk, "entry_ids": [refund.entry_id]}
            done = {"entry_ids": [refund.entry_id], "refund": refund}
        elif action == Action.BOOK_FEE:
            if exc.expected_fen is None or exc.actual_fen is None:
                raise ResolutionError(_("差异 #%(id)s 没有应收与实收手续费") % {"id": exc.pk})
            entry = fee_difference_post(
                company_id=exc.company_id,
                channel=exc.channel,
                settle_date=exc.settle_date,
                difference_fen=exc.actual_fen - exc.expected_fen,
                reference=exc.reference or str(exc.pk),
                on_date=on_date,
                user=user,
            )
            data = {"entry_ids": [entry.pk], "difference_fen": exc.actual_fen - exc.expected_fen}
            done = {"entry_ids": [entry.pk]}
        elif action == Action.BOOK_ARRIVAL:
            ids = [e.pk for e in _book_arrival(exc, user=user)]
            data = {"entry_ids": ids}
            done = {"entry_ids": ids}
        elif action in (
            Action.ADJUST_SURPLUS,
            Action.ADJUST_RECEIVABLE,
            Action.ADJUST_WRITE_OFF,
            Action.RECORD_DUPLICATE,
        ):
            data, done = _adjust(
                exc,
                action=action,
                user=user,
                now=now,
                note=note,
                unit_id=unit_id,
                surplus_to=surplus_to,
            )
        elif action == Action.CHASE:
            # Still open: the money has not come (a re-run that finds it closes it). Who
            # chases it, what they heard, and when to follow up.
            person = user if getattr(user, "pk", None) else None
            follow = follow_up_on or on_date + timedelta(days=CHASE_DAYS)
            if follow < on_date:
                raise ResolutionError(_("跟进日期不能早于今天"))
            exc.owner = exc.owner or person
            exc.chased_by = person or exc.chased_by
            exc.chasing_since = exc.chasing_since or now
            exc.follow_up_on = follow
            exc.resolution_note = note
            exc.save(
                update_fields=[
                    "owner",
                    "chased_by",
                    "chasing_since",
                    "follow_up_on",
                    "resolution_note",
                ]
            )
            data = {"follow_up_on": follow.isoformat(), "chased_by": getattr(person, "pk", None)}
        elif action == Action.DISMISS:
            exc.state = ReconException.State.DISMISSED
            exc.resolution = action
            exc.resolution_note = note
            exc.resolved_at = now
            exc.resolved_by = user if getattr(user, "pk", None) else None
            exc.save(
                update_fields=[
                    "state",
                    "resolution",
                    "resolution_note",
                    "resolved_at",
                    "resolved_by",
                ]
            )
        if done is not None:
            _done(exc, action=action, user=user, now=now, note=note, auto=auto, **done)
        _event(exc, action=action, user=user, now=now, note=note, auto=auto, **data)
        _audit(exc, user=user, action=action, detail={"auto": auto, **data})
    return exc


def _adjust(
    exc: ReconException,
    *,
    action: str,
    user: Any,
    now: datetime,
    note: str,
    unit_id: int | None,
    surplus_to: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Post an amount-mismatch adjustment or a channel duplicate; return (event data, what
    ``_done`` records). Raise ResolutionError when the exception lacks what it needs."""
    on_date = _local_date(now)
    if action == Action.RECORD_DUPLICATE:
        record = exc.channel_record
        if record is None or record.kind != ChannelRecord.Kind.PAYMENT or exc.amount_fen <= 0:
            raise ResolutionError(_("差异 #%(id)s 不是渠道重复扣款") % {"id": exc.pk})
        original = Payment.objects.filter(
            Q(reference=exc.reference) | Q(provider_txn_id=exc.reference),
            company_id=exc.company_id,
            channel=exc.channel,
        ).first()
        if unit_id is None and original is not None:
            unit = Unit.objects.get(pk=original.unit_id)
        else:
            unit = household_find(
                company_id=exc.company_id,
                channel=exc.channel,
                reference=exc.reference,
                order_no=exc.order_no or record.order_no,
                unit_id=unit_id,
            ).unit
        entry = channel_surplus_post(
            company_id=exc.company_id,
            channel=exc.channel,
            settle_date=exc.settle_date,
            reference=f"{exc.reference}:{record.pk}",
            amount_fen=exc.amount_fen,
            unit=unit,
            what="duplicate",
            on_date=on_date,
            surplus_to=surplus_to,
            user=user,
        )
        account = surplus_account(unit, surplus_to)
        data = {"entry_ids": [entry.pk], "unit_id": unit.pk, "account": str(account)}
        return data, {"entry_ids": [entry.pk]}
    if exc.payment_id is None or exc.expected_fen is None or exc.actual_fen is None:
        raise ResolutionError(_("差异 #%(id)s 没有对应的我方收款和渠道金额") % {"id": exc.pk})
    payment = Payment.objects.get(pk=exc.payment_id)
    difference = exc.actual_fen - exc.expected_fen
    reference = exc.reference or payment.reference
    if action == Action.ADJUST_SURPLUS:
        if difference <= 0:
            raise ResolutionError(_("渠道实收不多于我方记录, 请选择补缴或核销"))
        unit = Unit.objects.get(pk=payment.unit_id)
        entry = channel_surplus_post(
            company_id=exc.company_id,
            channel=exc.channel,
            settle_date=exc.settle_date,
            reference=reference,
            amount_fen=difference,
            unit=unit,
            what="adjust",
            on_date=on_date,
            surplus_to=surplus_to,
            user=user,
        )
        account = surplus_account(unit, surplus_to)
        data = {
            "entry_ids": [entry.pk],
            "difference_fen": difference,
            "unit_id": unit.pk,
            "account": str(account),
        }
        return data, {"entry_ids": [entry.pk]}
    if difference >= 0:
        raise ResolutionError(_("渠道实收不少于我方记录, 请选择转预存/应退"))
    if action == Action.ADJUST_RECEIVABLE:
        refund = shortfall_receivable(
            payment=payment,
            amount_fen=-difference,
            reason=note.strip() or _("对账: 渠道少收, 由住户补缴"),
            user=user,
            now=now,
        )
        data = {
            "entry_ids": [refund.entry_id],
            "refund_id": refund.pk,
            "difference_fen": difference,
        }
        return data, {"entry_ids": [refund.entry_id], "refund": refund}
    entry = shortfall_write_off_post(
        company_id=exc.company_id,
        channel=exc.channel,
        settle_date=exc.settle_date,
        reference=reference,
        amount_fen=-difference,
        on_date=on_date,
        user=user,
    )
    data = {"entry_ids": [entry.pk], "difference_fen": difference}
    return data, {"entry_ids": [entry.pk]}


def channel_refund_record(exc: ReconException, *, user: Any, note: str, now: datetime) -> Any:
    """Record a refund the channel made that Wuye never recorded; return the ``Refund``.

    The original payment is found by the refund row's original reference; ``refund_create``
    takes the channel's answer as already PROCESSED (bills reopen, Dr RECEIVABLE / Cr
    CLEARING), dated when the channel refunded, so it counts towards that settlement date.
    ``user`` must be finance (AccessDenied). Raise ResolutionError when the exception is not a
    refund or the original payment is unknown; RefundError when payments refuses it.
    """
    record = exc.channel_record
    if record is None or record.kind != ChannelRecord.Kind.REFUND or exc.amount_fen >= 0:
        raise ResolutionError(_("差异 #%(id)s 不是渠道退款") % {"id": exc.pk})
    payment = Payment.objects.filter(
        company_id=exc.company_id, channel=exc.channel, reference=record.orig_reference
    ).first()
    if payment is None and record.orig_reference:
        payment = Payment.objects.filter(
            company_id=exc.company_id,
            channel=exc.channel,
            provider_txn_id=record.orig_reference,
        ).first()
    if payment is None:
        raise ResolutionError(
            _("找不到原交易 %(ref)s, 请先处理原交易") % {"ref": record.orig_reference or "-"}
        )
    amount = -exc.amount_fen
    return refund_create(
        payment=payment,
        amount_fen=amount,
        reason=note.strip() or _("对账: 补记渠道已完成的退款"),
        requested_by=user,
        approved_by=user,
        now=record.txn_at,
        channel_response=RefundResponse(ChannelResult.PROCESSED, amount, record.reference),
    )


def _record_details(record: ChannelRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    details = {
        "rrn": record.reference if record.channel == "card" else "",
        "provider_txn_id": record.reference if record.channel != "card" else "",
        "masked_pan": record.masked_pan,
        "card_type": record.card_type,
        "funding_source": record.funding_source,
        "auth_code": record.auth_code,
        "tid": record.tid,
        "batch": record.batch,
        "stan": record.stan,
    }
    return {k: v for k, v in details.items() if v}


def _book_arrival(exc: ReconException, *, user: Any) -> list[JournalEntry]:
    """Book every bank credit recognised for the exception's settlement (the contracted fee
    goes with the first); return the entries."""
    if exc.settlement_id is None:
        raise ResolutionError(_("差异 #%(id)s 没有结算记录, 无法确认到账") % {"id": exc.pk})
    settlement = ChannelSettlement.objects.get(pk=exc.settlement_id)
    credits = list(
        BankMovement.objects.filter(
            company_id=exc.company_id,
            channel=settlement.channel,
            merchant_no=settlement.merchant_no,
            settle_date=settlement.settle_date,
            direction=BankMovement.Direction.CREDIT,
        ).order_by("txn_date", "id")
    )
    if not credits and exc.bank_movement_id is not None:
        credits = [BankMovement.objects.get(pk=exc.bank_movement_id)]
    if not credits:
        raise ResolutionError(_("差异 #%(id)s 没有银行到账记录, 无法确认到账") % {"id": exc.pk})
    fee = contracted_fee(settlement)
    entries: list[JournalEntry] = []
    for i, movement in enumerate(credits):
        entry = arrival_post(
            company_id=exc.company_id,
            channel=settlement.channel,
            settle_date=settlement.settle_date,
            bank_fen=movement.amount_fen,
            fee_fen=fee if i == 0 else 0,
            value_date=movement.value_date,
            bank_reference=movement.serial_no,
            user=user,
        )
        entries.append(entry)
    return entries


def exception_assign(
    *, exception: ReconException, owner: Any, user: Any, now: datetime, note: str = ""
) -> ReconException:
    """Make ``owner`` (finance or admin of the company, or None) responsible for the exception.

    Raise AccessDenied when ``user`` may not resolve or ``owner`` could not."""
    resolver_check(user, company_id=exception.company_id)
    if owner is not None:
        resolver_check(owner, company_id=exception.company_id)
    with transaction.atomic():
        exc = _lock(exception)
        exc.owner = owner
        exc.save(update_fields=["owner"])
        _event(
            exc,
            action=Action.ASSIGN,
            user=user,
            now=now,
            note=note,
            owner_id=getattr(owner, "pk", None),
        )
        _audit(exc, user=user, action="assign", detail={"owner_id": getattr(owner, "pk", None)})
    return exc


def exception_note(
    *, exception: ReconException, user: Any, now: datetime, note: str
) -> ReconExceptionEvent:
    """Add a note to the exception's history. Raise ResolutionError for an empty note."""
    resolver_check(user, company_id=exception.company_id)
    if not note.strip():
        raise ResolutionError(_("请填写说明"))
    with transaction.atomic():
        event = _event(exception, action=Action.NOTE, user=user, now=now, note=note.strip())
        _audit(exception, user=user, action="note", detail={})
    return event


def exception_undo(
    *, exception: ReconException, user: Any, now: datetime, reason: str
) -> ReconException:
    """Undo a resolution (automatic or manual) and reopen the exception, in one transaction.

    A posted payment is given back with a ``recon-void`` refund (its bills reopen); an arrival,
    fee difference or refund due is reversed with ``entry_reverse``; a dismissal is simply
    reopened. ``user`` must be finance (AccessDenied). Raise ResolutionError when there is
    nothing to undo, the reason is empty, or the resolution is final (a reversed payment).
    """
    resolver_check(user, company_id=exception.company_id)
    if not reason.strip():
        raise ResolutionError(_("请填写撤销原因"))
    with transaction.atomic():
        exc = _lock(exception)
        if exc.state == ReconException.State.OPEN:
            raise ResolutionError(_("差异 #%(id)s 尚未处理") % {"id": exc.pk})
        data: dict[str, Any] = {"undone": exc.resolution, "was": exc.state}
        if exc.state in DONE_STATES:
            if exc.resolution not in UNDOABLE:
                raise ResolutionError(
                    _("处理方式 %(r)s 不能撤销") % {"r": exc.resolution or exc.state}
                )
            if exc.resolution == Action.POST_PAYMENT:
                if exc.payment_id is None:
                    raise ResolutionError(_("差异 #%(id)s 没有记录补记的收款") % {"id": exc.pk})
                refund = internal_only_reverse(
                    payment=Payment.objects.get(pk=exc.payment_id),
                    reason=_("撤销对账补记: %(r)s") % {"r": reason.strip()},
                    user=user,
                    now=now,
                )
                data["refund_id"] = refund.pk
                data["entry_ids"] = [refund.entry_id]
            else:
                reversals = []
                for entry in posted_entries(exc):
                    _prepaid_still_held(entry)
                    reversals.append(
                        posting_undo(entry=entry, user=user, now=now, reason=reason.strip()).pk
                    )
                data["entry_ids"] = reversals
            _link(
                exc,
                data["entry_ids"],
                role=ReconExceptionEntry.Role.REVERSAL,
                action=Action.UNDO,
                now=now,
            )
        exc.state = ReconException.State.OPEN
        exc.resolution = ""
        exc.resolved_at = None
        exc.resolved_by = None
        exc.entry = None
        exc.payment = None if data.get("refund_id") else exc.payment
        exc.save(
            update_fields=["state", "resolution", "resolved_at", "resolved_by", "entry", "payment"]
        )
        _event(exc, action=Action.UNDO, user=user, now=now, note=reason.strip(), **data)
        _audit(exc, user=user, action="undo", detail=data)
    return exc
