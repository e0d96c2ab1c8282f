"""QR payments (WeChat Pay, Alipay): show a code, take a payment code, handle notifications,
recover lost ones by query, close expired orders, refund through the provider.

Money always reaches the ledger through ``wuye.payments.services`` (``payment_capture``,
``refund_create``); this module only decides *when*, from what the provider said, and keeps
the provider-side record (``QrTrade``, ``QrNotification``, ``QrException``, ``QrRefund``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.accounts.models import Membership, Role, User
from wuye.accounts.selectors import require_role
from wuye.channels.base import ChannelResult, PaymentRequest, PaymentResponse, RefundRequest
from wuye.channels.qrpay.base import BadSignature, ChannelUnavailable, QrChannel, QrCode
from wuye.channels.qrpay.conf import setting
from wuye.channels.qrpay.models import QrException, QrNotification, QrRefund, QrTrade
from wuye.channels.registry import UnknownChannel, channel_get
from wuye.core.money import format_yuan
from wuye.estates.models import Community
from wuye.payments.models import Order, Payment
from wuye.payments.services import (
    OrderNotPending,
    PaymentError,
    order_cancel,
    payment_capture,
    refund_create,
)

log = logging.getLogger(__name__)

REQUERY_S = 15
"""Seconds between queries of an order whose notification is overdue."""
SYSTEM_USERNAME = "system-qrpay"
"""The (inactive, password-less) user that requests and approves automatic refunds."""


class QrError(ValueError):
    """A QR payment request was refused; the message says what. Nothing was written."""


class QrDeclined(QrError):
    """The provider refused the payment code (expired, insufficient funds…)."""


class QrNotFinal(QrError):
    """The payment code's result is still unknown; the background job settles it."""


# --- helpers --------------------------------------------------------------------------------


def qr_channel(code: str) -> QrChannel:
    """Return the registered QR channel ``code``; raise QrError if there is none."""
    try:
        chan = channel_get(code)
    except UnknownChannel:
        raise QrError(_("支付方式 %(c)s 未启用") % {"c": code}) from None
    if not isinstance(chan, QrChannel):
        raise QrError(_("支付方式 %(c)s 不是扫码支付") % {"c": code})
    return chan


def _aware(now: datetime) -> datetime:
    if timezone.is_naive(now):
        raise QrError("now: an aware datetime is required")
    return now


def _new_trade(order: Order, kind: str, *, now: datetime, expires_at: datetime) -> QrTrade:
    """Create the trade row with a fresh out_trade_no (``WY`` date order sequence)."""
    day = timezone.localtime(now).strftime("%Y%m%d")
    for _attempt in range(5):
        seq = QrTrade.objects.filter(order_id=order.pk).count() + 1
        number = f"WY{day}{order.pk:010d}{seq:03d}"
        try:
            with transaction.atomic():
                return QrTrade.objects.create(
                    order=order,
                    channel=order.channel,
                    kind=kind,
                    out_trade_no=number,
                    amount_fen=order.amount_fen,
                    created_at=now,
                    expires_at=expires_at,
                    next_query_at=now
                    + timedelta(seconds=qr_channel(order.channel).notify_timeout_s),
                )
        except IntegrityError:
            continue
    raise QrError(_("无法生成商户订单号, 请重试"))  # pragma: no cover - five concurrent starts


def _request(order: Order, trade: QrTrade, **extra: Any) -> PaymentRequest:
    return PaymentRequest(
        order_id=order.pk,
        amount_fen=trade.amount_fen,
        idempotency_key=trade.out_trade_no,
        community_id=order.community_id,
        unit_id=order.unit_id,
        cashier_id=order.cashier_id,
        extra={"description": _description(order), **extra},
    )


def _description(order: Order) -> str:
    label = getattr(order.unit, "label", "") or ""
    return f"物业费 {label} 单#{order.pk}"[:127]


