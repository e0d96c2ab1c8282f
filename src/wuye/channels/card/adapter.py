"""The bank-card channel: the money is taken on the POS terminal bound to the counter.

``pay`` pushes a ``purchase`` request to that terminal (docs/terminal-api.md) and answers
PENDING; the terminal's result report later goes through ``payments.services`` (see
``wuye.channels.card.services.card_result_apply``). ``query`` answers from the recorded
reports. A refund cannot be done inline: it travels to the terminal as a void or refund
request (``card_refund_request``) and is booked when the terminal reports it.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from wuye.channels.base import (
    Channel,
    ChannelResult,
    PaymentRequest,
    PaymentResponse,
    RefundRequest,
    RefundResponse,
)
from wuye.channels.card.constants import CODE
from wuye.ledger.models import AccountKind


def payment_reference(*, tid: str, txn_date: str, rrn: str) -> str:
    """The Payment reference of an approved card transaction (unique: RRN per host day)."""
    return f"{tid}-{txn_date}-{rrn}"


class CardChannel(Channel):
    """Bank card on the counter's POS terminal; money in transit sits in CLEARING (card)."""

    code = CODE
    name = gettext_noop("银行卡")
    clearing_account = AccountKind.CLEARING
    counter_url = "card:order"

    def pay(self, request: PaymentRequest) -> PaymentResponse:
        """Queue a purchase for the terminal of the order's counter; answer PENDING.

        NOT_SENT when the order has no shift or its counter has no enabled terminal.
        """
        from wuye.payments.models import Order
        from wuye.terminals.selectors import terminal_for_counter
        from wuye.terminals.services import TerminalError, request_push

        order = Order.objects.select_related("shift", "community__company").get(pk=request.order_id)
        counter = order.shift.counter_name if order.shift else ""
        terminal = (
            terminal_for_counter(community_id=order.community_id, counter_name=counter)
            if counter
            else None
        )
        if terminal is None:
            return PaymentResponse(
                ChannelResult.NOT_SENT,
                request.amount_fen,
                "",
                message=_("收费台 %(c)s 没有绑定启用的银行卡终端") % {"c": counter or "-"},
            )
        payee = terminal.merchant.name if terminal.merchant else order.community.company.name
        try:
            pushed = request_push(
                terminal=terminal,
                kind="purchase",
                amount_fen=request.amount_fen,
                order_id=order.pk,
                payee=payee,
                reference=f"WY-{order.pk}",
                ttl_s=int(getattr(settings, "WUYE_CARD_REQUEST_TTL_S", 120)),
                requested_by=order.cashier,
                now=request.extra["now"],
            )
        except TerminalError as exc:
            return PaymentResponse(ChannelResult.NOT_SENT, request.amount_fen, "", message=str(exc))
        return PaymentResponse(
            ChannelResult.PENDING,
            request.amount_fen,
            pushed.public_id,
            message=_("已推送到终端 %(tid)s") % {"tid": terminal.tid},
            details={"tid": terminal.tid},
        )

    def refund(self, request: RefundRequest) -> RefundResponse:
        """Refuse inline refunds: a card refund is done on the terminal (NOT_SENT)."""
        return RefundResponse(
            ChannelResult.NOT_SENT,
            request.amount_fen,
            "",
            message=_("银行卡退款须在终端完成: 请在收款的银行卡撤销/退货页面发起"),
        )

    def query(self, reference: str) -> PaymentResponse:
        """Answer from the reports recorded for request ``reference`` (``R-000123``) or for a
        payment reference; PENDING while the terminal has not reported."""
        from wuye.terminals.models import TerminalReport, TerminalRequest
        from wuye.terminals.services import RequestClosed, request_parse_id

        reports = TerminalReport.objects.filter(kind="purchase", training=False)
        if reference.startswith("R-"):
            try:
                pk = request_parse_id(reference)
            except RequestClosed:
                return PaymentResponse(ChannelResult.DECLINED, 0, reference, message="unknown")
            report = reports.filter(request_id=pk).order_by("-approved", "-pk").first()
            if report is None:
                closed = TerminalRequest.objects.filter(
                    pk=pk,
                    state__in=[TerminalRequest.State.CANCELLED, TerminalRequest.State.EXPIRED],
                ).exists()
                result = ChannelResult.DECLINED if closed else ChannelResult.PENDING
                return PaymentResponse(result, 0, reference)
        else:
            tid, _sep, rest = reference.partition("-")
            txn_date, _sep, rrn = rest.partition("-")
            report = reports.filter(terminal__tid=tid, txn_date=txn_date, rrn=rrn).first()
            if report is None:
                return PaymentResponse(ChannelResult.PENDING, 0, reference)
        if not report.approved or report.reversed:
            return PaymentResponse(
                ChannelResult.DECLINED,
                report.amount_fen,
                reference,
                message=f"{report.response_code} {report.message}".strip(),
            )
        return PaymentResponse(
            ChannelResult.PROCESSED,
            report.amount_fen,
            payment_reference(tid=report.terminal.tid, txn_date=report.txn_date, rrn=report.rrn),
            message=report.message,
            details={
                "rrn": report.rrn,
                "auth_code": report.auth_code,
                "masked_pan": report.masked_pan,
                "card_type": report.card_type,
                "tid": report.terminal.tid,
                "batch": report.batch,
                "stan": report.stan,
            },
        )
