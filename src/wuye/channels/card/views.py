"""The counter's bank-card page (push to the terminal, wait, cancel) and finance's void/refund
page. Each view makes one service call and shows its answer."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.channels.card import services
from wuye.channels.card.constants import CODE
from wuye.payments.models import Order, Payment
from wuye.terminals.models import TerminalRequest
from wuye.terminals.services import RequestClosed
from wuye.web import access

COUNTER = frozenset({Role.CASHIER, Role.FINANCE, Role.ADMIN})
REFUND = frozenset({Role.FINANCE})


def _orders(request: HttpRequest) -> QuerySet[Order]:
    units = access.units_for(request.user, COUNTER).values("pk")
    return Order.objects.filter(channel=CODE, unit__in=units).select_related("unit", "community")


def _state_json(order: Order) -> dict[str, Any]:
    state = services.card_order_state(order=order, now=timezone.now())
    return {
        "state": state.code,
        "label": state.label,
        "tid": state.tid,
        "message": state.message,
        "can_cancel": state.can_cancel,
        "can_retry": state.can_retry,
        "paid_url": reverse("counter:order", args=[order.pk]) if state.code == "paid" else None,
    }


@access.role_required(COUNTER)
def order(request: HttpRequest, pk: int) -> HttpResponse:
    """The card page of an order: push it to the counter's terminal (once) and wait."""
    found = get_object_or_404(_orders(request), pk=pk)
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "cancel":
                services.card_order_cancel(order=found, now=timezone.now())
                messages.info(request, _("已取消银行卡收款"))
                return redirect("counter:household", found.unit_id)
            if action == "push":
                services.card_order_push(order=found, now=timezone.now())
                return redirect("card:order", found.pk)
        except (services.CardError, RequestClosed, ValueError) as exc:
            error = str(exc)
    elif found.state == Order.State.PAID:
        return redirect("counter:order", found.pk)
    elif (
        found.state == Order.State.PENDING
        and not TerminalRequest.objects.filter(order=found).exists()
    ):
        try:
            services.card_order_push(order=found, now=timezone.now())
        except services.CardError as exc:
            error = str(exc)
    found.refresh_from_db()
    ctx = {"order": found, "unit": found.unit, "error": error, "status": _state_json(found)}
    return render(request, "card/order.html", ctx, status=422 if error else 200)


@access.role_required(COUNTER)
def status(request: HttpRequest, pk: int) -> JsonResponse:
    """The order's card state as JSON, for the page's polling."""
    found = get_object_or_404(_orders(request), pk=pk)
    return JsonResponse(_state_json(found), json_dumps_params={"ensure_ascii": False})


class CardRefundForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("退款金额(元)"), max_digits=12, decimal_places=2, min_value=0.01
    )
    reason = forms.CharField(label=gettext_lazy("退款原因"), max_length=200)


def _payments(request: HttpRequest) -> QuerySet[Payment]:
    units = access.units_for(request.user, REFUND).values("pk")
    return Payment.objects.filter(channel=CODE, unit__in=units).select_related("unit", "order")


@access.role_required(REFUND)
def refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Finance asks the terminal for a void (same day, open batch) or a refund of a card
    payment; the page then follows the request until the terminal reports it."""
    payment = _payments(request).filter(pk=pk).first()
    if payment is None:
        raise Http404
    now = timezone.now()
    form = CardRefundForm(
        request.POST or None, initial={"amount": f"{payment.refundable_fen / 100:.2f}"}
    )
    if request.method == "POST" and form.is_valid():
        fen = int(form.cleaned_data["amount"] * 100)
        try:
            services.card_refund_request(
                payment=payment,
                amount_fen=fen,
                reason=form.cleaned_data["reason"],
                by=request.user,
                now=now,
            )
        except (services.CardError, AccessDenied) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("已推送到终端, 请在终端上完成"))
            return redirect("card:refund", payment.pk)
    requests = TerminalRequest.objects.filter(payment=payment).select_related("terminal")
    ctx = {
        "payment": payment,
        "unit": payment.unit,
        "form": form,
        "void_possible": services.card_void_possible(payment=payment, now=now),
        "requests": [(r, r.reports.order_by("-pk").first()) for r in requests],
    }
    return render(request, "card/refund.html", ctx, status=422 if form.errors else 200)


@require_POST
@access.role_required(REFUND)
def refund_cancel(request: HttpRequest, pk: int, request_pk: int) -> HttpResponse:
    """Cancel a void/refund request the terminal has not accepted yet."""
    payment = _payments(request).filter(pk=pk).first()
    if payment is None:
        raise Http404
    req = get_object_or_404(TerminalRequest, pk=request_pk, payment=payment)
    try:
        from wuye.terminals.services import request_cancel

        request_cancel(request=req, now=timezone.now())
    except RequestClosed as exc:
        messages.error(request, str(exc))
    return redirect("card:refund", payment.pk)