def _pending_order(order: Order) -> Order:
    fresh = Order.objects.select_related("unit", "community").get(pk=order.pk)
    if fresh.state != Order.State.PENDING:
        raise OrderNotPending(_("收款单 #%(id)s 已支付或已取消") % {"id": fresh.pk})
    qr_channel(fresh.channel)
    return fresh


# --- merchant-presented ---------------------------------------------------------------------


def qr_start(order: Order, *, now: datetime) -> QrCode:
    """Return the dynamic QR for a pending ``order``, creating the provider order once.

    An open, unexpired code of the order is returned again (a reloaded page shows the same
    code). Raise OrderNotPending, QrError, or ChannelUnavailable when the provider cannot be
    reached (nothing is left open then).
    """
    now = _aware(now)
    fresh = _pending_order(order)
    current = (
        QrTrade.objects.filter(
            order=fresh, kind=QrTrade.Kind.NATIVE, state=QrTrade.State.OPEN, expires_at__gt=now
        )
        .exclude(code_url="")
        .order_by("-pk")
        .first()
    )
    if current is not None:
        return QrCode(current.code_url, current.out_trade_no, current.expires_at)
    chan = qr_channel(fresh.channel)
    expires = now + timedelta(seconds=int(setting("WUYE_QR_EXPIRY_S")))
    trade = _new_trade(fresh, QrTrade.Kind.NATIVE, now=now, expires_at=expires)
    try:
        code = chan.precreate(_request(fresh, trade), expires_at=expires)
    except ChannelUnavailable as exc:
        QrTrade.objects.filter(pk=trade.pk).update(
            state=QrTrade.State.FAILED, message=str(exc)[:200], closed_at=now
        )
        raise
    QrTrade.objects.filter(pk=trade.pk).update(code_url=code.code_url[:512])
    return code


# --- customer-presented ---------------------------------------------------------------------


