"""Receipts (收据): numbered per community without gaps, snapshotted at issue, voided only
with approval, and checkable by anyone through the QR code's verification token."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ReceiptSequence(models.Model):
    """The last receipt number used in a community and year.

    Issuing a receipt increments this row inside the payment's transaction; the row lock
    serialises concurrent payments of one community, and a rollback returns the number.
    """

    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="receipt_sequences"
    )
    year = models.PositiveSmallIntegerField(_("年度"))
    # "C001-2026": kept here so issuing needs no read of the community.
    prefix = models.CharField(_("前缀"), max_length=40)
    last_seq = models.PositiveIntegerField(_("已用序号"), default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "year"], name="uniq_receipt_seq_year")
        ]
        verbose_name = _("收据号段")
        verbose_name_plural = _("收据号段")

    def __str__(self) -> str:
        return f"{self.prefix} {self.last_seq}"


class Receipt(models.Model):
    """An issued receipt. Its content never changes; only void and print marks do."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("收款")
        REFUND = "refund", _("退款")

    class State(models.TextChoices):
        ISSUED = "issued", pgettext_lazy("receipt", "有效")
        VOID_PENDING = "void_pending", _("作废待审批")
        VOID = "void", _("已作废")

    # Dimension columns: no database foreign key (docs/adr/0005-dimension-columns.md); the
    # community's own index would repeat the unique (community, …) indexes below.
    company = models.ForeignKey(
        "estates.Company", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    community = models.ForeignKey(
        "estates.Community",
        on_delete=models.PROTECT,
        related_name="receipts",
        db_constraint=False,
        db_index=False,
    )
    number = models.CharField(_("收据号"), max_length=60)
    year = models.PositiveSmallIntegerField(_("年度"))
    seq = models.PositiveIntegerField(_("序号"))
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.PAYMENT)
    reference = models.CharField(_("业务单号"), max_length=200)
    content = models.JSONField(_("收据内容"))
    amount_fen = models.BigIntegerField(_("金额(分)"))
    household_label = models.CharField(_("房屋"), max_length=60)
    issued_at = models.DateTimeField(_("开具时间"))
    state = models.CharField(_("状态"), max_length=14, choices=State.choices, default=State.ISSUED)
    verify_token = models.CharField(_("验证码"), max_length=40, unique=True)
    printed_at = models.DateTimeField(_("首次打印时间"), null=True, blank=True)
    reprint_count = models.PositiveIntegerField(_("补打次数"), default=0)
    void_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("作废申请人"),
        db_index=False,  # never searched by; a void is rare, the index paid on every receipt
    )
    void_requested_at = models.DateTimeField(_("作废申请时间"), null=True, blank=True)
    void_reason = models.CharField(_("作废原因"), max_length=200, blank=True)
    void_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("作废审批人"),
        db_index=False,
    )
    void_approved_at = models.DateTimeField(_("作废时间"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "number"], name="uniq_receipt_number"),
            models.UniqueConstraint(
                fields=["community", "year", "seq"], name="uniq_receipt_community_seq"
            ),
            models.UniqueConstraint(fields=["kind", "reference"], name="uniq_receipt_reference"),
            models.CheckConstraint(
                condition=~Q(state="void")
                | (Q(void_approved_by__isnull=False) & Q(void_approved_at__isnull=False)),
                name="receipt_void_is_approved",
            ),
        ]
        indexes = [models.Index(fields=["community", "-issued_at"])]
        ordering = ["-issued_at", "-id"]
        verbose_name = _("收据")
        verbose_name_plural = _("收据")

    def __str__(self) -> str:
        return self.number
