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
import re
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from wuye.accounts.models import Membership
from wuye.counter.models import Shift
from wuye.estates.models import Community, Unit
from wuye.payments.models import Payment
from wuye.payments.posting import _pg_cursor, cash_checkout
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


# One statement: whether the user holds a counter role anywhere (a superuser always does),
# and the household (if it exists), whether one of those memberships covers its community (a
# membership without communities covers its whole company), and the user's open shift in
# that community (a cashier has at most one open shift: counter's ``Shift`` constraint).
# The same rules as ``access.user_role_set`` + ``access.units_for(user, COUNTER)`` (three
# queries), then the household and shift queries the view ran after them. Table names come
# from the models; every value is a parameter.
_SCOPE_TEMPLATE = """
SELECT r.has_role, x.unit_id, x.community_id, x.in_scope, x.shift_id
FROM (
    SELECT (%(su)s OR EXISTS (
        SELECT 1 FROM {membership} m WHERE m.user_id = %(user)s AND m.role IN %(roles)s
    )) AS has_role
) r
LEFT JOIN (
    SELECT u.id AS unit_id, u.community_id,
        (%(su)s OR EXISTS (
            SELECT 1 FROM {membership} m
            WHERE m.user_id = %(user)s AND m.role IN %(roles)s AND (
                EXISTS (
                    SELECT 1 FROM {through} mc
                    WHERE mc.membership_id = m.id AND mc.community_id = u.community_id
                )
                OR (
                    m.company_id = c.company_id
                    AND NOT EXISTS (SELECT 1 FROM {through} mc WHERE mc.membership_id = m.id)
                )
            )
        )) AS in_scope,
        (
            SELECT s.id FROM {shift} s
            WHERE s.cashier_id = %(user)s AND s.state = %(open)s
              AND s.community_id = u.community_id
            LIMIT 1
        ) AS shift_id
    FROM {unit} u JOIN {community} c ON c.id = u.community_id
    WHERE u.id = %(unit)s
) x ON 1 = 1
"""
_SCOPE_SQL = _SCOPE_TEMPLATE.format(
    membership=Membership._meta.db_table,
    through=Membership.communities.through._meta.db_table,
    shift=Shift._meta.db_table,
    unit=Unit._meta.db_table,
    community=Community._meta.db_table,
)
# Named parameters, positional for the drivers (psycopg prepares the statement text as is).
_SCOPE_NAMES: list[str] = []


def _positional(sql: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        _SCOPE_NAMES.append(name)
        return "(%s, %s, %s)" if name == "roles" else "%s"

    return re.sub(r"%\((\w+)\)s", one, sql)


_SCOPE_SQL = _positional(_SCOPE_SQL)
_ROLES = sorted(COUNTER)


def _counter_scope(user: Any, unit_id: int) -> tuple[bool, Unit | None, bool, int | None]:
    """(counter role anywhere, the household or None, household in the user's counter scope,
    the user's open shift id in its community or None), in one statement (prepared on
    PostgreSQL)."""
    values = {
        "su": bool(user.is_superuser),
        "user": user.pk,
        "open": Shift.State.OPEN.value,
        "unit": unit_id,
    }
    params: list[Any] = []
    for name in _SCOPE_NAMES:
        params += _ROLES if name == "roles" else [values[name]]
    cursor = _pg_cursor() if connection.vendor == "postgresql" else connection.cursor()
    with cursor:
        cursor.execute(_SCOPE_SQL, params)
        has_role, found_id, community_id, in_scope, shift_id = cursor.fetchone()
    if found_id is None:
        return bool(has_role), None, False, None
    # Only the two columns the checkout reads; any other is loaded if something asks for it.
    unit = Unit.from_db(connection.alias, ["id", "community_id"], [found_id, community_id])
    return bool(has_role), unit, bool(in_scope), shift_id


@require_POST
def payments(request: HttpRequest) -> HttpResponse:
    """Take a cash payment for a household's bills (see the module docstring)."""
    user: Any = request.user
    if not user.is_authenticated:
        return _error(401, _("请先登录"))
    try:
        data: dict[str, Any] | None = _parse(request)
    except _BadRequest as exc:
        data, bad = None, exc
    has_role, unit, in_scope, shift_id = _counter_scope(user, data["unit_id"] if data else 0)
    if not has_role:
        return _error(403, _("没有收费权限"))
    if data is None:
        return _error(400, str(bad), bad.field)
    if unit is None or not in_scope:
        return _error(404, _("房屋不存在"), "unit_id")
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
