"""Alipay's notification endpoint: hand the body to the shared QR notification handling."""

from __future__ import annotations

import importlib

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from wuye.channels.alipay.constants import CODE


@csrf_exempt
@require_POST
def notify(request: HttpRequest) -> HttpResponse:
    """Answer Alipay's notification POST with what ``qrpay.services.notification_handle`` says.

    Alipay retries until it reads ``success``; anything else (a bad signature, an amount that
    does not match the order) is answered with an error status so it is never taken as done.
    """
    services = importlib.import_module("wuye.channels.qrpay.services")
    headers = {k.lower(): v for k, v in request.headers.items()}
    status, body, content_type = services.notification_handle(
        CODE, headers, request.body, now=timezone.now()
    )
    return HttpResponse(body, status=status, content_type=content_type)
