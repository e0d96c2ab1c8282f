"""The bank-card channel's writes: push an order to the counter's terminal, cancel it, ask the
terminal for a void or refund, and turn the terminal's result reports into payments and
refunds (through ``payments.services``, so every fen is a balanced ledger entry posted in the
transaction that records the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied, require_role
from wuye.channels.base import ChannelResult, PaymentRequest, RefundResponse
from wuye.channels.card.adapter import CardChannel, payment_reference
from wuye.channels.card.constants import CODE
from wuye.payments.models import Order, Payment, PaymentAttempt
from wuye.payments.services import (
    PaymentError,
    PaymentNotFinal,
    order_cancel,
    payment_capture,
    payment_inquire,
    refund_create,
)
from wuye.terminals.models import Terminal, TerminalReport, TerminalRequest
from wuye.terminals.selectors import terminal_online
from wuye.terminals.services import (
    RequestClosed,
    ResultReport,
    TerminalError,
    request_cancel,
    request_parse_id,
    request_push,
)

OPEN = (TerminalRequest.State.QUEUED, TerminalRequest.State.ACCEPTED)


class CardError(ValueError):
    """A card-channel request was refused; the message says what and where."""


def _open_request(**filters: Any) -> TerminalRequest | None:
    return (
        TerminalRequest.objects.filter(state__in=OPEN, **filters)
        .select_related("terminal")
        .order_by("-pk")
        .first()
    )


def card_order_push(*, order: Order, now: datetime) -> TerminalRequest:
    """Push ``order`` to the terminal of its counter (a purchase request); return the request.

    An order with an open request gets that request back (a reload pushes nothing new). The
    channel's PENDING answer is recorded as the order's attempt. Raise CardError when the order
    is not a pending card order or its counter has no terminal.
    """
    if order.channel != CODE:
        raise CardError(_("收款单 #%(id)s 不是银行卡支付") % {"id": order.pk})
    if order.state != Order.State.PENDING:
        raise CardError(
            _("收款单 #%(id)s 已%(s)s") % {"id": order.pk, "s": order.get_state_display()}
        )
    existing = _open_request(order=order)
    if existing is not None:
        return existing
    _attempts_settle(order, now)
    response = CardChannel().pay(
        PaymentRequest(
            order_id=order.pk,
            amount_fen=order.amount_fen,
            idempotency_key=order.idempotency_key,
            community_id=order.community_id,
            unit_id=order.unit_id,
            cashier_id=order.cashier_id,
            extra={"now": now},
        )
    )
    if response.result != ChannelResult.PENDING:
        raise CardError(response.message or _("无法推送到终端"))
    try:
        payment_capture(order=order, response=response, now=now)
    except PaymentNotFinal:
        pass  # recorded: an unresolved attempt keeps the order from being cancelled as stale
    return TerminalRequest.objects.select_related("terminal").get(
        pk=request_parse_id(response.reference)
    )


def card_order_cancel(*, order: Order, now: datetime) -> Order:
    """Cancel the order's open request (only before the terminal accepted it) and the order.

    Raise RequestClosed once the terminal accepted the request, PaymentError when the order is
    paid already.
    """
    with transaction.atomic():
        req = _open_request(order=order)
        if req is not None:
            request_cancel(request=req, now=now)
        _attempts_settle(order, now)
        return order_cancel(order=order, now=now)


def _attempts_settle(order: Order, now: datetime) -> None:
    """Ask the channel again about the order's unanswered pushes: a cancelled or expired
    request without a report is DECLINED (no money moved), so nothing stays unresolved."""
    for attempt in PaymentAttempt.objects.filter(
        order=order, channel=CODE, result=str(ChannelResult.PENDING), payment__isnull=True
    ):
        payment_inquire(attempt=attempt, now=now)


@dataclass(frozen=True)
class CardOrderState:
    """What the card page shows about an order."""

    code: str  # none | pushed | waiting_card | paid | declined | expired | cancelled
    label: str
    tid: str
    message: str
    can_cancel: bool
    can_retry: bool


def card_order_state(*, order: Order, now: datetime) -> CardOrderState:
    """The order's card state from its latest request and that request's reports.

    A queued request past its ``expires_at`` shows expired even before the terminal's next
    poll marks it; a terminal that has gone silent is named in ``message``.
    """
    req = (
        TerminalRequest.objects.filter(order=order, kind="purchase")
        .select_related("terminal")
        .order_by("-pk")
        .first()
    )
    tid = req.terminal.tid if req else ""
    if order.state == Order.State.PAID:
        return CardOrderState("paid", _("已承兑, 收款成功"), tid, "", False, False)
    if order.state == Order.State.CANCELLED:
        return CardOrderState("cancelled", _("已取消"), tid, "", False, False)
    if req is None:
        return CardOrderState("none", _("尚未推送到终端"), tid, "", True, True)
    if req.state == TerminalRequest.State.QUEUED and req.expires_at < now:
        return CardOrderState("expired", _("终端未及时受理, 请求已过期"), tid, "", True, True)
    if req.state == TerminalRequest.State.QUEUED:
        label = _("已推送到终端 %(tid)s, 等待终端受理") % {"tid": tid}
        hint = "" if terminal_online(req.terminal, now=now) else _("终端离线, 请检查终端电源和网络")
        return CardOrderState("pushed", label, tid, hint, True, False)
    if req.state == TerminalRequest.State.ACCEPTED:
        label = _("终端 %(tid)s 等待刷卡/插卡/挥卡") % {"tid": tid}
        return CardOrderState("waiting_card", label, tid, "", False, False)
    if req.state == TerminalRequest.State.EXPIRED:
        return CardOrderState("expired", _("终端未及时受理, 请求已过期"), tid, "", True, True)
    if req.state == TerminalRequest.State.CANCELLED:
        return CardOrderState("cancelled", _("推送已取消"), tid, "", True, True)
    report = req.reports.order_by("-pk").first()
    message = f"{report.response_code} {report.message}".strip() if report else ""
    if report is not None and report.training:
        return CardOrderState("declined", _("培训交易, 未入账"), tid, message, True, True)
    return CardOrderState("declined", _("交易未成功"), tid, message, True, True)


# --- void and refund -------------------------------------------------------------------------


def _purchase_report(payment: Payment) -> TerminalReport | None:
    return (
        TerminalReport.objects.filter(payment=payment, kind="purchase")
        .select_related("terminal")
        .first()
    )


def card_void_possible(*, payment: Payment, now: datetime) -> bool:
    """A void (撤销) is possible for the whole amount, the same day, while the batch is open."""
    report = _purchase_report(payment)
    if report is None or payment.refunded_fen:
        return False
    same_day = timezone.localtime(payment.paid_at).date() == timezone.localtime(now).date()
    return same_day and report.terminal.batch_no == report.batch


def card_refund_request(
    *, payment: Payment, amount_fen: int, reason: str, by: Any, now: datetime
) -> TerminalRequest:
    """Ask the payment's terminal to give ``amount_fen`` back: a void when the whole amount
    goes back the same day in the open batch, else a refund. Return the queued request.

    ``by`` must hold the finance role (the approval refunds need; AccessDenied). The refund is
    booked (``refund_create``) when the terminal reports its approval. Raise CardError for a
    payment not taken by card, an amount over what is left, or a refund already under way.
    """
    require_role(
        by, {Role.FINANCE}, company_id=payment.company_id, community_id=payment.community_id
    )
    if payment.channel != CODE:
        raise CardError(_("收款 #%(id)s 不是银行卡收款") % {"id": payment.pk})
    if not (reason or "").strip():
        raise CardError(_("请填写退款原因"))
    if not isinstance(amount_fen, int) or amount_fen <= 0 or amount_fen > payment.refundable_fen:
        raise CardError(
            _("退款金额须在0.01到%(n)s元之间") % {"n": f"{payment.refundable_fen / 100:.2f}"}
        )
    report = _purchase_report(payment)
    if report is None:
        raise CardError(_("收款 #%(id)s 没有终端交易记录") % {"id": payment.pk})
    if _open_request(payment=payment) is not None:
        raise CardError(_("该收款已有进行中的撤销/退货请求"))
    void = amount_fen == payment.amount_fen and card_void_possible(payment=payment, now=now)
    original = {
        "rrn": report.rrn,
        "batch": report.batch,
        "stan": report.stan,
        "date": report.txn_date[-4:],
        "amount_fen": report.amount_fen,
    }
    try:
        return request_push(
            terminal=report.terminal,
            kind="void" if void else "refund",
            amount_fen=amount_fen,
            payment_id=payment.pk,
            order_id=payment.order_id,
            payee=report.terminal.merchant.name if report.terminal.merchant else "",
            reference=f"WY-{payment.order_id}",
            original=original,
            reason=reason.strip(),
            requested_by=by,
            approved_by=by,
            ttl_s=int(getattr(settings, "WUYE_CARD_REFUND_TTL_S", 600)),
            now=now,
        )
    except TerminalError as exc:
        raise CardError(str(exc)) from None


# --- result reports --------------------------------------------------------------------------


def _request_of(terminal: Terminal, report: ResultReport) -> TerminalRequest | None:
    if not report.request_id:
        return None
    try:
        pk = request_parse_id(report.request_id)
    except RequestClosed:
        return None
    return (
        TerminalRequest.objects.select_for_update(of=("self",))
        .filter(pk=pk, terminal=terminal)
        .select_related("order", "payment")
        .first()
    )


def card_result_apply(*, terminal: Terminal, report: ResultReport, now: datetime) -> dict[str, Any]:
    """Record ``report`` (inside the caller's transaction) and book what it means; return the
    answer for the terminal.

    Approved purchase of a pushed order → payment posted (``payment_capture``); approved void
    or refund of a request → refund posted (``refund_create`` with the terminal's answer);
    declines, reversals, balance inquiries and training → recorded only; approved money Wuye
    cannot tie to an order or payment → kept as ``unmatched`` for reconciliation. The
    TerminalReport row is written first, so a concurrent duplicate fails on its unique key.
    """
    req = _request_of(terminal, report)
    row = TerminalReport.objects.create(
        report_id=report.report_id,
        terminal=terminal,
        request=req,
        kind=report.kind,
        approved=report.approved,
        reversed=report.reversed,
        training=report.training,
        response_code=report.response_code,
        message=report.message,
        amount_fen=report.amount_fen,
        rrn=report.rrn,
        auth_code=report.auth_code,
        masked_pan=report.masked_pan,
        card_type=report.card_type,
        entry_mode=report.entry_mode,
        batch=report.batch,
        stan=report.stan,
        txn_date=report.txn_date,
        txn_time=report.txn_time,
        settle_date=report.settle_date,
        original=report.original,
        status=TerminalReport.Status.RECORDED,
        received_at=now,
    )
    if req is not None and req.state != TerminalRequest.State.DONE:
        TerminalRequest.objects.filter(pk=req.pk).update(
            state=TerminalRequest.State.DONE, closed_at=now
        )
    answer: dict[str, Any] = {"status": "recorded"}
    money = report.approved and not report.reversed and not report.training
    if report.kind == "purchase" and req is not None and req.order_id and not report.training:
        answer = _purchase(row, req, now) if money else _purchase_declined(row, req, now)
    elif money and report.kind == "purchase":
        answer = _unmatched(row, _("没有对应的收款单 (终端自行发起或请求未知)"))
    elif money and report.kind in ("void", "refund"):
        answer = _refund(row, req, now)
    row.answer = answer
    row.save(update_fields=["status", "answer", "exception", "payment", "refund"])
    return answer


def _unmatched(row: TerminalReport, why: str) -> dict[str, Any]:
    row.status = TerminalReport.Status.UNMATCHED
    row.exception = why[:200]
    return {"status": "unmatched", "exception": row.exception}


def _attempt(req: TerminalRequest) -> PaymentAttempt | None:
    if req.order_id is None:
        return None
    return PaymentAttempt.objects.filter(
        order_id=req.order_id, channel=CODE, reference=req.public_id
    ).first()


def _purchase(row: TerminalReport, req: TerminalRequest, now: datetime) -> dict[str, Any]:
    assert req.order is not None
    answer = CardChannel().query(req.public_id)
    try:
        attempt = _attempt(req)
        payment = payment_inquire(attempt=attempt, now=now) if attempt else None
        if payment is None:
            payment = payment_capture(order=req.order, response=answer, now=now)
    except PaymentError as exc:
        return _unmatched(row, str(exc))
    row.status = TerminalReport.Status.POSTED
    row.payment = payment
    return {
        "status": "posted",
        "payment_id": payment.pk,
        "receipt_number": payment.receipt_number,
        "reference": payment_reference(tid=row.terminal.tid, txn_date=row.txn_date, rrn=row.rrn),
    }


def _purchase_declined(row: TerminalReport, req: TerminalRequest, now: datetime) -> dict[str, Any]:
    attempt = _attempt(req)
    if attempt is not None:
        payment_inquire(attempt=attempt, now=now)  # marks the attempt declined; posts nothing
    return {"status": "recorded"}


def _refund(row: TerminalReport, req: TerminalRequest | None, now: datetime) -> dict[str, Any]:
    if req is None or req.payment is None or req.kind != row.kind:
        return _unmatched(row, _("没有对应的撤销/退货请求 (终端自行发起): 须财务核对后处理"))
    reference = payment_reference(tid=row.terminal.tid, txn_date=row.txn_date, rrn=row.rrn)
    response = RefundResponse(
        ChannelResult.PROCESSED,
        row.amount_fen,
        reference,
        message=row.message,
        details={
            "rrn": row.rrn,
            "auth_code": row.auth_code,
            "masked_pan": row.masked_pan,
            "card_type": row.card_type,
            "tid": row.terminal.tid,
            "batch": row.batch,
            "stan": row.stan,
        },
    )
    try:
        refund = refund_create(
            payment=req.payment,
            amount_fen=row.amount_fen,
            reason=req.reason or row.get_kind_display(),
            requested_by=req.requested_by,
            approved_by=req.approved_by,
            now=now,
            channel_response=response,
        )
    except (PaymentError, AccessDenied) as exc:
        return _unmatched(row, str(exc))
    row.refund = refund
    if row.kind == "void":
        row.status = TerminalReport.Status.VOIDED
        return {"status": "voided", "refund_id": refund.pk}
    row.status = TerminalReport.Status.REFUNDED
    return {"status": "refunded", "refund_id": refund.pk}
