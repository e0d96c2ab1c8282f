"""Bill notices (缴费通知单) and the orders residents start from them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Notice(models.Model):
    """One household's notice as of a date: the open bills it lists and their total then."""

    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    community = models.ForeignKey("estates.Community", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey(
        "estates.Unit", on_delete=models.PROTECT, related_name="notices", verbose_name=_("房屋")
    )
    as_of = models.DateField(_("截止日期"))
    bill_ids = models.JSONField(_("账单"), default=list)
    outstanding_fen = models.BigIntegerField(_("欠费本金(分)"))
    late_fee_fen = models.BigIntegerField(_("滞纳金(分)"), default=0)
    total_fen = models.BigIntegerField(_("合计(分)"))
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("生成时间"))

    class Meta:
        ordering = ["-id"]
        verbose_name = _("缴费通知单")
        verbose_name_plural = _("缴费通知单")

    def __str__(self) -> str:
        return f"#{self.pk} {self.unit_id} {self.as_of} {self.total_fen}"


class NoticeOrder(models.Model):
    """An order a resident started from a notice's pay page, with the channel they chose."""

    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="orders")
    channel = models.CharField(_("支付方式"), max_length=20)
    order = models.OneToOneField(
        "payments.Order", on_delete=models.PROTECT, related_name="notice_link"
    )
    created_at = models.DateTimeField(_("创建时间"))

    class Meta:
        ordering = ["-id"]
        verbose_name = _("通知单收款单")
        verbose_name_plural = _("通知单收款单")

    def __str__(self) -> str:
        return f"{self.notice_id}:{self.channel}:{self.order_id}"
