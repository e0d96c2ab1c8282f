"""Bill notices: make them, sign their pay links, and start a resident's payment from one.

A notice lists a household's open bills and late fees as of a date with a QR code that opens
``/notices/p/<token>/``: a signed token, no login. There the resident chooses WeChat Pay or
Alipay and Wuye creates the order (``payments.services.order_create``, one per notice and
channel while it is pending) and the provider's dynamic code (``qrpay.services.qr_start``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from wuye.billing.models import Bill
from wuye.billing.selectors import open_bills
from wuye.channels.qrpay.base import QrChannel, QrCode
from wuye.channels.registry import channels_all
from wuye.estates.models import Unit
from wuye.notices.models import Notice, NoticeOrder
from wuye.payments.models import Order
from wuye.payments.services import PaymentError, order_create
from wuye.receipts.selectors import public_base_url

PAY_LINK_SALT = "wuye.notices.pay"


class NoticeError(ValueError):
    """A notice cannot be made or paid; the message says why. Nothing was written."""


class NoticeNothingDue(NoticeError):
    """The household has nothing open to pay."""


class NoticeAlreadyPaid(NoticeError):
    """The notice's bills were paid through its pay page."""


def _qr() -> Any:
    # The shared QR services (issue 5, part A); imported when used.
    return importlib.import_module("wuye.channels.qrpay.services")


def notice_create(
    *, unit: Unit, as_of: date, user: Any = None, job_id: int | None = None, now: datetime
) -> Notice:
    """Make the notice of ``unit`` listing its open bills and late fees as of ``as_of``.

    Raise NoticeNothingDue when nothing is owed on that date.
    """
    lines = [x for x in open_bills(unit_id=unit.pk, as_of=as_of) if x.outstanding_fen > 0]
    if not lines:
        raise NoticeNothingDue(
            _("%(unit)s 截至 %(day)s 没有欠费") % {"unit": unit.label, "day": as_of}
        )
    outstanding = sum(x.outstanding_fen for x in lines)
    late = sum(x.late_fee_fen for x in lines)
    return Notice.objects.create(
        company_id=unit.community.company_id,
        community_id=unit.community_id,
        unit=unit,
        as_of=as_of,
        bill_ids=[x.bill_id for x in lines],
        outstanding_fen=outstanding,
        late_fee_fen=late,
        total_fen=outstanding + late,
        job_id=job_id,
        created_by=user if getattr(user, "pk", None) else None,
        created_at=now,
    )


def notice_token(notice: Notice) -> str:
    """Return the signed token of the notice's pay page."""
    return signing.Signer(salt=PAY_LINK_SALT).sign(str(notice.pk))


