"""JSON API for counter cash payments: ``POST /api/payments/``.

The request (``Content-Type: application/json``), made by a logged-in cashier (Django session,
with the ``X-CSRFToken`` header like any form post) whose shift is open in the household's
community::

    {"unit_id": 123, "bill_ids": [456, 457], "amount_fen": null, "tendered_fen": 50000,
     "idempotency_key": "counter-7-20261122-0001"}

``amount_fen`` null or left out pays the bills in full (late fees as of now included); less is
a partial payment, more prepays the rest. ``tendered_fen`` null or left out means exact cash.
The idempotency key may come in the body or the ``Idempotency-Key`` header; the same key again
answers the same payment (200 instead of 201), so a client may retry after a timeout.

Answers: 201/200 with the payment (ids, amounts in fen, change, receipt number); 400 with
``{"error", "field"}`` for bad input; 403 without the counter role or an open shift there; 404
for a household outside the user's communities; 409 when a bill is in another pending order
or the key was used for something else. Nothing is written unless the answer is 200/201.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from wuye.accounts.models import Membership
from wuye.counter.models import Shift
from wuye.estates.models import Unit
from wuye.payments.models import Payment
from wuye.payments.posting import cash_checkout
from wuye.payments.services import (
    BillInPendingOrder,
    IdempotencyKeyConflict,
    OrderNotPending,
    PaymentError,
)

COUNTER = frozenset({"cashier", "finance", "admin"})


class _BadRequest(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _error(status: int, message: str, field: str = "") -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def _fen(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _BadRequest(name, _("%(name)s: 须为正整数(分)") % {"name": name})
    return value


def _parse(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("", _("请求体须为JSON对象")) from None
    if not isinstance(body, dict):
        raise _BadRequest("", _("请求体须为JSON对象"))
    unit_id = body.get("unit_id")
    if not isinstance(unit_id, int) or isinstance(unit_id, bool):
        raise _BadRequest("unit_id", _("unit_id: 须为房屋编号(整数)"))
    bill_ids = body.get("bill_ids", [])
    if not isinstance(bill_ids, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in bill_ids
    ):
        raise _BadRequest("bill_ids", _("bill_ids: 须为账单编号(整数)的列表"))
    key = body.get("idempotency_key") or request.headers.get("Idempotency-Key", "")
    if not isinstance(key, str) or not 0 < len(key) <= 120:
        raise _BadRequest("idempotency_key", _("idempotency_key: 必填, 不超过120个字符"))
    amount = _fen(body, "amount_fen")
    if not bill_ids and amount is None:
        raise _BadRequest("bill_ids", _("请勾选账单或输入金额"))
    return {
        "unit_id": unit_id,
        "bill_ids": bill_ids,
        "amount_fen": amount,
        "tendered_fen": _fen(body, "tendered_fen"),
        "idempotency_key": key,
    }


def _answer(payment: Payment, *, created: bool) -> JsonResponse:
    return JsonResponse(
        {
            "payment_id": payment.pk,
            "order_id": payment.order_id,
            "unit_id": payment.unit_id,
            "amount_fen": payment.amount_fen,
            "allocated_fen": payment.allocated_fen,
            "prepaid_fen": payment.prepaid_fen,
            "tendered_fen": payment.tendered_fen,
            "change_fen": payment.change_fen,
            "receipt_number": payment.receipt_number,
            "paid_at": payment.paid_at.isoformat(),
        },
        status=201 if created else 200,
    )


def _counter_scope(user: Any) -> Q | None:
    """The households ``user`` may take payments for, as a filter on units; None: no counter
    role anywhere.

    One query for what ``access.user_role_set`` and ``access.units_for(user, COUNTER)`` read
    in three (memberships, then memberships again with their communities): the same roles,
    the same communities (a membership without communities is its whole company).
    """
    if user.is_superuser:
        return Q()
    members: dict[int, tuple[str, int, list[int]]] = {}
    rows = Membership.objects.filter(user=user).values_list(
        "pk", "role", "company_id", "communities__id"
    )
    for pk, role, company_id, community_id in rows:
        member = members.setdefault(pk, (role, company_id, []))
        if community_id is not None:
            member[2].append(community_id)
    user._wuye_roles = frozenset(role for role, _c, _ids in members.values())
    if not user._wuye_roles & COUNTER:
        return None
    scope = Q(pk__in=[])
    for role, company_id, ids in members.values():
        if role in COUNTER:
            scope |= Q(community_id__in=ids) if ids else Q(community__company_id=company_id)
    return scope


@require_POST
def payments(request: HttpRequest) -> HttpResponse:
    """Take a cash payment for a household's bills (see the module docstring)."""
    user: Any = request.user
    if not user.is_authenticated:
        return _error(401, _("请先登录"))
    scope = _counter_scope(user)
    if scope is None:
        return _error(403, _("没有收费权限"))
    try:
        data = _parse(request)
    except _BadRequest as exc:
        return _error(400, str(exc), exc.field)
    # The household and the cashier's open shift there, in one query (a cashier has at most
    # one open shift: counter's ``Shift`` constraint).
    open_shift = Shift.objects.filter(
        cashier=user, state=Shift.State.OPEN, community_id=OuterRef("community_id")
    ).values("pk")[:1]
    unit = (
        Unit.objects.filter(scope, pk=data["unit_id"])
        .select_related("community")
        .annotate(open_shift_id=Subquery(open_shift))
        .first()
    )
    if unit is None:
        return _error(404, _("房屋不存在"), "unit_id")
    shift_id = unit.open_shift_id
    if shift_id is None:
        return _error(403, _("请先在该小区开班"))
    try:
        payment = cash_checkout(
            unit=unit,
            bill_ids=data["bill_ids"],
            amount_fen=data["amount_fen"],
            tendered_fen=data["tendered_fen"],
            idempotency_key=data["idempotency_key"],
            cashier=user,
            shift_id=shift_id,
            now=timezone.now(),
        )
    except (BillInPendingOrder, IdempotencyKeyConflict, OrderNotPending) as exc:
        return _error(409, str(exc))
    except PaymentError as exc:
        return _error(400, str(exc))
    return _answer(payment, created=getattr(payment, "created_now", False))
