"""Orders, payments, refunds, their attempts, and prepaid cards.

An ``Order`` is what the cashier asked for (bills of one household and/or a prepayment, one
channel, one idempotency key). A ``Payment`` is money the channel took for it, with the
journal entry and the ``billing.Allocation`` rows (``reference="payment:<id>"``) that settled
bills. A ``Refund`` gives part of a payment back and undoes allocations exactly with rows that
point at the ones they reverse. Every call to a channel is a ``PaymentAttempt`` /
``RefundAttempt`` row with a key unique in the database.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Order(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("待支付")
        PAID = "paid", _("已支付")
        CANCELLED = "cancelled", _("已取消")

    # Dimension columns (company, community, cashier, shift…): no database foreign key, see
    # docs/adr/0005-dimension-columns.md; Django's on_delete still guards deletes.
    company = models.ForeignKey(
        "estates.Company", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    unit = models.ForeignKey(
        "estates.Unit", on_delete=models.PROTECT, related_name="orders", verbose_name=_("房屋")
    )
    channel = models.CharField(_("支付方式"), max_length=20)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    bills_fen = models.BigIntegerField(_("账单部分(分)"), default=0)
    prepay_fen = models.BigIntegerField(_("预存部分(分)"), default=0)
    prepay_fee_item = models.ForeignKey(
        "billing.FeeItem",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("预存指定费项"),
        db_constraint=False,
        db_index=False,
    )
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    idempotency_key = models.CharField(max_length=120, unique=True)
    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("收银员"),
        db_constraint=False,
    )
    shift = models.ForeignKey(
        "counter.Shift",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        db_constraint=False,
    )
    created_at = models.DateTimeField(_("创建时间"))
    closed_at = models.DateTimeField(_("完成/取消时间"), null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="order_amount_positive"),
            models.CheckConstraint(
                condition=Q(prepay_fen__gte=0, bills_fen__gte=0)
                & Q(amount_fen=F("bills_fen") + F("prepay_fen")),
                name="order_parts_add_up",
            ),
        ]
        ordering = ["-id"]
        verbose_name = _("收款单")
        verbose_name_plural = _("收款单")

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} {self.amount_fen}"


class OrderBill(models.Model):
    """A bill chosen in an order, as it stood when the order was made."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    bill = models.ForeignKey("billing.Bill", on_delete=models.PROTECT, related_name="+")
    outstanding_fen = models.BigIntegerField(_("待缴本金(分)"))
    late_fee_fen = models.BigIntegerField(_("滞纳金(分)"), default=0)
    # True while the order is pending: the partial unique index below lets a bill be in only
    # one pending order at a time, across counter, terminal and QR.
    pending = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bill"], condition=Q(pending=True), name="uniq_bill_in_pending_order"
            ),
            models.UniqueConstraint(fields=["order", "bill"], name="uniq_order_bill"),
        ]
        ordering = ["order_id", "id"]
        verbose_name = _("收款单账单")
        verbose_name_plural = _("收款单账单")

    def __str__(self) -> str:
        return f"{self.order_id}:{self.bill_id}"


CHANNEL_FACTS = (
    "rrn",
    "auth_code",
    "masked_pan",
    "card_type",
    "tid",
    "batch",
    "stan",
    "provider_txn_id",
    "funding_source",
)