def notice_for_token(token: str) -> Notice | None:
    """Return the notice a token was signed for, or None for a forged or damaged token."""
    try:
        pk = signing.Signer(salt=PAY_LINK_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return Notice.objects.select_related("unit", "community__company").filter(pk=pk).first()


def notice_pay_url(notice: Notice) -> str:
    """Return the absolute URL the notice's QR code opens."""
    path = reverse("notices:pay", args=[notice_token(notice)])
    return public_base_url().rstrip("/") + path


def pay_channels() -> dict[str, QrChannel]:
    """Return the QR channels a resident can choose (WeChat Pay, Alipay), by code."""
    return {code: c for code, c in channels_all().items() if isinstance(c, QrChannel)}


def notice_paid_order(notice: Notice) -> Order | None:
    """Return the order through which the notice was paid, if any."""
    link = (
        NoticeOrder.objects.filter(notice=notice, order__state=Order.State.PAID)
        .select_related("order")
        .first()
    )
    return link.order if link else None


@dataclass(frozen=True)
class NoticePay:
    """What the pay page shows after the resident chose a channel."""

    order: Order
    code: QrCode


def notice_pay_start(*, notice: Notice, channel: str, now: datetime) -> NoticePay:
    """Start (or resume) paying ``notice`` with ``channel``; return the order and its QR.

    One pending order per notice and channel: choosing again shows the same code; choosing the
    other channel closes the first one's code and cancels it, so the bills are never in two
    orders. Raise NoticeAlreadyPaid, NoticeNothingDue, NoticeError (unknown channel, bills in
    an order at the counter, the provider unreachable).
    """
    qr = _qr()
    if channel not in pay_channels():
        raise NoticeError(_("不支持的支付方式: %(c)s") % {"c": channel})
    if notice_paid_order(notice) is not None:
        raise NoticeAlreadyPaid(_("该通知单已支付"))
    links = NoticeOrder.objects.filter(notice=notice, order__state=Order.State.PENDING)
    order: Order | None = None
    for link in links.select_related("order"):
        if link.channel == channel:
            order = link.order
            continue
        try:
            closed = qr.qr_cancel(link.order, now=now)
        except qr.QrError as exc:
            raise NoticeError(str(exc)) from exc
        if closed.state == Order.State.PAID:
            raise NoticeAlreadyPaid(_("该通知单已支付"))
    if order is None:
        order = _order_for(notice, channel, now=now)
    try:
        code = qr.qr_start(order, now=now)
    except (qr.QrError, PaymentError) as exc:
        raise NoticeError(str(exc)) from exc
    except qr.ChannelUnavailable as exc:
        raise NoticeError(_("支付渠道暂时无法连接, 请稍后再试")) from exc
    return NoticePay(order=order, code=code)


def _order_for(notice: Notice, channel: str, *, now: datetime) -> Order:
    with transaction.atomic():
        Notice.objects.select_for_update().filter(pk=notice.pk).values_list("pk").first()
        still_open = [
            b.pk
            for b in Bill.objects.filter(pk__in=notice.bill_ids).order_by("pk")
            if b.outstanding_fen > 0
        ]
        if not still_open:
            raise NoticeNothingDue(_("通知单上的账单已结清"))
        n = NoticeOrder.objects.filter(notice=notice).count() + 1
        try:
            order = order_create(
                unit=notice.unit,
                bill_ids=still_open,
                channel=channel,
                idempotency_key=f"notice:{notice.pk}:{n}",
                cashier=None,
                now=now,
            )
        except PaymentError as exc:
            raise NoticeError(str(exc)) from exc
        NoticeOrder.objects.get_or_create(
            order=order, defaults={"notice": notice, "channel": channel, "created_at": now}
        )
    return order


def notice_status(notice: Notice) -> dict[str, Any]:
    """Return what the pay page polls: ``paid``, the amount and the funding source."""
    paid = notice_paid_order(notice)
    if paid is None:
        return {"paid": False}
    from wuye.payments.models import Payment

    payment = Payment.objects.filter(order=paid).order_by("pk").first()
    return {
        "paid": True,
        "amount_fen": paid.amount_fen,
        "channel": paid.channel,
        "funding_source": payment.funding_source if payment else "",
        "receipt_number": payment.receipt_number if payment else "",
    }


NOTICE_ROLES = frozenset({"admin", "finance", "manager"})
"""Who may make notices (a household's or a batch)."""


def notices_batch_launch(
    *, community: Any, building: Any = None, as_of: date, size: str, user: Any
) -> Any:
    """Queue the notices of a community (or one building) as a background job; return it.

    The job makes a notice for every household with something owed on ``as_of`` and one PDF
    with a page each (``Job.result_file``), reporting progress as it goes. Raise AccessDenied
    without an admin/finance/manager role there, NoticeError for a building of another
    community or an unknown size. Nothing is written then.
    """
    from wuye.accounts.selectors import require_role
    from wuye.core.models import Job
    from wuye.core.services import audit_record
    from wuye.notices.pdf import SIZES
    from wuye.notices.tasks import notices_batch_task

    require_role(
        user, set(NOTICE_ROLES), company_id=community.company_id, community_id=community.pk
    )
    if building is not None and building.community_id != community.pk:
        raise NoticeError(_("楼栋 %(b)s 不属于 %(c)s") % {"b": building.name, "c": community.name})
    if size not in SIZES:
        raise NoticeError(_("纸张: A4 或 A5"))
    params = {
        "community_id": community.pk,
        "building_id": building.pk if building is not None else None,
        "as_of": as_of.isoformat(),
        "size": size,
    }
    where = community.name + (f" {building.name}" if building is not None else "")
    with transaction.atomic():
        job = Job.objects.create(
            kind="notices",
            title=_("缴费通知单 %(where)s 截至 %(day)s") % {"where": where, "day": as_of},
            company_id=community.company_id,
            params=params,
            created_by=user if getattr(user, "pk", None) else None,
        )
        audit_record(
            actor=user, action="notices.batch", obj=job, company=community.company, detail=params
        )
        job_id = job.pk
        transaction.on_commit(lambda: notices_batch_task.enqueue(job_id))
    return job
