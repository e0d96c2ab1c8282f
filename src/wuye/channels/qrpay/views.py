"""The counter's QR page: the order's dynamic QR, the payment-code field, live status, cancel.

Each view checks the role and the household scope (an order the user may not see is a 404),
makes one service call and turns its exceptions into a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from wuye.channels.qrpay import services
from wuye.channels.qrpay.base import ChannelUnavailable
from wuye.channels.qrpay.qrimage import qr_svg
from wuye.counter.views import COUNTER, _bar, _units
from wuye.payments.models import Order
from wuye.web import access


def _order(request: HttpRequest, pk: int) -> Order:
    return get_object_or_404(
        Order.objects.select_related("unit", "community"), pk=pk, unit__in=_units(request)
    )


@access.role_required(COUNTER)
def order(request: HttpRequest, pk: int) -> HttpResponse:
    found = _order(request, pk)
    if found.state == Order.State.PAID:
        return redirect("counter:order", found.pk)
    code = None
    svg = ""
    error = ""
    if found.state == Order.State.PENDING:
        try:
            code = services.qr_start(found, now=timezone.now())
            svg = qr_svg(code.code_url)
        except (ChannelUnavailable, ValueError) as exc:
            error = str(exc)
    chan_name = ""
    try:
        chan_name = _(services.qr_channel(found.channel).name)
    except services.QrError:
        pass
    ctx = {
        "order": found,
        "unit": found.unit,
        "code": code,
        "qr_svg": mark_safe(svg) if svg else "",  # noqa: S308 - our own SVG, no input in it
        "error": error,
        "channel_name": chan_name,
        "status_url": reverse("qrpay:status", args=[found.pk]),
        "paid_url": reverse("counter:order", args=[found.pk]),
        **_bar(request),
    }
    return render(request, "qrpay/order.html", ctx)


@access.role_required(COUNTER)
def status(request: HttpRequest, pk: int) -> JsonResponse:
    found = _order(request, pk)
    data = services.qr_status(found, now=timezone.now())
    data["paid_url"] = reverse("counter:order", args=[found.pk])
    return JsonResponse(data)


@require_POST
@access.role_required(COUNTER)
def scan(request: HttpRequest, pk: int) -> HttpResponse:
    found = _order(request, pk)
    try:
        services.qr_scan(found, request.POST.get("auth_code", ""), now=timezone.now())
    except ValueError as exc:  # QrError, payments errors
        messages.error(request, str(exc))
        return redirect("qrpay:order", found.pk)
    return redirect("counter:order", found.pk)


@require_POST
@access.role_required(COUNTER)
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    found = _order(request, pk)
    try:
        after = services.qr_cancel(found, now=timezone.now())
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("qrpay:order", found.pk)
    if after.state == Order.State.PAID:
        messages.info(request, _("顾客已付款, 收款单已入账"))
        return redirect("counter:order", found.pk)
    messages.info(request, _("收款单已取消"))
    return redirect("counter:household", found.unit_id)