class Payment(models.Model):
    class State(models.TextChoices):
        SUCCEEDED = "succeeded", _("已收款")
        PARTIALLY_REFUNDED = "partially_refunded", _("部分退款")
        REFUNDED = "refunded", _("已退款")

    class SurplusTo(models.TextChoices):
        NONE = "", _("无")
        PREPAID = "prepaid", _("转为预存")
        REFUND = "refund", _("待退款")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    # Dimension columns (company, community, household, cashier, shift: the order's have
    # them): no database foreign key, see docs/adr/0005-dimension-columns.md.
    company = models.ForeignKey(
        "estates.Company", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    unit = models.ForeignKey(
        "estates.Unit", on_delete=models.PROTECT, related_name="payments", db_constraint=False
    )
    channel = models.CharField(_("支付方式"), max_length=20)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    state = models.CharField(
        _("状态"), max_length=20, choices=State.choices, default=State.SUCCEEDED
    )
    reference = models.CharField(_("渠道流水号"), max_length=120)
    # Channel facts (card/QR); never a full card number.
    rrn = models.CharField(_("参考号"), max_length=32, blank=True)
    auth_code = models.CharField(_("授权码"), max_length=16, blank=True)
    masked_pan = models.CharField(_("卡号"), max_length=19, blank=True)
    card_type = models.CharField(_("卡类型"), max_length=16, blank=True)
    tid = models.CharField(_("终端号"), max_length=16, blank=True)
    batch = models.CharField(_("批次号"), max_length=12, blank=True)
    stan = models.CharField(_("凭证号"), max_length=12, blank=True)
    provider_txn_id = models.CharField(_("支付平台单号"), max_length=64, blank=True)
    funding_source = models.CharField(_("资金来源"), max_length=32, blank=True)
    tendered_fen = models.BigIntegerField(_("实收现金(分)"), null=True, blank=True)
    change_fen = models.BigIntegerField(_("找零(分)"), null=True, blank=True)
    allocated_fen = models.BigIntegerField(_("销账(分)"), default=0)
    prepaid_fen = models.BigIntegerField(_("转预存(分)"), default=0)
    refund_due_fen = models.BigIntegerField(_("多付待退(分)"), default=0)
    surplus_to = models.CharField(
        _("多付款处理"), max_length=10, choices=SurplusTo.choices, blank=True
    )
    refunded_fen = models.BigIntegerField(_("已退(分)"), default=0)
    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("收银员"),
        db_constraint=False,
    )
    shift = models.ForeignKey(
        "counter.Shift",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_constraint=False,
    )
    entry = models.ForeignKey("ledger.JournalEntry", on_delete=models.PROTECT, related_name="+")
    receipt_number = models.CharField(_("收据号"), max_length=40, blank=True)
    paid_at = models.DateTimeField(_("收款时间"), db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "reference"], name="uniq_payment_reference"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0, refunded_fen__lte=F("amount_fen")),
                name="payment_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_fen=F("allocated_fen") + F("prepaid_fen") + F("refund_due_fen")),
                name="payment_parts_add_up",
            ),
        ]
        ordering = ["-id"]
        verbose_name = _("收款")
        verbose_name_plural = _("收款")

    def __str__(self) -> str:
        return f"{self.channel} {self.reference} {self.amount_fen}"

    @property
    def refundable_fen(self) -> int:
        return self.amount_fen - self.refunded_fen

    @property
    def allocation_reference(self) -> str:
        """The ``billing.Allocation.reference`` of this payment's allocations."""
        return f"payment:{self.pk}"


class ChannelAttempt(models.Model):
    """What one call to a channel sent and answered; keyed so a retry finds the first."""

    idempotency_key = models.CharField(max_length=160, unique=True)
    amount_fen = models.BigIntegerField()
    result = models.CharField(max_length=12)
    reference = models.CharField(max_length=120, blank=True)
    message = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        abstract = True
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.result} {self.amount_fen}"


class PaymentAttempt(ChannelAttempt):
    """One call to a channel to take money for an order, and what it answered."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="attempts")
    channel = models.CharField(max_length=20)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="attempts"
    )

    class Meta(ChannelAttempt.Meta):
        verbose_name = _("支付请求")
        verbose_name_plural = _("支付请求")

    def __str__(self) -> str:
        return f"{self.channel} {self.result} {self.amount_fen}"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    channel = models.CharField(_("退款渠道"), max_length=20)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    reason = models.CharField(_("原因"), max_length=200)
    reference = models.CharField(_("渠道流水号"), max_length=120, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("经办人"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("审批人"),
    )
    shift = models.ForeignKey(
        "counter.Shift", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    entry = models.ForeignKey("ledger.JournalEntry", on_delete=models.PROTECT, related_name="+")
    receipt_number = models.CharField(_("收据号"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("退款时间"), db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive")
        ]
        ordering = ["-id"]
        verbose_name = _("退款")
        verbose_name_plural = _("退款")

    def __str__(self) -> str:
        return f"#{self.pk} {self.amount_fen}"


class RefundAttempt(ChannelAttempt):
    """One call to a channel to give money back, and what it answered."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refund_attempts")
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="attempts"
    )

    class Meta(ChannelAttempt.Meta):
        verbose_name = _("退款请求")
        verbose_name_plural = _("退款请求")


class PrepaidCard(models.Model):
    """A household's prepaid card (预付费卡): a number and a password checked like a PIN.

    The password is stored hashed (Django's password hashers); ``failed_tries`` wrong
    passwords in a row lock the card until finance resets the password.
    """

    unit = models.ForeignKey("estates.Unit", on_delete=models.PROTECT, related_name="prepaid_cards")
    card_no = models.CharField(_("卡号"), max_length=32, unique=True)
    password_hash = models.CharField(max_length=128)
    failed_tries = models.PositiveSmallIntegerField(_("连续密码错误"), default=0)
    locked_at = models.DateTimeField(_("锁定时间"), null=True, blank=True)
    active = models.BooleanField(_("有效"), default=True)
    issued_at = models.DateTimeField(_("发卡时间"))

    class Meta:
        ordering = ["-id"]
        verbose_name = _("预付费卡")
        verbose_name_plural = _("预付费卡")

    def __str__(self) -> str:
        return f"****{self.card_no[-4:]}"