def qr_scan(
    order: Order,
    auth_code: str,
    *,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Payment:
    """Take the resident's payment code (被扫) for ``order``; return the Payment.

    USERPAYING (entering a password) and no-answer are polled by query every
    ``WUYE_QR_MICROPAY_POLL_S`` until final; after ``WUYE_QR_MICROPAY_TIMEOUT_S`` the payment
    is reversed. Raise QrDeclined when refused or reversed, QrNotFinal when even the reversal
    went unanswered (``qr_poll_due`` settles it), QrError for a malformed code.
    """
    now = _aware(now)
    code = (auth_code or "").strip()
    if not (code.isdigit() and 16 <= len(code) <= 24):
        raise QrError(_("付款码应为16-24位数字"))
    fresh = _pending_order(order)
    chan = qr_channel(fresh.channel)
    trade = _new_trade(fresh, QrTrade.Kind.MICROPAY, now=now, expires_at=now)
    answer = chan.pay(_request(fresh, trade, auth_code=code))
    deadline = clock() + float(setting("WUYE_QR_MICROPAY_TIMEOUT_S"))
    while answer.result in (ChannelResult.PENDING, ChannelResult.UNDEFINED) and clock() < deadline:
        sleep(float(setting("WUYE_QR_MICROPAY_POLL_S")))
        answer = chan.query(trade.out_trade_no)
    if answer.result == ChannelResult.PROCESSED:
        return _settle(trade, answer, now=now)
    if answer.result in (ChannelResult.DECLINED, ChannelResult.NOT_SENT):
        _trade_end(trade, QrTrade.State.FAILED, answer.message, now=now)
        raise QrDeclined(answer.message or _("付款被拒绝"))
    return _reverse(trade, now=now)


def _reverse(trade: QrTrade, *, now: datetime) -> Payment:
    chan = qr_channel(trade.channel)
    closed = chan.close(trade.out_trade_no)
    if closed == ChannelResult.PROCESSED:
        _trade_end(trade, QrTrade.State.CLOSED, _("超时未付, 已撤销"), now=now)
        raise QrDeclined(_("付款超时, 已撤销交易, 未扣款"))
    if closed == ChannelResult.DECLINED:  # paid in the meantime
        answer = chan.query(trade.out_trade_no)
        if answer.result == ChannelResult.PROCESSED:
            return _settle(trade, answer, now=now)
    QrTrade.objects.filter(pk=trade.pk).update(
        state=QrTrade.State.UNKNOWN, message=_("撤销未确认, 后台继续查询"), next_query_at=now
    )
    raise QrNotFinal(_("付款结果未知, 系统将自动查询或撤销"))


def _trade_end(trade: QrTrade, state: str, message: str, *, now: datetime) -> None:
    QrTrade.objects.filter(pk=trade.pk).update(state=state, message=message[:200], closed_at=now)


# --- settling -------------------------------------------------------------------------------


def _settle(
    trade: QrTrade, answer: PaymentResponse, *, now: datetime, by_query: bool = False
) -> Payment:
    """Post a PROCESSED answer for ``trade`` (idempotent), then refund a double payment."""
    order = Order.objects.get(pk=trade.order_id)
    payment = payment_capture(order=order, response=answer, now=now)
    details = answer.details
    QrTrade.objects.filter(pk=trade.pk).exclude(state=QrTrade.State.PAID).update(
        state=QrTrade.State.PAID,
        payment=payment,
        provider_txn_id=str(details.get("provider_txn_id", answer.reference))[:64],
        funding_source=str(details.get("funding_source", ""))[:32],
        recovered_by_query=by_query,
        closed_at=now,
    )
    if payment.refund_due_fen and setting("WUYE_QR_AUTO_REFUND"):
        _auto_refund(payment, now=now)
    return payment


def system_user(company_id: int) -> User:
    """Return the inactive user that stands for Wuye itself in automatic refunds."""
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_active": False, "first_name": "系统"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(user=user, company_id=company_id, role=Role.FINANCE)
    return user


def _auto_refund(payment: Payment, *, now: datetime) -> None:
    """Refund a double payment's refund due through its channel (community policy REFUND)."""
    community = Community.objects.get(pk=payment.community_id)
    if community.surplus_policy != Community.SurplusPolicy.REFUND:
        return
    if QrRefund.objects.filter(payment=payment, automatic=True).exists():
        return
    bot = system_user(payment.company_id)
    try:
        qr_refund(
            payment=payment,
            amount_fen=payment.refund_due_fen,
            reason=_("重复支付自动原路退款"),
            requested_by=bot,
            approved_by=bot,
            now=now,
            automatic=True,
        )
    except QrError as exc:
        if QrRefund.objects.filter(payment=payment, automatic=True).exists():
            return  # a concurrent copy of the notification started it first
        log.warning("qrpay: automatic refund of payment %s failed: %s", payment.pk, exc)
        QrException.objects.get_or_create(
            channel=payment.channel,
            kind=QrException.Kind.REFUND_FAILED,
            out_trade_no="",
            reference=payment.reference,
            defaults={
                "reported_fen": payment.refund_due_fen,
                "message": str(exc)[:200],
                "created_at": now,
            },
        )


# --- notifications --------------------------------------------------------------------------


def _json(code: str, message: str) -> bytes:
    import json

    return json.dumps({"code": code, "message": message}, ensure_ascii=False).encode()


def notification_handle(
    channel_code: str, headers: dict[str, str], body: bytes, *, now: datetime
) -> tuple[int, bytes, str]:
    """Handle a provider's notification; return (HTTP status, body, content type).

    Verified by the channel (a bad signature answers 401 and changes nothing but the log),
    recorded once per notification id (the same one again answers the ack and posts nothing),
    checked against our order (an unknown order or a different amount is a ``QrException``
    and posts nothing), then posted through ``payment_capture``; a refund notification
    completes its ``QrRefund``. A failure to post answers 500 so the provider retries.
    """
    now = _aware(now)
    try:
        chan = qr_channel(channel_code)
    except QrError as exc:
        return 404, _json("FAIL", str(exc)), "application/json"
    try:
        note = chan.parse_notification(headers, body)
    except BadSignature as exc:
        digest = hashlib.sha256(body).hexdigest()[:40]
        row, created = QrNotification.objects.get_or_create(
            channel=chan.code,
            notify_id=f"bad:{digest}",
            defaults={
                "outcome": QrNotification.Outcome.REJECTED,
                "message": str(exc)[:200],
                "received_at": now,
                "last_at": now,
            },
        )
        if not created:
            QrNotification.objects.filter(pk=row.pk).update(times=F("times") + 1, last_at=now)
        log.warning("qrpay: rejected %s notification: %s", chan.code, exc)
        return 401, _json("FAIL", "签名验证失败"), "application/json"
    ack = (200, note.ack_body, note.ack_content_type)
    notify_id = str(note.raw.get("id") or note.raw.get("notify_id") or "")[:80]
    if not notify_id:
        notify_id = "sha:" + hashlib.sha256(body).hexdigest()[:40]
    seen = QrNotification.objects.filter(channel=chan.code, notify_id=notify_id).first()
    if seen is not None and seen.outcome != QrNotification.Outcome.ERROR:
        QrNotification.objects.filter(pk=seen.pk).update(times=F("times") + 1, last_at=now)
        return ack
    resp = note.response
    row = seen or QrNotification(channel=chan.code, notify_id=notify_id, received_at=now)
    row.kind = note.kind
    row.out_trade_no = note.out_trade_no[:64]
    row.reference = resp.reference[:120]
    row.amount_fen = resp.amount_fen if isinstance(resp.amount_fen, int) else 0
    row.last_at = now
    try:
        if note.kind == "refund":
            row.outcome, row.message = _refund_notified(chan, note.raw, resp, now=now)
        else:
            row.outcome, row.message, row.payment = _payment_notified(
                chan, note.out_trade_no, resp, now=now
            )
    except (PaymentError, QrError) as exc:
        row.outcome, row.message = QrNotification.Outcome.ERROR, str(exc)[:200]
        _save_note(row, seen)
        log.exception("qrpay: %s notification %s not posted", chan.code, notify_id)
        return 500, _json("FAIL", "处理失败, 请重试"), "application/json"
    _save_note(row, seen)
    return ack


def _save_note(row: QrNotification, seen: QrNotification | None) -> None:
    if seen is not None:
        row.times = seen.times + 1
    try:
        row.save()
    except IntegrityError:  # the same notification arrived twice at once: the other one won
        pass


def _payment_notified(
    chan: QrChannel, out_trade_no: str, resp: PaymentResponse, *, now: datetime
) -> tuple[str, str, Payment | None]:
    trade = QrTrade.objects.filter(channel=chan.code, out_trade_no=out_trade_no).first()
    if resp.result != ChannelResult.PROCESSED:
        return QrNotification.Outcome.NOT_FINAL, resp.message[:200], None
    if trade is None:
        QrException.objects.get_or_create(
            channel=chan.code,
            kind=QrException.Kind.UNKNOWN_TRADE,
            out_trade_no=out_trade_no[:64],
            reference=resp.reference[:120],
            defaults={
                "reported_fen": resp.amount_fen,
                "created_at": now,
                "message": _("通知的商户订单号不存在"),
            },
        )
        return QrNotification.Outcome.UNKNOWN, _("未知订单"), None
    if resp.amount_fen != trade.amount_fen:
        QrException.objects.get_or_create(
            channel=chan.code,
            kind=QrException.Kind.AMOUNT_MISMATCH,
            out_trade_no=out_trade_no[:64],
            reference=resp.reference[:120],
            defaults={
                "expected_fen": trade.amount_fen,
                "reported_fen": resp.amount_fen,
                "created_at": now,
                "message": _("通知金额 %(got)s 元, 订单金额 %(want)s 元")
                % {"got": format_yuan(resp.amount_fen), "want": format_yuan(trade.amount_fen)},
            },
        )
        return QrNotification.Outcome.MISMATCH, _("金额不符, 未入账"), None
    payment = _settle(trade, resp, now=now)
    return QrNotification.Outcome.POSTED, "", payment


def _refund_notified(
    chan: QrChannel, raw: dict[str, Any], resp: PaymentResponse, *, now: datetime
) -> tuple[str, str]:
    number = str(raw.get("out_refund_no") or resp.details.get("out_refund_no") or "")
    pending = QrRefund.objects.filter(channel=chan.code, out_refund_no=number).first()
    if pending is None:
        if resp.result == ChannelResult.PROCESSED:
            # Money went back that Wuye did not record (a refund the counter's screen gave up
            # on while the provider was still processing it): finance must see it.
            QrException.objects.get_or_create(
                channel=chan.code,
                kind=QrException.Kind.UNRECORDED_REFUND,
                out_trade_no=str(raw.get("out_trade_no", ""))[:64],
                reference=resp.reference[:120],
                defaults={
                    "reported_fen": resp.amount_fen,
                    "created_at": now,
                    "message": _("渠道已退款 (退款单 %(no)s), Wuye 未记录") % {"no": number},
                },
            )
        return QrNotification.Outcome.UNKNOWN, _("未知退款单")
    _refund_finish(pending, resp.result, resp.reference, resp.message, now=now)
    return QrNotification.Outcome.REFUND, str(resp.result)


# --- refunds --------------------------------------------------------------------------------


def qr_refund(
    *,
    payment: Payment,
    amount_fen: int,
    reason: str,
    requested_by: Any,
    approved_by: Any,
    now: datetime,
    automatic: bool = False,
) -> QrRefund:
    """Refund ``amount_fen`` of a QR ``payment`` through its provider; return the QrRefund.

    Checked first (finance approval, at most what is refundable and not already being
    refunded). A refund the provider finishes at once is posted at once (``refund_create``
    with its answer); one it accepts as processing stays PENDING until its notification or
    ``qr_poll_due`` finishes it. Raise QrError when refused (nothing written then), or
    AccessDenied.
    """
    now = _aware(now)
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise QrError(_("退款金额须为正整数(分)"))
    if not reason or not reason.strip():
        raise QrError(_("请填写退款原因"))
    require_role(
        approved_by,
        {Role.FINANCE},
        company_id=payment.company_id,
        community_id=payment.community_id,
    )
    chan = qr_channel(payment.channel)
    fresh = Payment.objects.get(pk=payment.pk)
    in_flight = sum(
        QrRefund.objects.filter(payment=fresh, state=QrRefund.State.PENDING).values_list(
            "amount_fen", flat=True
        )
    )
    if amount_fen > fresh.refundable_fen - in_flight:
        raise QrError(_("最多可退 %(n)s 元") % {"n": format_yuan(fresh.refundable_fen - in_flight)})
    n = QrRefund.objects.filter(payment=fresh).count() + 1
    # One automatic refund per payment, whoever gets here first (two copies of the double
    # payment's notification at once); manual ones are numbered per payment.
    key = f"qrrefund:{chan.code}:{fresh.pk}:" + ("auto" if automatic else str(n))
    try:
        with transaction.atomic():
            row = QrRefund.objects.create(
                payment=fresh,
                channel=chan.code,
                idempotency_key=key,
                amount_fen=amount_fen,
                reason=reason.strip()[:200],
                automatic=automatic,
                requested_by=requested_by,
                approved_by=approved_by,
                created_at=now,
            )
    except IntegrityError:
        raise QrError(_("该笔退款已在处理中")) from None
    answer = chan.refund(
        RefundRequest(
            payment_id=fresh.pk,
            payment_reference=fresh.reference,
            amount_fen=amount_fen,
            idempotency_key=row.idempotency_key,
            community_id=fresh.community_id,
            unit_id=fresh.unit_id,
            cashier_id=getattr(requested_by, "pk", None),
            extra={"reason": row.reason},
        )
    )
    number = str(answer.details.get("out_refund_no", ""))[:64]
    QrRefund.objects.filter(pk=row.pk).update(out_refund_no=number, message=answer.message[:200])
    row.out_refund_no = number
    if answer.result == ChannelResult.DECLINED and not number:
        raise QrError(answer.message or _("渠道拒绝退款"))
    _refund_finish(row, answer.result, answer.reference, answer.message, now=now)
    row.refresh_from_db()
    return row


def _refund_finish(
    row: QrRefund, result: ChannelResult, reference: str, message: str, *, now: datetime
) -> None:
    """Post a refund the provider finished (once), or mark one it refused."""
    from wuye.channels.base import RefundResponse

    if result == ChannelResult.DECLINED:
        QrRefund.objects.filter(pk=row.pk, state=QrRefund.State.PENDING).update(
            state=QrRefund.State.FAILED, message=message[:200], completed_at=now
        )
        return
    if result != ChannelResult.PROCESSED:
        return
    with transaction.atomic():
        locked = QrRefund.objects.select_for_update().get(pk=row.pk)
        if locked.state != QrRefund.State.PENDING:
            return
        try:
            refund = refund_create(
                payment=locked.payment,
                amount_fen=locked.amount_fen,
                reason=locked.reason,
                requested_by=locked.requested_by,
                approved_by=locked.approved_by,
                now=now,
                channel_response=RefundResponse(
                    ChannelResult.PROCESSED,
                    locked.amount_fen,
                    reference or locked.out_refund_no,
                    message,
                ),
            )
        except PaymentError as exc:
            # The money went back, but Wuye cannot post it (say the surplus it undoes was
            # spent meanwhile): stop retrying and put it in front of finance.
            QrRefund.objects.filter(pk=locked.pk).update(
                state=QrRefund.State.FAILED, message=str(exc)[:200], completed_at=now
            )
            QrException.objects.get_or_create(
                channel=locked.channel,
                kind=QrException.Kind.UNRECORDED_REFUND,
                out_trade_no="",
                reference=(reference or locked.out_refund_no)[:120],
                defaults={
                    "reported_fen": locked.amount_fen,
                    "created_at": now,
                    "message": str(exc)[:200],
                },
            )
            return
        QrRefund.objects.filter(pk=locked.pk).update(
            state=QrRefund.State.SUCCEEDED,
            refund=refund,
            provider_ref=(reference or "")[:120],
            completed_at=now,
        )


# --- cancel and the background job ----------------------------------------------------------


def qr_cancel(order: Order, *, now: datetime) -> Order:
    """Close the order's open provider orders and cancel it; return the order.

    A code paid meanwhile is posted instead (the order comes back paid). Raise QrNotFinal
    when the provider did not answer the close (try again).
    """
    now = _aware(now)
    chan = qr_channel(order.channel)
    for trade in QrTrade.objects.filter(
        order_id=order.pk, state__in=[QrTrade.State.OPEN, QrTrade.State.UNKNOWN]
    ):
        closed = chan.close(trade.out_trade_no)
        if closed == ChannelResult.PROCESSED:
            _trade_end(trade, QrTrade.State.CLOSED, _("收银员取消"), now=now)
        elif closed == ChannelResult.DECLINED:
            answer = chan.query(trade.out_trade_no)
            if answer.result == ChannelResult.PROCESSED:
                _settle(trade, answer, now=now, by_query=True)
                return Order.objects.get(pk=order.pk)
            raise QrNotFinal(_("渠道未确认关闭, 请稍后再试"))
        else:
            raise QrNotFinal(_("渠道未确认关闭, 请稍后再试"))
    try:
        return order_cancel(order=order, now=now)
    except OrderNotPending:
        return Order.objects.get(pk=order.pk)


def qr_poll_due(*, now: datetime) -> dict[str, int]:
    """Query orders whose notification is overdue, close expired ones, finish refunds.

    The recovery of a lost notification: an open trade past its ``next_query_at`` is asked;
    paid is posted (``recovered_by_query``), an expired unpaid one is closed and its order
    cancelled, an unknown payment code is reversed. Refunds left processing are asked too.
    Return counts by what happened.
    """
    now = _aware(now)
    counts = {"queried": 0, "recovered": 0, "closed": 0, "refunds": 0}
    due = QrTrade.objects.filter(
        state__in=[QrTrade.State.OPEN, QrTrade.State.UNKNOWN], next_query_at__lte=now
    ).order_by("next_query_at", "pk")[:500]
    for trade in due:
        counts["queried"] += 1
        try:
            outcome = _poll_trade(trade, now=now)
        except (PaymentError, QrError) as exc:
            log.warning("qrpay: poll of %s failed: %s", trade.out_trade_no, exc)
            continue
        if outcome:
            counts[outcome] += 1
    for row in QrRefund.objects.filter(state=QrRefund.State.PENDING).exclude(out_refund_no=""):
        answer = qr_channel(row.channel).refund_query(row.out_refund_no)
        if answer.result in (ChannelResult.PROCESSED, ChannelResult.DECLINED):
            _refund_finish(row, answer.result, answer.reference, answer.message, now=now)
            counts["refunds"] += 1
    return counts


def _poll_trade(trade: QrTrade, *, now: datetime) -> str:
    chan = qr_channel(trade.channel)
    answer = chan.query(trade.out_trade_no)
    if answer.result == ChannelResult.PROCESSED:
        _settle(trade, answer, now=now, by_query=True)
        return "recovered"
    if answer.result == ChannelResult.DECLINED:
        _trade_end(trade, QrTrade.State.CLOSED, answer.message, now=now)
        _cancel_if_idle(trade.order_id, now=now)
        return "closed"
    expired = trade.expires_at <= now or trade.state == QrTrade.State.UNKNOWN
    if answer.result == ChannelResult.PENDING and expired:
        closed = chan.close(trade.out_trade_no)
        if closed == ChannelResult.PROCESSED:
            _trade_end(trade, QrTrade.State.CLOSED, _("超时未付, 已关闭"), now=now)
            _cancel_if_idle(trade.order_id, now=now)
            return "closed"
    QrTrade.objects.filter(pk=trade.pk).update(next_query_at=now + timedelta(seconds=REQUERY_S))
    return ""


def _cancel_if_idle(order_id: int, *, now: datetime) -> None:
    """Cancel a pending order that has no open provider order left (its bills are freed)."""
    if QrTrade.objects.filter(
        order_id=order_id, state__in=[QrTrade.State.OPEN, QrTrade.State.UNKNOWN]
    ).exists():
        return
    order = Order.objects.get(pk=order_id)
    if order.state == Order.State.PENDING:
        order_cancel(order=order, now=now)


def qr_status(order: Order, *, now: datetime) -> dict[str, Any]:
    """Return what the counter page shows: state, amount, funding source, expiry."""
    fresh = Order.objects.get(pk=order.pk)
    trade = QrTrade.objects.filter(order_id=fresh.pk).order_by("-pk").first()
    payment = Payment.objects.filter(order_id=fresh.pk).order_by("pk").first()
    funding = (payment.funding_source if payment else "") or (trade.funding_source if trade else "")
    left = int((trade.expires_at - now).total_seconds()) if trade else 0
    return {
        "state": fresh.state,
        "amount_fen": fresh.amount_fen,
        "amount": format_yuan(fresh.amount_fen),
        "funding_source": funding,
        "trade_state": trade.state if trade else "",
        "trade_kind": trade.kind if trade else "",
        "message": trade.message if trade else "",
        "expires_in_s": max(0, left) if trade and trade.kind == QrTrade.Kind.NATIVE else 0,
    }
