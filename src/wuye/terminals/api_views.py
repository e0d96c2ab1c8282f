"""The terminal ↔ Wuye API of docs/terminal-api.md (``/api/terminal/v1/``).

Each view authenticates the terminal (``Authorization: Terminal <TID> <token>``), parses JSON,
makes one service call and turns its exceptions into the contract's status codes: 400 bad
input, 401 unknown TID or token, 403 disabled terminal, 409 request no longer open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from wuye.terminals import services
from wuye.terminals.models import Terminal, TerminalRequest

MAX_WAIT_S = 30
View = Callable[..., JsonResponse]


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse(
        {"error": message}, status=status, json_dumps_params={"ensure_ascii": False}
    )


def _ok(data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


def _iso(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def terminal_api(view: Callable[..., JsonResponse]) -> View:
    """Authenticate the terminal and hand it to ``view``; map service errors to statuses."""

    @csrf_exempt
    @transaction.non_atomic_requests
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 3 or parts[0] != "Terminal":
            return _error(401, _("Authorization: 须为 'Terminal <TID> <token>'"))
        try:
            terminal = services.terminal_authenticate(tid=parts[1], token=parts[2])
        except services.TerminalDisabled as exc:
            return _error(403, str(exc))
        except services.TerminalAuthError as exc:
            return _error(401, str(exc))
        try:
            return view(request, terminal, *args, **kwargs)
        except services.RequestClosed as exc:
            return _error(409, str(exc))
        except services.TerminalError as exc:
            return _error(400, str(exc))

    return wrapped


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise services.BadReport(_("请求体: 须为 UTF-8 JSON 对象")) from None
    if not isinstance(data, dict):
        raise services.BadReport(_("请求体: 须为 JSON 对象"))
    return data


@require_POST
@terminal_api
def heartbeat(request: HttpRequest, terminal: Terminal) -> JsonResponse:
    answer = services.heartbeat_record(
        terminal=terminal,
        data=_body(request),
        ip_address=request.META.get("REMOTE_ADDR"),
        now=timezone.now(),
    )
    return _ok(answer)


def request_wire(req: TerminalRequest) -> dict[str, Any]:
    """A request as the terminal receives it (docs/terminal-api.md ``GET requests``)."""
    return {
        "id": req.public_id,
        "kind": req.kind,
        "order_id": req.order_id,
        "amount_fen": req.amount_fen,
        "currency": "156",
        "payee": req.payee,
        "reference": req.reference,
        "original": req.original,
        "expires_at": _iso(req.expires_at),
    }


@require_GET
@terminal_api
def requests_poll(request: HttpRequest, terminal: Terminal) -> JsonResponse:
    """Long poll: answer as soon as a request is queued, else ``{"request": null}`` after
    ``wait`` seconds. Each look is its own autocommit query; no transaction stays open."""
    try:
        wait = float(request.GET.get("wait", "25"))
    except ValueError:
        return _error(400, _("wait: 须为0到30之间的秒数"))
    if not 0 <= wait <= MAX_WAIT_S:
        return _error(400, _("wait: 须为0到30之间的秒数"))
    interval = float(getattr(settings, "WUYE_TERMINAL_POLL_INTERVAL_S", 0.25))
    deadline = time.monotonic() + wait
    while True:
        found = services.request_next(terminal=terminal, now=timezone.now())
        left = deadline - time.monotonic()
        if found is not None or left <= 0:
            break
        time.sleep(min(interval, left))
    return _ok({"request": request_wire(found) if found is not None else None})


@require_POST
@terminal_api
def request_accept(request: HttpRequest, terminal: Terminal, public_id: str) -> JsonResponse:
    services.request_accept(terminal=terminal, public_id=public_id, now=timezone.now())
    return _ok({"status": "accepted"})


@require_POST
@terminal_api
def results(request: HttpRequest, terminal: Terminal) -> JsonResponse:
    answer = services.result_record(terminal=terminal, data=_body(request), now=timezone.now())
    return _ok(answer)


@require_POST
@terminal_api
def settlements(request: HttpRequest, terminal: Terminal) -> JsonResponse:
    answer = services.settlement_record(terminal=terminal, data=_body(request), now=timezone.now())
    return _ok(answer)
