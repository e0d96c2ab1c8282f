"""URL conf for bench/http_api.py: all of Wuye, plus ``POST /bench/bare/``.

The bare view is the yardstick: a Django JSON view behind the same middleware (sessions,
CSRF check, locale…) on the same server that parses the body and answers, touching no
database.
"""

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST

from wuye.urls import urlpatterns as wuye_urlpatterns


@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "keys": sorted(body)}, status=201)


urlpatterns = [path("bench/bare/", bare), *wuye_urlpatterns]
