"""URL conf for bench/http_api.py: all of Wuye, plus ``POST /bench/bare/``.

The bare view is the yardstick: a Django JSON view behind the same middleware (sessions,
CSRF check, locale…) on the same server that parses the body and answers, touching no
database. ``POST /bench/bare-user/`` is the same plus the login check (session and user
read), to show what authentication alone costs.
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


@require_POST
def bare_user(request: HttpRequest) -> JsonResponse:
    """The bare view plus the login check: Django reads the session and the user (2
    statements), as any view that needs a logged-in user does."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login"}, status=401)
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "keys": sorted(body)}, status=201)


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/bare-user/", bare_user),
    *wuye_urlpatterns,
]
