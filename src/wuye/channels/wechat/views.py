"""WeChat Pay's notification endpoint (``/pay/wechat/notify/``): hand it to the QR core."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from wuye.channels.qrpay.services import notification_handle
from wuye.channels.wechat.constants import CODE


@csrf_exempt
@require_POST
def notify(request: HttpRequest) -> HttpResponse:
    headers = {k: v for k, v in request.headers.items()}
    status, body, ctype = notification_handle(CODE, headers, request.body, now=timezone.now())
    return HttpResponse(body, status=status, content_type=ctype)
